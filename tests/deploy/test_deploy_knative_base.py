"""The knative/ base manifests: valid objects, and consistent with what ``knevents render`` assumes."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from knevents.deploy import options

from tests.deploy import corpus, schemas

KNATIVE = corpus.REPO / "knative"


def _build(directory: Path) -> list[dict[str, Any]]:
    """The objects a kustomization lists (plain resources only, which is all these use)."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert set(kustomization) <= {"apiVersion", "kind", "resources"}
    objs: list[dict[str, Any]] = []
    for resource in kustomization["resources"]:
        objs.extend(d for d in yaml.safe_load_all((directory / resource).read_text()) if d)
    return objs


def test_every_file_is_listed_and_every_object_is_valid() -> None:
    for directory in (KNATIVE / "cluster", KNATIVE / "namespace"):
        listed = set(yaml.safe_load((directory / "kustomization.yaml").read_text())["resources"])
        assert listed == {p.name for p in directory.glob("*.yaml")} - {"kustomization.yaml"}
        for obj in _build(directory):
            assert schemas.roundtrip(obj) == obj


def test_default_broker_config_points_at_the_jetstream_channel() -> None:
    by_name = {o["metadata"]["name"]: o for o in _build(KNATIVE / "cluster")}
    defaults = yaml.safe_load(by_name["config-br-defaults"]["data"]["default-br-config"])["clusterDefault"]
    assert defaults["brokerClass"] == "MTChannelBasedBroker"
    channel_config = by_name[defaults["name"]]
    assert channel_config["metadata"]["namespace"] == defaults["namespace"] == "knative-eventing"
    channel = yaml.safe_load(channel_config["data"]["channel-template-spec"])
    assert (channel["apiVersion"], channel["kind"]) == (
        "messaging.knative.dev/v1alpha1",
        "NatsJetStreamChannel",
    )
    assert defaults["delivery"]["backoffPolicy"] == "exponential"


def test_nats_service_is_what_rendered_sensors_use_by_default() -> None:
    (service,) = _build(KNATIVE / "namespace")
    url = urlsplit(options.DEFAULT_NATS_URL)
    assert service["metadata"]["name"] == url.hostname
    assert "namespace" not in service["metadata"]  # applied into the functions' namespace
    assert [p["port"] for p in service["spec"]["ports"]] == [url.port]
