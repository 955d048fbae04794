"""What the event-source runtime tells the world: Prometheus metrics and JSON log lines.

Counters per EventSource and event name: received (requests or messages
turned into events), published (accepted by the bus), rejected (by reason:
``auth``, ``signature``, ``too_large``, ``malformed``, ``filtered``,
``not_configured`` …) and failed (the bus refused); a histogram of publish
latency. Kept apart from the pipeline so the pipeline reads as the algorithm.
"""

from __future__ import annotations

import logging
from typing import Any

from knevents import argo_metrics, metrics

__all__ = ["SourceMetrics", "log", "log_event"]

log = logging.getLogger("knevents.eventsource")


def log_event(level: int, msg: str, **fields: Any) -> None:
    """One structured log line (fields become JSON keys); ``None`` fields are left out."""
    if log.isEnabledFor(level):
        log.log(level, msg, extra={k: v for k, v in fields.items() if v is not None})


class SourceMetrics:
    """The metrics of one EventSource."""

    def __init__(self, eventsource: str, namespace: str = "default") -> None:
        self.eventsource = eventsource
        self.argo = argo_metrics.SourceSeries(namespace, eventsource)
        """Argo's ``argo_events_*`` event-source series, kept beside ours for Argo's dashboards."""
        labels = ("eventsource", "event")
        self._received = metrics.counter(
            "knevents_eventsource_events_received", "Events made from requests or messages.", labels
        )
        self._published = metrics.counter(
            "knevents_eventsource_events_published", "Events the bus accepted.", labels
        )
        self._rejected = metrics.counter(
            "knevents_eventsource_events_rejected",
            "Requests or events not published, by reason (auth, too_large, malformed, filtered …).",
            (*labels, "reason"),
        )
        self._failed = metrics.counter(
            "knevents_eventsource_events_failed",
            "Events the bus did not accept (the caller gets 5xx).",
            labels,
        )
        self._latency = metrics.histogram(
            "knevents_eventsource_publish_seconds", "Time to get an event accepted by the bus.", labels
        )

        self._children: dict[str, tuple[Any, Any, Any]] = {}

    def _of(self, event: str) -> tuple[Any, Any, Any]:
        # labels() costs a lock and a tuple hash per call; an event source has few events, so cache them
        found = self._children.get(event)
        if found is None:
            found = (
                self._received.labels(self.eventsource, event),
                self._published.labels(self.eventsource, event),
                self._latency.labels(self.eventsource, event),
            )
            self._children[event] = found
        return found

    def received(self, event: str, count: int = 1) -> None:
        self._of(event)[0].inc(count)

    def published(self, event: str, seconds: float, count: int = 1) -> None:
        """``count`` events accepted, each after ``seconds`` (a pipelined batch's events share its time)."""
        _, published, latency = self._of(event)
        published.inc(count)
        for _ in range(count):
            latency.observe(seconds)
        self.argo.sent(event, seconds, count)

    def rejected(self, event: str, reason: str) -> None:
        self._rejected.labels(self.eventsource, event, reason).inc()
        if reason != "filtered":  # Argo counts a request that did not become an event; a filter is not a failure
            self.argo.processing_failed(event)

    def failed(self, event: str, seconds: float = 0.0) -> None:
        self._failed.labels(self.eventsource, event).inc()
        self.argo.send_failed(event, seconds)


_REASONS = {400: "malformed", 401: "auth", 403: "auth", 404: "not_found", 405: "method", 413: "too_large"}


def reason_of(status: int) -> str:
    """A rejection reason label for an HTTP status a source answered with."""
    return _REASONS.get(status, "error" if status >= 500 else "other")
