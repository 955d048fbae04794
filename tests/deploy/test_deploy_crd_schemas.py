"""What render emits passes Knative's real CRD schemas (HEAD and v1.17), Kubernetes' schemas and the admission rules.

The CRDs come from ``$KNEVENTS_KNATIVE_CRDS`` (see tests/deploy/crds.py); the checker is the one
``knevents render --check`` runs (knevents.deploy.check), so the tests below also prove that it catches what a
cluster refuses: an unknown field, a feature-flagged field, a wrong type inside a channel template.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from knevents.deploy import check, render

from tests.deploy import corpus, crds

FILES = corpus.manifest_files()
SEEDS = corpus.seed_blocks()


def _render(docs: dict[str, list[dict[str, Any]]]) -> render.Rendering:
    return render.render(docs.get("EventSource", []), docs.get("Sensor", []), docs.get("EventBus", []))


def test_the_vendored_schemas_are_the_head_crds() -> None:
    vendored = check.knative_schemas()
    head = crds.schemas("head")
    assert vendored == {key: head[key] for key in vendored}, (
        "regenerate deploy/schemas/knative.json (its README)"
    )


@pytest.mark.parametrize("release", crds.RELEASES)
@pytest.mark.parametrize("path", FILES, ids=[corpus.ident(p) for p in FILES])
def test_every_example_passes(path: Path, release: str) -> None:
    rendering = _render(corpus.documents(path))
    assert [str(f) for f in crds.findings(rendering.objects, release)] == []


@pytest.mark.parametrize("release", crds.RELEASES)
@pytest.mark.parametrize("block", [b for _, b in SEEDS], ids=[i for i, _ in SEEDS])
def test_every_seed_manifest_passes(block: dict[str, list[dict[str, Any]]], release: str) -> None:
    rendering = _render(block)
    assert [str(f) for f in crds.findings(rendering.objects, release)] == []


def test_the_seeds_are_there() -> None:
    if corpus.SEEDS is None:
        pytest.skip("KNEVENTS_SEEDS is not set to the seed documents (../shared/seeds in CI)")
    assert len(SEEDS) >= 10


def _webhook_service() -> dict[str, Any]:
    docs = corpus.documents(
        corpus.REPO / "examples" / "seeds" / "complete-documentation" / "c01-webhook-eventsource.yaml"
    )
    rendering = _render(docs)
    return copy.deepcopy(next(o for o in rendering.objects if o["kind"] == "Service"))


@pytest.mark.parametrize("release", crds.RELEASES)
def test_an_unknown_field_is_refused_as_strict_field_validation_does(release: str) -> None:
    service = _webhook_service()
    service["spec"]["template"]["spec"]["containers"][0]["notAField"] = 1
    found = crds.findings([service], release)
    assert any("notAField" in f.message and f.path == "spec.template.spec.containers.0" for f in found)


@pytest.mark.parametrize("release", crds.RELEASES)
def test_a_feature_flagged_field_is_refused(release: str) -> None:
    service = _webhook_service()
    service["spec"]["template"]["spec"]["containers"][0]["env"].append(
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
    )
    found = crds.findings([service], release)
    assert any("kubernetes.podspec-fieldref" in f.message for f in found)


@pytest.mark.parametrize("release", crds.RELEASES)
def test_int_or_string_and_preserved_fields_are_accepted(release: str) -> None:
    service = _webhook_service()
    container = service["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbe"] = {"httpGet": {"path": "/health", "port": "http1"}}
    container["resources"] = {"limits": {"cpu": 1, "memory": "128Mi"}}
    assert crds.findings([service], release) == []
    container["readinessProbe"]["httpGet"]["port"] = 8080
    assert crds.findings([service], release) == []


@pytest.mark.parametrize("release", crds.RELEASES)
def test_a_wrong_type_in_the_jetstream_channel_template_is_refused(release: str) -> None:
    bus = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "EventBus",
        "metadata": {"name": "default"},
        "spec": {"jetstream": {"version": "2.9.22"}},
    }
    config_map = next(o for o in _render({"EventBus": [bus]}).objects if o["kind"] == "ConfigMap")
    config_map["data"]["channel-template-spec"] = json.dumps(
        {
            "apiVersion": "messaging.knative.dev/v1alpha1",
            "kind": "NatsJetStreamChannel",
            "spec": {"stream": {"config": {"maxBytes": "1GB"}}},
        }
    )
    found = crds.findings([config_map], release)
    assert [f.path for f in found] == ["data.channel-template-spec.spec.stream.config.maxBytes"]


@pytest.mark.parametrize("version", ["1.30", "1.37"])
def test_core_objects_are_checked_strictly_offline(version: str) -> None:
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}}
    assert check.check([config_map], kube_version=version) == []
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "r", "namespace": "n"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verb": ["get"]}],
    }
    found = check.check([role], kube_version=version)
    assert found and "verb" in found[0].message


def test_a_broker_rendered_twice_differently_is_reported() -> None:
    bus = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "EventBus",
        "metadata": {"name": "default"},
        "spec": {"kafka": {"url": "kafka:9092"}},
    }
    kafka = next(o for o in _render({"EventBus": [bus]}).objects if o["kind"] == "Broker")
    other = copy.deepcopy(kafka)
    other["metadata"]["annotations"]["eventing.knative.dev/broker.class"] = "MTChannelBasedBroker"
    found = check.check([kafka, other])
    assert [f.path for f in found] == ["spec"]


def _synthetic() -> list[tuple[str, render.Rendering]]:
    """One rendering per issue-18 item that the examples do not cover."""
    from tests.deploy import test_deploy_rbac_runtime as rbac_cases

    meta = {"apiVersion": "argoproj.io/v1alpha1"}
    kafka_bus = {
        **meta,
        "kind": "EventBus",
        "metadata": {"name": "kafka"},
        "spec": {"kafka": {"url": "k:9092"}},
    }
    stream = "maxBytes: 1GB\nmaxAge: 72h\nduplicates: 300s\nreplicas: 3\nretention: 1\n"
    js_bus = {
        **meta,
        "kind": "EventBus",
        "metadata": {"name": "js"},
        "spec": {"jetstream": {"streamConfig": stream}},
    }
    env = [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    source = {
        **meta,
        "kind": "EventSource",
        "metadata": {"name": "hooks"},
        "spec": {
            "eventBusName": "kafka",
            "template": {"serviceAccountName": "hooks-sa", "container": {"env": env}},
            "webhook": {"e": {"endpoint": "/e", "method": "POST", "port": "12000"}},
        },
    }
    out = [
        ("kafka-bus-and-downward-env", render.render([source], [], [kafka_bus])),
        ("stream-config", render.render([], [], [js_bus])),
    ]
    out += [(f"rbac-{s.id}", render.render([], [rbac_cases._sensor(s)])) for s in rbac_cases.SCENARIOS]
    return out


SYNTHETIC = _synthetic()


@pytest.mark.parametrize("release", crds.RELEASES)
@pytest.mark.parametrize("rendering", [r for _, r in SYNTHETIC], ids=[i for i, _ in SYNTHETIC])
def test_synthetic_inputs_of_each_item_pass(rendering: render.Rendering, release: str) -> None:
    assert [str(f) for f in crds.findings(rendering.objects, release)] == []
