"""The rendered Role is exactly what the trigger executors call: no 403, no verb granted and never used.

Each scenario renders a Sensor with one k8s / argoWorkflow trigger, turns its Roles and ClusterRoles into the
Kubernetes stand-in's authorizer (a request the rules do not allow gets 403, as RBAC answers), fires the same
trigger through the real executor (official kubernetes client) — on every path it has, e.g. update of a missing
object (create) and of an existing one (update) — and compares the calls recorded by the stand-in with the grants.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from knevents import triggers
from knevents.deploy import render
from knevents.settings import HttpSettings, KubeSettings, Settings
from knevents.triggers import kube

from tests.fixtures.kube import KubeApi
from tests.integration.triggers.http_target import Answer, HttpTarget
from tests.unit.triggers import trigger_support as support

NS = "argo-events"
Grant = tuple[str, str, str, str]  # (namespace or "*", group, resource, verb)


def _cm(name: str = "cm", namespace: str | None = None, **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, **({"namespace": namespace} if namespace else {})}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "v"}}


def _wf(kind: str = "Workflow", name: str = "wf1") -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": {}}


@dataclasses.dataclass(frozen=True)
class Scenario:
    id: str
    kind: str
    config: dict[str, Any]
    resource: dict[str, Any]
    fires: int = 1
    seeds: tuple[dict[str, Any], ...] = ()
    policy: dict[str, Any] | None = None


SCENARIOS = [
    Scenario("k8s-create", "k8s", {"operation": "create"}, {**_cm(), "metadata": {"generateName": "cm-"}}),
    Scenario(
        "k8s-create-policy",
        "k8s",
        {"operation": "create"},
        _cm(done="true"),
        policy={"k8s": {"labels": {"done": "true"}, "backoff": {"steps": 2, "duration": "10ms"}}},
    ),
    Scenario("k8s-create-other-namespace", "k8s", {"operation": "create"}, _cm(namespace="other")),
    Scenario(
        "k8s-create-cluster-scoped",
        "k8s",
        {"operation": "create"},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"generateName": "pr-env-"}},
    ),
    Scenario("k8s-update-missing-then-existing", "k8s", {"operation": "update"}, _cm(), fires=2),
    Scenario("k8s-patch-missing-then-existing", "k8s", {"operation": "patch"}, _cm(), fires=2),
    Scenario(
        "k8s-patch-live-object",
        "k8s",
        {"operation": "patch", "liveObject": True, "patchStrategy": "json"},
        _cm(),
        fires=2,
    ),
    Scenario(
        "k8s-delete",
        "k8s",
        {"operation": "delete"},
        _cm(),
        seeds=(_cm(namespace=NS),),
    ),
    Scenario(
        "argo-submit", "argoWorkflow", {"operation": "submit"}, {**_wf(), "metadata": {"generateName": "wf-"}}
    ),
    Scenario(
        "argo-submit-from-template",
        "argoWorkflow",
        {"operation": "submit-from"},
        _wf("WorkflowTemplate", "tpl"),
    ),
    Scenario(
        "argo-submit-from-cluster-template",
        "argoWorkflow",
        {"operation": "submit-from"},
        _wf("ClusterWorkflowTemplate", "ctpl"),
    ),
    Scenario(
        "argo-submit-from-cron",
        "argoWorkflow",
        {"operation": "submit-from"},
        _wf("CronWorkflow", "nightly"),
        seeds=({**_wf("CronWorkflow", "nightly"), "metadata": {"name": "nightly", "namespace": NS}},),
    ),
    *[
        Scenario(
            f"argo-{op}",
            "argoWorkflow",
            {"operation": op},
            _wf(),
            seeds=({**_wf(), "metadata": {"name": "wf1", "namespace": NS}},),
        )
        for op in ("suspend", "stop", "terminate")
    ],
    *[
        Scenario(f"argo-{op}", "argoWorkflow", {"operation": op}, _wf())
        for op in ("resume", "resubmit", "retry")
    ],
]


def _sensor(scenario: Scenario) -> dict[str, Any]:
    trigger: dict[str, Any] = {
        "template": {
            "name": "t",
            scenario.kind: {**scenario.config, "source": {"resource": scenario.resource}},
        }
    }
    if scenario.policy:
        trigger["policy"] = scenario.policy
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Sensor",
        "metadata": {"name": "build-sensor", "namespace": NS},
        "spec": {
            "dependencies": [{"name": "dep", "eventSourceName": "s", "eventName": "e"}],
            "triggers": [trigger],
        },
    }


def _granted(objs: list[dict[str, Any]]) -> set[Grant]:
    """What the rendered Roles/ClusterRoles allow the sensor's ServiceAccount (checked to be bound to it)."""
    bound = {
        (b["roleRef"]["kind"], b["roleRef"]["name"])
        for b in objs
        if b["kind"] in ("RoleBinding", "ClusterRoleBinding")
        and b["subjects"] == [{"kind": "ServiceAccount", "name": "build-sensor-sensor", "namespace": NS}]
    }
    out = set()
    for role in objs:
        if role["kind"] in ("Role", "ClusterRole") and (role["kind"], role["metadata"]["name"]) in bound:
            where = role["metadata"].get("namespace", "*")
            for rule in role["rules"]:
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        out |= {(where, group, resource, verb) for verb in rule["verbs"]}
    return out


@pytest.fixture
def argo_server(tmp_path: Path) -> Iterator[HttpTarget]:
    server = HttpTarget(tmp_path).start()
    server.default = Answer(200, b"{}")
    try:
        yield server
    finally:
        server.close()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
async def test_the_role_allows_every_call_and_nothing_else(
    scenario: Scenario, kube_api: KubeApi, argo_server: HttpTarget
) -> None:
    granted = _granted(render.render([], [_sensor(scenario)]).objects)
    used: set[Grant] = set()
    refused: list[Grant] = []

    def allowed(verb: str, group: str, plural: str, namespace: str | None) -> bool:
        call = (namespace or "*", group, plural, verb)
        used.add(call)
        ok = call in granted or ("*", group, plural, verb) in granted  # a ClusterRole covers every namespace
        if not ok:
            refused.append(call)
        return ok

    kube_api.server.authorize(allowed)
    for seed in scenario.seeds:
        kube_api.put_object(seed)
    kube.forget_clients()
    settings = Settings(
        kube=KubeSettings(kubeconfig=str(kube_api.kubeconfig_path)),
        http=HttpSettings(argo_server_url=argo_server.url("/")),
    )
    try:
        for _ in range(scenario.fires):
            resolved = support.resolved(
                {"name": "t", scenario.kind: {**scenario.config, "source": {"resource": {}}}},
                resource=_copy(scenario.resource),
                **({"policy": scenario.policy} if scenario.policy else {}),
            )
            await triggers.fire(resolved, support.context(settings=settings))
    finally:
        kube.forget_clients()
    assert refused == []  # no 403
    assert used == granted, f"used {sorted(used)} but granted {sorted(granted)}"  # no over-grant
    if scenario.config["operation"] in ("resume", "resubmit", "retry"):
        assert [s.path for s in argo_server.seen] == [
            f"/api/v1/workflows/{NS}/wf1/{scenario.config['operation']}"
        ]


def _copy(value: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(value)
