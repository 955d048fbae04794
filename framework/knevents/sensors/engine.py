"""The sensor engine: one Sensor spec compiled into pure decisions.

``SensorEngine`` answers the questions the sensor runtime (and ``knevents
test``) asks about each event, without I/O and without reading the clock:
which dependencies does it match and pass (transform, then filters); which
triggers does a dependency touch; how does a trigger's saved AND-state advance
(newest event per dependency, ``conditionsReset`` ticks, fire with every saved
dependency then clear); and, once a trigger fires, what exactly it does
(parameters applied to the template, the resource and the payload).

Everything is compiled in ``__init__`` (paths, regexes, expressions, templates,
jq programs, Lua chunks, conditions, crons); a spec problem found there is a
:class:`knevents.errors.SpecError` listing every problem with its path.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, tzinfo
from typing import Any, ClassVar

import pydantic

from knevents import errors, events
from knevents.sensors import conditions, filters, params, paths, transform
from knevents.sensors import cron as cron_mod
from knevents.spec import models

__all__ = ["Advance", "DependencyResult", "FetchesResource", "Resolved", "SensorEngine", "TriggerState"]



class _EveryName(tuple[str, ...]):
    """Stands for "any dependency name": template parameters a trigger parameter may still rewrite."""

    def __contains__(self, item: object) -> bool:
        return True


def is_resource_kind(kind_obj: Any) -> bool:
    """Whether a trigger kind object reads a Kubernetes resource from ``source`` (k8s, argoWorkflow).

    Told from Argo's schema, not from a list of names: such a kind's template-level parameters apply to
    the resource it fetches, every other kind's to its own fields and its ``payload``.
    """
    return kind_obj is not None and "source" in type(kind_obj).model_fields


FetchesResource = Callable[[str], bool]
"""Whether a trigger kind's own ``parameters`` apply to a resource its executor fetches at run time (Argo's custom
trigger applies them to what its server's FetchResource answered): the engine then leaves them to the executor.
The kinds declare it (``TriggerKind.fetches_resource``); the runtime passes ``knevents.triggers.fetches_resource``."""


def _fetches_nothing(kind: str) -> bool:
    return False
_NOT_KINDS = frozenset({"name", "conditions", "conditionsReset"})


@dataclass(frozen=True)
class DependencyResult:
    """One dependency an event matched: whether it passed, why not, and the event after transform."""

    name: str
    passed: bool
    error: str | None
    event: events.Event


@dataclass(frozen=True)
class TriggerState:
    """The saved AND-state of one trigger: the newest passing event per dependency."""

    events: Mapping[str, events.Event]
    saved_at: Mapping[str, datetime]
    EMPTY: ClassVar[TriggerState]

    def to_bytes(self) -> bytes:
        """Serialise for the state store: version 3, each event as the outbox keeps it (``events.to_stored``)."""
        deps = {
            dep: {"event": events.to_stored(event), "saved_at": self.saved_at[dep].isoformat()}
            for dep, event in self.events.items()
        }
        return json.dumps({"v": 3, "deps": deps}, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, b: bytes) -> TriggerState:
        """Read what :meth:`to_bytes` wrote, or the version 2 of the previous release; ValueError otherwise."""
        try:
            doc = json.loads(b)
            version = doc.get("v")
            if version == 3:
                saved = {dep: events.from_json(item["event"], where=dep) for dep, item in doc["deps"].items()}
                times = {dep: datetime.fromisoformat(item["saved_at"]) for dep, item in doc["deps"].items()}
            elif version == 2:  # [fields, saved_at] pairs, data base64: state saved before the upgrade
                saved = {dep: _event_from(fields) for dep, (fields, _) in doc["deps"].items()}
                times = {dep: datetime.fromisoformat(at) for dep, (_, at) in doc["deps"].items()}
            else:
                raise ValueError(f"unknown format version {version!r}")
        except (ValueError, KeyError, TypeError, AttributeError, errors.EventError) as exc:
            raise ValueError(f"saved trigger state is not readable: {exc}") from None
        return cls(saved, times)


def _event_from(fields: dict[str, Any]) -> events.Event:
    """An event as version 2 of the state kept it (read when upgrading)."""
    data = fields.get("data")
    when = fields.get("time")
    return events.Event(
        id=fields["id"],
        source=fields["source"],
        type=fields["type"],
        subject=fields.get("subject"),
        time=None if when is None else datetime.fromisoformat(when),
        data=None if data is None else base64.b64decode(data),
        datacontenttype=fields.get("datacontenttype"),
        dataschema=fields.get("dataschema"),
        specversion=fields.get("specversion") or "1.0",
        extensions=fields.get("extensions") or {},
    )


TriggerState.EMPTY = TriggerState({}, {})


@dataclass(frozen=True)
class Advance:
    """A trigger's state after one event, and the events it fires with (``None`` = not fired)."""

    state: TriggerState
    fired: Mapping[str, events.Event] | None


@dataclass(frozen=True)
class Resolved:
    """A fired trigger with its parameters applied, ready for an executor (see ``knevents.triggers``)."""

    trigger: str
    kind: str
    spec: models.Trigger
    resource: dict[str, Any] | None
    payload: bytes | None
    events: Mapping[str, events.Event]
    error: str | None


@dataclass(frozen=True)
class _Dependency:
    name: str
    source: str
    event_name: str
    transform: transform.CompiledTransform | None
    filter: filters.CompiledFilter | None


@dataclass(frozen=True)
class _Reset:
    spec: str
    zone: tzinfo
    schedule: cron_mod.Schedule


@dataclass(frozen=True)
class _Trigger:
    name: str
    spec: models.Trigger
    kind: str
    condition: conditions.Condition
    resets: tuple[_Reset, ...]
    trigger_params: tuple[params.CompiledParam, ...]
    kind_params: tuple[params.CompiledParam, ...]
    payload_params: tuple[params.CompiledParam, ...] | None
    fingerprint: str
    kind_obj: Any = None


def template_kind(template: models.TriggerTemplate) -> tuple[str, Any]:
    """The template key that is set (``http``, ``k8s`` …) and its object; ``("", None)`` if none."""
    for field_name, info in type(template).model_fields.items():
        alias = info.alias or field_name
        if alias in _NOT_KINDS:
            continue
        value = getattr(template, field_name)
        if value is not None:
            return alias, value
    return "", None


class SensorEngine:
    """A Sensor compiled once; every method is pure."""

    def __init__(self, sensor: models.Sensor, *, fetches_resource: FetchesResource = _fetches_nothing) -> None:
        self.sensor = sensor
        self._fetches_resource = fetches_resource
        self.name: str = (sensor.metadata.name if sensor.metadata else None) or ""
        self.namespace: str = (sensor.metadata.namespace if sensor.metadata else None) or "default"
        problems: list[errors.Problem] = []
        spec = sensor.spec
        self._deps: list[_Dependency] = []
        self._by_source: dict[tuple[str, str], list[_Dependency]] = {}
        for index, dep in enumerate(spec.dependencies or ()):
            compiled = self._compile_dependency(dep, f"spec.dependencies[{index}]", problems)
            if compiled is not None:
                self._deps.append(compiled)
                self._by_source.setdefault((compiled.source, compiled.event_name), []).append(compiled)
        self._dep_names = [d.name for d in spec.dependencies or ()]
        self._triggers: dict[str, _Trigger] = {}
        for index, trig in enumerate(spec.triggers or ()):
            compiled_trigger = self._compile_trigger(trig, f"spec.triggers[{index}]", problems)
            if compiled_trigger is not None:
                self._triggers[compiled_trigger.name] = compiled_trigger
        if problems:
            raise errors.SpecError(problems)
        self._for_dep: dict[str, list[str]] = {name: [] for name in self._dep_names}
        for trig_name, compiled_trigger in self._triggers.items():
            for dep_name in compiled_trigger.condition.dependencies:
                self._for_dep[dep_name].append(trig_name)

    # --- compiling -------------------------------------------------------------------------

    @staticmethod
    def _compile_dependency(
        dep: models.EventDependency, where: str, problems: list[errors.Problem]
    ) -> _Dependency | None:
        compiled_transform = compiled_filter = None
        try:
            compiled_transform = transform.compile_transform(dep.transform, f"{where}.transform")
        except transform.TransformSpecError as exc:
            problems.append(errors.Problem(exc.message, exc.path))
        try:
            compiled_filter = filters.compile_filter(
                dep.filters, dep.filters_logical_operator, f"{where}.filters"
            )
        except filters.FilterSpecError as exc:
            problems.extend(errors.Problem(message, path) for path, message in exc.problem_pairs)
        return _Dependency(
            dep.name, dep.event_source_name, dep.event_name, compiled_transform, compiled_filter
        )

    def _compile_trigger(
        self, trig: models.Trigger, where: str, problems: list[errors.Problem]
    ) -> _Trigger | None:
        template = trig.template
        if template is None:
            problems.append(errors.Problem("a trigger needs a template", f"{where}.template"))
            return None
        kind, kind_obj = template_kind(template)
        if not kind:
            problems.append(errors.Problem("the template sets no trigger kind", f"{where}.template"))
        try:
            condition = conditions.parse_condition(template.conditions, self._dep_names)
        except conditions.ConditionError as exc:
            problems.append(errors.Problem(str(exc), f"{where}.template.conditions"))
            return None
        resets = []
        for i, reset in enumerate(template.conditions_reset or ()):
            by_time = reset.by_time
            if by_time is None or not by_time.cron:
                continue
            at = f"{where}.template.conditionsReset[{i}].byTime"
            try:
                zone = cron_mod.zone(by_time.timezone)
            except cron_mod.CronError as exc:
                problems.append(errors.Problem(exc.reason, f"{at}.timezone"))
                continue
            try:
                schedule = cron_mod.parse(by_time.cron, by_time.timezone)
            except cron_mod.CronError as exc:
                problems.append(errors.Problem(exc.reason, f"{at}.cron"))
                continue
            resets.append(_Reset(by_time.cron, zone, schedule))
        trigger_params: tuple[params.CompiledParam, ...] = ()
        kind_params: tuple[params.CompiledParam, ...] = ()
        payload_params: tuple[params.CompiledParam, ...] | None = None
        # trigger-level parameters may rewrite the template's own (Argo's tutorial sensor-05 fills a
        # placeholder dependency name that way): those are checked again once rewritten, at fire time
        template_names = _EveryName() if trig.parameters else self._dep_names
        try:
            trigger_params = params.compile_params(trig.parameters, f"{where}.parameters", self._dep_names)
            if kind_obj is not None:
                kind_params = params.compile_params(
                    getattr(kind_obj, "parameters", None),
                    f"{where}.template.{kind}.parameters",
                    template_names,
                )
                if hasattr(kind_obj, "payload"):
                    payload_params = params.compile_params(
                        kind_obj.payload, f"{where}.template.{kind}.payload", template_names
                    )
        except params.ParamSpecError as exc:
            problems.append(errors.Problem(exc.message, exc.path))
        if is_resource_kind(kind_obj):
            source = getattr(kind_obj, "source", None)
            if source is None:
                problems.append(
                    errors.Problem("a resource source is required", f"{where}.template.{kind}.source")
                )
        return _Trigger(
            name=template.name,
            spec=trig,
            kind=kind,
            condition=condition,
            resets=tuple(resets),
            trigger_params=trigger_params,
            kind_params=kind_params,
            payload_params=payload_params,
            fingerprint=self._fingerprint(condition, resets),
            kind_obj=kind_obj,
        )

    def _fingerprint(self, condition: conditions.Condition, resets: Sequence[_Reset]) -> str:
        parts = [condition.canonical]
        by_name = {d.name: d for d in self._deps}
        for name in condition.dependencies:
            dep = by_name.get(name)
            parts.append(f"{name}={dep.source}/{dep.event_name}" if dep else name)
        parts.extend(f"reset={r.spec}@{r.zone}" for r in resets)
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    def _trigger(self, trigger: str) -> _Trigger:
        try:
            return self._triggers[trigger]
        except KeyError:
            raise KeyError(f"sensor {self.name!r} has no trigger {trigger!r}") from None

    # --- the questions -----------------------------------------------------------------------

    @property
    def trigger_names(self) -> list[str]:
        """Every trigger's name, in spec order."""
        return list(self._triggers)

    @property
    def dependency_names(self) -> list[str]:
        """Every dependency's name, in spec order."""
        return list(self._dep_names)

    def match(self, event: events.Event) -> list[DependencyResult]:
        """The dependencies whose eventSourceName/eventName match the event, spec order; transform then filters."""
        deps = self._by_source.get((event.source, event.subject or ""))
        if not deps:
            return []
        results = []
        unsafe = paths.unsafe_json(event.data) if event.data else None
        if unsafe is not None:
            return [DependencyResult(dep.name, False, unsafe, event) for dep in deps]
        for dep in deps:
            current = event
            if dep.transform is not None:
                try:
                    current = dep.transform.apply(event)
                except transform.TransformError as exc:
                    results.append(DependencyResult(dep.name, False, f"transform failed: {exc}", event))
                    continue
            if dep.filter is None:
                results.append(DependencyResult(dep.name, True, None, current))
                continue
            check = dep.filter.check(current)
            if check.passed:
                results.append(DependencyResult(dep.name, True, None, current))
            else:
                results.append(DependencyResult(dep.name, False, check.error or check.reason, current))
        return results

    def trigger_dependencies(self, trigger: str) -> tuple[str, ...]:
        """The dependencies a trigger's condition involves, in spec order."""
        return self._trigger(trigger).condition.dependencies

    def triggers_for(self, dependency: str) -> list[str]:
        """Names of the triggers (spec order) whose conditions involve the dependency."""
        return list(self._for_dep.get(dependency, ()))

    def needs_state(self, trigger: str) -> bool:
        """Whether the trigger keeps AND-state (its condition has ``&&``, or is the implicit AND of 2+ deps)."""
        return self._trigger(trigger).condition.needs_state

    def fingerprint(self, trigger: str) -> str:
        """Changes when the trigger's conditions, their dependencies or its resets change."""
        return self._trigger(trigger).fingerprint

    def last_reset(self, trigger: str, now: datetime) -> datetime | None:
        """The latest ``conditionsReset`` tick at or before ``now`` (``None`` without resets)."""
        latest: datetime | None = None
        for reset in self._trigger(trigger).resets:
            tick = reset.schedule.last(now)
            if latest is None or tick > latest:
                latest = tick
        return latest

    def advance(
        self, trigger: str, state: TriggerState, dependency: str, event: events.Event, now: datetime
    ) -> Advance:
        """Fold one passing event into a trigger's state; fire when the condition holds."""
        compiled = self._trigger(trigger)
        condition = compiled.condition
        if dependency not in condition.dependencies:
            raise ValueError(f"trigger {trigger!r} does not depend on {dependency!r}")
        if not condition.needs_state:
            return Advance(TriggerState.EMPTY, {dependency: event})
        saved = dict(state.events)
        saved_at = dict(state.saved_at)
        if compiled.resets and saved:
            tick = self.last_reset(trigger, now)
            if tick is not None:
                for dep in [d for d, at in saved_at.items() if at < tick]:
                    saved.pop(dep, None)
                    saved_at.pop(dep, None)
        for dep in [d for d in saved if d not in condition.dependencies]:
            saved.pop(dep)  # the trigger's condition changed since this was saved
            saved_at.pop(dep, None)
        saved[dependency] = event
        saved_at[dependency] = now
        if condition.holds(saved.keys()):
            fired = {d: saved[d] for d in condition.dependencies if d in saved}
            return Advance(TriggerState.EMPTY, fired)
        return Advance(TriggerState(saved, saved_at), None)

    # --- resolving a firing --------------------------------------------------------------------

    def resolve(
        self, trigger: str, fired: Mapping[str, events.Event], base_resource: dict[str, Any] | None = None
    ) -> Resolved:
        """Apply trigger-, template- and payload-level parameters for a firing; never raises for bad data."""
        compiled = self._trigger(trigger)
        spec = compiled.spec
        kind = compiled.kind
        try:
            spec, kind_params, payload_params = self._apply_trigger_params(compiled, fired)
            template = spec.template
            assert template is not None
            if spec is compiled.spec:
                kind_obj = compiled.kind_obj
            else:
                kind, kind_obj = template_kind(template)
            resource: dict[str, Any] | None = None
            payload: bytes | None = None
            if is_resource_kind(kind_obj):
                resource = self._resource(kind_obj, base_resource, kind_params, fired)
            else:
                if kind_params and kind_obj is not None and not self._fetches_resource(kind):
                    kind_obj = self._apply_to_model(kind_obj, kind_params, fired)
                    template = template.model_copy(update={_field_of(template, kind): kind_obj})
                    spec = spec.model_copy(update={"template": template})
                if payload_params is not None:
                    payload = params.construct_payload(payload_params, fired)
        except (params.ParamError, params.ParamSpecError, _ResolveError) as exc:
            return Resolved(compiled.name, kind, spec, None, None, dict(fired), str(exc))
        return Resolved(compiled.name, kind, spec, resource, payload, dict(fired), None)

    def _apply_trigger_params(
        self, compiled: _Trigger, fired: Mapping[str, events.Event]
    ) -> tuple[models.Trigger, tuple[params.CompiledParam, ...], tuple[params.CompiledParam, ...] | None]:
        spec = compiled.spec
        if not compiled.trigger_params:
            return spec, compiled.kind_params, compiled.payload_params
        assert spec.template is not None
        template = self._apply_to_model(spec.template, compiled.trigger_params, fired)
        spec = spec.model_copy(update={"template": template})
        # The parameters may have rewritten the template's own parameters: compile what is there now.
        kind, kind_obj = template_kind(template)
        where = f"trigger {compiled.name}: template.{kind}"
        kind_params = params.compile_params(
            getattr(kind_obj, "parameters", None), f"{where}.parameters", self._dep_names
        )
        payload_params = None
        if kind_obj is not None and hasattr(kind_obj, "payload"):
            payload_params = params.compile_params(kind_obj.payload, f"{where}.payload", self._dep_names)
        return spec, kind_params, payload_params

    @staticmethod
    def _apply_to_model(
        model: Any, plist: Sequence[params.CompiledParam], fired: Mapping[str, events.Event]
    ) -> Any:
        document = model.model_dump_json(by_alias=True, exclude_none=True).encode()
        updated = params.apply_params(document, plist, fired)
        try:
            return type(model).model_validate_json(updated)
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise _ResolveError(
                f"parameters made the {type(model).__name__} invalid at {where or 'top level'}: {first.get('msg')}"
            ) from None

    @staticmethod
    def _resource(
        kind_obj: Any,
        base_resource: dict[str, Any] | None,
        kind_params: Sequence[params.CompiledParam],
        fired: Mapping[str, events.Event],
    ) -> dict[str, Any]:
        resource = base_resource
        if resource is None:
            source = getattr(kind_obj, "source", None)
            resource = getattr(source, "resource", None) if source is not None else None
            if resource is None and source is not None and getattr(source, "inline", None):
                resource = _inline(source.inline)
        if resource is None:
            raise _ResolveError(
                "the trigger's resource is not inline; the caller must fetch it (base_resource)"
            )
        try:
            document = json.dumps(resource, separators=(",", ":"), default=_json_default).encode()
        except (TypeError, ValueError) as exc:
            raise _ResolveError(f"the resource is not JSON: {exc}") from None
        if kind_params:
            document = params.apply_params(document, kind_params, fired)
        result = json.loads(document)
        if not isinstance(result, dict):
            raise _ResolveError("parameters turned the resource into something other than an object")
        return result


class _ResolveError(ValueError):
    """Resolving a firing failed for a reason that is not a parameter's."""


def _field_of(template: models.TriggerTemplate, alias: str) -> str:
    for name, info in type(template).model_fields.items():
        if (info.alias or name) == alias:
            return name
    raise _ResolveError(f"unknown trigger kind {alias!r}")


def _json_default(value: Any) -> Any:
    # YAML loaded by a caller (not by knevents.spec) may hold dates; Kubernetes wants them as text.
    if isinstance(value, date | time):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _inline(text: str) -> dict[str, Any]:
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _ResolveError(f"the inline resource is not YAML: {exc}") from None
    if not isinstance(value, dict):
        raise _ResolveError("the inline resource is not an object")
    return value
