"""The resource source against the Kubernetes API stand-in (list + ?watch=1), its place in real JetStream KV."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import yaml
from knevents import bus
from knevents.deploy import eventsource
from knevents.deploy.options import RenderOptions
from knevents.runtime import source
from knevents.secrets import SecretResolver
from knevents.settings import KubeSettings, NatsSettings, SecretSettings, Settings

from tests import upstream
from tests.e2e import harness
from tests.fixtures.kube import KubeApi
from tests.integration.sources_more import local_run
from tests.unit.sources_core.helpers import event_source

WAIT = 60.0  # bounds waits for something that must happen: generous, it costs nothing when all is well
WF = ("argoproj.io", "v1alpha1", "workflows")


def _workflow(name: str, labels: dict[str, str] | None = None, ns: str = "argo-events") -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
            "metadata": {"name": name, "namespace": ns, "labels": labels or {}}, "spec": {"entrypoint": "main"}}


async def _until(check: Any, what: str) -> None:
    for _ in range(int(WAIT / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Running:
    """A SourceRuntime over a memory bus; ``watches`` counts the watch requests the stand-in got."""

    def __init__(self, spec: dict[str, Any], kube_api: KubeApi, nats_url: str) -> None:
        self.kube_api = kube_api
        self.memory = bus.MemoryPublisher()
        settings = Settings(nats=NatsSettings(url=nats_url), kube=KubeSettings(kubeconfig=str(kube_api.kubeconfig_path)))
        resolver = SecretResolver(SecretSettings(secrets_dir="/nonexistent", configmaps_dir="/nonexistent"), {})
        self.rt = source.SourceRuntime(event_source(spec, "resource"), self.memory, settings=settings,
                                       secrets=resolver)
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.rt.run_pull(self.stop))

    def watches(self) -> list[Any]:
        return [r for r in self.kube_api.requests if r.verb == "watch"]

    async def watching(self, count: int = 1) -> None:
        await _until(lambda: len(self.watches()) >= count, "the watch request")

    def data(self) -> list[dict[str, Any]]:
        return [json.loads(e.data or b"") for e in self.memory.events]

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, WAIT)
        await self.rt.close()


def _spec(**fields: Any) -> dict[str, Any]:
    base = {"namespace": "argo-events", "group": "argoproj.io", "version": "v1alpha1", "resource": "workflows",
            "eventTypes": ["ADD", "UPDATE", "DELETE"]}
    return {"resource": {"wf": {**base, **fields}}}


async def test_upstream_example_sends_added_labelled_workflows(kube_api: KubeApi, nats_url: str) -> None:
    kube_api.put_object(_workflow("before", {"app": "my-workflow"}))  # afterStart: not an event
    doc = yaml.safe_load(upstream.example("event-sources", "resource.yaml").read_text())
    running = Running(dict(doc["spec"]), kube_api, nats_url)
    try:
        await running.watching()
        await asyncio.sleep(1.1)  # creationTimestamp has second resolution; afterStart compares with it
        kube_api.put_object(_workflow("other", {"app": "else"}))
        created = kube_api.put_object(_workflow("mine", {"app": "my-workflow"}))
        await _until(lambda: running.memory.events, "the ADD event")
        await asyncio.sleep(0.3)
    finally:
        await running.close()
    [event] = running.memory.events
    assert (event.source, event.subject, event.type) == ("resource", "example", "resource")
    assert running.data() == [{"type": "ADD", "body": created, "oldBody": None, "group": "argoproj.io",
                               "version": "v1alpha1", "resource": "workflows"}]
    [watch] = running.watches()
    assert watch.query["labelSelector"] == ["app==my-workflow"]
    assert watch.path == "/apis/argoproj.io/v1alpha1/namespaces/argo-events/workflows"


async def test_update_carries_the_old_body_and_filters_apply(kube_api: KubeApi, nats_url: str) -> None:
    spec = _spec(filter={"prefix": "build-", "fields": [{"key": "spec.entrypoint", "operation": "==", "value": "^ma"}]},
                 metadata={"team": "ci"})
    running = Running(spec, kube_api, nats_url)
    try:
        await running.watching()
        kube_api.put_object(_workflow("build-1"))
        kube_api.put_object(_workflow("other-1"))
        await _until(lambda: len(running.memory.events) == 1, "the ADD")
        before = kube_api.objects(*WF, "argo-events")[0]
        kube_api.server.set_labels(*WF, "argo-events", "build-1", {"phase": "done"})
        await _until(lambda: len(running.memory.events) == 2, "the UPDATE")
        kube_api.server.delete_object(*WF, "argo-events", "build-1")
        await _until(lambda: len(running.memory.events) == 3, "the DELETE")
    finally:
        await running.close()
    added, updated, deleted = running.data()
    assert [d["type"] for d in (added, updated, deleted)] == ["ADD", "UPDATE", "DELETE"]
    assert updated["oldBody"] == before and updated["body"]["metadata"]["labels"] == {"phase": "done"}
    assert deleted["body"]["metadata"]["name"] == "build-1" and deleted["oldBody"] is None
    assert added["metadata"] == {"team": "ci"}


async def test_restart_resumes_the_watch_without_replaying_the_list(kube_api: KubeApi, nats_url: str) -> None:
    for i in range(3):
        kube_api.put_object(_workflow(f"old-{i}"))
    running = Running(_spec(), kube_api, nats_url)
    await running.watching()
    await _until(lambda: len(running.memory.events) == 3, "the initial ADDs (Argo lists on first start)")
    await running.close()
    lists = len([r for r in kube_api.requests if r.verb == "list"])
    kube_api.put_object(_workflow("while-down"))  # changes while nothing runs
    kube_api.server.set_labels(*WF, "argo-events", "old-1", {"touched": "yes"})
    again = Running(_spec(), kube_api, nats_url)
    try:
        await _until(lambda: len(again.memory.events) == 2, "the missed changes")
        await asyncio.sleep(0.5)
    finally:
        await again.close()
    assert [(d["type"], d["body"]["metadata"]["name"]) for d in again.data()] == [
        ("ADD", "while-down"), ("UPDATE", "old-1")]
    assert len([r for r in kube_api.requests if r.verb == "list"]) == lists  # resumed: no new list


async def test_410_gone_lists_again_and_reports_only_the_differences(kube_api: KubeApi, nats_url: str) -> None:
    kube_api.put_object(_workflow("kept"))
    kube_api.put_object(_workflow("removed"))
    running = Running(_spec(), kube_api, nats_url)
    await running.watching()
    await _until(lambda: len(running.memory.events) == 2, "the initial ADDs")
    await running.close()
    kube_api.put_object(_workflow("new"))
    kube_api.server.delete_object(*WF, "argo-events", "removed")
    kube_api.server.compact()  # the saved resourceVersion is now too old: 410 Gone
    again = Running(_spec(), kube_api, nats_url)
    try:
        await _until(lambda: len(again.memory.events) == 2, "the differences")
        await asyncio.sleep(0.5)
    finally:
        await again.close()
    assert sorted((d["type"], d["body"]["metadata"]["name"]) for d in again.data()) == [
        ("ADD", "new"), ("DELETE", "removed")]


async def test_forbidden_watch_is_logged_counted_and_retried(kube_api: KubeApi, nats_url: str) -> None:
    kube_api.forbid("watch", "workflows")
    running = Running(_spec(), kube_api, nats_url)
    try:
        await running.watching()
        kube_api.server._state.forbidden.clear()
        await running.watching(2)
        kube_api.put_object(_workflow("after"))
        await _until(lambda: running.memory.events, "the event once allowed")
    finally:
        await running.close()
    assert running.data()[0]["body"]["metadata"]["name"] == "after"


def test_render_grants_list_and_watch_on_the_watched_resource() -> None:
    # the source lists, then watches; it never gets one object (no unused verb)
    doc = yaml.safe_load(upstream.example("event-sources", "resource.yaml").read_text())
    rendered = eventsource.render(doc, "argo-events", RenderOptions())
    by_kind = {obj["kind"]: obj for obj in rendered.objects}
    assert by_kind["Role"]["rules"] == [
        {"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["list", "watch"]}]
    assert by_kind["RoleBinding"]["subjects"][0]["name"] == "your-service-account"
    assert "ServiceAccount" not in by_kind  # the template names its own
    everywhere = {**doc, "spec": {"resource": {"pods": {"version": "v1", "resource": "pods", "eventTypes": ["ADD"]}}}}
    objs = eventsource.render(everywhere, "ns1", RenderOptions()).objects
    kinds = [o["kind"] for o in objs]
    assert "ClusterRole" in kinds and "ClusterRoleBinding" in kinds and "ServiceAccount" in kinds
    [cluster_role] = [o for o in objs if o["kind"] == "ClusterRole"]
    assert cluster_role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]}]
    [service] = [o for o in objs if o["kind"] == "Service"]
    [account] = [o for o in objs if o["kind"] == "ServiceAccount"]
    assert service["spec"]["template"]["spec"]["serviceAccountName"] == account["metadata"]["name"]


def test_upstream_example_under_knevents_run_resumes_after_a_kill(kube_api: KubeApi, tmp_path: Path) -> None:
    doc = yaml.safe_load(upstream.example("event-sources", "resource.yaml").read_text())
    doc["spec"]["resource"]["example"]["eventTypes"] = ["ADD", "UPDATE"]
    env = {"KUBECONFIG": str(kube_api.kubeconfig_path)}
    labels = {"app": "my-workflow"}
    sink = harness.Sink()
    try:
        sensor = local_run.sensor_yaml("resource", "example", ["type", "body", "oldBody"], sink.url)
        with local_run.running(tmp_path, doc, sensor, env) as runner:
            harness.poll(lambda: any(r.verb == "watch" for r in kube_api.requests), "the watch")
            time.sleep(1.1)  # afterStart compares creationTimestamps, which have one-second resolution
            kube_api.put_object(_workflow("wf-1", labels))
            sink.wait(1)
            assert runner.proc is not None
            os.kill(runner.proc.pid, signal.SIGKILL)  # the runner dies; its nats-server is stopped by the next one
            runner.proc.wait()
            kube_api.put_object(_workflow("wf-2", labels))  # while nothing watches
            kube_api.server.set_labels(*WF, "argo-events", "wf-1", {"phase": "Succeeded"})
            watches = len([r for r in kube_api.requests if r.verb == "watch"])
            runner.start()
            harness.poll(lambda: len({(r.json()["type"], json.loads(r.json()["body"])["metadata"]["name"])
                                      for r in sink.received}) >= 3, "the changes made while the runner was dead",
                         timeout=60)
    finally:
        sink.close()
    seen = {(r.json()["type"], json.loads(r.json()["body"])["metadata"]["name"]) for r in sink.received}
    assert seen == {("ADD", "wf-1"), ("ADD", "wf-2"), ("UPDATE", "wf-1")}
    resumed = [r for r in kube_api.requests if r.verb == "watch"][watches]
    assert resumed.query["resourceVersion"] != ["0"]  # resumed from the saved place, no relist
