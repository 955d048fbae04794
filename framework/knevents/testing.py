"""``simulate``: run a Sensor over a list of CloudEvents in memory, resolving triggers without executing them.

This is the dry run behind ``knevents test``. It is the sensor function's own
pipeline, :class:`knevents.runtime.sensor.SensorRuntime` (match, transform,
filters, dedupe, compare-and-set AND-state, outbox, parameters), on the
in-memory state store, with three things injected: a ``fire`` that records the
resolved resource/payload and executes nothing, a ``fetch`` that fetches nothing
(a resource kept in a configmap or at a url stays offline), and a clock that
reads the event's ``time`` (else the wall clock), so ``conditionsReset``
behaves as it would have when the event was sent (time filters read the
event's time anyway). Logs and metrics are left out: a simulation is not a
delivery. Events are processed in order; an event id seen before is reported
as a duplicate and ignored; ``{"reset": true}`` is a ``conditionsReset`` tick
for every trigger.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from knevents import errors, events, triggers, validation
from knevents.runtime.sensor import SensorRuntime
from knevents.secrets import SecretResolver
from knevents.sensors import engine
from knevents.settings import Settings
from knevents.spec import models
from knevents.state.memory import MemoryStore

__all__ = ["Simulation", "StepNotes", "simulate"]

T = TypeVar("T")


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
    """A sensor on the sensor function's pipeline with the in-memory store; feed it events one by one."""

    def __init__(self, sensor: Mapping[str, Any] | str | Path) -> None:
        self._now = 0.0
        self._resolved: list[engine.Resolved] = []
        self.runtime = SensorRuntime(
            _load_sensor(sensor), MemoryStore(), settings=Settings(), secrets=SecretResolver(), dry_run=True,
            fire=self._record_firing, fetch=_offline, clock=lambda: self._now, observe=False,
        )
        self.engine = self.runtime.engine
        self.seen: set[str] = set()
        self.steps: list[dict[str, Any]] = []
        self.notes: list[StepNotes] = []
        self._order = {name: i for i, name in enumerate(self.engine.trigger_names)}
        self._pending: dict[str, dict[str, str]] = {}

    def feed(self, item: Mapping[str, Any], index: int = 0) -> dict[str, Any]:
        """Process one element of the event list and return its report step."""
        if isinstance(item, Mapping) and item.get("reset") is True and "specversion" not in item:
            _run(self.runtime.reset_conditions())
            return self._record({"event": None, "dependencies": [], "fired": []}, StepNotes())
        event = events.from_json(item, where=f"event {index}")
        step: dict[str, Any] = {"event": event.id, "dependencies": [], "fired": []}
        notes = StepNotes()
        if event.id in self.seen:  # every id counts, matched or not (the function dedupes passing ones only)
            notes.duplicate = True
            return self._record(step, notes)
        self.seen.add(event.id)
        self._now = (event.time or datetime.now(UTC)).timestamp()
        self._resolved = []
        outcome = _run(self.runtime.process(event))
        if not outcome.results:
            notes.unmatched = (event.source, event.subject)
        step["dependencies"] = [
            {"name": r.name, "passed": r.passed, "error": r.error, "data": _data_value(r.event)}
            for r in outcome.results
        ]
        resolved = sorted(self._resolved, key=lambda r: self._order.get(r.trigger, 0))
        step["fired"] = [_firing(r) for r in resolved]
        notes.actions = {r.trigger: _describe(r) for r in resolved}
        return self._record(step, notes)

    async def _record_firing(self, resolved: engine.Resolved, ctx: triggers.TriggerContext) -> triggers.TriggerResult:
        """The pipeline's ``fire``: remember what would run, run nothing."""
        self._resolved.append(resolved)
        return triggers.TriggerResult(resolved.trigger, resolved.kind, "simulated: not executed")

    def _record(self, step: dict[str, Any], notes: StepNotes) -> dict[str, Any]:
        self._pending = _run(self._saved())
        notes.stored = self.pending()
        for trigger, saved in notes.stored.items():
            deps = self.engine.trigger_dependencies(trigger)
            notes.waiting[trigger] = [d for d in deps if d not in saved]
        self.steps.append(step)
        self.notes.append(notes)
        return step

    async def _saved(self) -> dict[str, dict[str, str]]:
        out = {}
        for trigger in self.engine.trigger_names:
            held = await self.runtime.saved_state(trigger)
            if held.events:
                out[trigger] = {dep: event.id for dep, event in held.events.items()}
        return out

    def pending(self) -> dict[str, dict[str, str]]:
        """Saved dependency state per trigger (non-empty entries only)."""
        return {trigger: dict(saved) for trigger, saved in self._pending.items()}

    def report(self) -> dict[str, Any]:
        """The report of every step so far (see ``simulate``)."""
        return {"sensor": self.engine.name, "steps": list(self.steps), "pending": self.pending()}


def _firing(resolved: engine.Resolved) -> dict[str, Any]:
    return {
        "trigger": resolved.trigger,
        "events": {dep: event.id for dep, event in resolved.events.items()},
        "resource": resolved.resource,
        "payload": _payload_value(resolved.payload),
        "payload_raw": None if resolved.payload is None else resolved.payload.decode("utf-8", "replace"),
        "error": resolved.error,
    }


async def _offline(trigger: models.Trigger, ctx: triggers.TriggerContext) -> dict[str, Any] | None:
    """A simulation fetches nothing: a resource kept outside the spec resolves without its base."""
    return None


def _run(work: Coroutine[Any, Any, T]) -> T:
    """Run the pipeline's coroutine to the end from synchronous code, even under a running loop (the UI)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result()


def simulate(sensor: Mapping[str, Any] | str | Path, events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Run ``events`` (structured CloudEvents, or ``{"reset": true}``) through ``sensor``; return the report.

    Raises :class:`knevents.errors.SpecError` for an invalid sensor and
    :class:`knevents.errors.EventError` for an invalid event (both ValueErrors).
    """
    run = Simulation(sensor)
    for index, item in enumerate(events):
        run.feed(item, index)
    return run.report()
