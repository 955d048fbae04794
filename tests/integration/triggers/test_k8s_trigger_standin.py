"""k8s and argoWorkflow triggers through the official kubernetes client against the API stand-in."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from knevents import errors, triggers
from knevents.settings import HttpSettings, KubeSettings, Settings
from knevents.triggers import base, kube

from tests.fixtures.kube import KubeApi
from tests.integration.triggers.http_target import Answer, HttpTarget
from tests.unit.triggers import trigger_support as support

NS = "argo-events"
WF = ("argoproj.io", "v1alpha1", "workflows")


@pytest.fixture
def settings(kube_api: KubeApi) -> Iterator[Settings]:
    kube.forget_clients()
    yield Settings(kube=KubeSettings(kubeconfig=str(kube_api.kubeconfig_path)))
    kube.forget_clients()


def seed_workflow_resource() -> dict[str, Any]:
    """The build-sensor Workflow of the seed's hands-on, with the parameter the engine resolved from the event."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "event-build-"},
        "spec": {
            "entrypoint": "print-event",
            "arguments": {"parameters": [{"name": "message", "value": "kubedojo"}]},
            "templates": [
                {
                    "name": "print-event",
                    "inputs": {"parameters": [{"name": "message"}]},
                    "container": {
                        "image": "alpine:3.19",
                        "command": ["sh", "-c"],
                        "args": ['echo "Received event data:" && echo "{{inputs.parameters.message}}"'],
                    },
                }
            ],
        },
    }


def configmap(name: str = "cm", **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": dict(data)}


async def test_seed_build_sensor_submits_the_workflow_with_the_event_parameter(
    kube_api: KubeApi, settings: Settings
) -> None:
    event = support.event({"header": {}, "body": {"project": "kubedojo", "branch": "main"}}, id="evt-1")
    resolved = support.resolved(
        {"name": "trigger-workflow", "argoWorkflow": {"operation": "submit", "source": {"resource": {}}}},
        resource=seed_workflow_resource(),
        fired={"webhook-build": event},
    )
    result = await triggers.fire(resolved, support.context(settings=settings))
    [workflow] = kube_api.objects(*WF, NS)
    assert workflow["spec"]["arguments"]["parameters"][0]["value"] == "kubedojo"
    assert workflow["metadata"]["name"].startswith("event-build-")
    assert workflow["metadata"]["labels"]["events.argoproj.io/sensor"] == "build-sensor"
    assert workflow["metadata"]["labels"]["events.argoproj.io/trigger"] == "trigger-workflow"
    assert workflow["metadata"]["annotations"][base.EVENT_IDS_ANNOTATION] == "evt-1"
    assert result.resource is not None and result.resource["metadata"]["name"] == workflow["metadata"]["name"]
    assert result.detail == f"submitted Workflow {workflow['metadata']['name']} in {NS}"
    [create] = kube_api.server.resource_requests("create", "workflows")
    assert create.path == f"/apis/argoproj.io/v1alpha1/namespaces/{NS}/workflows"
    assert create.headers["authorization"] == "Bearer standin-token"


async def test_k8s_create_defaults_to_the_sensor_namespace_and_labels(
    kube_api: KubeApi, settings: Settings
) -> None:
    resolved = support.resolved(
        {"name": "mk", "k8s": {"source": {"resource": {}}}}, resource=configmap(x="1")
    )
    result = await triggers.fire(resolved, support.context(settings=settings, traceparent="00-t-s-01"))
    [cm] = kube_api.objects("", "v1", "configmaps", NS)
    assert cm["data"] == {"x": "1"}
    assert cm["metadata"]["labels"]["events.argoproj.io/trigger"] == "mk"
    assert cm["metadata"]["annotations"][base.TRACEPARENT_ANNOTATION] == "00-t-s-01"
    assert result.detail == f"created ConfigMap cm in {NS}"


async def test_k8s_patch_merges_and_creates_when_missing(kube_api: KubeApi, settings: Settings) -> None:
    ctx = support.context(settings=settings)
    template = {"name": "p", "k8s": {"operation": "patch", "source": {"resource": {}}}}
    await triggers.fire(support.resolved(template, resource=configmap(a="1")), ctx)
    await triggers.fire(support.resolved(template, resource=configmap(b="2")), ctx)
    [cm] = kube_api.objects("", "v1", "configmaps", NS)
    assert cm["data"] == {"a": "1", "b": "2"}
    [patch] = kube_api.server.resource_requests("patch", "configmaps")
    assert patch.content_type == "application/merge-patch+json"


@pytest.mark.parametrize(
    ("strategy", "content_type"),
    [("json", "application/json-patch+json"), ("strategic", "application/strategic-merge-patch+json")],
)
async def test_k8s_patch_strategies(
    kube_api: KubeApi, settings: Settings, strategy: str, content_type: str
) -> None:
    kube_api.put_object({**configmap(a="1"), "metadata": {"name": "cm", "namespace": NS}})
    template = {
        "name": "p",
        "k8s": {"operation": "patch", "patchStrategy": strategy, "source": {"resource": {}}},
    }
    await triggers.fire(
        support.resolved(template, resource=configmap(b="2")), support.context(settings=settings)
    )
    [cm] = kube_api.objects("", "v1", "configmaps", NS)
    assert cm["data"] == {"b": "2"} if strategy == "json" else {"a": "1", "b": "2"}
    assert kube_api.server.resource_requests("patch", "configmaps")[0].content_type == content_type


async def test_k8s_update_merges_over_the_live_object(kube_api: KubeApi, settings: Settings) -> None:
    kube_api.put_object(
        {**configmap(a="1", b="1"), "metadata": {"name": "cm", "namespace": NS, "labels": {"l": "x"}}}
    )
    template = {"name": "u", "k8s": {"operation": "update", "liveObject": True, "source": {"resource": {}}}}
    await triggers.fire(
        support.resolved(template, resource=configmap(b="2")), support.context(settings=settings)
    )
    [cm] = kube_api.objects("", "v1", "configmaps", NS)
    assert cm["data"] == {"a": "1", "b": "2"}
    assert cm["metadata"]["labels"] == {"l": "x"}
    assert kube_api.server.resource_requests("update", "configmaps")


async def test_k8s_delete_removes_and_missing_is_fine(kube_api: KubeApi, settings: Settings) -> None:
    kube_api.put_object({**configmap(), "metadata": {"name": "cm", "namespace": NS}})
    template = {"name": "d", "k8s": {"operation": "delete", "source": {"resource": {}}}}
    ctx = support.context(settings=settings)
    await triggers.fire(support.resolved(template, resource=configmap()), ctx)
    assert kube_api.objects("", "v1", "configmaps", NS) == []
    again = await triggers.fire(support.resolved(template, resource=configmap()), ctx)
    assert again.detail == "ConfigMap cm already absent"


async def test_forbidden_is_a_clear_permanent_error(kube_api: KubeApi, settings: Settings) -> None:
    kube_api.forbid("create", "workflows")
    resolved = support.resolved(
        {"name": "wf", "argoWorkflow": {"source": {"resource": {}}}},
        resource=seed_workflow_resource(),
        retryStrategy={"steps": 3, "duration": "1ms"},
    )
    with pytest.raises(errors.TriggerError) as caught:
        await triggers.fire(resolved, support.context(settings=settings))
    message = str(caught.value)
    assert "forbidden: cannot create Workflow event-build-" in message
    assert 'cannot create resource "workflows" in API group "argoproj.io"' in message
    assert "ServiceAccount" in message
    assert len(kube_api.server.resource_requests("create", "workflows")) == 1


async def test_already_exists_is_reported_with_the_api_message(kube_api: KubeApi, settings: Settings) -> None:
    kube_api.put_object({**configmap(), "metadata": {"name": "cm", "namespace": NS}})
    resolved = support.resolved({"name": "mk", "k8s": {"source": {"resource": {}}}}, resource=configmap())
    with pytest.raises(errors.TriggerError, match='conflict: configmaps "cm" already exists'):
        await triggers.fire(resolved, support.context(settings=settings))


async def test_server_errors_are_retried_under_retry_strategy(kube_api: KubeApi, settings: Settings) -> None:
    kube_api.fail_next("create", "configmaps", 503, count=2)
    resolved = support.resolved(
        {"name": "mk", "k8s": {"source": {"resource": {}}}},
        resource=configmap(),
        retryStrategy={"steps": 3, "duration": "1ms", "jitter": 0},
    )
    result = await triggers.fire(resolved, support.context(settings=settings))
    assert result.attempts == 3
    assert len(kube_api.objects("", "v1", "configmaps", NS)) == 1


async def test_unknown_kind_names_the_missing_crd(kube_api: KubeApi, settings: Settings) -> None:
    resource = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    resolved = support.resolved({"name": "mk", "k8s": {"source": {"resource": {}}}}, resource=resource)
    with pytest.raises(errors.TriggerError, match=r"does not serve kind Widget in example\.com/v1"):
        await triggers.fire(resolved, support.context(settings=settings))


async def test_policy_k8s_waits_for_the_labels(kube_api: KubeApi, settings: Settings) -> None:
    resolved = support.resolved(
        {"name": "wf", "argoWorkflow": {"source": {"resource": {}}}},
        resource=seed_workflow_resource(),
        policy={
            "k8s": {
                "labels": {"workflows.argoproj.io/phase": "Succeeded"},
                "backoff": {
                    "steps": 1000,
                    "duration": "20ms",
                    "factor": 1,
                    "jitter": 0,
                },  # generous: shared CI
                "errorOnBackoffTimeout": True,
            }
        },
    )

    async def controller() -> None:
        while not kube_api.objects(*WF, NS):
            await asyncio.sleep(0.01)
        name = kube_api.objects(*WF, NS)[0]["metadata"]["name"]
        # the phase changes once the policy has looked at least once (and seen none): then it must look again
        while not kube_api.server.resource_requests("get", "workflows"):
            await asyncio.sleep(0.01)
        kube_api.set_labels(*WF, NS, name, {"workflows.argoproj.io/phase": "Succeeded"})

    result, _ = await asyncio.gather(
        triggers.fire(resolved, support.context(settings=settings)), controller()
    )
    gets = kube_api.server.resource_requests("get", "workflows")
    assert len(gets) >= 2
    assert result.detail.startswith("submitted Workflow")


async def test_policy_k8s_timeout_fails_when_asked(kube_api: KubeApi, settings: Settings) -> None:
    resolved = support.resolved(
        {"name": "wf", "argoWorkflow": {"source": {"resource": {}}}},
        resource=seed_workflow_resource(),
        policy={
            "k8s": {
                "labels": {"done": "true"},
                "backoff": {"steps": 3, "duration": "1ms", "jitter": 0},
                "errorOnBackoffTimeout": True,
            }
        },
    )
    with pytest.raises(errors.TriggerError, match="did not appear within 3 checks"):
        await triggers.fire(resolved, support.context(settings=settings))
    assert len(kube_api.server.resource_requests("get", "workflows")) == 3


async def test_workflow_operations_patch_the_workflow(kube_api: KubeApi, settings: Settings) -> None:
    kube_api.put_object({**seed_workflow_resource(), "metadata": {"name": "wf1", "namespace": NS}})
    ctx = support.context(settings=settings)
    expected = {
        "suspend": ("suspend", True),
        "stop": ("shutdown", "Stop"),
        "terminate": ("shutdown", "Terminate"),
    }
    for operation, (field, value) in expected.items():
        resolved = support.resolved(
            {"name": "op", "argoWorkflow": {"operation": operation, "source": {"resource": {}}}},
            resource={"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"name": "wf1"}},
        )
        await triggers.fire(resolved, ctx)
        [workflow] = kube_api.objects(*WF, NS)
        assert workflow["spec"][field] == value
    assert {r.content_type for r in kube_api.server.resource_requests("patch", "workflows")} == {
        "application/merge-patch+json"
    }


async def test_submit_from_workflow_template(kube_api: KubeApi, settings: Settings) -> None:
    resolved = support.resolved(
        {"name": "from", "argoWorkflow": {"operation": "submit-from", "source": {"resource": {}}}},
        resource={
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "WorkflowTemplate",
            "metadata": {"name": "ci"},
        },
    )
    await triggers.fire(resolved, support.context(settings=settings))
    [workflow] = kube_api.objects(*WF, NS)
    assert workflow["spec"] == {"workflowTemplateRef": {"name": "ci"}}
    assert workflow["metadata"]["labels"]["workflows.argoproj.io/workflow-template"] == "ci"


async def test_resubmit_needs_the_argo_server(kube_api: KubeApi, settings: Settings) -> None:
    resolved = support.resolved(
        {"name": "re", "argoWorkflow": {"operation": "resubmit", "source": {"resource": {}}}},
        resource={"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"name": "wf1"}},
    )
    with pytest.raises(errors.TriggerError, match="resubmit needs KNEVENTS_ARGO_SERVER_URL"):
        await triggers.fire(resolved, support.context(settings=settings))


async def test_no_cluster_configured_is_a_dry_run(kube_api: KubeApi) -> None:
    kube.forget_clients()
    resolved = support.resolved({"name": "mk", "k8s": {"source": {"resource": {}}}}, resource=configmap())
    result = await triggers.fire(resolved, support.context(settings=Settings(http=HttpSettings())))
    assert result.detail == "dry run (no Kubernetes cluster configured)"
    assert result.resource is not None and result.resource["metadata"]["namespace"] == NS
    assert kube_api.requests == []


async def test_dry_run_calls_nothing(kube_api: KubeApi, settings: Settings) -> None:
    resolved = support.resolved(
        {"name": "wf", "argoWorkflow": {"source": {"resource": {}}}}, resource=seed_workflow_resource()
    )
    result = await triggers.fire(resolved, support.context(settings=settings, dry_run=True))
    assert result.detail == "dry run"
    assert result.resource is not None
    assert result.resource["spec"]["arguments"]["parameters"][0]["value"] == "kubedojo"
    assert kube_api.requests == []


async def test_unreachable_api_server_is_retryable(tmp_path: Path) -> None:
    from knevents.local.natsd import free_port

    config = {  # a kubeconfig for a port nobody listens on
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "x", "cluster": {"server": f"http://127.0.0.1:{free_port()}"}}],
        "users": [{"name": "x", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}],
        "current-context": "x",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(config))
    kube.forget_clients()
    ctx = support.context(settings=Settings(kube=KubeSettings(kubeconfig=str(path))))
    resolved = support.resolved({"name": "mk", "k8s": {"source": {"resource": {}}}}, resource=configmap())
    with pytest.raises(errors.TriggerRetryableError, match="the Kubernetes API is unreachable"):
        await triggers.fire(resolved, ctx)
    kube.forget_clients()


async def test_resubmit_and_resume_go_through_the_argo_server(tmp_path: Path, settings: Settings) -> None:
    server = HttpTarget(tmp_path).start()
    try:
        server.default = Answer(200, b"{}")
        argo = dataclasses.replace(settings, http=HttpSettings(argo_server_url=server.url("/argo/")))
        for operation in ("resubmit", "retry", "resume"):
            resolved = support.resolved(
                {"name": "op", "argoWorkflow": {"operation": operation, "source": {"resource": {}}}},
                resource={
                    "apiVersion": "argoproj.io/v1alpha1",
                    "kind": "Workflow",
                    "metadata": {"name": "wf1"},
                },
                fired={"dep": support.event(id="ev-7")},
            )
            result = await triggers.fire(resolved, support.context(settings=argo))
            assert result.status == 200
        assert [(s.method, s.path) for s in server.seen] == [
            ("PUT", f"/argo/api/v1/workflows/{NS}/wf1/resubmit"),
            ("PUT", f"/argo/api/v1/workflows/{NS}/wf1/retry"),
            ("PUT", f"/argo/api/v1/workflows/{NS}/wf1/resume"),
        ]
        assert json.loads(server.seen[0].body) == {"namespace": NS, "name": "wf1"}
        assert server.seen[0].headers[base.EVENT_IDS_HEADER.lower()] == "ev-7"
        server.default = Answer(404, b'{"code": 5, "message": "workflows.argoproj.io \\"wf1\\" not found"}')
        with pytest.raises(
            errors.TriggerError, match=r'answered 404: workflows\.argoproj\.io "wf1" not found'
        ):
            await triggers.fire(resolved, support.context(settings=argo))
    finally:
        server.close()


async def test_seed_create_namespace_is_cluster_scoped(kube_api: KubeApi, settings: Settings) -> None:
    # argo-events-module-1.2.txt: k8s trigger "create-namespace" with generateName pr-env- and a PR-number label
    resource = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"generateName": "pr-env-", "labels": {"pr-number": "42"}},
    }
    resolved = support.resolved(
        {"name": "create-namespace", "k8s": {"operation": "create", "source": {"resource": {}}}},
        resource=resource,
    )
    result = await triggers.fire(resolved, support.context(settings=settings))
    [namespace] = kube_api.objects("", "v1", "namespaces")
    assert namespace["metadata"]["name"].startswith("pr-env-")
    assert "namespace" not in namespace["metadata"]
    assert namespace["metadata"]["labels"]["pr-number"] == "42"
    [create] = kube_api.server.resource_requests("create", "namespaces")
    assert create.path == "/api/v1/namespaces"
    assert result.detail == f"created Namespace {namespace['metadata']['name']} in cluster"
