"""``simulate``: run a Sensor over a list of CloudEvents in memory, resolving triggers without executing them.

This is the dry run behind ``knevents test``. It drives the very same
:class:`knevents.sensors.engine.SensorEngine` the deployed sensor uses (match,
transform, filters, conditions, saved state, parameters), with the state kept
in a dict instead of JetStream KV and the trigger executors left out. Events
are processed in order; an event id seen before is ignored (the runtime
dedupes the same way); ``{"reset": true}`` is a ``conditionsReset`` tick for
every trigger. "Now" for each event is its ``time`` (else the wall clock), so
time filters and resets behave as they would have when the event was sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from knevents import errors, events, validation
from knevents.sensors import engine

__all__ = ["Simulation", "StepNotes", "simulate"]


@dataclass
class StepNotes:
    """What a person needs to read a step that the JSON report does not say."""

    duplicate: bool = False
    unmatched: tuple[str, str | None] | None = None  # (source, subject) when nothing matched
    stored: dict[str, dict[str, str]] = field(default_factory=dict)  # trigger -> dep -> id, after the step
    waiting: dict[str, list[str]] = field(default_factory=dict)  # trigger -> deps still missing
    actions: dict[str, str] = field(default_factory=dict)  # trigger -> what it would do


def _load_sensor(sensor: Mapping[str, Any] | str | Path) -> Any:
    if isinstance(sensor, str) and "\n" in sensor:
        return validation.load_one(sensor, kind="Sensor")  # YAML or JSON text, as a convenience
    if isinstance(sensor, str | Path):
        path = Path(sensor)
        if path.is_dir():
            hint = next((f" (e.g. {p})" for p in sorted(path.glob("*sensor*.y*ml"))), "")
            raise errors.SpecError([errors.Problem(f"{path} is a folder: give the Sensor's YAML file{hint}")])
        if not path.is_file():
            raise errors.SpecError([errors.Problem(f"no such sensor file: {path}")])
        return validation.load_one(path, kind="Sensor")
    if not isinstance(sensor, Mapping):
        raise errors.SpecError(
            [errors.Problem(f"a sensor must be a mapping or a path, got {type(sensor).__name__}")]
        )
    return validation.parse_sensor(dict(sensor))


def _data_value(event: events.Event) -> Any:
    if not event.data:
        return None
    try:
        return json.loads(event.data)
    except (ValueError, RecursionError):
        return event.data.decode("utf-8", "replace")


def _describe(resolved: engine.Resolved) -> str:
    """A short description of what a resolved trigger would do (for the text report)."""
    template = resolved.spec.template
    kind_obj = engine.template_kind(template)[1] if template is not None else None
    parts = [resolved.kind or "?"]
    operation = getattr(kind_obj, "operation", None)
    if operation:
        parts.append(str(operation))
    method, url = getattr(kind_obj, "method", None), getattr(kind_obj, "url", None)
    if url:
        parts.append(f"{method or 'POST'} {url}")
    if resolved.resource is not None:
        kind = resolved.resource.get("kind")
        if kind:
            parts.append(str(kind))
    return " ".join(parts)


def _payload_value(payload: bytes | None) -> Any:
    if payload is None:
        return None
    try:
        return json.loads(payload)
    except ValueError:
        return None


class Simulation:
    """A sensor plus in-memory trigger state; feed it events one by one."""

    def __init__(self, sensor: Mapping[str, Any] | str | Path) -> None:
        self.engine = engine.SensorEngine(_load_sensor(sensor))
        self.states: dict[str, engine.TriggerState] = {}
        self.seen: set[str] = set()
        self.steps: list[dict[str, Any]] = []
        self.notes: list[StepNotes] = []
        self._order = {name: i for i, name in enumerate(self.engine.trigger_names)}
        self._actions: dict[str, str] = {}

    def feed(self, item: Mapping[str, Any], index: int = 0) -> dict[str, Any]:
        """Process one element of the event list and return its report step."""
        if isinstance(item, Mapping) and item.get("reset") is True and "specversion" not in item:
            self.states.clear()
            step: dict[str, Any] = {"event": None, "dependencies": [], "fired": []}
            return self._record(step, StepNotes())
        event = events.from_json(item, where=f"event {index}")
        step = {"event": event.id, "dependencies": [], "fired": []}
        notes = StepNotes()
        if event.id in self.seen:
            notes.duplicate = True
            return self._record(step, notes)
        self.seen.add(event.id)
        now = event.time or datetime.now(UTC)
        results = self.engine.match(event)
        if not results:
            notes.unmatched = (event.source, event.subject)
        fired: list[dict[str, Any]] = []
        self._actions = notes.actions
        for result in results:
            step["dependencies"].append(
                {
                    "name": result.name,
                    "passed": result.passed,
                    "error": result.error,
                    "data": _data_value(result.event),
                }
            )
            if not result.passed:
                continue
            for trigger in self.engine.triggers_for(result.name):
                current = self.states.get(trigger, engine.TriggerState.EMPTY)
                advance = self.engine.advance(trigger, current, result.name, result.event, now)
                self.states[trigger] = advance.state
                if advance.fired is not None:
                    fired.append(self._fire(trigger, advance.fired))
        fired.sort(key=lambda f: self._order.get(f["trigger"], 0))
        step["fired"] = fired
        return self._record(step, notes)

    def _fire(self, trigger: str, firing: Mapping[str, events.Event]) -> dict[str, Any]:
        resolved = self.engine.resolve(trigger, firing)
        self._actions[trigger] = _describe(resolved)
        return {
            "trigger": trigger,
            "events": {dep: event.id for dep, event in firing.items()},
            "resource": resolved.resource,
            "payload": _payload_value(resolved.payload),
            "payload_raw": None if resolved.payload is None else resolved.payload.decode("utf-8", "replace"),
            "error": resolved.error,
        }

    def _record(self, step: dict[str, Any], notes: StepNotes) -> dict[str, Any]:
        notes.stored = self.pending()
        for trigger, saved in notes.stored.items():
            deps = self.engine.trigger_dependencies(trigger)
            notes.waiting[trigger] = [d for d in deps if d not in saved]
        self.steps.append(step)
        self.notes.append(notes)
        return step

    def pending(self) -> dict[str, dict[str, str]]:
        """Saved dependency state per trigger (non-empty entries only)."""
        return {
            trigger: {dep: event.id for dep, event in state.events.items()}
            for trigger, state in self.states.items()
            if state.events
        }

    def report(self) -> dict[str, Any]:
        """The report of every step so far (see ``simulate``)."""
        return {"sensor": self.engine.name, "steps": list(self.steps), "pending": self.pending()}


def simulate(sensor: Mapping[str, Any] | str | Path, events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Run ``events`` (structured CloudEvents, or ``{"reset": true}``) through ``sensor``; return the report.

    Raises :class:`knevents.errors.SpecError` for an invalid sensor and
    :class:`knevents.errors.EventError` for an invalid event (both ValueErrors).
    """
    run = Simulation(sensor)
    for index, item in enumerate(events):
        run.feed(item, index)
    return run.report()
