"""`knevents run` across restarts and failures: AND state survives, poison events are dead-lettered."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from knevents.local.natsd import free_port

from tests.e2e import harness


@pytest.fixture
def runners() -> Iterator[list[harness.RunnerProcess]]:
    started: list[harness.RunnerProcess] = []
    yield started
    for runner in started:
        runner.kill()


def _send(runner: harness.RunnerProcess, tmp_path: Path, url: str, body: Any) -> None:
    sent = harness.cli(["send", "--url", url, "--data", json.dumps(body)], runner.env, tmp_path)
    assert sent.returncode == 0, sent.stdout + sent.stderr


def _status(runner: harness.RunnerProcess, tmp_path: Path) -> dict[str, Any]:
    result = harness.cli(["status", "--state-dir", str(runner.state_dir), "--output", "json"], runner.env, tmp_path)
    assert result.returncode == 0, result.stderr
    status: dict[str, Any] = json.loads(result.stdout)
    return status


def test_and_state_survives_a_restart_and_fires_with_both_events(
    tmp_path: Path, runners: list[harness.RunnerProcess]
) -> None:
    port = free_port()
    manifests = harness.prepare("and-two-events", tmp_path / "m", {'"12000"': f'"{port}"'})
    env = harness.knevents_env(tmp_path)
    first = harness.RunnerProcess([manifests], tmp_path / "state", env).start()
    runners.append(first)
    _send(first, tmp_path, f"http://127.0.0.1:{port}/push", {"after": "abc123", "ref": "refs/heads/main"})
    [push] = first.wait_for(lambda r: r.get("tag") == "event" and r.get("event") == "code-push", "the push event")

    def pending_push(status: dict[str, Any]) -> bool:
        [trigger] = status["sensors"][0]["triggers"]
        return trigger["pending"].get("github-push", {}).get("event_id") == push["id"]

    # The push is held in KV (poll status until the sensor processed the event; no fixed sleeps).
    harness.poll(lambda: pending_push(_status(first, tmp_path)), "the push to be pending in KV")
    assert first.stop() == 0
    assert first.matching(lambda r: r.get("tag") == "fired") == []  # read after the stop: every line is out

    stopped = _status(first, tmp_path)  # readable while the runner is down
    assert stopped["runner"]["running"] is False and pending_push(stopped)
    assert stopped["sensors"][0]["triggers"][0]["waiting_for"] == ["security-scan"]

    second = harness.RunnerProcess([manifests], tmp_path / "state", env).start()
    runners.append(second)
    _send(second, tmp_path, f"http://127.0.0.1:{port}/scan-complete", {"result": "clean"})
    [fired] = second.wait_for(lambda r: r.get("tag") == "fired" and r.get("trigger") == "release", "release")
    assert fired["events"]["github-push"] == push["id"]
    assert set(fired["events"]) == {"github-push", "security-scan"}
    [printed] = second.wait_for(lambda r: "resource" in r, "the printed Workflow")
    values = [p["value"] for p in printed["resource"]["spec"]["arguments"]["parameters"]]
    assert values == ["abc123", "clean"]
    after = _status(second, tmp_path)
    assert after["sensors"][0]["triggers"][0]["pending"] == {}
    assert after["sensors"][0]["last_firings"][0]["events"]["github-push"] == push["id"]
    assert second.stop() == 0


def test_poison_event_is_dead_lettered_and_other_events_keep_flowing(
    tmp_path: Path, runners: list[harness.RunnerProcess]
) -> None:
    sink = harness.Sink(lambda r: 500 if b"poison" in r.body else 200)
    try:
        port = free_port()
        manifests = harness.prepare("http-trigger", tmp_path / "m", {
            '"12000"': f'"{port}"', "http://localhost:8080": sink.url})
        runner = harness.RunnerProcess([manifests], tmp_path / "state", harness.knevents_env(tmp_path),
                                       ["--max-deliveries", "3", "--retry-backoff", "0.05"]).start()
        runners.append(runner)
        url = f"http://127.0.0.1:{port}/push"
        _send(runner, tmp_path, url, {"head_commit": {"message": "poison"}})
        _send(runner, tmp_path, url, {"head_commit": {"message": "healthy"}})
        sink.wait(1, lambda r: r.json() == {"text": "healthy"})
        [dead] = runner.wait_for(lambda r: r.get("tag") == "dlq", "the dead-letter line")
        assert dead["attempts"] == 3 and dead["subject"] == "default.dlq.notify-sensor"
        # retryStrategy steps: 2 -> two calls per delivery, three deliveries
        assert len([r for r in sink.received if b"poison" in r.body]) == 6
        status = _status(runner, tmp_path)
        assert status["sensors"][0]["dead_letters"] == 1
        assert any(not f["ok"] for f in status["sensors"][0]["last_firings"])
        _send(runner, tmp_path, url, {"head_commit": {"message": "after"}})
        sink.wait(1, lambda r: r.json() == {"text": "after"})
        assert runner.stop() == 0
    finally:
        sink.close()
