"""The resource → Workflow and file-drop → email examples under `knevents run`, against the API stand-in and aiosmtpd."""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from knevents.local.natsd import free_port

from tests.e2e import harness
from tests.fixtures.kube import KubeApi


@pytest.fixture
def runners() -> Iterator[list[harness.RunnerProcess]]:
    started: list[harness.RunnerProcess] = []
    yield started
    for runner in started:
        runner.kill()


def test_a_release_configmap_submits_a_workflow(kube_api: KubeApi, tmp_path: Path,
                                                runners: list[harness.RunnerProcess]) -> None:
    manifests = harness.prepare("resource-workflow", tmp_path / "m")
    env = harness.knevents_env(tmp_path, {"KUBECONFIG": str(kube_api.kubeconfig_path)})
    runner = harness.RunnerProcess([manifests], tmp_path / "state", env).start()
    runners.append(runner)
    harness.poll(lambda: any(r.verb == "watch" for r in kube_api.requests), "the ConfigMap watch")
    kube_api.put_object({"apiVersion": "v1", "kind": "ConfigMap", "data": {"version": "9.9.9"},
                         "metadata": {"name": "noise", "namespace": "default", "labels": {"app": "other"}}})
    kube_api.put_object({"apiVersion": "v1", "kind": "ConfigMap", "data": {"version": "1.4.2"},
                         "metadata": {"name": "release-1-4-2", "namespace": "default", "labels": {"app": "release"}}})
    runner.wait_for(lambda r: r.get("tag") == "fired" and r.get("trigger") == "deploy-workflow", "the firing")
    [workflow] = kube_api.objects("argoproj.io", "v1alpha1", "workflows", "default")
    assert workflow["metadata"]["name"].startswith("deploy-")
    assert workflow["spec"]["arguments"]["parameters"] == [{"name": "version", "value": "1.4.2"},
                                                           {"name": "configmap", "value": "release-1-4-2"}]
    assert len(runner.matching(lambda r: r.get("tag") == "event")) == 1
    assert runner.stop() == 0


def _body(mail: Message) -> str:
    payload = mail.get_payload(decode=True)
    return payload.decode().strip() if isinstance(payload, bytes) else ""


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


def test_a_dropped_csv_is_mailed(tmp_path: Path, runners: list[harness.RunnerProcess]) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    port = free_port()
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        manifests = harness.prepare("file-drop-email", tmp_path / "m", {
            "/tmp/knevents-drop/": f"{drop}/", "host: localhost": "host: 127.0.0.1", "port: 2525": f"port: {port}"})
        runner = harness.RunnerProcess([manifests], tmp_path / "state", harness.knevents_env(tmp_path)).start()
        runners.append(runner)
        for n in range(int(harness.WAIT / 0.5)):  # the source watches once its first listing is saved
            (drop / f"probe-{n}.csv").write_text("p")
            try:
                runner.wait_for(lambda r: r.get("tag") == "fired", "a firing", timeout=0.5)
                break
            except AssertionError:
                continue
        (drop / "notes.txt").write_text("ignored")
        (drop / "orders.csv").write_text("id,amount\n")
        harness.poll(lambda: any("orders.csv" in _body(m) for m in inbox.messages), "the mail")
    finally:
        smtp.stop()
    [mail] = [m for m in inbox.messages if "orders.csv" in _body(m)]
    assert (mail["From"], mail["To"], mail["Subject"]) == ("knevents@example.com", "ops@example.com", "New CSV file")
    assert _body(mail) == f"A new file arrived: {drop}/orders.csv (CREATE)."
    assert not any("notes.txt" in _body(m) for m in inbox.messages)
