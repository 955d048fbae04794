"""`knevents run` end to end on the examples: webhook in, trigger out, over a real embedded nats-server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from knevents.local.natsd import free_port

from tests.e2e import harness

KUBEDOJO = {"project": "kubedojo", "branch": "main", "commit": "abc123"}


@pytest.fixture
def runners() -> Iterator[list[harness.RunnerProcess]]:
    started: list[harness.RunnerProcess] = []
    yield started
    for runner in started:
        runner.kill()


def _start(runners: list[harness.RunnerProcess], tmp_path: Path, manifests: Path, env: dict[str, str],
           *args: str) -> harness.RunnerProcess:
    runner = harness.RunnerProcess([manifests], tmp_path / "state", env, list(args)).start()
    runners.append(runner)
    return runner


def _fired(trigger: str) -> Any:
    return lambda r: r.get("tag") == "fired" and r.get("trigger") == trigger


def test_quickstart_without_cluster_prints_the_workflow_with_the_posted_project(
    tmp_path: Path, runners: list[harness.RunnerProcess]
) -> None:
    port = free_port()
    manifests = harness.prepare("quickstart", tmp_path / "m", {'"12000"': f'"{port}"'})
    env = harness.knevents_env(tmp_path)
    runner = _start(runners, tmp_path, manifests, env)
    sent = harness.cli(["send", "--eventsource", "webhook", "--event", "build", "--data", json.dumps(KUBEDOJO),
                        "--state-dir", str(tmp_path / "state")], env, tmp_path)
    assert sent.returncode == 0, sent.stderr
    [fired] = runner.wait_for(_fired("trigger-workflow"), "firing of trigger-workflow")
    assert fired["dry_run"] is True and fired["kind"] == "argoWorkflow"
    [printed] = runner.wait_for(lambda r: "resource" in r, "the printed Workflow")
    workflow = printed["resource"]
    assert workflow["kind"] == "Workflow"
    assert workflow["metadata"]["generateName"] == "event-build-"
    assert workflow["spec"]["arguments"]["parameters"][0] == {"name": "message", "value": "kubedojo"}
    assert runner.stop() == 0


def test_quickstart_with_a_kubeconfig_creates_the_workflow_in_the_cluster(
    tmp_path: Path, runners: list[harness.RunnerProcess], kube_api: Any
) -> None:
    port = free_port()
    manifests = harness.prepare("quickstart", tmp_path / "m", {'"12000"': f'"{port}"'})
    env = harness.knevents_env(tmp_path, {"KUBECONFIG": str(kube_api.kubeconfig_path)})
    runner = _start(runners, tmp_path, manifests, env)
    sent = harness.cli(["send", "--url", f"http://127.0.0.1:{port}/build", "--data", json.dumps(KUBEDOJO)],
                       env, tmp_path)
    assert sent.returncode == 0, sent.stderr
    [fired] = runner.wait_for(_fired("trigger-workflow"), "firing of trigger-workflow")
    assert not fired.get("dry_run")
    [workflow] = kube_api.objects("argoproj.io", "v1alpha1", "workflows", "default")
    assert workflow["metadata"]["name"].startswith("event-build-")
    assert workflow["spec"]["arguments"]["parameters"][0]["value"] == "kubedojo"
    assert workflow["metadata"]["annotations"]["events.knevents.io/event-ids"] == fired["events"]["webhook-build"]
    assert runner.stop() == 0


def test_http_trigger_delivers_the_resolved_payload_with_the_event_id(
    tmp_path: Path, runners: list[harness.RunnerProcess], sink: harness.Sink
) -> None:
    port = free_port()
    manifests = harness.prepare("http-trigger", tmp_path / "m", {
        '"12000"': f'"{port}"', "http://localhost:8080": sink.url})
    runner = _start(runners, tmp_path, manifests, harness.knevents_env(tmp_path))
    body = {"head_commit": {"message": "fix: update config"}, "ref": "refs/heads/main"}
    sent = harness.cli(["send", "--url", f"http://127.0.0.1:{port}/push", "--data", json.dumps(body)],
                       runner.env, tmp_path)
    assert sent.returncode == 0, sent.stderr
    [request] = sink.wait(1)
    assert request.path == "/services/T00/B00/XXXX"
    assert request.json() == {"text": "fix: update config"}
    [event] = runner.wait_for(lambda r: r.get("tag") == "event", "the event line")
    assert request.headers["knevents-event-ids"] == event["id"]
    runner.wait_for(_fired("notify-slack"), "firing of notify-slack")


def test_same_body_twice_fires_twice_but_a_redelivered_event_fires_once(
    tmp_path: Path, runners: list[harness.RunnerProcess], sink: harness.Sink
) -> None:
    port = free_port()
    manifests = harness.prepare("http-trigger", tmp_path / "m", {
        '"12000"': f'"{port}"', "http://localhost:8080": sink.url})
    runner = _start(runners, tmp_path, manifests, harness.knevents_env(tmp_path))
    body = json.dumps({"head_commit": {"message": "same"}})
    for _ in range(2):
        sent = harness.cli(["send", "--url", f"http://127.0.0.1:{port}/push", "--data", body], runner.env, tmp_path)
        assert sent.returncode == 0, sent.stderr
    first, second = sink.wait(2)
    assert first.headers["knevents-event-ids"] != second.headers["knevents-event-ids"]

    # The same event id published twice on the bus (a redelivery, a retried publish) fires once.
    bus_args = ["send", "--bus", "--source", "github-events", "--subject", "code-push", "--id", "redelivered-1",
                "--data", json.dumps({"header": {}, "body": {"head_commit": {"message": "again"}}}),
                "--state-dir", str(tmp_path / "state")]
    for _ in range(2):
        published = harness.cli(bus_args, runner.env, tmp_path)
        assert published.returncode == 0, published.stderr
    sink.wait(1, lambda r: r.json() == {"text": "again"})
    marker = json.dumps({"header": {}, "body": {"head_commit": {"message": "marker"}}})
    harness.cli(["send", "--bus", "--source", "github-events", "--subject", "code-push", "--data", marker,
                 "--state-dir", str(tmp_path / "state")], runner.env, tmp_path)
    sink.wait(1, lambda r: r.json() == {"text": "marker"})  # delivered after the duplicate would have been
    assert len([r for r in sink.received if r.json() == {"text": "again"}]) == 1
    assert runner.stop() == 0


def test_invalid_manifests_exit_1_with_every_problem_and_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: argoproj.io/v1alpha1\nkind: Sensor\nmetadata: {name: s}\n"
                   "spec:\n  dependencies:\n    - name: d\n  triggers: []\n")
    result = harness.cli(["run", str(bad), "--state-dir", str(tmp_path / "state")],
                         harness.knevents_env(tmp_path), tmp_path)
    assert result.returncode == 1
    assert "invalid manifests" in result.stdout + result.stderr
    assert "eventSourceName" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_a_taken_port_is_a_clear_error_and_nats_is_stopped(tmp_path: Path) -> None:
    from knevents.local import httpserve

    taken = httpserve.bind("127.0.0.1", 0)
    port = taken.getsockname()[1]
    try:
        manifests = harness.prepare("quickstart", tmp_path / "m", {'"12000"': f'"{port}"'})
        result = harness.cli(["run", str(manifests), "--state-dir", str(tmp_path / "state")],
                             harness.knevents_env(tmp_path), tmp_path)
    finally:
        taken.close()
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    info = json.loads((tmp_path / "state" / "runner.json").read_text()) \
        if (tmp_path / "state" / "runner.json").exists() else {"running": False}
    assert info["running"] is False


def test_calendar_interval_ticks_fire_the_log_trigger(tmp_path: Path, runners: list[harness.RunnerProcess]) -> None:
    manifests = harness.prepare("calendar-cleanup", tmp_path / "m", {"interval: 20s": "interval: 1s"})
    runner = _start(runners, tmp_path, manifests, harness.knevents_env(tmp_path))
    ticks = runner.wait_for(_fired("demo-tick"), "two demo ticks", count=2)
    assert ticks[0]["events"]["demo"] != ticks[1]["events"]["demo"]
    assert runner.stop() == 0
    assert runner.matching(_fired("nightly-cleanup")) == []  # read after the stop: every line is out


def test_dry_run_prints_the_http_request_instead_of_sending_it(
    tmp_path: Path, runners: list[harness.RunnerProcess], sink: harness.Sink
) -> None:
    port = free_port()
    manifests = harness.prepare("http-trigger", tmp_path / "m", {
        '"12000"': f'"{port}"', "http://localhost:8080": sink.url})
    runner = _start(runners, tmp_path, manifests, harness.knevents_env(tmp_path), "--dry-run")
    sent = harness.cli(["send", "--url", f"http://127.0.0.1:{port}/push", "--data",
                        json.dumps({"head_commit": {"message": "dry"}})], runner.env, tmp_path)
    assert sent.returncode == 0, sent.stderr
    [fired] = runner.wait_for(_fired("notify-slack"), "the dry-run firing")
    assert fired["dry_run"] is True and "not executed" in fired["msg"]
    text = harness.cli(["status", "--state-dir", str(tmp_path / "state")], runner.env, tmp_path)
    assert text.returncode == 0, text.stderr
    assert "notify-sensor (namespace default): dead letters 0" in text.stdout
    assert "notify-slack (http, dry run)" in text.stdout
    assert runner.stop() == 0
    assert sink.received == []
