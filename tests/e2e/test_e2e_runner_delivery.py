"""Argo's delivery modes across a restart: its ``AtMostOnce`` and ``AtLeastOnce`` e2e scenarios, and a crash.

Argo's functional test deploys a sensor whose trigger keeps failing (an HTTP call with a 100-step,
500 s retry), sends one event, then replaces the sensor by one whose trigger is ``log``. With
``atLeastOnce: false`` (the default) Argo took the event before the trigger ran, so the new sensor
never fires for it; with ``atLeastOnce: true`` the event comes back and the new sensor fires. Here the
failing URL is a local sink answering 503 (Argo's points at ``https://invalid.com/``), the sensor is
replaced by stopping ``knevents run`` and starting it again on the same state dir, and the YAML is
Argo's own (``sensor-at*-{fail,succeed}.yaml`` of argoproj/argo-events test/e2e/testdata).
"""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from knevents.local.natsd import free_port

from tests.e2e import harness

_ES = """apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata:
  name: e2e-webhook
spec:
  webhook:
    example:
      port: "{port}"
      endpoint: /example
      method: POST
"""


def _sensor(mode: str, outcome: str, url: str) -> str:
    """Argo's e2e sensor ``sensor-<mode>-<outcome>.yaml`` (its pod template dropped, the URL local)."""
    trigger: dict[str, Any] = {"template": {"name": f"trigger-{mode}"}}
    if outcome == "fail":
        trigger["template"]["http"] = {"url": url, "method": "GET"}
        trigger["retryStrategy"] = {"steps": 100, "duration": "500s", "factor": 5.0}
    else:
        trigger["template"]["log"] = {}
    if mode == "atleastonce":
        trigger["atLeastOnce"] = True
    doc = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Sensor",
        "metadata": {"name": f"e2e-{mode}-sensor"},
        "spec": {
            "replicas": 1,
            "dependencies": [
                {"name": "test-dep-1", "eventSourceName": "e2e-webhook", "eventName": "example"}
            ],
            "triggers": [trigger],
        },
    }
    return yaml.safe_dump(doc, sort_keys=False)


@pytest.fixture
def failing_sink() -> Iterator[harness.Sink]:
    sink = harness.Sink(lambda r: 503)
    yield sink
    sink.close()


@pytest.fixture
def runners() -> Iterator[list[harness.RunnerProcess]]:
    started: list[harness.RunnerProcess] = []
    yield started
    for runner in started:
        runner.kill()


def _fail_then_replace(
    mode: str, tmp_path: Path, sink: harness.Sink, runners: list[harness.RunnerProcess]
) -> tuple[harness.RunnerProcess, str, int]:
    """Run the failing sensor, send one event, stop while the trigger retries, start the succeeding one."""
    port = free_port()
    manifests = tmp_path / "m"
    manifests.mkdir()
    (manifests / "eventsource.yaml").write_text(_ES.format(port=port))
    (manifests / "sensor.yaml").write_text(_sensor(mode, "fail", sink.url + "/fail"))
    env = harness.knevents_env(tmp_path)
    first = harness.RunnerProcess([manifests], tmp_path / "state", env, ["--log-level", "info"]).start()
    runners.append(first)
    sent = harness.cli(
        ["send", "--url", f"http://127.0.0.1:{port}/example", "--data", '{"n": 1}'], env, tmp_path
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr
    [event] = first.wait_for(lambda r: r.get("tag") == "event", "the webhook event")
    sink.wait(1)  # the trigger ran once and failed; it now sleeps in its retry backoff (500 s)
    assert first.stop(signal.SIGINT) == 0  # the delivery in flight is cancelled and given back

    (manifests / "sensor.yaml").write_text(_sensor(mode, "succeed", ""))
    second = harness.RunnerProcess([manifests], tmp_path / "state", env, ["--log-level", "info"]).start()
    runners.append(second)
    return second, str(event["id"]), port


def test_at_most_once_trigger_is_not_run_again_after_a_restart(
    tmp_path: Path, failing_sink: harness.Sink, runners: list[harness.RunnerProcess]
) -> None:
    second, first_id, port = _fail_then_replace("atmostonce", tmp_path, failing_sink, runners)
    # The event comes back to the new sensor (the stopping runner nakked it) and is recognised as taken:
    # its only firing was stateless at-most-once, so the take was the event's "done" mark (a duplicate).
    second.wait_for(
        lambda r: r.get("msg") == "duplicate event dropped" and r.get("event_id") == first_id,
        "the redelivered event recognised as taken",
    )
    sent = harness.cli(
        ["send", "--url", f"http://127.0.0.1:{port}/example", "--data", '{"n": 2}'], second.env, tmp_path
    )
    assert sent.returncode == 0
    second.wait_for(lambda r: r.get("tag") == "fired", "the log trigger firing for a new event")
    fired = second.matching(lambda r: r.get("tag") == "fired")
    assert [f["events"]["test-dep-1"] for f in fired] != [first_id]
    assert all(f["events"]["test-dep-1"] != first_id for f in fired)
    assert len(failing_sink.received) == 1  # and the failing HTTP trigger was not called again either
    assert second.stop() == 0


def test_at_least_once_trigger_runs_again_after_a_restart(
    tmp_path: Path, failing_sink: harness.Sink, runners: list[harness.RunnerProcess]
) -> None:
    second, first_id, _ = _fail_then_replace("atleastonce", tmp_path, failing_sink, runners)
    [fired] = second.wait_for(lambda r: r.get("tag") == "fired", "the log trigger firing for the first event")
    assert fired["events"] == {"test-dep-1": first_id}
    assert fired["trigger"] == "trigger-atleastonce"
    assert second.stop() == 0


def test_a_crashed_runner_s_event_is_redelivered_within_seconds(
    tmp_path: Path, runners: list[harness.RunnerProcess]
) -> None:
    """SIGKILL the runner (and its nats-server) while an atLeastOnce trigger retries; restart; it fires."""
    answers = iter([503])
    sink = harness.Sink(lambda r: next(answers, 200))
    try:
        port = free_port()
        manifests = tmp_path / "m"
        manifests.mkdir()
        (manifests / "eventsource.yaml").write_text(_ES.format(port=port))
        sensor = yaml.safe_load(_sensor("atleastonce", "fail", sink.url + "/t"))
        sensor["spec"]["triggers"][0]["template"]["http"]["method"] = "POST"
        (manifests / "sensor.yaml").write_text(yaml.safe_dump(sensor))
        env = harness.knevents_env(tmp_path)
        first = harness.RunnerProcess([manifests], tmp_path / "state", env).start()
        runners.append(first)
        sent = harness.cli(
            ["send", "--url", f"http://127.0.0.1:{port}/example", "--data", '{"n": 1}'], env, tmp_path
        )
        assert sent.returncode == 0, sent.stdout + sent.stderr
        [event] = first.wait_for(lambda r: r.get("tag") == "event", "the webhook event")
        sink.wait(1)
        first.kill()  # SIGKILL: no nak, no cleanup; the nats-server goes too
        started = time.monotonic()
        second = harness.RunnerProcess([manifests], tmp_path / "state", env).start()
        runners.append(second)
        [fired] = second.wait_for(lambda r: r.get("tag") == "fired", "the redelivered event's firing")
        recovered = time.monotonic() - started
        assert fired["events"] == {"test-dep-1": event["id"]}
        print(
            json.dumps({"crash_recovery_seconds": round(recovered, 2)})
        )  # reported, not asserted (noisy CI)
        assert second.stop() == 0
    finally:
        sink.close()


def test_a_trigger_working_longer_than_the_ack_wait_is_not_handed_out_twice(
    tmp_path: Path, runners: list[harness.RunnerProcess]
) -> None:
    """In-progress acks keep the message while an atLeastOnce trigger waits 9 s between attempts (ack wait: 4 s).

    Without them the server would redeliver the event after 4 s and a second delivery would fire the
    trigger at its first attempt; with them the one firing is the original delivery's second attempt.
    """
    answers = iter([503])
    sink = harness.Sink(lambda r: next(answers, 200))
    try:
        port, metrics_port = free_port(), free_port()
        manifests = tmp_path / "m"
        manifests.mkdir()
        (manifests / "eventsource.yaml").write_text(_ES.format(port=port))
        sensor = yaml.safe_load(_sensor("atleastonce", "fail", sink.url + "/t"))
        trigger = sensor["spec"]["triggers"][0]
        trigger["template"]["http"]["method"] = "POST"
        trigger["retryStrategy"] = {"steps": 2, "duration": "9s"}
        (manifests / "sensor.yaml").write_text(yaml.safe_dump(sensor))
        env = harness.knevents_env(tmp_path)
        runner = harness.RunnerProcess(
            [manifests], tmp_path / "state", env, ["--metrics-port", str(metrics_port)]
        )
        runners.append(runner.start())
        sent = harness.cli(
            ["send", "--url", f"http://127.0.0.1:{port}/example", "--data", "{}"], env, tmp_path
        )
        assert sent.returncode == 0, sent.stdout + sent.stderr
        runner.wait_for(lambda r: r.get("tag") == "fired", "the trigger's success")
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as answer:
            text = answer.read().decode()
        retried = 'knevents_sensor_triggers_retried_total{sensor="e2e-atleastonce-sensor",trigger="trigger-atleastonce"}'
        assert f"{retried} 1.0" in text  # the firing was the second attempt of the one delivery
        assert len(sink.received) == 2 and runner.matching(lambda r: r.get("tag") == "retry") == []
        assert runner.stop() == 0
    finally:
        sink.close()
