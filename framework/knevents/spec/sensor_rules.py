"""Argo Events' admission rules for a Sensor, reporting every violation with its path.

These mirror ``pkg/reconciler/sensor/validate.go`` of argo-events (which stops
at the first error; these don't), plus two checks Argo only hits at run time:
a ``conditions`` expression or a parameter that names an unknown dependency.
Every rule is a small generator of ``(path, message)`` pairs over a parsed
model; none does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Set
from typing import Any

import pydantic

from knevents.spec import checks, models, support

__all__ = [
    "check_parameters",
    "check_sensor",
    "check_sensor_parts",
    "dependency_names",
    "template_dependencies",
    "triggers",
]

Found = Iterator[tuple[str, str]]

COMPARATORS = frozenset({">=", ">", "=", "!=", "<", "<="})
LOGICAL_OPERATORS = frozenset({"and", "or"})
DATA_TYPES = frozenset({"bool", "number", "string"})
PARAMETER_OPERATIONS = frozenset({"overwrite", "append", "prepend"})


def check_sensor(sensor: models.Sensor) -> Found:
    """Every admission problem of ``sensor``."""
    spec = sensor.spec
    if not spec.dependencies:
        yield "spec.dependencies", "no event dependencies: a sensor needs at least one"
    if not spec.triggers:
        yield "spec.triggers", "no triggers: a sensor needs at least one"
    yield from _unique((d.name for d in spec.dependencies), "spec.dependencies", "dependency")
    yield from _unique((t.template.name for t in spec.triggers), "spec.triggers", "trigger")
    for index, dep in enumerate(spec.dependencies):
        yield from check_dependency(dep, f"spec.dependencies[{index}]")
    names = dependency_names(sensor)
    for index, trigger in enumerate(spec.triggers):
        yield from check_trigger(trigger, f"spec.triggers[{index}]", names)


def dependency_names(sensor: models.Sensor) -> set[str]:
    """The normalised names of the sensor's dependencies (what conditions and parameters may name)."""
    return {checks.normalise_dependency(d.name) for d in sensor.spec.dependencies}


def check_sensor_parts(obj: Any) -> Found:
    """The admission rules of the dependencies and triggers that parse, when the whole Sensor does not.

    Shape errors elsewhere must not hide the rule violations of the parts that are fine.
    """
    spec = obj.get("spec") if isinstance(obj, dict) else None
    if not isinstance(spec, dict):
        return
    deps = _list(spec.get("dependencies"))
    triggers = _list(spec.get("triggers"))
    names = {
        checks.normalise_dependency(d["name"])
        for d in deps
        if isinstance(d, dict) and isinstance(d.get("name"), str)
    }
    for index, raw in enumerate(deps):
        dep = _parse(models.EventDependency, raw)
        if dep is not None:
            yield from check_dependency(dep, f"spec.dependencies[{index}]")
    for index, raw in enumerate(triggers):
        trigger = _parse(models.Trigger, raw)
        if trigger is not None:
            yield from check_trigger(trigger, f"spec.triggers[{index}]", names)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _parse(cls: type[pydantic.BaseModel], raw: Any) -> Any:
    try:
        return cls.model_validate(raw, by_alias=True, by_name=False)
    except pydantic.ValidationError:
        return None


def _unique(names: Iterable[str], path: str, what: str) -> Found:
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in seen:
            yield (
                f"{path}[{index}].name" if what == "dependency" else f"{path}[{index}].template.name",
                f"duplicate {what} name `{name}` (also at index {seen[name]})",
            )
        else:
            seen[name] = index


# -- dependencies -----------------------------------------------------------------------------------------


def check_dependency(dep: models.EventDependency, path: str) -> Found:
    """A dependency names its event and has well-formed filters."""
    for attr, alias in (
        ("name", "name"),
        ("event_source_name", "eventSourceName"),
        ("event_name", "eventName"),
    ):
        if not getattr(dep, attr):
            yield f"{path}.{alias}", f"a dependency needs `{alias}`"
    yield from _logical_operator(dep.filters_logical_operator, f"{path}.filtersLogicalOperator")
    if dep.filters is not None:
        yield from check_filter(dep.filters, f"{path}.filters")
    transform = dep.transform
    if transform is not None and transform.jq and transform.script:
        yield f"{path}.transform", "set either `jq` or `script`, not both"
    if transform is not None and transform.jq and (msg := checks.jq_program(transform.jq)) is not None:
        yield f"{path}.transform.jq", msg
    if transform is not None and transform.script and (msg := checks.lua_chunk(transform.script)) is not None:
        yield f"{path}.transform.script", msg


def _logical_operator(value: str | None, path: str) -> Found:
    if value and value not in LOGICAL_OPERATORS:
        yield path, f"logical operator `{value}` is not supported (use `and` or `or`)"


def check_filter(filters: models.EventDependencyFilter, path: str) -> Found:
    """Data, expr, context and time filters are complete and well-formed."""
    yield from _logical_operator(filters.expr_logical_operator, f"{path}.exprLogicalOperator")
    yield from _logical_operator(filters.data_logical_operator, f"{path}.dataLogicalOperator")
    for index, expr in enumerate(filters.exprs or []):
        yield from check_expr_filter(expr, f"{path}.exprs[{index}]")
    for index, data in enumerate(filters.data or []):
        yield from check_data_filter(data, f"{path}.data[{index}]")
    if filters.context is not None:
        yield from check_context_filter(filters.context, f"{path}.context")
    if filters.time is not None:
        yield from check_time_filter(filters.time, f"{path}.time")
    if filters.script and (msg := checks.lua_chunk(filters.script)) is not None:
        yield f"{path}.script", msg


def check_expr_filter(expr: models.ExprFilter, path: str) -> Found:
    """An expr filter has an expression and at least one named field with a path."""
    if not expr.expr:
        yield f"{path}.expr", "an expr filter needs an `expr`"
    if not expr.fields:
        yield f"{path}.fields", "an expr filter needs at least one field (name and path)"
    for index, field in enumerate(expr.fields or []):
        if not field.name or not field.path:
            yield f"{path}.fields[{index}]", "a field needs both `name` and `path`"


def check_data_filter(data: models.DataFilter, path: str) -> Found:
    """A data filter has a path, a known type, values, and a known comparator."""
    if data.comparator and data.comparator not in COMPARATORS:
        yield (
            f"{path}.comparator",
            (f"comparator `{data.comparator}` is not supported (use one of >=, >, =, !=, <, <=)"),
        )
    if not data.path:
        yield f"{path}.path", "a data filter needs a `path`"
    if data.type and data.type not in DATA_TYPES:
        yield f"{path}.type", f"data filter type `{data.type}` is not supported (use bool, number or string)"
    if not data.type:
        yield f"{path}.type", "a data filter needs a `type` (bool, number or string)"
    if not data.value:
        yield f"{path}.value", "a data filter needs at least one value"
    elif any(v == "" for v in data.value):
        yield f"{path}.value", "a data filter value must not be empty"
    elif data.type in DATA_TYPES and not data.template:
        for index, value in enumerate(data.value):
            if (msg := checks.data_value(data.type, value)) is not None:
                yield f"{path}.value[{index}]", msg


def check_context_filter(context: models.EventContext, path: str) -> Found:
    """A context filter must set something, or it would drop every event."""
    if not (context.type or context.subject or context.source or context.datacontenttype):
        yield (
            path,
            "a context filter needs type, subject, source or datacontenttype (else every event is dropped)",
        )


def check_time_filter(time: models.TimeFilter, path: str) -> Found:
    """start and stop are HH:MM:SS and differ; the time zone exists."""
    for value, key in ((time.start, "start"), (time.stop, "stop")):
        if (msg := checks.time_of_day(value)) is not None:
            yield f"{path}.{key}", msg
    if time.start == time.stop:
        yield path, f"`start` and `stop` are both {time.start}: the window would be empty"
    if time.timezone and (msg := checks.timezone(time.timezone)) is not None:
        yield f"{path}.timezone", msg


# -- triggers ---------------------------------------------------------------------------------------------


def check_trigger(trigger: models.Trigger, path: str, dependencies: set[str]) -> Found:
    """Template, parameters, policy, retry and dead-letter trigger of one trigger.

    The ``rateLimit`` rules are the runtime's own (``triggers.ratelimit.check``, run by
    ``knevents.validation``).
    """
    yield from check_template(trigger.template, f"{path}.template", dependencies)
    for index, param in enumerate(trigger.parameters or []):
        yield from check_parameter(param, f"{path}.parameters[{index}]", dependencies)
    if trigger.retry_strategy is not None:
        yield from check_backoff(trigger.retry_strategy, f"{path}.retryStrategy")
    if trigger.dlq_trigger is not None:
        if not trigger.at_least_once:
            yield f"{path}.atLeastOnce", "to use dlqTrigger, the trigger needs `atLeastOnce: true`"
        if not trigger.dlq_trigger.at_least_once:
            yield f"{path}.dlqTrigger.atLeastOnce", "the dlqTrigger needs `atLeastOnce: true` too"
        yield from check_trigger(trigger.dlq_trigger, f"{path}.dlqTrigger", dependencies)


def template_dependencies(trigger: models.Trigger, dependencies: set[str]) -> set[str]:
    """The dependency names a template-level parameter of ``trigger`` may name.

    Trigger-level parameters may rewrite the template's own parameters at run time (Argo's
    tutorial sensor-05 fills a placeholder dependency name that way), so template-level
    names are only checked when nothing can rewrite them.
    """
    return dependencies if not trigger.parameters else _ANY


def triggers(sensor: models.Sensor) -> Iterator[tuple[str, models.Trigger]]:
    """``(path, trigger)`` of every trigger of ``sensor``, its ``dlqTrigger``s included."""
    for index, trigger in enumerate(sensor.spec.triggers):
        path = f"spec.triggers[{index}]"
        current: models.Trigger | None = trigger
        while current is not None:
            yield path, current
            current, path = current.dlq_trigger, f"{path}.dlqTrigger"


class _AnyName(set[str]):
    """Stands for "every dependency name is acceptable here"."""

    def __contains__(self, item: object) -> bool:
        return True


_ANY = _AnyName()


def check_backoff(backoff: models.Backoff, path: str) -> Found:
    """A retry strategy's duration parses and its steps are not negative."""
    if backoff.duration is not None and (msg := checks.duration(backoff.duration)) is not None:
        yield f"{path}.duration", msg
    if backoff.steps is not None and backoff.steps < 0:
        yield f"{path}.steps", "steps must not be negative"
    for value, key in ((backoff.factor, "factor"), (backoff.jitter, "jitter")):
        if isinstance(value, str):
            try:
                float(value)
            except ValueError:
                yield f"{path}.{key}", f"`{value}` is not a number"


def check_template(
    template: models.TriggerTemplate,
    path: str,
    dependencies: set[str],
) -> Found:
    """Name, exactly one kind, the kind's own rules, conditions and their reset."""
    if not template.name:
        yield f"{path}.name", "a trigger needs a name"
    kinds = support.trigger_kinds(template)
    if not kinds:
        yield (
            path,
            "a trigger template needs a trigger kind (k8s, argoWorkflow, http, log, awsLambda, nats …)",
        )
    elif len(kinds) > 1:
        yield path, f"a trigger template sets exactly one trigger kind, found {', '.join(kinds)}"
    if template.conditions is not None:
        yield from check_conditions(template.conditions, f"{path}.conditions", dependencies)
    for index, reset in enumerate(template.conditions_reset or []):
        where = f"{path}.conditionsReset[{index}]"
        if reset.by_time is None:
            yield where, "a conditionsReset entry needs `byTime`"
            continue
        if not reset.by_time.cron:
            yield f"{where}.byTime.cron", "byTime needs a `cron` schedule"
        # the schedule and its time zone are compiled by the engine (knevents.sensors.cron), through
        # knevents.validation: the one parser the sensor function runs


def check_conditions(expression: str, path: str, dependencies: set[str]) -> Found:
    """The expression parses and names only declared dependencies."""
    names, error = checks.condition_names(expression)
    if error is not None:
        yield path, f"invalid conditions `{expression}`: {error}"
    for name in names:
        if checks.normalise_dependency(name) not in dependencies:
            yield path, f"conditions name an unknown dependency `{name}`"


def check_parameters(
    params: list[models.TriggerParameter] | None,
    path: str,
    dependencies: Set[str],
    *,
    dest_required: bool = True,
) -> Found:
    for index, param in enumerate(params or []):
        yield from check_parameter(param, f"{path}[{index}]", dependencies, dest_required=dest_required)


def check_parameter(
    param: models.TriggerParameter, path: str, dependencies: Set[str], *, dest_required: bool = True
) -> Found:
    """A parameter has a source naming a declared dependency, a destination and a known operation."""
    if param.src is None:
        yield f"{path}.src", "a parameter needs a `src`"
    elif not param.src.dependency_name:
        yield f"{path}.src.dependencyName", "a parameter source needs `dependencyName`"
    elif checks.normalise_dependency(param.src.dependency_name) not in dependencies:
        yield f"{path}.src.dependencyName", f"unknown dependency `{param.src.dependency_name}`"
    if dest_required and not param.dest:
        yield f"{path}.dest", "a parameter needs a `dest`"
    if param.operation and param.operation not in PARAMETER_OPERATIONS:
        yield (
            f"{path}.operation",
            (f"parameter operation `{param.operation}` is not supported (use overwrite, append or prepend)"),
        )
