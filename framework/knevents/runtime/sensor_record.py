"""The value stored per trigger in the sensor's KV bucket: saved AND-state, applied ids, outbox.

One value holds everything a compare-and-set must change atomically:

* ``fp`` — the engine's fingerprint of the trigger's conditions and dependencies;
  a mismatch means the spec changed, and the saved state is dropped (as Argo does);
* ``state`` — the engine's :class:`~knevents.sensors.engine.TriggerState`, nested as an object (its
  events encoded as in the outbox, ``events.to_stored``);
* ``applied`` — the last ``(event id, dependency)`` pairs folded into the state, so
  a redelivered event whose first attempt crashed half-way is not counted twice;
* ``outbox`` — satisfied firings not yet finished. The write that satisfies the
  condition adds the firing here in the same compare-and-set that clears the
  state; the trigger runs; another compare-and-set removes it. A crash in
  between leaves it here for the next invocation to finish.

Records are versioned: version 2 nests the state as an object; version 1 (the previous release)
held it as a JSON string and is still read, so an upgrade keeps half-satisfied conditions.

Pure encoding and decoding; no I/O, no clock.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from knevents import events

__all__ = ["APPLIED_WINDOW", "Firing", "Record", "decode", "encode"]

APPLIED_WINDOW = 128
"""How many recent (event, dependency) pairs a trigger remembers: must exceed the events one
trigger sees between a crash and the broker's redelivery of the crashed event."""
_VERSION = 2
_READ = (1, 2)


@dataclass(frozen=True)
class Firing:
    """A satisfied condition waiting to be (or being) executed."""

    id: str
    """Unique id of this firing (a new event id)."""
    cause: str
    """Id of the event whose write satisfied the condition; its redelivery takes the firing over at once."""
    events: Mapping[str, events.Event]
    """Dependency name → event, as the engine fired them."""
    claimed_at: float
    """Unix time the current owner started running it; older than the lease → anyone may take over."""
    attempts: int = 1


@dataclass(frozen=True)
class Record:
    """Everything stored for one trigger."""

    fingerprint: str
    state: bytes | None = None
    """``TriggerState.to_bytes()``; ``None`` is the empty state."""
    applied: tuple[str, ...] = ()
    outbox: tuple[Firing, ...] = field(default=())

    def with_applied(self, mark: str) -> Record:
        """Remember ``mark`` (``<event id>/<dependency>``), forgetting the oldest beyond the window."""
        return replace(self, applied=(*self.applied, mark)[-APPLIED_WINDOW:])

    def without(self, firing_id: str) -> Record:
        """The record with one outbox entry removed."""
        return replace(self, outbox=tuple(f for f in self.outbox if f.id != firing_id))

    def replacing(self, firing: Firing) -> Record:
        """The record with the outbox entry of the same id replaced."""
        return replace(self, outbox=tuple(firing if f.id == firing.id else f for f in self.outbox))


def _event_to_json(event: events.Event) -> dict[str, Any]:
    return events.to_stored(event)


def _firing_to_json(firing: Firing) -> dict[str, Any]:
    return {
        "id": firing.id,
        "cause": firing.cause,
        "claimed_at": firing.claimed_at,
        "attempts": firing.attempts,
        "events": {dep: _event_to_json(ev) for dep, ev in firing.events.items()},
    }


def encode(record: Record) -> bytes:
    """The KV value of a record."""
    obj: dict[str, Any] = {"v": _VERSION, "fp": record.fingerprint, "applied": list(record.applied)}
    if record.state is not None:
        try:
            obj["state"] = json.loads(record.state)  # nested, not a JSON string inside JSON
        except (ValueError, UnicodeDecodeError):
            obj["state_b64"] = base64.b64encode(record.state).decode("ascii")
    if record.outbox:
        obj["outbox"] = [_firing_to_json(f) for f in record.outbox]
    return json.dumps(obj, separators=(",", ":")).encode()


def _firing_from_json(obj: Mapping[str, Any]) -> Firing:
    return Firing(
        id=str(obj["id"]),
        cause=str(obj["cause"]),
        claimed_at=float(obj["claimed_at"]),
        attempts=int(obj.get("attempts", 1)),
        events={dep: events.from_json(ev, where=f"outbox {dep}") for dep, ev in obj["events"].items()},
    )


def decode(value: bytes) -> Record:
    """A record from its KV value; ValueError when it is not one."""
    try:
        obj = json.loads(value)
        if not isinstance(obj, dict) or obj.get("v") not in _READ:
            raise ValueError(
                f"unknown state record version {obj.get('v') if isinstance(obj, dict) else None!r}"
            )
        state: bytes | None = None
        if "state" in obj and obj["v"] == 1:
            state = str(obj["state"]).encode()  # version 1 kept the state as a JSON string
        elif "state" in obj:
            state = json.dumps(obj["state"], separators=(",", ":"), sort_keys=True).encode()
        elif "state_b64" in obj:
            state = base64.b64decode(obj["state_b64"])
        return Record(
            fingerprint=str(obj.get("fp", "")),
            state=state,
            applied=tuple(str(a) for a in obj.get("applied", ())),
            outbox=tuple(_firing_from_json(f) for f in obj.get("outbox", ())),
        )
    except (KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        raise ValueError(f"malformed state record: {exc}") from exc
