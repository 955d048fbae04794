"""Argo YAML with a misplaced field runs unchanged under ``knevents run``, warned about once.

The manifests are Argo's e2e ``es-multi-sensor.yaml`` and ``sensor-multi-sensor-atleastonce.yaml``
(argoproj/argo-events test/e2e/testdata, ports made free): the sensor has ``atLeastOnce`` inside
``template``, where Argo's CRD keeps and ignores it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from knevents.local.natsd import free_port

from tests.e2e import harness

ES = """apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata:
  name: e2e-multi-sensor
spec:
  template:
    serviceAccountName: argo-events-sa
  webhook:
    example1: {{port: "{p1}", endpoint: /example1, method: POST}}
    example2: {{port: "{p2}", endpoint: /example2, method: POST}}
    example3: {{port: "{p3}", endpoint: /example3, method: POST}}
"""
SENSOR = """apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata:
  name: e2e-multi-sensor-atleastonce
spec:
  replicas: 1
  template:
    serviceAccountName: argo-events-sa
    container:
      env:
        - name: DEBUG_LOG
          value: "true"
  dependencies:
    - name: test-dep-1-atleastonce
      eventSourceName: e2e-multi-sensor
      eventName: example1
    - name: test-dep-2-atleastonce
      eventSourceName: e2e-multi-sensor
      eventName: example2
    - name: test-dep-3-atleastonce
      eventSourceName: e2e-multi-sensor
      eventName: example3
  triggers:
    - template:
        conditions: "(test-dep-1-atleastonce && test-dep-2-atleastonce) || test-dep-3-atleastonce"
        name: log-trigger-1-atleastonce
        atLeastOnce: true
        log: {}
"""


@pytest.fixture
def runners() -> Iterator[list[harness.RunnerProcess]]:
    started: list[harness.RunnerProcess] = []
    yield started
    for runner in started:
        runner.kill()


def test_argo_e2e_sensor_with_a_misplaced_field_runs_and_warns_once(
    tmp_path: Path, runners: list[harness.RunnerProcess]
) -> None:
    p1, p2, p3 = free_port(), free_port(), free_port()
    manifests = tmp_path / "m"
    manifests.mkdir()
    (manifests / "es.yaml").write_text(ES.format(p1=p1, p2=p2, p3=p3))
    (manifests / "sensor.yaml").write_text(SENSOR)
    env = harness.knevents_env(tmp_path)
    runner = harness.RunnerProcess([manifests], tmp_path / "state", env).start()
    runners.append(runner)
    warnings = runner.matching(lambda r: r.get("tag") == "warning" and "atLeastOnce" in r.get("msg", ""))
    assert len(warnings) == 1, runner.output()
    assert (
        "spec.triggers[0].template.atLeastOnce: unknown field `atLeastOnce` ignored (as in Argo); "
        "`atLeastOnce` belongs one level up, beside `template`" in warnings[0]["msg"]
    )
    sent = harness.cli(["send", "--url", f"http://127.0.0.1:{p3}/example3", "--data", "{}"], env, tmp_path)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    [fired] = runner.wait_for(lambda r: r.get("tag") == "fired", "the log trigger")
    assert fired["trigger"] == "log-trigger-1-atleastonce"
    assert set(fired["events"]) == {"test-dep-3-atleastonce"}
    assert runner.stop() == 0
