"""What the sensor runtime tells the world: JSON log lines and Prometheus metrics.

One JSON line per event and per firing, with the fields operators filter on
(``event_id``, ``sensor``, ``trigger``, ``dependency``), and the sensor's
counters and histograms. Kept apart from the pipeline so the pipeline reads as
the algorithm it is.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from knevents import argo_metrics, metrics, redact

__all__ = ["JsonFormatter", "QuietMetrics", "SensorMetrics", "configure_json_logging", "log_event", "no_log"]

logger = logging.getLogger("knevents.sensor")

_FIELDS = "knevents_fields"
_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object per line; ``extra={...}`` fields become keys."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = record.__dict__.get(_FIELDS)
        if fields is not None:  # our own lines: the fields are in one place, no need to scan the record
            out.update(fields)
        else:
            for key, value in record.__dict__.items():
                if key not in _RESERVED and not key.startswith("_"):
                    out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return redact.redact(json.dumps(out, default=str, separators=(",", ":")))


def configure_json_logging(level: str | int = logging.INFO) -> None:
    """Send knevents' log records to stderr as JSON lines (once per process).

    ``level`` is a level number or name (``debug``, ``info``, ``warning``, ``error``);
    an unknown name is a ValueError naming the accepted ones.
    """
    if isinstance(level, str):
        number = logging.getLevelName(level.strip().upper())
        if not isinstance(number, int):
            raise ValueError(f"log level {level!r} is not one of debug, info, warning, error")
        level = number
    root = logging.getLogger("knevents")
    root.setLevel(level)
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.propagate = False


def log_event(level: int, msg: str, **fields: Any) -> None:
    """One structured log line; ``None`` fields are left out."""
    if logger.isEnabledFor(level):
        logger.log(level, msg, extra={_FIELDS: {k: v for k, v in fields.items() if v is not None}})


def no_log(level: int, msg: str, **fields: Any) -> None:
    """``log_event``'s silent twin, for a pipeline run that is not a real delivery (``knevents test``)."""


class SensorMetrics:
    """The sensor's metrics, bound to one sensor name."""

    def __init__(self, sensor: str, namespace: str = "default") -> None:
        self.sensor = sensor
        self.argo = argo_metrics.SensorSeries(namespace, sensor)
        """Argo's ``argo_events_action_*`` series, kept beside ours for Argo's dashboards."""
        self._received = metrics.counter(
            "knevents_sensor_events_received", "CloudEvents received by the sensor.", ["sensor"]
        ).labels(sensor)
        self._filtered = metrics.counter(
            "knevents_sensor_events_filtered",
            "Events a dependency matched but its filters dropped.",
            ["sensor", "dependency"],
        )
        self._deduplicated = metrics.counter(
            "knevents_sensor_events_deduplicated", "Redelivered events dropped by event id.", ["sensor"]
        ).labels(sensor)
        self._fired = metrics.counter(
            "knevents_sensor_triggers_fired", "Triggers executed successfully.", ["sensor", "trigger"]
        )
        self._failed = metrics.counter(
            "knevents_sensor_triggers_failed",
            "Triggers that failed after their retries.",
            ["sensor", "trigger"],
        )
        self._retried = metrics.counter(
            "knevents_sensor_triggers_retried",
            "Extra trigger attempts made by retryStrategy.",
            ["sensor", "trigger"],
        )
        self._by_trigger: dict[str, tuple[Any, Any, Any, Any]] = {}
        self._processing = metrics.histogram(
            "knevents_sensor_processing_seconds", "Time to process one event, end to end.", ["sensor"]
        ).labels(sensor)
        self._trigger_latency = metrics.histogram(
            "knevents_sensor_trigger_seconds",
            "Time to execute one trigger, retries included.",
            ["sensor", "trigger"],
        )

    def received(self) -> None:
        self._received.inc()

    def filtered(self, dependency: str) -> None:
        self._filtered.labels(self.sensor, dependency).inc()

    def deduplicated(self) -> None:
        self._deduplicated.inc()

    def _children(self, trigger: str) -> tuple[Any, Any, Any, Any]:
        # label lookups take a lock each; a sensor has few triggers, so keep the children
        found = self._by_trigger.get(trigger)
        if found is None:
            labels = (self.sensor, trigger)
            found = (
                self._fired.labels(*labels),
                self._failed.labels(*labels),
                self._retried.labels(*labels),
                self._trigger_latency.labels(*labels),
            )
            self._by_trigger[trigger] = found
        return found

    def fired(self, trigger: str, seconds: float, attempts: int) -> None:
        fired, _, retried, latency = self._children(trigger)
        self.argo.triggered(trigger, seconds, attempts)
        fired.inc()
        latency.observe(seconds)
        if attempts > 1:
            retried.inc(attempts - 1)

    def failed(self, trigger: str, seconds: float) -> None:
        _, failed, _, latency = self._children(trigger)
        self.argo.failed(trigger, seconds)
        failed.inc()
        latency.observe(seconds)

    def processed(self, seconds: float) -> None:
        self._processing.observe(seconds)


class QuietMetrics(SensorMetrics):
    """Counts nothing: a simulated run must not show in the process' metrics (the UI reads them)."""

    def __init__(self, sensor: str) -> None:  # no super().__init__: registers no series
        self.sensor = sensor

    def received(self) -> None:
        pass

    def filtered(self, dependency: str) -> None:
        pass

    def deduplicated(self) -> None:
        pass

    def fired(self, trigger: str, seconds: float, attempts: int) -> None:
        pass

    def failed(self, trigger: str, seconds: float) -> None:
        pass

    def processed(self, seconds: float) -> None:
        pass
