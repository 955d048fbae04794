"""What ``knevents run`` prints: one line per event and per trigger outcome, text for people or JSON for machines.

Everything the runner tells the user goes through :class:`Console`, so the two
formats never drift apart. Library log records (the runtimes log through
:mod:`logging`) are routed to the same stream in the same format. Nothing here
prints secret values: callers pass names, ids and statuses, never payloads of
Secrets.

Lines are flushed as they are written, except the two that every event prints
(``event`` and ``fired``) when the output is not a terminal: those are flushed
at most :data:`LINGER` seconds later, together. A runner writing to a pipe or
a file then makes one write for many lines instead of two of its eight writes
per event (the console keeps the lines itself: with ``PYTHONUNBUFFERED``, as
container images often set, the stream would write each at once). Any other
line flushes what is waiting first, so the order never changes; a runner
killed with SIGKILL may lose up to that much of the routine lines, never a
warning or an error.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
from datetime import UTC, datetime
from typing import Any, TextIO

from knevents import redact

__all__ = ["Console", "install_logging"]

FORMATS = ("text", "json")
LINGER = 0.05
"""Seconds an ``event`` or ``fired`` line may wait to be flushed with others (not on a terminal)."""
_ROUTINE = frozenset({"event", "fired"})


class Console:
    """Line-oriented output; thread-safe, flushed after every line but the routine ones (see the module)."""

    def __init__(self, fmt: str = "text", stream: TextIO | None = None, linger: float = LINGER) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"log format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        self.fmt = fmt
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()
        isatty = getattr(self.stream, "isatty", None)
        self._linger = 0.0 if isatty is None or isatty() else linger
        self._flush_on: asyncio.AbstractEventLoop | None = None
        """The loop where a flush of routine lines is pending, if any."""
        self._waiting: list[str] = []
        """Routine lines not written yet."""
        self.origin: dict[str, Any] = {}
        """Fields every line carries: ``{"worker": i}`` in a worker of ``run --workers`` (which process said it)."""

    def emit(self, tag: str, message: str, **fields: Any) -> None:
        """One line: ``tag`` is a short word (event, fired, failed, retry, dlq, warning, info)."""
        now = datetime.now(UTC)
        if self.fmt == "json":
            record = {"time": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"), "tag": tag,
                      "msg": message}
            record.update(self.origin)
            record.update({k: v for k, v in fields.items() if v is not None})
            line = json.dumps(record, default=str)
        else:
            origin = "".join(f"[{k} {v}] " for k, v in self.origin.items())
            line = f"{now.hour:02d}:{now.minute:02d}:{now.second:02d} {tag:<7} {origin}{message}"
        line = redact.redact(line)
        with self._lock:
            self._waiting.append(line + "\n")
            if not (tag in _ROUTINE and self._later()):
                self._write_waiting()

    def flush(self) -> None:
        """Write out the routine lines still waiting."""
        with self._lock:
            self._write_waiting()

    def _write_waiting(self) -> None:
        # Kept here rather than in the stream's buffer: with PYTHONUNBUFFERED (common in container images)
        # every stream.write is a system call of its own.
        self._flush_on = None
        if self._waiting:
            text = "".join(self._waiting)
            self._waiting.clear()
            self.stream.write(text)
        self.stream.flush()

    def _later(self) -> bool:
        """Leave the line for a flush within ``LINGER`` s (scheduled now if none is); ``False``: flush it now."""
        if not self._linger:
            return False
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on an event loop (a thread, a plain call): no one would flush later
            return False
        if self._flush_on is not loop:  # none pending, or pending on a loop that is gone
            self._flush_on = loop
            loop.call_later(self._linger, self.flush)
        return True

    def block(self, lines: list[str], **fields: Any) -> None:
        """A multi-line block (the banner, a printed resource); one JSON record in JSON mode."""
        if self.fmt == "json":
            self.emit("info", "\n".join(lines), **fields)
            return
        with self._lock:
            self._waiting.append(redact.redact("\n".join(lines)) + "\n")
            self._write_waiting()


_FIELDS = "knevents_fields"
"""Where :func:`knevents.runtime.sensor_obs.log_event` puts a record's fields (others use plain ``extra``)."""
_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", _FIELDS}
_WHO = ("sensor", "eventsource", "event", "trigger", "dependency")
"""Fields shown first in text lines: what the line is about."""
_IDS = frozenset({"event_id", "event_ids", "source", "subject", "logger", "status"})
"""Fields that text lines leave out (they are in the JSON records): ids and numbers the message already says."""


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields of a library log record (``extra={...}``), whichever way they were passed."""
    fields = dict(record.__dict__.get(_FIELDS) or {})
    for key, value in record.__dict__.items():
        if key not in _RESERVED and not key.startswith("_"):
            fields.setdefault(key, value)
    return {k: v for k, v in fields.items() if v is not None}


def text_suffix(fields: dict[str, Any]) -> str:
    """`` [sensor=s dependency=d] reason=...``: who the line is about, then every reason-like field."""
    who = " ".join(f"{k}={_short(fields[k])}" for k in _WHO if k in fields)
    rest = " ".join(f"{k}={_short(v)}" for k, v in fields.items() if k not in _WHO and k not in _IDS)
    return (f" [{who}]" if who else "") + (f" {rest}" if rest else "")


def _short(value: Any) -> str:
    text = ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
    return text if len(text) <= 300 else text[:297] + "..."


_SAID_BY_THE_RUNNER = frozenset({"trigger fired", "trigger failed", "dlqTrigger fired"})
"""Sensor log lines the runner's own ``fired``/``failed``/``retry`` lines already say (one line per outcome)."""


class _ConsoleHandler(logging.Handler):
    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "knevents.sensor" and record.msg in _SAID_BY_THE_RUNNER:
            return False
        return super().filter(record)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info and record.levelno >= logging.ERROR and record.exc_info[1] is not None:
                message = f"{message}: {type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
            fields = record_fields(record)
            if self.console.fmt == "text":
                message += text_suffix(fields)
            self.console.emit(record.levelname.lower(), message, logger=record.name, **fields)
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


def install_logging(console: Console, level: str = "warning") -> None:
    """Send ``knevents`` (and uvicorn/nats) log records to ``console`` at ``level`` and above."""
    handler = _ConsoleHandler(console)
    for name in ("knevents", "uvicorn", "nats"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
