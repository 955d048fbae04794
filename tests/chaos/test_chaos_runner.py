"""Chaos for ``knevents run``, with one worker and with ``--workers 2``: nothing lost, no ``&&`` set fired twice.

1,500 webhook events flow to a one-dependency sensor (``atLeastOnce``) while
a pair lane sends ``a`` and ``b`` of pair n at once (each on a new connection,
so ``SO_REUSEPORT`` picks a worker per event) to a sensor with two ``a && b``
triggers: ``once`` (Argo's default, at most once) and ``sure``
(``atLeastOnce``). The lane goes on to pair n+1 once ``sure`` fired for n.

Faults, mid-stream: the runner's nats-server SIGKILLed twice; near-limit
bodies among the requests; with two workers, worker 1 SIGKILLed twice (worker
0 restarts it) and worker 0 itself SIGKILLed (every worker must go; a new
runner on the same state dir finishes the work).

The one-dependency sensor also has an at-most-once trigger: it never runs twice for
an event and loses at most the events in flight at a fault.

Asserted: every accepted single event reaches the sink; ``sure`` fired every
pair; no event id is in two different fired sets of a trigger; ``once`` never
fired a set twice; what a fault can cost is bounded by the faults (``once``
may lose the one pair in flight at a kill, Argo's at-most-once; ``sure`` may
run it again with the same ids); nothing is dead-lettered. With two workers,
some pairs had their two events processed by different workers.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.chaos import chaos_support as cs
from tests.e2e import harness

EVENTS = 1500
FAULTS_AT = (300, 900)
"""Single-event keys seen at the sink before each fault (one master kill uses the first only)."""
NEAR_LIMIT = 1_048_176
"""Bytes of body under the webhook's 1 MiB limit that, with headers, are over NATS' max_payload."""
MIN_PAIRS = 30
PAIR_WAIT = 60.0
"""Seconds the lane waits for ``sure`` to fire a pair before it counts the pair as lost."""
DEADLINE = 240.0
CONCURRENCY = 16
"""Events a worker's dispatcher has in flight per sensor (the runner's default): what a kill can cost at most once."""

MANIFESTS = """
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata: {{name: hooks, namespace: chaos}}
spec:
  webhook:
    load: {{port: "{port}", endpoint: /load, method: POST}}
---
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {{name: chaos, namespace: chaos}}
spec:
  dependencies: [{{name: load, eventSourceName: hooks, eventName: load}}]
  triggers:
    - atLeastOnce: true
      template:
        name: sink
        http:
          url: {sink}/sink
          method: POST
          payload: [{{src: {{dependencyName: load, dataKey: body.n}}, dest: n}}]
    - template:
        name: once
        http:
          url: {sink}/single-once
          method: POST
          payload: [{{src: {{dependencyName: load, dataKey: body.n}}, dest: n}}]
---
{pairs}
"""

CASES = [
    pytest.param("kill-nats", 1, id="kill-nats-1-worker"),
    pytest.param("kill-nats", 2, id="kill-nats-2-workers"),
    pytest.param("near-limit-bodies", 1, id="near-limit-bodies-1-worker"),
    pytest.param("near-limit-bodies", 2, id="near-limit-bodies-2-workers"),
    pytest.param("kill-worker", 2, id="kill-worker-2-workers"),
    pytest.param("kill-master", 2, id="kill-master-2-workers"),
]


@dataclass
class Run:
    """One scenario's runner, what its chaos did and what the pair lane saw."""

    runner: harness.RunnerProcess
    workers: int
    tally: cs.Tally = field(default_factory=cs.Tally)
    pairs: int = 0
    late: list[int] = field(default_factory=list)
    old_records: list[dict[str, Any]] = field(default_factory=list)
    """Output of a runner killed by the scenario (the harness forgets it at restart)."""
    workers_gone: bool | None = None

    def records(self) -> list[dict[str, Any]]:
        return [*self.old_records, *self.runner.records]

    def start(self) -> None:
        self.runner.start()
        if self.workers > 1:
            self.runner.wait_for(_ready(self.workers - 1), f"worker {self.workers - 1} ready", timeout=60)


def _ready(index: int) -> Any:
    return lambda r: r.get("worker") == index and "pid" in r and "ready" in str(r.get("msg"))


def _keys(sink: cs.Sink) -> set[int]:
    return {cs.key(r) for r in sink.poll() if r.path == "/sink"}


async def _wait_keys(sink: cs.Sink, count: int) -> None:
    while len(_keys(sink)) < count:
        await asyncio.sleep(0.05)


async def _pair_lane(base: str, sink: cs.Sink, done: asyncio.Event, run: Run) -> None:
    """Pairs one after the other: a and b at once on new connections, then wait for ``sure`` to fire the pair."""
    seen, fired = 0, set[int]()
    async with httpx.AsyncClient(timeout=10.0, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        while not done.is_set() or run.pairs < MIN_PAIRS:
            n = run.pairs
            await asyncio.gather(cs.post_accepted(client, f"{base}/a", n, run.tally),
                                 cs.post_accepted(client, f"{base}/b", n, run.tally))
            run.pairs += 1
            deadline = time.monotonic() + PAIR_WAIT
            while n not in fired:
                records = sink.poll()
                fired.update(k for r in records[seen:] if r.path == "/sure" for k in cs.pair_keys(r))
                seen = len(records)
                if time.monotonic() > deadline:
                    run.late.append(n)
                    break
                await asyncio.sleep(0.02)


async def _fault(fault: str, sink: cs.Sink, run: Run, url: str, stop: asyncio.Event, answers: Counter[int]) -> None:
    if fault == "near-limit-bodies":
        await _near_limit(url, stop, answers)
        return
    for threshold in FAULTS_AT[:1] if fault == "kill-master" else FAULTS_AT:
        await _wait_keys(sink, threshold)
        if fault == "kill-nats":
            os.kill(int((run.runner.state_dir / "jetstream" / "nats-server.pid").read_text()), signal.SIGKILL)
            run.tally.nats_restarts += 1
        elif fault == "kill-worker":
            ready = run.runner.matching(_ready(1))[-1]
            os.kill(int(ready["pid"]), signal.SIGKILL)
            run.tally.kills += 1
            run.runner.wait_for(_ready(1), "worker 1 restarted", count=run.tally.kills + 1, timeout=60)
        else:
            await asyncio.to_thread(_kill_master, run)
            run.tally.kills += 1


def _kill_master(run: Run) -> None:
    """SIGKILL worker 0 alone and start a new runner on the state dir at once; the old workers must go by themselves."""
    proc = run.runner.proc
    assert proc is not None
    pids = [int(r["pid"]) for r in run.runner.matching(lambda r: "pid" in r and "ready" in str(r.get("msg")))]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    run.old_records.extend(run.runner.records)
    run.start()  # while the old workers may still be stopping
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() and not _zombie(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    run.workers_gone = not any(Path(f"/proc/{pid}").exists() and not _zombie(pid) for pid in pids)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


async def _near_limit(url: str, stop: asyncio.Event, answers: Counter[int]) -> None:
    """Near-limit bodies all along the run: each is refused (413, or 503 while NATS restarts), nothing breaks."""
    body = b'{"big": "' + b"x" * (NEAR_LIMIT - 11) + b'"}'
    async with httpx.AsyncClient(timeout=30.0) as client:
        while not stop.is_set():
            response = await client.post(url, content=body, headers={"content-type": "application/json"})
            answers[response.status_code] += 1
            await asyncio.sleep(0.1)


async def _scenario(tmp: Path, fault: str, workers: int) -> tuple[Run, list[cs.Record], Counter[int], Any]:
    with cs.sink_server(tmp) as sink:
        port = cs.free_port()
        folder = tmp / "m"
        folder.mkdir()
        base = f"http://127.0.0.1:{sink.port}"
        (folder / "all.yaml").write_text(MANIFESTS.format(port=port, sink=base, pairs=cs.pair_manifests(port, base).strip()))
        # info lines name the worker that processed each event (pairs split over workers are counted from them)
        flags = ["--max-deliveries", "1000", "--retry-backoff", "0.05", "--workers", str(workers),
                 *(["--log-level", "info"] if workers > 1 else [])]
        run = Run(harness.RunnerProcess([folder], tmp / "state", harness.knevents_env(tmp), flags), workers)
        run.start()
        answers, stop, done = Counter[int](), asyncio.Event(), asyncio.Event()
        url = f"http://127.0.0.1:{port}"
        try:
            chaos = asyncio.create_task(_fault(fault, sink, run, f"{url}/load", stop, answers))
            lane = asyncio.create_task(_pair_lane(url, sink, done, run))
            await asyncio.wait_for(cs.send_all(f"{url}/load", run.tally, EVENTS), DEADLINE)
            await asyncio.wait_for(chaos if fault != "near-limit-bodies" else asyncio.sleep(0), DEADLINE)
            deadline = time.monotonic() + DEADLINE
            while len(_keys(sink)) < EVENTS and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            done.set()
            await asyncio.wait_for(lane, DEADLINE)
            stop.set()
            await asyncio.wait_for(chaos, DEADLINE)
            status = harness.cli(["status", "--state-dir", str(run.runner.state_dir), "--output", "json"],
                                 run.runner.env, tmp)
            assert status.returncode == 0, status.stderr
            assert run.runner.stop() == 0
            return run, sink.poll(), answers, json.loads(status.stdout)
        finally:
            run.runner.kill()


def _fired_sets(records: list[cs.Record], path: str) -> Counter[tuple[str, ...]]:
    sets = Counter(r.event_ids for r in records if r.path == path)
    assert all(len(ids) == 2 for ids in sets), f"{path}: a firing without both event ids: {sets}"
    return sets


def _processed_by(run: Run) -> dict[str, int]:
    """Event id -> the worker whose sensor processed it first (from the info lines)."""
    out: dict[str, int] = {}
    for r in run.records():
        if r.get("msg") == "event processed" and "event_id" in r:
            out.setdefault(str(r["event_id"]), int(r.get("worker", 0)))
    return out


@pytest.mark.parametrize(("fault", "workers"), CASES)
def test_runner_loses_nothing_and_fires_no_and_set_twice(tmp_path: Path, fault: str, workers: int) -> None:
    run, records, answers, status = asyncio.run(_scenario(tmp_path, fault, workers))
    faults = run.tally.kills + run.tally.nats_restarts
    once, sure = _fired_sets(records, "/once"), _fired_sets(records, "/sure")
    single_once = Counter(r.event_ids for r in records if r.path == "/single-once")
    single_lost = len({cs.key(r) for r in records if r.path == "/sink"}) - len(single_once)
    once_lost = run.pairs - len(once)
    sure_again = sum(n - 1 for n in sure.values())
    by = _processed_by(run)
    split = sum(1 for ids in sure if len({by.get(i) for i in ids} - {None}) == 2)
    print(f"\nrunner chaos ({fault}, {workers} worker(s)): {EVENTS} events, {run.pairs} pairs, "
          f"{run.tally.kills} kills, {run.tally.nats_restarts} nats kills, {run.tally.resends} webhook resends "
          f"({dict(run.tally.rejected)}); once: {len(once)} sets, {once_lost} lost, "
          f"{sum(n - 1 for n in once.values())} twice; sure: {len(sure)} sets, {sure_again} run again; "
          f"pairs split over workers: {split}; one-dependency at most once: {single_lost} lost, "
          f"{sum(n - 1 for n in single_once.values())} twice; near-limit answers {dict(answers)}")

    missing = set(range(EVENTS)) - {cs.key(r) for r in records if r.path == "/sink"}
    assert not missing, f"{len(missing)} acknowledged keys never reached the sink, e.g. {sorted(missing)[:10]}"
    assert not run.late, f"sure never fired pairs {run.late[:10]}"
    for path, sets in (("/once", once), ("/sure", sure)):
        used = Counter(i for ids in sets for i in ids)
        assert all(n == 1 for n in used.values()), f"{path}: an event in two fired sets: {used.most_common(3)}"
    assert all(n == 1 for n in once.values()), f"at-most-once fired a set twice: {once.most_common(3)}"
    assert 0 <= once_lost <= faults and sure_again <= faults, (once_lost, sure_again, faults)
    assert all(n == 1 for n in single_once.values()), f"at most once ran twice: {single_once.most_common(3)}"
    assert single_lost <= faults * CONCURRENCY * workers, (single_lost, faults)
    assert all(s["dead_letters"] == 0 for s in status["sensors"]), status["sensors"]
    if fault == "kill-nats":
        assert run.tally.nats_restarts == len(FAULTS_AT)
        restarts = run.runner.matching(lambda r: "restarting it on port" in str(r.get("msg", "")))
        assert len(restarts) == len(FAULTS_AT), "one log line per restart"
    elif fault == "near-limit-bodies":
        assert answers[413] > 0 and set(answers) <= {413, 503}, answers
        assert not run.tally.rejected, f"small requests were refused while near-limit bodies arrived: {run.tally.rejected}"
    elif fault == "kill-worker":
        exits = run.runner.matching(lambda r: "worker 1 exited" in str(r.get("msg", "")))
        assert run.tally.kills == len(FAULTS_AT) == len(exits), "one restart line per killed worker"
    else:
        assert run.workers_gone, "workers outlived a SIGKILLed worker 0"
    if workers > 1:
        assert split > 0, "no pair had its two events processed by different workers"
