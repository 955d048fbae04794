"""Prometheus metrics shared by the functions, and the ``/metrics`` exposition.

Metrics are process-wide (a function process serves one spec, the local runner
several, told apart by the ``sensor`` / ``eventsource`` label), registered once
on first use and reused afterwards, so building a second runtime in the same
process (tests, the local runner) never registers a name twice.
``prometheus_client`` is imported here and nowhere else in the library.

With ``knevents run --workers N`` every process keeps its values in files under
``PROMETHEUS_MULTIPROC_DIR`` (set by ``knevents run`` before this module is
imported: prometheus_client picks its value store at import), and the
exposition and :func:`families` add up every process's values.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary
from prometheus_client.metrics_core import Metric

__all__ = ["LATENCY_BUCKETS", "SHARED_DIR_ENV", "counter", "families", "forget_processes", "gauge", "histogram",
           "render", "summary", "watch_workers"]

SHARED_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus_client's switch to values kept in per-process files that any process can add up."""

LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
"""Seconds; from sub-millisecond (a filtered-out event) to a slow trigger with retries."""

REGISTRY: CollectorRegistry = prometheus_client.REGISTRY
_SHARED = bool(getattr(prometheus_client.values.ValueClass, "_multiprocess", False))
"""Whether prometheus_client keeps values in shared files (decided when it was imported, not by the env now)."""
_lock = threading.Lock()
_counters: dict[str, Counter] = {}
_histograms: dict[str, Histogram] = {}
_gauges: dict[str, Gauge] = {}
_summaries: dict[str, Summary] = {}


def counter(name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
    """The counter ``name`` (``_total`` is added in the exposition), created on first use."""
    with _lock:
        found = _counters.get(name)
        if found is None:
            found = Counter(name, documentation, tuple(labels), registry=REGISTRY)
            _counters[name] = found
        return found


def histogram(
    name: str, documentation: str, labels: Sequence[str] = (), buckets: Sequence[float] = LATENCY_BUCKETS
) -> Histogram:
    """The histogram ``name``, created on first use."""
    with _lock:
        found = _histograms.get(name)
        if found is None:
            found = Histogram(name, documentation, tuple(labels), registry=REGISTRY, buckets=tuple(buckets))
            _histograms[name] = found
        return found


def gauge(name: str, documentation: str, labels: Sequence[str] = (),
          shared: Literal["livesum", "max"] = "livesum") -> Gauge:
    """The gauge ``name``, created on first use; ``shared``: how the values of several processes combine."""
    with _lock:
        found = _gauges.get(name)
        if found is None:
            found = Gauge(name, documentation, tuple(labels), registry=REGISTRY, multiprocess_mode=shared)
            _gauges[name] = found
        return found


def summary(name: str, documentation: str, labels: Sequence[str] = ()) -> Summary:
    """The summary ``name`` (``_count`` and ``_sum``, no quantiles), created on first use."""
    with _lock:
        found = _summaries.get(name)
        if found is None:
            found = Summary(name, documentation, tuple(labels), registry=REGISTRY)
            _summaries[name] = found
        return found


_worker_pids: Callable[[], Mapping[int, int]] | None = None
"""Worker 0 of ``run --workers``: the pid of every worker by index, for their ``process_*`` series."""


def watch_workers(pids: Callable[[], Mapping[int, int]]) -> None:
    """Show every worker's ``process_*`` series (CPU, memory, open files), labelled ``worker="i"``.

    prometheus_client's multiprocess mode adds up the metric files of all processes but has no
    ``process_*`` series at all (they would describe only the process answering); worker 0 reads each
    worker's from ``/proc`` instead.
    """
    global _worker_pids
    _worker_pids = pids


class _WorkerProcesses:
    """``process_*`` families with one sample per worker (``worker`` label), read when scraped."""

    def __init__(self, pids: Callable[[], Mapping[int, int]]) -> None:
        self.pids = pids

    def collect(self) -> Iterable[Metric]:
        from prometheus_client import ProcessCollector

        merged: dict[str, Metric] = {}
        for index, pid in sorted(self.pids().items()):
            # a worker that is gone has no /proc entry: ProcessCollector then yields nothing for it
            for family in ProcessCollector(pid=_constant(pid), registry=None).collect():
                target = merged.setdefault(family.name, Metric(family.name, family.documentation, family.type))
                for sample in family.samples:
                    target.add_sample(sample.name, {**sample.labels, "worker": str(index)}, sample.value)
        return list(merged.values())


def _constant(pid: int) -> Callable[[], int]:
    return lambda: pid


def _registry() -> CollectorRegistry:
    """This process's registry, or one that adds up every process sharing the values directory."""
    if not _SHARED:
        return REGISTRY
    from prometheus_client import multiprocess

    shared = CollectorRegistry()
    multiprocess.MultiProcessCollector(shared)  # type: ignore[no-untyped-call]
    if _worker_pids is not None:
        shared.register(_WorkerProcesses(_worker_pids))
    return shared


def render() -> tuple[bytes, str]:
    """The Prometheus text exposition of every metric, and its content type."""
    return prometheus_client.generate_latest(_registry()), prometheus_client.CONTENT_TYPE_LATEST


def families() -> Iterable[Metric]:
    """Every metric family with its samples (of all processes when they share values)."""
    return _registry().collect()


def forget_processes(alive: Collection[int]) -> None:
    """Drop the live gauges of processes that are gone (a restarted worker's old pid); counters keep counting."""
    directory = os.environ.get(SHARED_DIR_ENV)
    if not _SHARED or not directory:
        return
    from prometheus_client import multiprocess

    pids = {path.stem.rsplit("_", 1)[-1] for path in Path(directory).glob("gauge_live*_*.db")}
    for pid in pids - {str(p) for p in alive}:
        if pid.isdigit():
            multiprocess.mark_process_dead(int(pid), directory)  # type: ignore[no-untyped-call]
