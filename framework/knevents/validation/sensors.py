"""Every rule of a Sensor: Argo's generic ones and each trigger kind's own.

The generic rules (dependencies, filters, conditions, parameters, retry) are in
:mod:`knevents.spec.sensor_rules`; this module adds each trigger's
``TriggerKind.check``, the ``rateLimit`` rules of the code that enforces it
(:func:`knevents.triggers.ratelimit.check`) and the "not supported" notes for
the kinds no module declares.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pydantic

from knevents import errors, triggers
from knevents.sensors import engine
from knevents.spec import checks, models, sensor_rules, support
from knevents.triggers import base, fetch, ratelimit

__all__ = ["check_sensor", "check_sensor_parts", "notes"]

Found = Iterator[tuple[str, str]]


def check_trigger(trigger: models.Trigger, path: str, dependencies: set[str]) -> Found:
    """The rules of a trigger's kind and of its rateLimit (its dlqTrigger is walked by the caller)."""
    if trigger.rate_limit is not None:
        yield from ratelimit.check(trigger.rate_limit, f"{path}.rateLimit")
    for key in support.trigger_kinds(trigger.template):
        kind = triggers.find(key)
        if kind is None:
            continue
        model = getattr(trigger.template, _attr(key))
        ctx = base.CheckContext(
            path=f"{path}.template.{key}",
            trigger_path=path,
            trigger=trigger,
            dependencies=sensor_rules.template_dependencies(trigger, dependencies),
        )
        yield from kind.check(model, ctx)


def check_sensor(sensor: models.Sensor) -> Found:
    """The kind rules of every trigger (dlqTriggers included), then what the engine refuses to compile."""
    names = sensor_rules.dependency_names(sensor)
    kinds = [found for path, trigger in sensor_rules.triggers(sensor) for found in check_trigger(trigger, path, names)]
    yield from kinds
    reported = {path for path, _ in (*sensor_rules.check_sensor(sensor), *kinds)}
    yield from _compiled(sensor, reported)


def _compiled(sensor: models.Sensor, reported: set[str]) -> Found:
    """The problems the sensor engine finds while compiling (crons, zones, conditions, filters, parameters …).

    The engine is what the sensor function and ``knevents test`` run, so a sensor ``validate`` accepts is one
    they can build. Paths the rules above already reported are not repeated.
    """
    if not sensor.spec.dependencies or not sensor.spec.triggers:
        return  # reported by the rules; the engine would add nothing
    try:
        engine.SensorEngine(sensor, fetches_resource=triggers.fetches_resource)
    except errors.SpecError as exc:
        for problem in exc.problems:
            if not any(problem.path == p or problem.path.startswith(p + ".") for p in reported):
                yield problem.path, problem.message


def check_sensor_parts(obj: Any) -> Found:
    """The kind rules of the triggers that parse, when the whole Sensor does not."""
    spec = obj.get("spec") if isinstance(obj, dict) else None
    if not isinstance(spec, dict):
        return
    deps = _list(spec.get("dependencies"))
    names = {
        checks.normalise_dependency(d["name"])
        for d in deps
        if isinstance(d, dict) and isinstance(d.get("name"), str)
    }
    for index, raw in enumerate(_list(spec.get("triggers"))):
        try:
            trigger = models.Trigger.model_validate(raw, by_alias=True, by_name=False)
        except pydantic.ValidationError:
            continue
        path: str = f"spec.triggers[{index}]"
        current: models.Trigger | None = trigger
        while current is not None:
            yield from check_trigger(current, path, names)
            current, path = current.dlq_trigger, f"{path}.dlqTrigger"


def notes(sensor: models.Sensor) -> Iterator[errors.Problem]:
    """Notes for the trigger kinds and resource locations of ``sensor`` that knevents does not run."""
    for path, trigger in sensor_rules.triggers(sensor):
        for key in support.trigger_kinds(trigger.template):
            if triggers.find(key) is None:
                yield support.note(
                    f"trigger kind `{key}` is not supported by knevents{support.reason(key)}",
                    f"{path}.template.{key}",
                )
    for index, trigger in enumerate(sensor.spec.triggers):
        yield from support.unsupported_locations(trigger, f"spec.triggers[{index}]", triggers.ARTIFACT_LOCATIONS)
    for path, trigger in sensor_rules.triggers(sensor):
        for kind, spec in support.resource_kinds(trigger.template):
            for where, message in fetch.unsupported_parts(spec.source, f"{path}.template.{kind}.source"):
                yield support.note(message, where)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _attr(alias: str) -> str:
    """The model attribute of a TriggerTemplate alias (``awsLambda`` → ``aws_lambda``)."""
    for name, field in models.TriggerTemplate.model_fields.items():
        if (field.alias or name) == alias:
            return name
    raise KeyError(alias)
