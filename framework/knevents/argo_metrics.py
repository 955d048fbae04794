"""Argo Events' own Prometheus metrics, with Argo's names, labels and types, beside the ``knevents_*`` ones.

Dashboards and alerts written for Argo read ``argo_events_*`` series (argo-events
``pkg/metrics``); a knevents deployment serves the same ones so they keep
working. Names, types and labels are Argo's: ``namespace`` on every series,
``eventsource_name``/``event_name`` for event sources, ``sensor_name``/
``trigger_name`` for sensors; durations are summaries in milliseconds. How each
maps onto knevents:

| metric | type | counted when |
|---|---|---|
| ``argo_events_event_service_running_total`` | gauge | configured events of an EventSource being served |
| ``argo_events_events_sent_total`` | counter | the bus accepted an event |
| ``argo_events_events_sent_failed_total`` | counter | the bus refused an event (the caller gets 5xx) |
| ``argo_events_events_processing_failed_total`` | counter | a request or message did not become an event (refused, malformed, bus failure; filtered out is not a failure) |
| ``argo_events_event_processing_duration_milliseconds`` | summary | per event, request to bus acceptance (or failure) |
| ``argo_events_action_triggered_total`` | counter | a trigger succeeded |
| ``argo_events_action_failed_total`` | counter | a trigger attempt failed (each failed retry too) |
| ``argo_events_action_retries_failed_total`` | counter | a trigger failed after its retryStrategy was exhausted |
| ``argo_events_action_duration_milliseconds`` | summary | per trigger execution, retries included |
| ``build_info`` | gauge | constant 1, labelled with the knevents version (Argo's labels; ``goversion`` holds Python's) |
"""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

from knevents import metrics

__all__ = ["SensorSeries", "SourceSeries", "record_build_info"]

_SOURCE = ("namespace", "eventsource_name", "event_name")
_SENSOR = ("namespace", "sensor_name", "trigger_name")


def record_build_info() -> None:
    """Set Argo's ``build_info`` gauge (once per process is enough; repeating is harmless)."""
    try:
        version = metadata.version("knevents")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        version = "unknown"
    metrics.gauge(
        "build_info",
        "A metric with a constant '1' value labeled by version from which knevents was built.",
        ("version", "goversion", "goarch", "commit"),
        shared="max",
    ).labels(version, f"python{platform.python_version()}", platform.machine(), "").set(1)


class SourceSeries:
    """Argo's event-source series of one EventSource."""

    def __init__(self, namespace: str, eventsource: str) -> None:
        self._key = (namespace, eventsource)
        self._running = metrics.gauge(
            "argo_events_event_service_running_total",
            "How many configured events in the EventSource object are actively running.",
            ("namespace", "eventsource_name"),
        ).labels(namespace, eventsource)
        self._sent = metrics.counter(
            "argo_events_events_sent", "How many events have been sent successfully.", _SOURCE
        )
        self._sent_failed = metrics.counter(
            "argo_events_events_sent_failed", "How many events failed to send to EventBus.", _SOURCE
        )
        self._processing_failed = metrics.counter(
            "argo_events_events_processing_failed",
            "Number of events failed to process, it includes argo_events_events_sent_failed_total.",
            _SOURCE,
        )
        self._duration = metrics.summary(
            "argo_events_event_processing_duration_milliseconds",
            "Summary of durations of event processing.",
            _SOURCE,
        )
        self._sent_children: dict[str, tuple[Any, Any]] = {}
        record_build_info()

    def running(self, count: int) -> None:
        self._running.set(count)

    def sent(self, event: str, seconds: float, count: int = 1) -> None:
        found = self._sent_children.get(event)
        if found is None:  # labels() takes a lock per call; an event source has few events
            found = self._sent_children[event] = (self._sent.labels(*self._key, event),
                                                  self._duration.labels(*self._key, event))
        sent, duration = found
        sent.inc(count)
        for _ in range(count):
            duration.observe(seconds * 1000.0)

    def send_failed(self, event: str, seconds: float) -> None:
        self._sent_failed.labels(*self._key, event).inc()
        self.processing_failed(event)
        self._duration.labels(*self._key, event).observe(seconds * 1000.0)

    def processing_failed(self, event: str) -> None:
        self._processing_failed.labels(*self._key, event).inc()


class SensorSeries:
    """Argo's sensor series of one Sensor."""

    def __init__(self, namespace: str, sensor: str) -> None:
        self._key = (namespace, sensor)
        self._triggered = metrics.counter(
            "argo_events_action_triggered", "How many actions have been triggered successfully.", _SENSOR
        )
        self._failed = metrics.counter("argo_events_action_failed", "How many actions failed.", _SENSOR)
        self._retries_failed = metrics.counter(
            "argo_events_action_retries_failed",
            "How many actions failed after the retries have been exhausted.",
            _SENSOR,
        )
        self._duration = metrics.summary(
            "argo_events_action_duration_milliseconds", "Summary of durations of triggering actions.", _SENSOR
        )
        self._children: dict[str, tuple[Any, Any, Any, Any]] = {}
        record_build_info()

    def _of(self, trigger: str) -> tuple[Any, Any, Any, Any]:
        found = self._children.get(trigger)
        if found is None:
            labels = (*self._key, trigger)
            found = (
                self._triggered.labels(*labels),
                self._failed.labels(*labels),
                self._retries_failed.labels(*labels),
                self._duration.labels(*labels),
            )
            self._children[trigger] = found
        return found

    def triggered(self, trigger: str, seconds: float, attempts: int) -> None:
        triggered, failed, _, duration = self._of(trigger)
        triggered.inc()
        if attempts > 1:
            failed.inc(attempts - 1)
        duration.observe(seconds * 1000.0)

    def failed(self, trigger: str, seconds: float) -> None:
        _, failed, retries_failed, duration = self._of(trigger)
        failed.inc()
        retries_failed.inc()
        duration.observe(seconds * 1000.0)
