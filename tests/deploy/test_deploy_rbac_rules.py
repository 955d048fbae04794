"""The Role a sensor gets is exactly what its k8s / argoWorkflow triggers declare (their executors' calls).

tests/deploy/test_deploy_rbac_runtime.py checks those declarations against the calls the executors really make.
"""

from __future__ import annotations

from typing import Any

import pytest
from knevents.deploy import rbac, render
from knevents.triggers import apiresources

from tests import upstream
from tests.deploy import corpus


def _trigger(name: str, **template: Any) -> dict[str, Any]:
    return {"template": {"name": name, **template}}


def _resource(api_version: str, kind: str, **metadata: Any) -> dict[str, Any]:
    return {
        "source": {
            "resource": {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x", **metadata}}
        }
    }


def _grants(triggers: list[dict[str, Any]], namespace: str = "ns") -> dict[str, list[dict[str, Any]]]:
    perms = rbac.derive({"triggers": triggers}, namespace)
    return {ns: rbac.rules(g) for ns, g in perms.grants.items()}


@pytest.mark.parametrize(
    ("operation", "verbs"),
    [
        ("create", ["create"]),
        ("update", ["create", "get", "update"]),  # a missing object is created, as Argo does
        ("patch", ["create", "get", "patch"]),
        ("delete", ["delete", "get"]),  # the live object is read first
    ],
)
def test_k8s_operation_verbs(operation: str, verbs: list[str]) -> None:
    k8s = {"operation": operation, **_resource("apps/v1", "Deployment")}
    assert _grants([_trigger("t", k8s=k8s)]) == {
        "ns": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": verbs}]
    }


def test_default_operation_is_create_and_core_group_is_empty() -> None:
    assert _grants([_trigger("t", k8s=_resource("v1", "Pod"))]) == {
        "ns": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}]
    }


def test_a_policy_poll_adds_get_a_live_object_on_create_does_not() -> None:
    trigger = _trigger("t", k8s={"operation": "create", **_resource("batch/v1", "Job")})
    trigger["policy"] = {"k8s": {"labels": {"done": "true"}, "backoff": {"steps": 3}}}
    live = _trigger("u", k8s={"operation": "create", "liveObject": True, **_resource("v1", "Pod")})
    assert _grants([trigger, live]) == {
        "ns": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]},
            {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get"]},
        ]
    }


@pytest.mark.parametrize(
    ("operation", "kind", "expected"),
    [
        ("submit", "Workflow", [("workflows", ["create"])]),
        (None, "Workflow", [("workflows", ["create"])]),
        ("submit-from", "WorkflowTemplate", [("workflows", ["create"])]),  # only referenced
        ("submit-from", "CronWorkflow", [("cronworkflows", ["get"]), ("workflows", ["create"])]),
        ("suspend", "Workflow", [("workflows", ["patch"])]),
        ("stop", "Workflow", [("workflows", ["patch"])]),
        ("terminate", "Workflow", [("workflows", ["patch"])]),
        ("resume", "Workflow", []),  # the Argo Server REST API does these
        ("resubmit", "Workflow", []),
        ("retry", "Workflow", []),
    ],
)
def test_argo_workflow_operation_verbs(
    operation: str | None, kind: str, expected: list[tuple[str, list[str]]]
) -> None:
    argo: dict[str, Any] = _resource("argoproj.io/v1alpha1", kind)
    if operation:
        argo["operation"] = operation
    rules = [{"apiGroups": ["argoproj.io"], "resources": [r], "verbs": v} for r, v in expected]
    assert _grants([_trigger("t", argoWorkflow=argo)]) == ({"ns": rules} if rules else {})


def test_target_namespace_dlq_trigger_and_merging() -> None:
    main = _trigger("a", k8s={"operation": "create", **_resource("v1", "ConfigMap", namespace="other")})
    main["dlqTrigger"] = _trigger(
        "dlq", k8s={"operation": "patch", **_resource("v1", "ConfigMap", namespace="other")}
    )
    assert _grants([main]) == {
        "other": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "get", "patch"]}]
    }


@pytest.mark.parametrize(
    ("api_version", "kind", "resource"),
    [
        ("networking.k8s.io/v1", "IngressClass", "ingressclasses"),
        ("storage.k8s.io/v1", "CSIDriver", "csidrivers"),
        ("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles"),
        ("argoproj.io/v1alpha1", "ClusterWorkflowTemplate", "clusterworkflowtemplates"),
    ],
)
def test_every_cluster_scoped_kind_is_granted_cluster_wide(
    api_version: str, kind: str, resource: str
) -> None:
    group = api_version.rsplit("/", 1)[0]
    assert _grants([_trigger("t", k8s=_resource(api_version, kind))]) == {
        rbac.CLUSTER: [{"apiGroups": [group], "resources": [resource], "verbs": ["create"]}]
    }


def test_cluster_scoped_kinds_get_a_cluster_role() -> None:
    rendering = render.render(
        [],
        [
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Sensor",
                "metadata": {"name": "pr", "namespace": "ci"},
                "spec": {
                    "dependencies": [{"name": "d", "eventSourceName": "a", "eventName": "b"}],
                    "triggers": [_trigger("ns", k8s={"operation": "create", **_resource("v1", "Namespace")})],
                },
            }
        ],
    )
    by_kind = {o["kind"]: o for o in rendering.objects}
    assert by_kind["ClusterRole"]["rules"] == [
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["create"]}
    ]
    binding = by_kind["ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == by_kind["ClusterRole"]["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "pr-sensor", "namespace": "ci"}]
    assert by_kind["ServiceAccount"]["metadata"]["name"] == "pr-sensor"
    assert by_kind["Service"]["spec"]["template"]["spec"]["serviceAccountName"] == "pr-sensor"
    assert "Role" not in by_kind


def test_what_cannot_be_derived_is_a_warning_not_a_grant() -> None:
    url = _trigger("u", k8s={"operation": "create", "source": {"url": {"path": "https://x/pod.yaml"}}})
    dynamic = _trigger(
        "d",
        k8s={
            **_resource("v1", "Pod"),
            "parameters": [{"src": {"dependencyName": "d"}, "dest": "metadata.namespace"}],
        },
    )
    perms = rbac.derive({"triggers": [url, dynamic]}, "ns")
    assert {ns: rbac.rules(g) for ns, g in perms.grants.items()} == {
        "ns": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}]
    }
    assert len(perms.warnings) == 2
    assert "trigger u: the resource is not inline (source: url)" in perms.warnings[0]
    assert "metadata.namespace" in perms.warnings[1]


def test_sensors_without_api_triggers_get_no_rbac() -> None:
    docs = corpus.documents(upstream.example("sensors", "http-trigger.yaml"))
    kinds = {o["kind"] for o in render.render([], docs["Sensor"]).objects}
    assert kinds.isdisjoint({"Role", "RoleBinding", "ServiceAccount", "ClusterRole"})


def test_the_kind_table_covers_every_kind_kubernetes_serves() -> None:
    # the kinds in kubernetes-validate's newest schemas that are objects (ObjectMeta) and not lists
    import json
    from importlib import resources as files

    root = files.files("kubernetes_validate") / "kubernetes-json-schema"
    newest = max(
        (p for p in root.iterdir() if p.name.endswith("-local-strict")), key=lambda p: _version(p.name)
    )
    served = set()
    for schema_file in newest.iterdir():
        schema = json.loads(schema_file.read_text()) if schema_file.name.endswith(".json") else {}
        metadata = json.dumps((schema.get("properties") or {}).get("metadata", ""))
        if "ObjectMeta" in metadata:
            served |= {(g["group"], g["kind"]) for g in schema.get("x-kubernetes-group-version-kind", [])}
    assert len(served) > 70
    assert sorted(served - {(r.group, r.kind) for r in apiresources.known()}) == []


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(x) for x in name.removeprefix("v").split("-")[0].split("."))


@pytest.mark.parametrize(
    ("kind", "resource"),
    [
        ("Rollout", "rollouts"),
        ("Gateway", "gateways"),
        ("Bus", "buses"),
        ("Policy", "policies"),
    ],
)
def test_plurals_of_kinds_not_built_in(kind: str, resource: str) -> None:
    assert apiresources.plural(kind) == resource
