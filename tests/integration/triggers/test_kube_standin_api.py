"""The API stand-in answers the official kubernetes client the way a real API server does (tests only)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import config
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic import exceptions as dyn

from tests.fixtures.kube import KubeApi


@pytest.fixture
def client(kube_api: KubeApi, tmp_path: Path) -> Iterator[DynamicClient]:
    api = config.new_client_from_config(config_file=str(kube_api.kubeconfig_path))
    yield DynamicClient(api, cache_file=str(tmp_path / "discovery.json"))
    api.close()


def status_of(exc: dyn.DynamicApiError) -> dict[str, Any]:
    return json.loads(exc.body)


CM = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "a", "labels": {"app": "x"}},
    "data": {"k": "v"},
}


def test_discovery_serves_core_apps_batch_and_argo(client: DynamicClient) -> None:
    for api_version, kind, namespaced in [
        ("v1", "ConfigMap", True),
        ("v1", "Namespace", False),
        ("apps/v1", "Deployment", True),
        ("batch/v1", "Job", True),
        ("argoproj.io/v1alpha1", "Workflow", True),
        ("argoproj.io/v1alpha1", "CronWorkflow", True),
        ("argoproj.io/v1alpha1", "ClusterWorkflowTemplate", False),
    ]:
        assert client.resources.get(api_version=api_version, kind=kind).namespaced is namespaced
    assert client.version["kubernetes"]["major"] == "1"


def test_create_sets_server_fields_and_generate_name(client: DynamicClient, kube_api: KubeApi) -> None:
    workflows = client.resources.get(api_version="argoproj.io/v1alpha1", kind="Workflow")
    body = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "b-"},
        "spec": {},
    }
    first = workflows.create(body=body, namespace="ns").to_dict()
    second = workflows.create(body=body, namespace="ns").to_dict()
    assert first["metadata"]["name"].startswith("b-") and len(first["metadata"]["name"]) == 7
    assert first["metadata"]["name"] != second["metadata"]["name"]
    assert {"uid", "resourceVersion", "creationTimestamp"} <= set(first["metadata"])
    assert int(second["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    assert len(kube_api.objects("argoproj.io", "v1alpha1", "workflows", "ns")) == 2


def test_errors_are_status_objects_with_real_reasons(client: DynamicClient, kube_api: KubeApi) -> None:
    configmaps = client.resources.get(api_version="v1", kind="ConfigMap")
    with pytest.raises(dyn.NotFoundError) as missing:
        configmaps.get(name="nope", namespace="ns")
    assert status_of(missing.value) | {} == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'configmaps "nope" not found',
        "reason": "NotFound",
        "details": {"name": "nope", "group": "", "kind": "configmaps"},
        "code": 404,
    }
    configmaps.create(body=CM, namespace="ns")
    with pytest.raises(dyn.ConflictError) as exists:
        configmaps.create(body=CM, namespace="ns")
    assert status_of(exists.value)["reason"] == "AlreadyExists"
    kube_api.forbid("delete", "configmaps")
    with pytest.raises(dyn.ForbiddenError) as forbidden:
        configmaps.delete(name="a", namespace="ns")
    assert status_of(forbidden.value)["reason"] == "Forbidden"
    assert 'cannot delete resource "configmaps" in API group ""' in status_of(forbidden.value)["message"]


def test_update_checks_the_resource_version(client: DynamicClient) -> None:
    configmaps = client.resources.get(api_version="v1", kind="ConfigMap")
    created = configmaps.create(body=CM, namespace="ns").to_dict()
    created["data"] = {"k": "2"}
    updated = configmaps.replace(body=created, namespace="ns").to_dict()
    assert updated["data"] == {"k": "2"}
    with pytest.raises(dyn.ConflictError) as stale:
        configmaps.replace(body=created, namespace="ns")  # still carries the old resourceVersion
    assert status_of(stale.value)["reason"] == "Conflict"


def test_patch_types_and_strategic_refused_for_custom_resources(client: DynamicClient) -> None:
    configmaps = client.resources.get(api_version="v1", kind="ConfigMap")
    configmaps.create(body=CM, namespace="ns")
    patched = configmaps.patch(
        body=[{"op": "replace", "path": "/data/k", "value": "j"}],
        name="a",
        namespace="ns",
        content_type="application/json-patch+json",
    )
    assert patched.to_dict()["data"] == {"k": "j"}
    workflows = client.resources.get(api_version="argoproj.io/v1alpha1", kind="Workflow")
    workflows.create(
        body={"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"name": "w"}},
        namespace="ns",
    )
    with pytest.raises(dyn.DynamicApiError) as refused:
        workflows.patch(body={"spec": {"suspend": True}}, name="w", namespace="ns")  # strategic by default
    assert refused.value.status == 415


def test_list_filters_by_label_selector(client: DynamicClient) -> None:
    configmaps = client.resources.get(api_version="v1", kind="ConfigMap")
    configmaps.create(body=CM, namespace="ns")
    configmaps.create(body={**CM, "metadata": {"name": "b", "labels": {"app": "y"}}}, namespace="ns")
    names = [
        i["metadata"]["name"]
        for i in configmaps.get(namespace="ns", label_selector="app=y").to_dict()["items"]
    ]
    assert names == ["b"]


def test_requests_without_the_token_are_unauthorized(kube_api: KubeApi) -> None:
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(f"{kube_api.url}/api/v1/namespaces/ns/configmaps", timeout=5)
    denied.value.close()
    assert denied.value.code == 401
    assert kube_api.requests[-1].path == "/api/v1/namespaces/ns/configmaps"
