"""Inputs the examples do not cover render to what Knative's admission webhooks accept (issue 18)."""

from __future__ import annotations

from typing import Any

import pytest
from knevents.deploy import check, render

from tests.deploy import crds


def _source(spec: dict[str, Any], name: str = "hooks") -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "EventSource",
        "metadata": {"name": name},
        "spec": spec,
    }


def _sensor(spec: dict[str, Any], name: str = "on-hook") -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Sensor", "metadata": {"name": name}, "spec": spec}


WEBHOOK = {"webhook": {"e": {"endpoint": "/e", "method": "POST", "port": "12000"}}}
DOWNWARD_ENV = [
    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
    {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
    {"name": "LEVEL", "value": "debug"},
]


def _env(rendering: render.Rendering) -> dict[str, Any]:
    service = next(o for o in rendering.objects if o["kind"] == "Service")
    return {e["name"]: e for e in service["spec"]["template"]["spec"]["containers"][0]["env"]}


@pytest.mark.parametrize("kind", ["EventSource", "Sensor"])
def test_downward_api_env_is_rendered_as_knative_admits_it_with_a_warning(kind: str) -> None:
    template = {"container": {"env": DOWNWARD_ENV}}
    if kind == "EventSource":
        rendering = render.render([_source({**WEBHOOK, "template": template})], [], options=None)
    else:
        spec = {
            "template": template,
            "dependencies": [{"name": "d", "eventSourceName": "hooks", "eventName": "e"}],
            "triggers": [{"template": {"name": "log", "log": {}}}],
        }
        rendering = render.render([], [_sensor(spec)])
    env = _env(rendering)
    assert env["POD_NAMESPACE"] == {"name": "POD_NAMESPACE", "value": "default"}
    assert env["LEVEL"] == {"name": "LEVEL", "value": "debug"}
    assert "POD_NAME" not in env and "CPU" not in env
    flagged = [w for w in rendering.warnings if "kubernetes.podspec-fieldref" in w]
    assert len(flagged) == 2
    assert "POD_NAME" in flagged[0] and "metadata.name" in flagged[0]
    assert "CPU" in flagged[1] and "limits.cpu" in flagged[1]
    assert check.check(rendering.objects) == []


@pytest.mark.parametrize("release", crds.RELEASES)
def test_downward_api_env_passes_each_release(release: str) -> None:
    rendering = render.render([_source({**WEBHOOK, "template": {"container": {"env": DOWNWARD_ENV}}})], [])
    assert crds.findings(rendering.objects, release) == []
