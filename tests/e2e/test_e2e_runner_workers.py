"""`knevents run --workers 2`: two processes share the ports, the consumers and the KV state; nothing lost or doubled."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from knevents.local import natsd, workers
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
    # the runner's nats-server runs on a quarter of the cores' threads (one on 2 cores)
    assert _environ(_nats_pid(runner[0]))["GOMAXPROCS"] == str(natsd.default_threads())
    # ... under SCHED_BATCH, every thread of it (Go's later threads inherit it): its wakeups do not preempt workers
    tasks = list((Path("/proc") / str(_nats_pid(runner[0])) / "task").iterdir())
    assert tasks and {os.sched_getscheduler(int(task.name)) for task in tasks} == {os.SCHED_BATCH}


def _nats_pid(process: harness.RunnerProcess) -> int:
    return int((process.state_dir / "jetstream" / natsd.PID_FILE).read_text().strip())


def _environ(pid: int) -> dict[str, str]:
    entries = Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0")
    return dict(entry.split("=", 1) for entry in entries if "=" in entry)


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
    [_, again] = process.wait_for(lambda r: r.get("worker") == 1 and "pid" in r, "worker 1 ready again", count=2)
    # what the dead worker held is redelivered; waiting for 80 requests is not enough, since a copy of an
    # event the dead worker had fired but not acked may come before another event's first request
    got = sink.wait_all(range(80), lambda r: int(r.json()["n"]), lambda r: r.path == "/each", timeout=60)
    numbers = [int(r.json()["n"]) for r in got]
    assert set(numbers) == set(range(80))
    twice = {n for n in numbers if numbers.count(n) > 1}
    assert twice <= set(range(40)), twice  # only an event the killed worker held before the kill comes twice
    # status sees both processes, the restarted worker by its new pid
    assert process.proc is not None
    status = _status(process, "json")
    assert json.loads(status)["runner"]["workers"] == [
        {"index": 0, "pid": process.proc.pid, "alive": True}, {"index": 1, "pid": again["pid"], "alive": True}]
    assert f"workers: 2 (0: pid {process.proc.pid}, 1: pid {again['pid']})" in _status(process, "text")


def _status(process: harness.RunnerProcess, output: str) -> str:
    done = harness.cli(["status", "--state-dir", str(process.state_dir), "--output", output], process.env,
                       process.state_dir.parent)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_ctrl_c_in_a_terminal_stops_every_worker_cleanly(
    runner: tuple[harness.RunnerProcess, int], sink: harness.Sink
) -> None:
    process, port = runner
    for n in range(10):
        _post(port, "/one", {"n": n})
    sink.wait(10, lambda r: r.path == "/each")
    assert process.proc is not None
    os.killpg(process.proc.pid, signal.SIGINT)  # a terminal's Ctrl-C goes to the whole foreground process group
    assert process.proc.wait(60) == 0
    process.wait_for(lambda r: r.get("msg") == "stopped", "the runner's last line")
    # worker 1 took worker 0's SIGTERM for a second Ctrl-C and dropped its deliveries
    assert not process.matching(lambda r: "forced stop" in str(r.get("msg"))), process.output()


def test_a_worker_whose_worker_0_is_gone_does_not_serve(
    runner: tuple[harness.RunnerProcess, int], tmp_path: Path
) -> None:
    process, _ = runner
    assert process.proc is not None
    info = json.loads((process.state_dir / "runner.json").read_text())
    # started by another process than the worker 0 it names: as when worker 0 died while this worker started
    command = workers.worker_command(1, [str(tmp_path / "m")], [
        "--state-dir", str(process.state_dir), "--log-format", "json", "--no-ui", "--no-hooks", "--metrics-port", "0",
        "--nats-url", info["nats_url"], "--bus", info["bus"], "--worker-parent", str(process.proc.pid)])
    done = subprocess.run(command, env=process.env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"worker 0 (pid {process.proc.pid}) is gone" in done.stdout


def test_default_worker_count_leaves_a_core_for_nats_server() -> None:
    assert workers.default_count(1) == 1
    assert workers.default_count(2) == 1
    assert workers.default_count(4) == 3
    assert workers.default_count(64) == 8


def test_nats_server_threads_are_a_quarter_of_the_cores_unless_gomaxprocs_is_set(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert [natsd.default_threads(n) for n in (1, 2, 4, 8, 64)] == [1, 1, 1, 2, 16]
    with natsd.NatsServer(store_dir=tmp_path / "a", threads=1) as server:
        assert server._proc is not None and _environ(server._proc.pid)["GOMAXPROCS"] == "1"
    monkeypatch.setenv("GOMAXPROCS", "3")  # the user's own setting wins
    with natsd.NatsServer(store_dir=tmp_path / "b", threads=1) as server:
        assert server._proc is not None and _environ(server._proc.pid)["GOMAXPROCS"] == "3"


PICKY = """
---
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {name: picky}
spec:
  dependencies:
    - name: one
      eventSourceName: hooks
      eventName: one
      filters:
        data: [{path: body.n, type: number, comparator: "<", value: ["0"]}]
  triggers: [{template: {name: never, log: {}}}]
"""


def _received(metrics_port: int, sensor: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == "knevents_sensor_events_received_total" and sample.labels.get("sensor") == sensor)


def _samples(metrics_port: int, name: str) -> dict[str, float]:
    """The samples of ``name`` on ``/metrics``, by their ``worker`` label."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {sample.labels.get("worker", "?"): sample.value for family in text_string_to_metric_families(text)
            for sample in family.samples if sample.name == name}


def _filtered_in_the_ui(ui_port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/api/graph", timeout=10) as answer:
        return int(json.loads(answer.read())["counts"].get("dep:picky/one:filtered", 0))


def test_metrics_and_the_ui_count_what_every_worker_did(tmp_path: Path, sink: harness.Sink) -> None:
    port, metrics_port, ui_port = free_port(), free_port(), free_port()
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "all.yaml").write_text(MANIFESTS.format(port=port, sink=sink.url) + PICKY)
    process = harness.RunnerProcess([folder], tmp_path / "state", harness.knevents_env(tmp_path), [
        "--workers", "2", "--metrics-port", str(metrics_port), "--ui-port", str(ui_port)]).start()
    try:
        process.wait_for(lambda r: r.get("worker") == 1 and "pid" in r, "worker 1 ready")
        for n in range(40):  # one connection each: SO_REUSEPORT spreads them, and both workers pull from the bus
            _post(port, "/one", {"n": n})
        sink.wait(40, lambda r: r.path == "/each")
        # (waited for, not read at once: a piped runner writes its fired lines up to 50 ms after the firing)
        process.wait_for(lambda r: r.get("worker") == 1 and r.get("tag") == "fired",
                         "a firing by worker 1 (else this test could not tell one worker's counts from all)")
        harness.poll(lambda: _received(metrics_port, "single") == 40, "/metrics counting both workers' events")
        harness.poll(lambda: _filtered_in_the_ui(ui_port) == 40, "the UI counting both workers' filtered events")
        [ready] = process.matching(lambda r: r.get("worker") == 1 and "pid" in r)
        assert process.proc is not None
        with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/api/workers", timeout=10) as answer:
            assert json.loads(answer.read()) == [{"index": 0, "pid": process.proc.pid, "alive": True},
                                                 {"index": 1, "pid": ready["pid"], "alive": True}]
        # every worker's process_* series, told apart by a worker label (multiprocess mode has none of its own)
        cpu = _samples(metrics_port, "process_cpu_seconds_total")
        assert sorted(cpu) == ["0", "1"] and all(seconds > 0 for seconds in cpu.values()), cpu
        memory = _samples(metrics_port, "process_resident_memory_bytes")
        assert sorted(memory) == ["0", "1"] and all(size > 10 * 2**20 for size in memory.values()), memory
    finally:
        process.kill()


def test_a_second_runner_with_workers_cannot_share_the_first_one_s_port(
    runner: tuple[harness.RunnerProcess, int], tmp_path: Path, sink: harness.Sink
) -> None:
    _, port = runner
    other = tmp_path / "other"
    other.mkdir()
    (other / "all.yaml").write_text(MANIFESTS.format(port=port, sink=sink.url))
    # SO_REUSEPORT would let it listen beside the first runner and take half of its events
    done = harness.cli(["run", str(other), "--state-dir", str(tmp_path / "other-state"), "--workers", "2",
                        "--no-ui", "--log-format", "json"], harness.knevents_env(tmp_path), tmp_path, timeout=120)
    assert done.returncode == 1, done.stdout[-2000:]
    assert f"cannot listen on 127.0.0.1:{port}" in done.stdout
