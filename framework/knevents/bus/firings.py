"""The firing log: one record per trigger outcome, on ``knevents.firings.<sensor>``, for ``status`` and the UI.

Two writers share it, so its facts live here, below both: the local runner
(:class:`knevents.local.observer.FiringObserver`) and, on Knative, the sensor
function when ``render --ui`` sets ``KNEVENTS_RECORD_FIRINGS``
(:mod:`knevents.runtime.sensor_firings`). The stream :data:`FIRINGS_STREAM`
keeps the last :data:`FIRINGS_KEPT` records per sensor; whoever starts first
creates it (:func:`ensure_stream`, idempotent). A record is history, not a
delivery guarantee: writers publish without waiting for the stream's ack.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from knevents.bus import naming

__all__ = [
    "FIRINGS_KEPT",
    "FIRINGS_STREAM",
    "Firing",
    "ensure_stream",
    "firings_subject",
    "now",
    "outcome",
    "publish_nowait",
]

FIRINGS_STREAM = "KNEVENTS_FIRINGS"
FIRINGS_KEPT = 20
"""Firings kept per sensor: enough to see what happened lately, small enough to read at once."""
_DETAIL = 500
"""Characters of a firing's detail kept in the record."""


def firings_subject(sensor: str) -> str:
    """Where a sensor's firings are recorded."""
    return f"knevents.firings.{naming.encode_token(sensor)}"


@dataclass(frozen=True)
class Firing:
    """One trigger outcome as the runner (or the sensor function) saw it."""

    time: str
    sensor: str
    trigger: str
    kind: str
    ok: bool
    detail: str
    events: Mapping[str, str] = field(default_factory=dict)
    """dependency name -> event id."""
    status: int | None = None
    dry_run: bool = False

    def to_bytes(self) -> bytes:
        # not dataclasses.asdict: it deep-copies every value, once per firing, for json.dumps to read
        return json.dumps({name: getattr(self, name) for name in _FIRING_FIELDS}, default=dict).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Firing:
        obj = json.loads(data)
        return cls(**{k: obj.get(k) for k in cls.__dataclass_fields__ if k in obj})


_FIRING_FIELDS = tuple(f.name for f in fields(Firing))


def now() -> str:
    """The current time, RFC 3339 in UTC with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def outcome(sensor: str, resolved: Any, *, ok: bool, detail: str, dry_run: bool,
            status: int | None = None) -> Firing:
    """The record of one resolved trigger (``engine.Resolved``: its trigger, kind and events) run now."""
    ids = {dep: ev.id for dep, ev in resolved.events.items()}
    return Firing(time=now(), sensor=sensor, trigger=resolved.trigger, kind=resolved.kind, ok=ok,
                  detail=detail[:_DETAIL], events=ids, status=status, dry_run=dry_run)


async def ensure_stream(js: Any) -> None:
    """Create :data:`FIRINGS_STREAM` unless it exists (another writer may have made it first)."""
    from nats.js import api
    from nats.js.errors import NotFoundError

    try:
        await js.stream_info(FIRINGS_STREAM)
        return
    except NotFoundError:
        pass
    config = api.StreamConfig(name=FIRINGS_STREAM, subjects=["knevents.firings.*"], storage=api.StorageType.FILE,
                              max_msgs_per_subject=FIRINGS_KEPT)
    try:
        await js.add_stream(config)
    except Exception:
        await js.stream_info(FIRINGS_STREAM)  # made concurrently: fine; else this raises the real problem


async def publish_nowait(nc: Any, firing: Firing) -> None:
    """Append a firing without waiting for the stream's ack (a trigger's hot path).

    If the server went away before storing it, only that line is missing. Not
    waiting saves a round trip per firing; the client's flusher batches the writes.
    """
    await nc.publish(firings_subject(firing.sensor), firing.to_bytes())
