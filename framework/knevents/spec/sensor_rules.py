"""Argo Events' admission rules for a Sensor, reporting every violation with its path.

These mirror ``pkg/reconciler/sensor/validate.go`` of argo-events (which stops
at the first error; these don't), plus two checks Argo only hits at run time:
a ``conditions`` expression or a parameter that names an unknown dependency.
Every rule is a small generator of ``(path, message)`` pairs over a parsed
model; none does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pydantic

from knevents.spec import checks, models, support

__all__ = ["check_sensor", "check_sensor_parts"]

Found = Iterator[tuple[str, str]]

COMPARATORS = frozenset({">=", ">", "=", "!=", "<", "<="})
LOGICAL_OPERATORS = frozenset({"and", "or"})
DATA_TYPES = frozenset({"bool", "number", "string"})
PARAMETER_OPERATIONS = frozenset({"overwrite", "append", "prepend"})
K8S_OPERATIONS = frozenset({"create", "update", "patch", "delete"})
WORKFLOW_OPERATIONS = frozenset(
    {"submit", "submit-from", "suspend", "resubmit", "retry", "resume", "terminate", "stop"}
)
HTTP_TRIGGER_METHODS = ("GET", "DELETE", "PATCH", "POST", "PUT")
RATE_LIMIT_UNITS = frozenset({"Second", "Minute", "Hour"})


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
    names = {checks.normalise_dependency(d.name) for d in spec.dependencies}
    for index, trigger in enumerate(spec.triggers):
        yield from check_trigger(trigger, f"spec.triggers[{index}]", names)


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
    """Template, parameters, policy, retry, rate limit and dead-letter trigger of one trigger."""
    # Trigger-level parameters may rewrite the template's own parameters at run time (Argo's
    # tutorial sensor-05 fills a placeholder dependency name that way), so only check
    # template-level dependency names when nothing can rewrite them.
    template_deps = dependencies if not trigger.parameters else _ANY
    yield from check_template(
        trigger.template, f"{path}.template", dependencies, param_dependencies=template_deps
    )
    for index, param in enumerate(trigger.parameters or []):
        yield from check_parameter(param, f"{path}.parameters[{index}]", dependencies)
    yield from check_policy(trigger, path)
    if trigger.retry_strategy is not None:
        yield from check_backoff(trigger.retry_strategy, f"{path}.retryStrategy")
    if trigger.rate_limit is not None:
        unit = trigger.rate_limit.unit
        if unit and unit not in RATE_LIMIT_UNITS:
            yield (
                f"{path}.rateLimit.unit",
                f"rate limit unit `{unit}` is not supported (Second, Minute or Hour)",
            )
        if trigger.rate_limit.requests_per_unit is not None and trigger.rate_limit.requests_per_unit < 1:
            yield f"{path}.rateLimit.requestsPerUnit", "requestsPerUnit must be at least 1"
    if trigger.dlq_trigger is not None:
        if not trigger.at_least_once:
            yield f"{path}.atLeastOnce", "to use dlqTrigger, the trigger needs `atLeastOnce: true`"
        if not trigger.dlq_trigger.at_least_once:
            yield f"{path}.dlqTrigger.atLeastOnce", "the dlqTrigger needs `atLeastOnce: true` too"
        yield from check_trigger(trigger.dlq_trigger, f"{path}.dlqTrigger", dependencies)


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
    *,
    param_dependencies: set[str] | None = None,
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
        elif (msg := checks.cron(reset.by_time.cron)) is not None:
            yield f"{where}.byTime.cron", msg
        if reset.by_time.timezone and (msg := checks.timezone(reset.by_time.timezone)) is not None:
            yield f"{where}.byTime.timezone", msg
    yield from _kind_rules(template, path, dependencies if param_dependencies is None else param_dependencies)


def check_conditions(expression: str, path: str, dependencies: set[str]) -> Found:
    """The expression parses and names only declared dependencies."""
    names, error = checks.condition_names(expression)
    if error is not None:
        yield path, f"invalid conditions `{expression}`: {error}"
    for name in names:
        if checks.normalise_dependency(name) not in dependencies:
            yield path, f"conditions name an unknown dependency `{name}`"


def _kind_rules(template: models.TriggerTemplate, path: str, dependencies: set[str]) -> Found:
    if template.k8s is not None:
        yield from check_k8s(template.k8s, f"{path}.k8s", dependencies)
    if template.argo_workflow is not None:
        yield from check_argo_workflow(template.argo_workflow, f"{path}.argoWorkflow", dependencies)
    if template.http is not None:
        yield from check_http(template.http, f"{path}.http", dependencies)
    if template.aws_lambda is not None:
        lam = template.aws_lambda
        if not lam.region:
            yield f"{path}.awsLambda.region", "an awsLambda trigger needs a `region`"
        if lam.payload is None:
            yield f"{path}.awsLambda.payload", "an awsLambda trigger needs a `payload` list"
        yield from _parameters(lam.parameters, f"{path}.awsLambda.parameters", dependencies)
        yield from _parameters(lam.payload, f"{path}.awsLambda.payload", dependencies)
    if template.nats is not None:
        if template.nats.payload is None:
            yield f"{path}.nats.payload", "a nats trigger needs a `payload` list"
        yield from _parameters(template.nats.parameters, f"{path}.nats.parameters", dependencies)
        yield from _parameters(template.nats.payload, f"{path}.nats.payload", dependencies)
    if template.kafka is not None:
        kafka = template.kafka
        for value, key in ((kafka.url, "url"), (kafka.topic, "topic")):
            if not value:
                yield f"{path}.kafka.{key}", f"a kafka trigger needs `{key}`"
        if kafka.payload is None:
            yield f"{path}.kafka.payload", "a kafka trigger needs a `payload` list"
        if kafka.schema_registry is not None:
            yield f"{path}.kafka.schemaRegistry", "not supported by knevents: Avro encoding through a schema registry"
        if kafka.sasl is not None and (kafka.sasl.mechanism or "PLAIN") not in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
            yield f"{path}.kafka.sasl.mechanism", "SASL mechanism must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
        yield from _parameters(kafka.parameters, f"{path}.kafka.parameters", dependencies)
        yield from _parameters(kafka.payload, f"{path}.kafka.payload", dependencies)


def check_k8s(k8s: models.StandardK8STrigger, path: str, dependencies: set[str]) -> Found:
    """A k8s trigger has a resource source and a known operation."""
    if k8s.source is None:
        yield f"{path}.source", "a k8s trigger needs a `source` (resource, configmap, url …)"
    if k8s.operation and k8s.operation not in K8S_OPERATIONS:
        yield (
            f"{path}.operation",
            (f"unknown k8s operation `{k8s.operation}` (use create, update, patch or delete)"),
        )
    yield from _parameters(k8s.parameters, f"{path}.parameters", dependencies)


def check_argo_workflow(wf: models.ArgoWorkflowTrigger, path: str, dependencies: set[str]) -> Found:
    """An argoWorkflow trigger has a source and a known operation (empty means submit)."""
    if wf.source is None:
        yield f"{path}.source", "an argoWorkflow trigger needs a `source` (resource, configmap, url …)"
    if wf.operation and wf.operation not in WORKFLOW_OPERATIONS:
        ops = ", ".join(sorted(WORKFLOW_OPERATIONS))
        yield f"{path}.operation", f"unknown argoWorkflow operation `{wf.operation}` (use one of {ops})"
    yield from _parameters(wf.parameters, f"{path}.parameters", dependencies)


def check_http(http: models.HTTPTrigger, path: str, dependencies: set[str]) -> Found:
    """An HTTP trigger has a URL and one of the methods Argo allows."""
    if not http.url:
        yield f"{path}.url", "an http trigger needs a `url`"
    if http.method and http.method not in HTTP_TRIGGER_METHODS:
        hint = f" (write `{http.method.upper()}`)" if http.method.upper() in HTTP_TRIGGER_METHODS else ""
        yield (
            f"{path}.method",
            f"method `{http.method}` is not supported: use GET, DELETE, PATCH, POST or PUT{hint}",
        )
    yield from _parameters(http.parameters, f"{path}.parameters", dependencies)
    yield from _parameters(http.payload, f"{path}.payload", dependencies, dest_required=False)


def _parameters(
    params: list[models.TriggerParameter] | None,
    path: str,
    dependencies: set[str],
    *,
    dest_required: bool = True,
) -> Found:
    for index, param in enumerate(params or []):
        yield from check_parameter(param, f"{path}[{index}]", dependencies, dest_required=dest_required)


def check_parameter(
    param: models.TriggerParameter, path: str, dependencies: set[str], *, dest_required: bool = True
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


def check_policy(trigger: models.Trigger, path: str) -> Found:
    """k8s/argoWorkflow policies need labels; http/awsLambda status policies need allowed codes."""
    policy = trigger.policy
    if policy is None:
        return
    template = trigger.template
    k8s_kind = template.k8s is not None or template.argo_workflow is not None
    if k8s_kind and policy.k8s is not None and policy.k8s.labels is None:
        yield f"{path}.policy.k8s.labels", "a k8s policy needs the resource `labels` to watch"
    status_kind = template.http is not None or template.aws_lambda is not None
    if status_kind and policy.status is not None and not policy.status.allow:
        yield f"{path}.policy.status.allow", "a status policy needs the list of allowed response codes"
