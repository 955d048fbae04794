"""Knative's CRD schemas for the deploy tests: HEAD and v1.17 from ``$KNEVENTS_KNATIVE_CRDS``, or the vendored copy.

The CRD YAML is test data outside the repository (CI's ``../shared/knative-crds``, set by ``.ci/run``); a
user's clone has none, so the tests that need it skip, saying why. Tests that only need *a* schema use the
copy vendored in the package (``knevents/deploy/schemas``), which is always there.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import pytest
from knevents.deploy import check, crdschema

ENV = "KNEVENTS_KNATIVE_CRDS"
RELEASES = ("head", "v1.17")
KUBE_VERSIONS = {"head": "1.37", "v1.17": "1.30"}
"""Each Knative release is checked with a Kubernetes version it supports (newest and oldest we check)."""


def root() -> Path | None:
    """The knative-crds folder, or None when the environment does not give it."""
    value = os.environ.get(ENV)
    return Path(value) if value else None


def need_root() -> Path:
    """The knative-crds folder; skips the calling test (with the reason) when it is not given."""
    found = root()
    if found is None or not found.is_dir():
        pytest.skip(f"{ENV} is not set to Knative's CRD YAML (../shared/knative-crds in CI)")
    return found


@functools.cache
def schemas(release: str) -> dict[str, dict[str, Any]]:
    """The JSON Schemas of every Knative CRD of ``release`` (``head`` or ``v1.17``)."""
    base = need_root() / ("" if release == "head" else release)
    return crdschema.load_dir(*(base / part for part in ("serving", "eventing", "natss")))


def findings(objs: list[dict[str, Any]], release: str) -> list[check.Finding]:
    """What a cluster with that Knative release would refuse among ``objs``."""
    return check.check(objs, schemas=schemas(release), kube_version=KUBE_VERSIONS[release])
