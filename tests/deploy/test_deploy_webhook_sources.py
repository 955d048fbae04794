"""Render of Argo's upstream provider-webhook EventSources: each push source scales to zero; minio listens (pull)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from knevents.deploy import render

from tests import upstream

_ROOT = upstream.examples_dir()
pytestmark = pytest.mark.skipif(_ROOT is None, reason=upstream.REASON)
ZERO = {"autoscaling.knative.dev/min-scale": "0"}
ONE = {"autoscaling.knative.dev/min-scale": "1", "autoscaling.knative.dev/max-scale": "1"}


def _scale(doc: dict[str, Any]) -> dict[str, str]:
    (service,) = [o for o in render.render([doc], []).objects if o["kind"] == "Service"]
    annotations: dict[str, str] = service["spec"]["template"]["metadata"]["annotations"]
    return {k: v for k, v in annotations.items() if k.startswith("autoscaling.knative.dev/")}


@pytest.mark.parametrize("name", ["slack", "stripe", "bitbucket", "bitbucketserver", "gerrit", "storage-grid"])
def test_upstream_push_sources_render_with_min_scale_zero(name: str) -> None:
    assert _ROOT is not None
    doc = yaml.safe_load((_ROOT / "event-sources" / f"{name}.yaml").read_text())
    assert _scale(doc) == ZERO


def test_minio_listener_keeps_one_replica_and_its_webhook_option_scales_to_zero() -> None:
    assert _ROOT is not None
    doc = yaml.safe_load((_ROOT / "event-sources" / "minio.yaml").read_text())
    assert _scale(doc) == ONE
    doc["spec"]["minio"]["example"]["webhook"] = {"endpoint": "/minio", "port": "12000"}
    assert _scale(doc) == ZERO
