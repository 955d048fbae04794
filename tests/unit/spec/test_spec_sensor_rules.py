"""Argo's Sensor admission rules, one table row per rule: the change, where it is reported, and what is said."""

from __future__ import annotations

from typing import Any

import pytest
from knevents import errors, validation

from tests.unit.spec.helpers import DELETE, patch, sensor

T0 = "spec.triggers.0"
T1 = "spec.triggers.1"

CASES: list[tuple[str, str, Any, str, str]] = [
    # id, field to change, new value, reported path, message fragment
    ("no-deps", "spec.dependencies", [], "spec.dependencies", "no event dependencies"),
    ("no-triggers", "spec.triggers", [], "spec.triggers", "no triggers"),
    (
        "dup-dep",
        "spec.dependencies.1.name",
        "dep-a",
        "spec.dependencies[1].name",
        "duplicate dependency name",
    ),
    (
        "dup-trigger",
        f"{T1}.template.name",
        "call",
        "spec.triggers[1].template.name",
        "duplicate trigger name",
    ),
    (
        "empty-event-name",
        "spec.dependencies.0.eventName",
        "",
        "spec.dependencies[0].eventName",
        "`eventName`",
    ),
    (
        "empty-source-name",
        "spec.dependencies.0.eventSourceName",
        "",
        "spec.dependencies[0].eventSourceName",
        "`eventSourceName`",
    ),
    (
        "missing-event-name",
        "spec.dependencies.0.eventName",
        DELETE,
        "spec.dependencies[0].eventName",
        "missing",
    ),
    (
        "condition-unknown-dep",
        f"{T0}.template.conditions",
        "dep-a && dep-c",
        "spec.triggers[0].template.conditions",
        "unknown dependency `dep-c`",
    ),
    (
        "condition-syntax",
        f"{T0}.template.conditions",
        "(dep-a && dep_b",
        "spec.triggers[0].template.conditions",
        "unbalanced parentheses",
    ),
    (
        "condition-bad-token",
        f"{T0}.template.conditions",
        "dep-a & dep_b",
        "spec.triggers[0].template.conditions",
        "unexpected `&`",
    ),
    (
        "condition-dangling-op",
        f"{T0}.template.conditions",
        "dep-a ||",
        "spec.triggers[0].template.conditions",
        "ends too early",
    ),
    (
        "dlq-needs-at-least-once",
        f"{T0}.dlqTrigger",
        {"atLeastOnce": True, "template": {"name": "dlq", "log": {}}},
        "spec.triggers[0].atLeastOnce",
        "atLeastOnce: true",
    ),
    (
        "http-method",
        f"{T0}.template.http.method",
        "HEAD",
        "spec.triggers[0].template.http.method",
        "use GET, DELETE, PATCH, POST or PUT",
    ),
    (
        "http-method-case",
        f"{T0}.template.http.method",
        "post",
        "spec.triggers[0].template.http.method",
        "write `POST`",
    ),
    ("http-url-empty", f"{T0}.template.http.url", "", "spec.triggers[0].template.http.url", "needs a `url`"),
    (
        "param-operation",
        f"{T1}.template.k8s.parameters.0.operation",
        "replace",
        "spec.triggers[1].template.k8s.parameters[0].operation",
        "use overwrite, append or prepend",
    ),
    (
        "param-unknown-dep",
        f"{T1}.template.k8s.parameters.0.src.dependencyName",
        "nope",
        "spec.triggers[1].template.k8s.parameters[0].src.dependencyName",
        "unknown dependency `nope`",
    ),
    (
        "param-no-dest",
        f"{T1}.template.k8s.parameters.0.dest",
        DELETE,
        "spec.triggers[1].template.k8s.parameters[0].dest",
        "needs a `dest`",
    ),
    (
        "param-no-src",
        f"{T1}.template.k8s.parameters.0.src",
        DELETE,
        "spec.triggers[1].template.k8s.parameters[0].src",
        "needs a `src`",
    ),
    (
        "k8s-operation",
        f"{T1}.template.k8s.operation",
        "apply",
        "spec.triggers[1].template.k8s.operation",
        "unknown k8s operation `apply`",
    ),
    (
        "k8s-no-source",
        f"{T1}.template.k8s.source",
        DELETE,
        "spec.triggers[1].template.k8s.source",
        "needs a `source`",
    ),
    (
        "workflow-operation",
        f"{T1}.template",
        {"name": "wf", "argoWorkflow": {"operation": "launch", "source": {"resource": {}}}},
        "spec.triggers[1].template.argoWorkflow.operation",
        "unknown argoWorkflow operation `launch`",
    ),
    ("no-kind", f"{T1}.template", {"name": "none"}, "spec.triggers[1].template", "needs a trigger kind"),
    (
        "two-kinds",
        f"{T1}.template.log",
        {},
        "spec.triggers[1].template",
        "exactly one trigger kind, found k8s, log",
    ),
    ("no-name", f"{T1}.template.name", "", "spec.triggers[1].template.name", "needs a name"),
    (
        "time-filter-equal",
        "spec.dependencies.0.filters",
        {"time": {"start": "10:00:00", "stop": "10:00:00"}},
        "spec.dependencies[0].filters.time",
        "both 10:00:00",
    ),
    (
        "time-filter-format",
        "spec.dependencies.0.filters",
        {"time": {"start": "10:00", "stop": "11:00:00"}},
        "spec.dependencies[0].filters.time.start",
        "HH:MM:SS",
    ),
    (
        "time-filter-zone",
        "spec.dependencies.0.filters",
        {"time": {"start": "10:00:00", "stop": "11:00:00", "timezone": "Mars/Olympus"}},
        "spec.dependencies[0].filters.time.timezone",
        "unknown time zone",
    ),
    (
        "expr-no-fields",
        "spec.dependencies.0.filters",
        {"exprs": [{"expr": "a == 1", "fields": []}]},
        "spec.dependencies[0].filters.exprs[0].fields",
        "at least one field",
    ),
    (
        "data-comparator",
        "spec.dependencies.0.filters",
        {"data": [{"path": "body.a", "type": "number", "value": ["1"], "comparator": "=="}]},
        "spec.dependencies[0].filters.data[0].comparator",
        "comparator `==` is not supported",
    ),
    (
        "data-type",
        "spec.dependencies.0.filters",
        {"data": [{"path": "body.a", "type": "int", "value": ["1"]}]},
        "spec.dependencies[0].filters.data[0].type",
        "type `int` is not supported",
    ),
    (
        "data-no-value",
        "spec.dependencies.0.filters",
        {"data": [{"path": "body.a", "type": "string", "value": []}]},
        "spec.dependencies[0].filters.data[0].value",
        "at least one value",
    ),
    (
        "data-number-value",
        "spec.dependencies.0.filters",
        {"data": [{"path": "body.a", "type": "number", "value": ["1.5", "many"]}]},
        "spec.dependencies[0].filters.data[0].value[1]",
        "value `many` is not a number",
    ),
    (
        "data-bool-value",
        "spec.dependencies.0.filters",
        {"data": [{"path": "body.a", "type": "bool", "value": ["yes"]}]},
        "spec.dependencies[0].filters.data[0].value[0]",
        "not a boolean",
    ),
    (
        "jq-syntax",
        "spec.dependencies.0.transform",
        {"jq": ".body | "},
        "spec.dependencies[0].transform.jq",
        "jq program does not compile: syntax error",
    ),
    (
        "lua-transform-syntax",
        "spec.dependencies.0.transform",
        {"script": "event.body = "},
        "spec.dependencies[0].transform.script",
        "Lua script does not compile",
    ),
    (
        "lua-filter-syntax",
        "spec.dependencies.0.filters",
        {"script": "if event.body.a == 1 then return true"},
        "spec.dependencies[0].filters.script",
        "Lua script does not compile",
    ),
    (
        "transform-both",
        "spec.dependencies.0.transform",
        {"jq": ".", "script": "return event"},
        "spec.dependencies[0].transform",
        "either `jq` or `script`",
    ),
    (
        "secret-ref-name",
        f"{T0}.template.http.basicAuth",
        {"username": {"key": "user"}, "password": {"name": "creds", "key": ""}},
        "spec.triggers[0].template.http.basicAuth.username",
        "needs the secret's `name`",
    ),
    (
        "secret-ref-key",
        f"{T0}.template.http.basicAuth",
        {"password": {"name": "creds", "key": ""}},
        "spec.triggers[0].template.http.basicAuth.password",
        "needs a `key`",
    ),
    (
        "context-empty",
        "spec.dependencies.0.filters",
        {"context": {"id": "x"}},
        "spec.dependencies[0].filters.context",
        "every event is dropped",
    ),
    (
        "logical-operator",
        "spec.dependencies.0.filtersLogicalOperator",
        "xor",
        "spec.dependencies[0].filtersLogicalOperator",
        "use `and` or `or`",
    ),
    (
        "reset-cron",
        f"{T0}.template.conditionsReset",
        [{"byTime": {"cron": "61 * * * *"}}],
        "spec.triggers[0].template.conditionsReset[0].byTime.cron",
        "invalid cron expression",
    ),
    (
        "reset-cron-fields",
        f"{T0}.template.conditionsReset",
        [{"byTime": {"cron": "* * *"}}],
        "spec.triggers[0].template.conditionsReset[0].byTime.cron",
        "expected exactly 5 fields, found 3",
    ),
    (
        "reset-timezone",
        f"{T0}.template.conditionsReset",
        [{"byTime": {"cron": "0 0 * * *", "timezone": "Nowhere/City"}}],
        "spec.triggers[0].template.conditionsReset[0].byTime.timezone",
        "unknown time zone",
    ),
    (
        "reset-needs-by-time",
        f"{T0}.template.conditionsReset",
        [{}],
        "spec.triggers[0].template.conditionsReset[0]",
        "needs `byTime`",
    ),
    (
        "retry-duration",
        f"{T0}.retryStrategy",
        {"steps": 3, "duration": "soon"},
        "spec.triggers[0].retryStrategy.duration",
        "not a duration",
    ),
    (
        "rate-limit-unit",
        f"{T0}.rateLimit",
        {"unit": "Day", "requestsPerUnit": 1},
        "spec.triggers[0].rateLimit.unit",
        "Second, Minute or Hour",
    ),
    (
        "k8s-policy-labels",
        f"{T1}.policy",
        {"k8s": {"backoff": {"steps": 1}, "errorOnBackoffTimeout": True}},
        "spec.triggers[1].policy.k8s.labels",
        "labels",
    ),
    (
        "status-policy-allow",
        f"{T0}.policy",
        {"status": {"allow": []}},
        "spec.triggers[0].policy.status.allow",
        "allowed response codes",
    ),
]


@pytest.mark.parametrize(
    ("field", "value", "path", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_rule(field: str, value: Any, path: str, fragment: str) -> None:
    with pytest.raises(errors.SpecError) as info:
        validation.parse_sensor(patch(sensor(), field, value), file="s.yaml", document=2)
    found = [(p.path, p.message) for p in info.value.problems]
    assert any(p == path and fragment in m for p, m in found), found
    assert all(p.file == "s.yaml" and p.document == 2 for p in info.value.problems)


VALID: list[tuple[str, str, Any]] = [
    ("dash-underscore-alike", f"{T0}.template.conditions", "(dep_a || dep-b) && dep-a"),
    ("no-conditions", f"{T0}.template.conditions", DELETE),
    ("empty-operation-is-overwrite", f"{T1}.template.k8s.parameters.0.operation", ""),
    ("http-payload-without-dest", f"{T0}.template.http.payload.0.dest", DELETE),
    (
        "dlq-both-at-least-once",
        T0,
        {
            "atLeastOnce": True,
            "template": {"name": "main", "log": {}},
            "dlqTrigger": {"atLeastOnce": True, "template": {"name": "dlq", "log": {}}},
        },
    ),
    (
        "reset-ok",
        f"{T0}.template.conditionsReset",
        [{"byTime": {"cron": "0 0 * * *", "timezone": "Europe/Paris"}}],
    ),
    (
        "time-window-over-midnight",
        "spec.dependencies.0.filters",
        {"time": {"start": "23:00:00", "stop": "01:00:00"}},
    ),
    (
        "retry-go-duration",
        f"{T0}.retryStrategy",
        {"steps": 3, "duration": "1m30s", "factor": 2, "jitter": 0.1},
    ),
    ("jq-ok", "spec.dependencies.0.transform", {"jq": ".body.x = 1"}),
    (
        "lua-ok",
        "spec.dependencies.0.filters",
        {"script": "if event.body.a == 1 then return true else return false end"},
    ),
    (
        "bool-values",
        "spec.dependencies.0.filters",
        {"data": [{"path": "a", "type": "bool", "value": ["true", "F"]}]},
    ),
    ("retry-integer-duration", f"{T0}.retryStrategy", {"duration": 1000000000}),
    ("workflow-no-operation", f"{T1}.template", {"name": "wf", "argoWorkflow": {"source": {"resource": {}}}}),
]


@pytest.mark.parametrize(("field", "value"), [c[1:] for c in VALID], ids=[c[0] for c in VALID])
def test_valid_variant(field: str, value: Any) -> None:
    validation.parse_sensor(patch(sensor(), field, value))


def test_every_problem_is_reported_at_once() -> None:
    broken = patch(sensor(), "spec.dependencies.1.name", "dep-a")
    broken = patch(broken, f"{T0}.template.http.method", "FETCH")
    broken = patch(broken, f"{T1}.template.k8s.operation", "apply")
    with pytest.raises(errors.SpecError) as info:
        validation.parse_sensor(broken)
    paths = {p.path for p in info.value.problems}
    assert {
        "spec.dependencies[1].name",
        "spec.triggers[0].template.http.method",
        "spec.triggers[1].template.k8s.operation",
    } <= paths


def test_template_parameters_may_be_rewritten_by_trigger_parameters() -> None:
    """Argo's tutorial: a trigger-level parameter fills the template's placeholder dependency name."""
    obj = patch(sensor(), f"{T1}.template.k8s.parameters.0.src.dependencyName", "PLACEHOLDER")
    obj = patch(
        obj,
        f"{T1}.parameters",
        [
            {
                "src": {"dependencyName": "dep-a", "dataKey": "body.d"},
                "dest": "k8s.parameters.0.src.dependencyName",
            }
        ],
    )
    validation.parse_sensor(obj)
    obj = patch(obj, f"{T1}.parameters.0.src.dependencyName", "PLACEHOLDER")
    with pytest.raises(errors.SpecError, match="unknown dependency `PLACEHOLDER`"):
        validation.parse_sensor(obj)
