"""Prometheus metrics shared by the functions, and the ``/metrics`` exposition.

Metrics are process-wide (a function process serves one spec, the local runner
several, told apart by the ``sensor`` / ``eventsource`` label), registered once
on first use and reused afterwards, so building a second runtime in the same
process (tests, the local runner) never registers a name twice.
``prometheus_client`` is imported here and nowhere else in the library.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary

__all__ = ["LATENCY_BUCKETS", "counter", "gauge", "histogram", "render", "summary"]

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


def gauge(name: str, documentation: str, labels: Sequence[str] = ()) -> Gauge:
    """The gauge ``name``, created on first use."""
    with _lock:
        found = _gauges.get(name)
        if found is None:
            found = Gauge(name, documentation, tuple(labels), registry=REGISTRY)
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


def render() -> tuple[bytes, str]:
    """The Prometheus text exposition of every metric, and its content type."""
    return prometheus_client.generate_latest(REGISTRY), prometheus_client.CONTENT_TYPE_LATEST
