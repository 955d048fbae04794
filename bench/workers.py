"""Where the CPU goes with ``knevents run --workers N``: every process's CPU per event, one worker against N.

    python bench/workers.py [--events 4000] [--rounds 2] [--workers 2] [--rate R]

Runs ``bench/e2e.py``'s runner (webhook → bus → sensor → HTTP trigger → sink) fresh for each
measurement, alternating one worker and ``--workers`` (1, N, 1, N, …), and drives it with
``--events`` events: closed loop (32 connections), or at ``--rate`` events/s offered. For each run
it prints the rate, how busy the whole machine was (from ``/proc/stat``), and per process
(the runner's workers together, nats-server, the sink, this load generator): CPU ms per event,
context switches per event and read/write system calls per event (``/proc/PID/io``: socket
reads through ``recv`` are not counted there, ``read`` and ``write`` are).

It answers why N workers are or are not faster than one on a given machine, where
``bench/e2e.py`` only says whether they are. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, e2e


def _counters(pid: int) -> tuple[float, int, int, int]:
    """CPU seconds, context switches, read and write system calls of ``pid`` so far."""
    io = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    status = dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                  if ":\t" in line)
    switches = int(status["voluntary_ctxt_switches"]) + int(status["nonvoluntary_ctxt_switches"])
    return e2e._cpu_seconds(pid), switches, int(io["syscr"]), int(io["syscw"])


def _idle_seconds() -> float:
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return (int(fields[4]) + int(fields[5])) / os.sysconf("SC_CLK_TCK")


def _run(workers: int, events: int, rate: float | None, sink: e2e.Sink, folder: Path) -> dict[str, Any]:
    folder.mkdir()
    port = common.free_port()
    runner = e2e._start_runner(folder, port, sink, workers=workers)
    try:
        e2e.wait_for_workers(folder, workers)
        batch = e2e._batch_for(port)
        sink.wait(batch(300, 8, None)[0], 60)
        nats = e2e._nats_pid(folder / "state")
        groups = {"runner": [runner.pid, *(p for p in common.children(runner.pid) if p != nats)],
                  "nats-server": [nats] if nats else [], "sink": [sink.proc.pid], "load": [os.getpid()]}
        before = {name: [_counters(p) for p in pids] for name, pids in groups.items()}
        idle, start = _idle_seconds(), time.monotonic()
        seqs, _ = batch(events, 32, rate)
        last = sink.wait(seqs, 120)
        busy = (os.cpu_count() or 1) - (_idle_seconds() - idle) / (time.monotonic() - start)
        per_event: dict[str, list[float]] = {}
        for name, pids in groups.items():
            after = [_counters(p) for p in pids]
            totals = [sum(a[i] - b[i] for a, b in zip(after, before[name], strict=True)) for i in range(4)]
            per_event[name] = [totals[0] * 1000 / events, *(t / events for t in totals[1:])]
        return {"workers": workers, "events_per_s": events / (last - start), "machine_busy_cores": busy,
                "per_event": per_event}
    finally:
        e2e._stop(runner)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--rate", type=float, default=None, help="offered events/s (default: closed loop)")
    args = parser.parse_args()
    sink = e2e.Sink()
    runs = []
    try:
        with tempfile.TemporaryDirectory(prefix="knevents-bench-") as tmp:
            for round_no in range(args.rounds):
                for count in (1, args.workers):
                    run = _run(count, args.events, args.rate, sink, Path(tmp) / f"w{count}-{round_no}")
                    runs.append(run)
                    cells = "; ".join(f"{name} {cpu:.3f} ms, {sw:.2f} cs, {r:.2f} r + {w:.2f} w"
                                      for name, (cpu, sw, r, w) in run["per_event"].items())
                    print(f"workers {count}: {run['events_per_s']:.0f} events/s, machine "
                          f"{run['machine_busy_cores']:.2f} cores busy; per event: {cells}", flush=True)
    finally:
        sink.close()
    print(json.dumps({"bench": "workers", "rate": args.rate, "events": args.events, "runs": runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
