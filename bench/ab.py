"""Interleaved A/B of CPU per event: the working tree against a git revision, runner and functions.

    python bench/ab.py --base main [--new REV] [--pairs 5] [--only runner|eventsource|sensor]

A is ``--base``'s ``framework/`` (``git archive`` into a temporary directory, put first on
``PYTHONPATH`` of the measured processes); B is ``--new``'s, or the working tree without it
(then do not edit it while the runs go on). Stop it with SIGINT, which stops what it started. Runs alternate A B B A …
so load drift on a shared machine hits both alike; each run reads the process's CPU from
``/proc`` while 300 events (requests)/s are offered (``bench/profile.py``'s drivers, without
the profiler). Prints each run, then median and spread per side and the median change; the
last line is JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, profile


@contextlib.contextmanager
def _pythonpath(path: Path | None) -> Iterator[None]:
    """Child processes import knevents from ``path`` (None: the working tree's editable install)."""
    old = os.environ.get("PYTHONPATH")
    if path is not None:
        os.environ["PYTHONPATH"] = str(path) + (os.pathsep + old if old else "")
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def _export(rev: str, into: Path) -> Path:
    tar = subprocess.run(["git", "archive", rev, "framework"], cwd=common.ROOT, capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as archive:
        archive.extractall(into, filter="data")
    return into / "framework"


def _stats(values: list[float]) -> dict[str, Any]:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3), "n": len(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="main", help="git revision for A (default main)")
    parser.add_argument("--new", help="git revision for B (default: the working tree)")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=6.0, help="seconds of offered load per run")
    parser.add_argument("--only", choices=("runner", "eventsource", "sensor"), action="append")
    args = parser.parse_args()
    chosen = args.only or ["runner", "eventsource", "sensor"]
    out: dict[str, Any] = {"bench": "ab", "base": args.base, "new": args.new or "working tree",
                           "rate": profile.RATE}
    with tempfile.TemporaryDirectory(prefix="knevents-ab-") as tmp:
        base = _export(args.base, Path(tmp) / "base")
        new = _export(args.new, Path(tmp) / "new") if args.new else None
        for name in chosen:
            runs: dict[str, list[float]] = {"A": [], "B": []}
            extra: dict[str, list[float]] = {"A": [], "B": []}
            for i in range(args.pairs):
                for side in ("A", "B") if i % 2 == 0 else ("B", "A"):
                    work = Path(tmp) / f"{name}-{side}-{i}"
                    work.mkdir()
                    with _pythonpath(base if side == "A" else new):
                        got = profile.RUNS[name](args.seconds, work, record=False)
                    runs[side].append(got["cpu_ms_per_event"])
                    if "nats_cpu_ms_per_event" in got:
                        extra[side].append(got["nats_cpu_ms_per_event"])
                    print(f"[ab] {name} pair {i + 1} {side}: {got['cpu_ms_per_event']:.3f} ms/event"
                          + (f" (nats {got['nats_cpu_ms_per_event']:.3f})" if "nats_cpu_ms_per_event" in got else ""),
                          flush=True)
            a, b = _stats(runs["A"]), _stats(runs["B"])
            change = (b["median"] / a["median"] - 1) * 100 if a["median"] else float("nan")
            print(f"[ab] {name}: A {a['median']} ({a['min']}–{a['max']}), B {b['median']} ({b['min']}–{b['max']}) "
                  f"ms/event, n={a['n']}+{b['n']}: {change:+.1f} %", flush=True)
            out[name] = {"A": a, "B": b, "change_pct": round(change, 1)}
            if extra["A"] and extra["B"]:
                out[name]["nats"] = {"A": _stats(extra["A"]), "B": _stats(extra["B"])}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
