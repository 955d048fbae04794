"""``knevents run`` serves ``/metrics`` for the whole runner, with every one of Argo's ``argo_events_*`` series.

Argo's names, types and labels come from argo-events ``pkg/metrics/metrics.go``; dashboards and
alerts written for Argo must find them after an event went through.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from knevents.local.natsd import free_port

from tests.e2e import harness

ARGO = {
    "argo_events_event_service_running_total": "gauge",
    "argo_events_events_sent_total": "counter",
    "argo_events_events_sent_failed_total": "counter",
    "argo_events_events_processing_failed_total": "counter",
    "argo_events_event_processing_duration_milliseconds": "summary",
    "argo_events_action_triggered_total": "counter",
    "argo_events_action_failed_total": "counter",
    "argo_events_action_retries_failed_total": "counter",
    "argo_events_action_duration_milliseconds": "summary",
    "build_info": "gauge",
}
"""Name -> type, as Argo's Go client exposes them (summaries as ``_count``/``_sum`` samples)."""

ES = """apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata: {{name: hooks, namespace: team}}
spec:
  webhook:
    push: {{port: "{port}", endpoint: /push, method: POST}}
"""
SENSOR = """apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {{name: watcher, namespace: team}}
spec:
  dependencies:
    - {{name: p, eventSourceName: hooks, eventName: push}}
  triggers:
    - template: {{name: note, log: {{}}}}
    - template:
        name: call
        http: {{url: "http://127.0.0.1:{closed}/nowhere", method: POST}}
"""


@pytest.fixture
def runners() -> Iterator[list[harness.RunnerProcess]]:
    started: list[harness.RunnerProcess] = []
    yield started
    for runner in started:
        runner.kill()


def test_every_argo_metric_is_served_after_an_event(
    tmp_path: Path, runners: list[harness.RunnerProcess]
) -> None:
    port, metrics_port = free_port(), free_port()
    manifests = tmp_path / "m"
    manifests.mkdir()
    (manifests / "es.yaml").write_text(ES.format(port=port))
    (manifests / "sensor.yaml").write_text(SENSOR.format(closed=free_port()))
    env = harness.knevents_env(tmp_path)
    runner = harness.RunnerProcess(
        [manifests], tmp_path / "state", env, ["--metrics-port", str(metrics_port)]
    ).start()
    runners.append(runner)
    [banner] = runner.matching(lambda r: "sensors" in r)
    assert (
        f"metrics (knevents_* and Argo's argo_events_*): http://localhost:{metrics_port}/metrics"
        in banner["msg"]
    )

    url = f"http://127.0.0.1:{port}/push"
    sent = harness.cli(["send", "--url", url, "--data", json.dumps({"n": 1})], env, tmp_path)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    runner.wait_for(lambda r: r.get("tag") == "fired", "the log trigger")
    runner.wait_for(lambda r: r.get("tag") == "failed", "the http trigger's failure")

    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    for family, kind in ARGO.items():
        assert f"# TYPE {family} {kind}\n" in text, family
    src = {"namespace": "team", "eventsource_name": "hooks", "event_name": "push"}
    sen = {"namespace": "team", "sensor_name": "watcher"}
    found = _samples(text)
    assert (
        found[
            (
                "argo_events_event_service_running_total",
                _key({"namespace": "team", "eventsource_name": "hooks"}),
            )
        ]
        == 1
    )
    assert found[("argo_events_events_sent_total", _key(src))] == 1
    assert found[("argo_events_event_processing_duration_milliseconds_count", _key(src))] == 1
    assert found[("argo_events_action_triggered_total", _key({**sen, "trigger_name": "note"}))] == 1
    assert found[("argo_events_action_failed_total", _key({**sen, "trigger_name": "call"}))] == 1
    assert found[("argo_events_action_retries_failed_total", _key({**sen, "trigger_name": "call"}))] == 1
    assert (
        found[("argo_events_action_duration_milliseconds_count", _key({**sen, "trigger_name": "note"}))] == 1
    )
    assert 'build_info{commit="",goarch=' in text
    assert "knevents_sensor_triggers_fired_total" in text  # ours, beside Argo's
    assert runner.stop() == 0


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)$")


def _key(labels: dict[str, str]) -> frozenset[tuple[str, str]]:
    return frozenset(labels.items())


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """(name, labels) -> value of every labelled sample of a Prometheus text exposition."""
    out = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2)))
            out[(match.group(1), _key(labels))] = float(match.group(3))
    return out
