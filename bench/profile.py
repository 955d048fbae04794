"""Where the CPU goes: sampling profiles of the runner and both functions at a fixed offered load.

    python bench/profile.py [--quick] [--markdown]
    python bench/profile.py --syscalls [--only runner]     # system calls per event instead (strace -c)
    python bench/profile.py --calls [--only runner]        # Python function calls per event (cProfile counts)

Each process is driven at 300 events (requests)/s, the issue's reference load, while
``py-spy record -f raw --nonblocking`` samples it (``--nonblocking`` does not pause the
process, so the figures are not bent by the profiler). py-spy leaves out samples of an idle
thread already; this script also drops any left in a selector/epoll wait. Every busy sample
is put in one bucket by its stack (see :mod:`bench.profile_buckets`), and the bucket's share of
the samples times the process's CPU per event (from ``/proc``, over the same window) gives
milliseconds per event.

* ``runner`` — ``knevents run`` (embedded nats-server, webhook → bus → sensor → HTTP trigger →
  sink; the same spec as ``bench/e2e.py``; nats-server's own CPU is printed beside it);
* ``eventsource`` — the event-source function on the thin entry publishing to JetStream
  (``bench/eventsource.py``'s ``webhook→js [thin]``);
* ``sensor`` — the sensor function on the thin entry, one dependency and an HTTP trigger
  (``bench/sensor_function.py``'s ``single thin``).

A sampling profile splits one process's CPU, so unlike an A/B of two runs it is not moved by
whatever else the machine runs. A table per process is printed, then a JSON line;
``--markdown`` also rewrites the "Where the CPU goes" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, e2e, eventsource, profile_buckets, sensor_function

RATE = 300.0
DOC = common.ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- profile:begin -->", "<!-- profile:end -->"


class Recording:
    """``py-spy record`` of one process for ``seconds``; :meth:`samples` parses the raw (collapsed) output."""

    def __init__(self, pid: int, seconds: float, out: Path) -> None:
        spy = shutil.which("py-spy")
        if spy is None:
            raise SystemExit("py-spy is not installed (pip install -e '.[dev]')")
        self.out = out
        self.proc = subprocess.Popen(
            [spy, "record", "-p", str(pid), "-r", "250", "-d", str(round(seconds)), "-f", "raw", "-o", str(out),
             "--nonblocking", "--subprocesses"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.0)  # py-spy attaches before the measured load starts

    def samples(self) -> list[tuple[list[str], int]]:
        _, err = self.proc.communicate(timeout=120)
        if not self.out.exists():
            raise RuntimeError(f"py-spy wrote no profile: {err.decode(errors='replace')[-500:]}")
        stacks = []
        for line in self.out.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if stack and count.isdigit():
                stacks.append((stack.split(";"), int(count)))
        return stacks


class SyscallCount:
    """``strace -c -f`` of one process instead of a profile (``--syscalls``): system calls per event, by name."""

    def __init__(self, pid: int, seconds: float, out: Path) -> None:
        if shutil.which("strace") is None:
            raise SystemExit("strace is not installed")
        self.out = out
        self.proc = subprocess.Popen(["strace", "-c", "-f", "-p", str(pid), "-o", str(out)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)

    def samples(self) -> dict[str, int]:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(60)
        calls: dict[str, int] = {}
        for line in self.out.read_text().splitlines():
            fields = line.split()
            # % time, seconds, usecs/call, calls, [errors,] syscall
            if len(fields) >= 5 and fields[3].isdigit() and fields[-1] != "total":
                calls[fields[-1]] = int(fields[3])
        return calls


class CallCount:
    """``--calls``: Python function calls per event, counted by cProfile inside the process (``bench/calls/``).

    Unlike CPU time, the count does not move with the machine's load: it is the steady measure of how
    much Python the code runs per event. The process was started with ``bench/calls`` on its
    ``PYTHONPATH``; SIGUSR1 starts counting, SIGUSR2 stops and writes the statistics.
    """

    def __init__(self, pid: int, seconds: float, out: Path) -> None:
        self.pid, self.out = pid, Path(os.environ["BENCH_CALLS_DIR"]) / f"{pid}.pstats"
        os.kill(pid, signal.SIGUSR1)
        time.sleep(0.2)

    def samples(self) -> dict[str, Any]:
        import pstats

        os.kill(self.pid, signal.SIGUSR2)
        deadline = time.monotonic() + 30
        while not self.out.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # written by the process: let it finish
        stats = pstats.Stats(str(self.out))
        by_function = {f"{Path(path).name}:{line}({name})": row[1]
                       for (path, line, name), row in stats.stats.items()}  # type: ignore[attr-defined]
        return {"calls": stats.total_calls, "by_function": by_function}  # type: ignore[attr-defined]


MODE = {"record": "profile"}
"""``profile`` (py-spy), ``syscalls`` (strace -c) or ``calls`` (cProfile counts); ``--syscalls``/``--calls`` set it."""


def _measure(pid_for_cpu: list[int], target_pid: int, seconds: float, drive: Callable[[], None],
             tmp: Path, name: str, record: bool) -> dict[str, Any]:
    """Profile ``target_pid`` (if ``record``) while ``drive()`` offers the load; CPU of every pid in ``pid_for_cpu``."""
    if record and MODE["record"] in ("syscalls", "calls"):
        counter = CallCount if MODE["record"] == "calls" else SyscallCount
        counting = counter(target_pid, seconds, tmp / f"{name}.strace")
        drive()
        return {"cpu_s": [float("nan")] * len(pid_for_cpu), "summary": {MODE["record"]: counting.samples()}}
    recording = Recording(target_pid, seconds, tmp / f"{name}.txt") if record else None
    before = [common.cpu_seconds(p) for p in pid_for_cpu]
    drive()
    cpu = [common.cpu_seconds(p) - b for p, b in zip(pid_for_cpu, before, strict=True)]
    summary = profile_buckets.summarize(recording.samples()) if recording else {}
    return {"cpu_s": cpu, "summary": summary}


def profile_runner(seconds: float, tmp: Path, record: bool = True) -> dict[str, Any]:
    sink = e2e.Sink()
    folder = tmp / "runner"
    folder.mkdir()
    port = common.free_port()
    runner = e2e._start_runner(folder, port, sink)
    try:
        batch = e2e._batch_for(port)
        sink.wait(batch(600, 8, None)[0], 60)  # warm up
        nats = e2e._nats_pid(folder / "state")
        count = int(RATE * (seconds - 1.5))

        def drive() -> None:
            sink.wait(batch(count, 16, RATE)[0], 120)

        pids = [runner.pid] + ([nats] if nats else [])
        got = _measure(pids, runner.pid, seconds, drive, tmp, "runner", record)
    finally:
        e2e._stop(runner)
        sink.close()
    out = {"events": count, "cpu_ms_per_event": got["cpu_s"][0] * 1000 / count, **got["summary"]}
    if nats:
        out["nats_cpu_ms_per_event"] = got["cpu_s"][1] * 1000 / count
    return out


def profile_eventsource(seconds: float, tmp: Path, record: bool = True) -> dict[str, Any]:
    from knevents.local.natsd import NatsServer

    spec = tmp / "es.yaml"
    spec.write_text(eventsource.SPEC)
    with NatsServer() as nats:
        env = {"KNEVENTS_SPEC": str(spec), "KNEVENTS_NATS_URL": nats.url, "LOG_LEVEL": "warning"}
        proc = eventsource._thin(env)()
        try:
            if not eventsource._first_2xx(proc.port, "/example", time.monotonic() + 60):
                raise RuntimeError("the event-source function did not answer 2xx within 60 s")
            request = common.http_request("/example", eventsource.BODY, eventsource.HEADERS, proc.port)
            common.load(proc.port, request, 600, 16)
            count = int(RATE * (seconds - 1.5))

            def drive() -> None:
                result = common.load(proc.port, request, count, 16, rate=RATE)
                if result.errors:
                    raise RuntimeError(f"{len(result.errors)} non-2xx answers")

            got = _measure([proc.popen.pid], proc.popen.pid, seconds, drive, tmp, "eventsource", record)
        finally:
            proc.stop()
    return {"events": count, "cpu_ms_per_event": got["cpu_s"][0] * 1000 / count, **got["summary"]}


def profile_sensor(seconds: float, tmp: Path, record: bool = True) -> dict[str, Any]:
    from knevents.local.natsd import NatsServer

    sink_port = common.free_port()
    sink = subprocess.Popen([sys.executable, sensor_function.__file__, "sink", str(sink_port)])
    try:
        common.wait_port(sink_port)
        with NatsServer(store_dir=tmp / "nats") as nats:
            proc = sensor_function._start("thin", "single", sensor_function.SINGLE, tmp, sink_port, nats.url, "prof")
            try:
                common.wait_port(proc.port, 60)
                sensor_function._load(proc.port, 600, 16, "single")
                count = int(RATE * (seconds - 1.5))

                def drive() -> None:
                    result = sensor_function._load(proc.port, count, 16, "single", rate=RATE)
                    bad = {s: n for s, n in result["statuses"].items() if not 200 <= int(s) < 300}
                    if bad:
                        raise RuntimeError(f"non-2xx answers: {bad}")

                got = _measure([proc.popen.pid], proc.popen.pid, seconds, drive, tmp, "sensor", record)
            finally:
                proc.stop()
    finally:
        sink.terminate()
        sink.wait()
    return {"events": count, "cpu_ms_per_event": got["cpu_s"][0] * 1000 / count, **got["summary"]}


RUNS: dict[str, Callable[..., dict[str, Any]]] = {
    "runner": profile_runner, "eventsource": profile_eventsource, "sensor": profile_sensor}
"""``run(seconds, tmp, record=True)`` per process: its CPU per event (and the profile when ``record``)."""


def table(name: str, result: dict[str, Any]) -> list[str]:
    """A Markdown table: bucket, share of busy samples, ms per event."""
    cpu = result["cpu_ms_per_event"]
    head = f"**{name}**: {cpu:.3f} ms CPU per event at {RATE:.0f}/s"
    if "nats_cpu_ms_per_event" in result:
        head += f" (nats-server {result['nats_cpu_ms_per_event']:.3f} ms)"
    head += f"; {result['busy']} busy samples ({result['idle']} idle dropped)"
    lines = [head, "", "| bucket | share | ms/event |", "|---|---:|---:|"]
    for bucket, share in result["shares"].items():
        if share > 0:
            lines.append(f"| {bucket} | {share:.1f} % | {share / 100 * cpu:.3f} |")
    if result["other_files"]:
        lines += ["", "other, by leaf file: " + ", ".join(f"{f} {p:.1f} %" for f, p in result["other_files"].items())]
    return lines


def estimate(runner: dict[str, Any], cores: int = 8) -> list[str]:
    """An estimate (not a measurement) of ``knevents run`` on ``cores`` cores from the runner's measured CPU split."""
    if "nats_cpu_ms_per_event" not in runner:
        return []
    r, n = runner["cpu_ms_per_event"], runner["nats_cpu_ms_per_event"]
    per_event = r + n
    per_core = 1000 / per_event
    return [
        f"**Estimate, not a measurement — {cores} cores.** At {RATE:.0f} events/s one event costs {r:.3f} ms of "
        f"runner CPU and {n:.3f} ms of nats-server CPU: {per_event:.3f} ms in all, so one core's budget is "
        f"1000 / {per_event:.3f} = {per_core:.0f} events/s. With the load generator, the webhook clients and the "
        f"trigger's target elsewhere (in `bench/e2e.py` they share the 2 cores), {cores} cores running "
        f"`knevents run --workers N` and its nats-server have {cores} × {per_core:.0f} = {cores * per_core:,.0f} "
        f"events/s of CPU at 100 % busy, about {0.7 * cores * per_core:,.0f} events/s at 70 %. "
        "It assumes CPU per event stays as at 300 events/s (under a closed-loop load it falls: batches of acks and "
        "writes share system calls), that workers scale without contention on the one nats-server, the shared "
        "durable consumer and the KV buckets, and that the trigger's target keeps up.",
    ]


def _write_doc(command: str, results: dict[str, dict[str, Any]]) -> None:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Linux {platform.release()}, Python {platform.python_version()}"
    body = [BEGIN, "", f"`{command}` — {stamp}; {machine}.", ""]
    for name, result in results.items():
        body += [*table(name, result), ""]
    if "runner" in results:
        body += [*estimate(results["runner"]), ""]
    body.append(END)
    text = DOC.read_text()
    if BEGIN in text:
        start, rest = text.split(BEGIN, 1)
        text = start + "\n".join(body) + rest.split(END, 1)[1]
    else:
        text += "\n## Where the CPU goes\n\n" + "\n".join(body) + "\n"
    DOC.write_text(text)


def _calls(chosen: list[str], seconds: float) -> None:
    """``--calls``: the measured processes load ``bench/calls/sitecustomize.py``; calls per event, and the most called."""
    MODE["record"] = "calls"
    found: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="knevents-calls-") as tmp:
        hook = str(Path(__file__).resolve().parent / "calls")
        old = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = hook + (os.pathsep + old if old else "")
        os.environ["BENCH_CALLS_DIR"] = tmp
        try:
            for name in chosen:
                got = RUNS[name](seconds, Path(tmp))
                per_event = got["calls"]["calls"] / got["events"]
                top = sorted(got["calls"]["by_function"].items(), key=lambda kv: -kv[1])[:8]
                found[name] = round(per_event, 1)
                print(f"{name}: {per_event:.1f} Python function calls per event; most called: "
                      + ", ".join(f"{f} {n / got['events']:.1f}" for f, n in top), flush=True)
        finally:
            os.environ.pop("BENCH_CALLS_DIR", None)
            if old is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = old
    print(json.dumps({"bench": "profile", "python_calls_per_event": found}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="8 s per process instead of 20")
    parser.add_argument("--only", choices=("runner", "eventsource", "sensor"), action="append",
                        help="profile only this process (repeatable)")
    parser.add_argument("--markdown", action="store_true", help="rewrite the section in docs/benchmarks.md")
    parser.add_argument("--syscalls", action="store_true",
                        help="count system calls per event (strace -c) instead of profiling; CPU is not read then")
    parser.add_argument("--calls", action="store_true",
                        help="count Python function calls per event (cProfile in the process) instead; no CPU then")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep the raw py-spy profiles (NAME.txt) in DIR")
    args = parser.parse_args()
    seconds = 8.0 if args.quick else 20.0
    chosen = args.only or ["runner", "eventsource", "sensor"]
    results: dict[str, dict[str, Any]] = {}
    if args.calls:
        _calls(chosen, seconds)
        return
    if args.syscalls:
        MODE["record"] = "syscalls"
        counts = {}
        with tempfile.TemporaryDirectory(prefix="knevents-profile-") as tmp:
            for name in chosen:
                got = RUNS[name](seconds, Path(tmp))
                counts[name] = {k: round(v / got["events"], 2) for k, v in
                                sorted(got["syscalls"].items(), key=lambda kv: -kv[1])}
                print(f"{name}: {sum(counts[name].values()):.1f} system calls per event: "
                      + ", ".join(f"{k} {v}" for k, v in counts[name].items() if v >= 0.05), flush=True)
        print(json.dumps({"bench": "profile", "syscalls_per_event": counts}))
        return
    with tempfile.TemporaryDirectory(prefix="knevents-profile-") as tmp:
        for name in chosen:
            results[name] = RUNS[name](seconds, Path(tmp))
            print("\n".join(table(name, results[name])) + "\n", flush=True)
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                shutil.copy(Path(tmp) / f"{name}.txt", args.keep / f"{name}.txt")
    if args.markdown:
        _write_doc("python bench/profile.py" + (" --quick" if args.quick else "") + " --markdown", results)
    print(json.dumps({"bench": "profile", "rate": RATE, "seconds": seconds, "processes": {
        name: {"cpu_ms_per_event": round(r["cpu_ms_per_event"], 3),
               **({"nats_cpu_ms_per_event": round(r["nats_cpu_ms_per_event"], 3)}
                  if "nats_cpu_ms_per_event" in r else {}),
               "busy_samples": r["busy"], "shares_pct": {k: round(v, 1) for k, v in r["shares"].items()}}
        for name, r in results.items()}}))


if __name__ == "__main__":
    main()
