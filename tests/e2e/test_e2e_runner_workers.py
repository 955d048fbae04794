"""`knevents run --workers 2`: two processes share the ports, the consumers and the KV state; nothing lost or doubled."""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from knevents.local import workers
from knevents.local.natsd import free_port

from tests.e2e import harness

MANIFESTS = """
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata: {{name: hooks}}
spec:
  webhook:
    one: {{port: "{port}", endpoint: /one, method: POST}}
    a: {{port: "{port}", endpoint: /a, method: POST}}
    b: {{port: "{port}", endpoint: /b, method: POST}}
---
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {{name: single}}
spec:
  dependencies: [{{name: one, eventSourceName: hooks, eventName: one}}]
  triggers:
    - template:
        name: each
        http:
          url: {sink}/each
          method: POST
          payload: [{{src: {{dependencyName: one, dataKey: body.n}}, dest: n}}]
      atLeastOnce: true  # a worker killed mid-trigger: the redelivery runs it again (at most once would drop it)
---
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {{name: pairs}}
spec:
  dependencies:
    - {{name: a, eventSourceName: hooks, eventName: a}}
    - {{name: b, eventSourceName: hooks, eventName: b}}
  triggers:
    - template:
        name: both
        conditions: "a && b"
        http:
          url: {sink}/both
          method: POST
          payload:
            - {{src: {{dependencyName: a, dataKey: body.n}}, dest: a}}
            - {{src: {{dependencyName: b, dataKey: body.n}}, dest: b}}
"""


@pytest.fixture
def runner(tmp_path: Path, sink: harness.Sink) -> Iterator[tuple[harness.RunnerProcess, int]]:
    port = free_port()
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "all.yaml").write_text(MANIFESTS.format(port=port, sink=sink.url))
    process = harness.RunnerProcess([folder], tmp_path / "state", harness.knevents_env(tmp_path),
                                    ["--workers", "2"]).start()
    process.wait_for(lambda r: r.get("worker") == 1 and "pid" in r, "worker 1 ready")
    yield process, port
    process.kill()


def _post(port: int, path: str, body: object) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"}, method="POST")
    for attempt in range(5):  # a connection accepted by a worker that was just killed is reset: send again
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                assert answer.status == 200
                return
        except (OSError, urllib.error.URLError):  # reset, refused, timed out under load
            if attempt == 4:
                raise


def test_two_workers_deliver_every_event_once_and_each_and_pair_once(
    runner: tuple[harness.RunnerProcess, int], sink: harness.Sink
) -> None:
    _, port = runner
    for n in range(120):
        _post(port, "/one", {"n": n})
    each = sink.wait(120, lambda r: r.path == "/each")
    assert sorted(int(r.json()["n"]) for r in each) == list(range(120))
    for n in range(20):  # a then b: the two halves of a pair may land on different workers
        _post(port, "/a", {"n": n})
        _post(port, "/b", {"n": n})
        sink.wait(n + 1, lambda r: r.path == "/both")
    both = [r.json() for r in sink.received if r.path == "/both"]
    assert both == [{"a": str(n), "b": str(n)} for n in range(20)]
    assert len([r for r in sink.received if r.path == "/each"]) == 120  # nothing doubled meanwhile


def test_a_killed_worker_is_restarted_and_nothing_is_lost(
    runner: tuple[harness.RunnerProcess, int], sink: harness.Sink
) -> None:
    process, port = runner
    [ready] = process.wait_for(lambda r: r.get("worker") == 1 and "pid" in r, "worker 1 ready")
    for n in range(40):
        _post(port, "/one", {"n": n})
    os.kill(int(ready["pid"]), signal.SIGKILL)
    for n in range(40, 80):
        _post(port, "/one", {"n": n})
    process.wait_for(lambda r: "worker 1 exited" in str(r.get("msg")), "the restart line")
    process.wait_for(lambda r: r.get("worker") == 1 and "pid" in r, "worker 1 ready again", count=2)
    got = sink.wait(80, lambda r: r.path == "/each", timeout=60)  # what the dead worker held is redelivered
    assert {int(r.json()["n"]) for r in got} == set(range(80))


def test_default_worker_count_leaves_a_core_for_nats_server() -> None:
    assert workers.default_count(1) == 1
    assert workers.default_count(2) == 1
    assert workers.default_count(4) == 3
    assert workers.default_count(64) == 8
