"""Dependency filters, table-driven, grounded in argo-events' filter.go and its documentation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from knevents import events
from knevents.sensors import filters
from knevents.spec import models

BODY = {
    "body": {
        "type": "push",
        "branch": "main",
        "count": 5,
        "ratio": 0.75,
        "ok": True,
        "tags": ["a", "b"],
        "encoded": "aGVsbG8=",
        "nested": {"k": "v"},
    }
}


def event(
    data: Any = BODY,
    *,
    time: datetime | None = None,
    type: str = "webhook",
    subject: str = "example",
    raw: bytes | None = None,
) -> events.Event:
    made = events.new_event(
        source="webhook",
        subject=subject,
        type=type,
        data=data,
        time=time or datetime(2024, 1, 1, 12, tzinfo=UTC),
    )
    return made.with_data(raw) if raw is not None else made


def check(spec: dict[str, Any], ev: events.Event | None = None, operator: str | None = None) -> filters.Check:
    compiled = filters.compile_filter(models.EventDependencyFilter.model_validate(spec), operator)
    assert compiled is not None
    return compiled.check(ev or event())


def data(*items: dict[str, Any], op: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"data": list(items)}
    if op:
        spec["dataLogicalOperator"] = op
    return spec


@pytest.mark.parametrize(
    ("spec", "passed"),
    [
        # string values are unanchored regular expressions, OR-ed
        (data({"path": "body.type", "type": "string", "value": ["push"]}), True),
        (data({"path": "body.type", "type": "string", "value": ["us"]}), True),
        (data({"path": "body.type", "type": "string", "value": ["^us"]}), False),
        (data({"path": "body.type", "type": "string", "value": ["pull", "pu.h"]}), True),
        (data({"path": "body.type", "type": "string", "value": ["push"], "comparator": "!="}), False),
        (data({"path": "body.type", "type": "string", "value": ["pull"], "comparator": "!="}), True),
        # the value list is OR-ed even with != : one non-matching value is enough
        (data({"path": "body.type", "type": "string", "value": ["push", "pull"], "comparator": "!="}), True),
        # numbers: parsed as float, every comparator
        (data({"path": "body.count", "type": "number", "value": ["5"]}), True),
        (data({"path": "body.count", "type": "number", "value": ["5.0"], "comparator": "="}), True),
        (data({"path": "body.count", "type": "number", "value": ["4"], "comparator": ">"}), True),
        (data({"path": "body.count", "type": "number", "value": ["5"], "comparator": ">"}), False),
        (data({"path": "body.count", "type": "number", "value": ["5"], "comparator": ">="}), True),
        (data({"path": "body.count", "type": "number", "value": ["6"], "comparator": "<"}), True),
        (data({"path": "body.count", "type": "number", "value": ["5"], "comparator": "<="}), True),
        (data({"path": "body.count", "type": "number", "value": ["5"], "comparator": "!="}), False),
        (data({"path": "body.ratio", "type": "number", "value": ["0.5", "0.75"]}), True),
        (data({"path": "body.type", "type": "number", "value": ["0"]}), True),  # a non-number reads as 0
        # bool ignores the comparator
        (data({"path": "body.ok", "type": "bool", "value": ["true"]}), True),
        (data({"path": "body.ok", "type": "bool", "value": ["false"]}), False),
        (data({"path": "body.ok", "type": "bool", "value": ["true"], "comparator": "!="}), True),
        (data({"path": "body.ok", "type": "bool", "value": ["f", "T"]}), True),
        # gjson paths
        (data({"path": "body.tags.#", "type": "number", "value": ["2"]}), True),
        (data({"path": "body.tags.1", "type": "string", "value": ["^b$"]}), True),
        (data({"path": "body.nested", "type": "string", "value": ['"k":"v"']}), True),
        # template renders over the extracted value (a string) first
        (
            data(
                {
                    "path": "body.encoded",
                    "type": "string",
                    "value": ["^hello$"],
                    "template": "{{ b64dec .Input }}",
                }
            ),
            True,
        ),
        (
            data(
                {
                    "path": "body.type",
                    "type": "string",
                    "value": ["^PUSH$"],
                    "template": "{{ .Input | upper }}",
                }
            ),
            True,
        ),
        (data({"path": "body.count", "type": "number", "value": ["50"], "template": "{{ .Input }}0"}), True),
        # several data filters: AND by default, OR on request
        (
            data(
                {"path": "body.type", "type": "string", "value": ["push"]},
                {"path": "body.branch", "type": "string", "value": ["dev"]},
            ),
            False,
        ),
        (
            data(
                {"path": "body.type", "type": "string", "value": ["push"]},
                {"path": "body.branch", "type": "string", "value": ["dev"]},
                op="or",
            ),
            True,
        ),
        (
            data(
                {"path": "body.type", "type": "string", "value": ["x"]},
                {"path": "body.branch", "type": "string", "value": ["dev"]},
                op="or",
            ),
            False,
        ),
    ],
)
def test_data_filter(spec: dict[str, Any], passed: bool) -> None:
    result = check(spec)
    assert result.passed is passed, result
    if not passed:
        assert result.error or result.reason


@pytest.mark.parametrize(
    ("spec", "ev", "error"),
    [
        (
            data({"path": "body.missing", "type": "string", "value": ["x"]}),
            None,
            "path 'body.missing' does not exist",
        ),
        (
            data({"path": "body.type", "type": "string", "value": ["x"]}),
            event(raw=b"not json"),
            "not valid JSON",
        ),
        (
            data({"path": "body.empty", "type": "string", "value": ["x"], "template": "{{ .Input.x }}"}),
            event({"body": {"empty": "s"}}),
            "can't evaluate field x",
        ),
        (
            data(
                {
                    "path": "body.type",
                    "type": "string",
                    "value": ["x"],
                    "template": "{{ if false }}x{{ end }}",
                }
            ),
            None,
            "empty string or no value",
        ),
        # OR: every failing filter's error is reported, with Argo's wording
        (
            data(
                {"path": "a", "type": "string", "value": ["x"]},
                {"path": "b", "type": "string", "value": ["x"]},
                op="or",
            ),
            None,
            "data filter errors \\[path 'a' does not exist / path 'b' does not exist\\]",
        ),
    ],
)
def test_data_filter_errors_drop_the_event(spec: dict[str, Any], ev: events.Event | None, error: str) -> None:
    result = check(spec, ev)
    assert not result.passed
    assert result.error is not None
    assert __import__("re").search(error, result.error), result.error


def test_event_without_data_passes_data_and_expr_filters() -> None:
    ev = events.Event(id="1", source="webhook", type="webhook", subject="example", data=None)
    assert check(data({"path": "x", "type": "string", "value": ["y"]}), ev).passed
    assert check({"exprs": [{"expr": "a == 1", "fields": [{"name": "a", "path": "x"}]}]}, ev).passed


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            data({"path": "a", "type": "string", "value": ["("]}),
            "filters.data[0].value[0]: invalid regular expression",
        ),
        (
            data({"path": "a", "type": "number", "value": ["x"]}),
            "filters.data[0].value[0]: 'x' is not a number",
        ),
        (data({"path": "a", "type": "bool", "value": ["yes"]}), "is not a boolean"),
        (data({"path": "a", "type": "object", "value": ["x"]}), "unsupported JSON type 'object'"),
        (data({"path": "a", "type": "string", "value": []}), "no values specified"),
        (data({"path": "a", "type": "string", "value": ["x"], "comparator": ">"}), "cannot compare strings"),
        (data({"path": "a", "type": "number", "value": ["1"], "comparator": "=>"}), "unknown comparator"),
        (
            data({"path": "a", "type": "string", "value": ["x"], "template": "{{ nope }}"}),
            "filters.data[0].template",
        ),
        ({"exprs": [{"expr": "a ==", "fields": [{"name": "a", "path": "a"}]}]}, "filters.exprs[0].expr"),
        ({"time": {"start": "25:00:00", "stop": "10:00:00"}}, "filters.time.start"),
        ({"time": {"start": "09:00:00", "stop": "10:00:00", "timezone": "Mars/Base"}}, "unknown time zone"),
        ({"script": "if then"}, "filters.script"),
        ({"dataLogicalOperator": "xor", "data": []}, "logical operator"),
    ],
)
def test_invalid_filters_are_spec_errors(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(filters.FilterSpecError) as info:
        filters.compile_filter(models.EventDependencyFilter.model_validate(spec))
    assert message in str(info.value)


def exprs(*items: tuple[str, dict[str, str]], op: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "exprs": [{"expr": e, "fields": [{"name": n, "path": p} for n, p in f.items()]} for e, f in items]
    }
    if op:
        spec["exprLogicalOperator"] = op
    return spec


@pytest.mark.parametrize(
    ("spec", "passed"),
    [
        (exprs(("count > 3 && kind == 'push'", {"count": "body.count", "kind": "body.type"})), True),
        (exprs(("count > 7", {"count": "body.count"})), False),
        (exprs(("branch =~ '^ma'", {"branch": "body.branch"})), True),
        (exprs(("ok", {"ok": "body.ok"})), True),
        (exprs(("count > 3", {"count": "body.count"}), ("count > 7", {"count": "body.count"})), False),
        (
            exprs(("count > 3", {"count": "body.count"}), ("count > 7", {"count": "body.count"}), op="or"),
            True,
        ),
        (
            exprs(("count > 9", {"count": "body.count"}), ("count > 7", {"count": "body.count"}), op="or"),
            False,
        ),
        (exprs(("true", {})), True),  # Argo skips an expression without fields
        (exprs(("count == 5", {"count": "body.count"}), ("x == 1", {"x": "body.missing"}), op="or"), True),
    ],
)
def test_expr_filter(spec: dict[str, Any], passed: bool) -> None:
    assert check(spec).passed is passed


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        (exprs(("x == 1", {"x": "body.missing"})), "expr filter error (path 'body.missing' does not exist)"),
        (exprs(("kind > 1", {"kind": "body.type"})), "it is not a number"),
        (
            exprs(("x == 1", {"x": "body.missing"}), ("y == 1", {"y": "body.nope"}), op="or"),
            "expr filter errors [",
        ),
    ],
)
def test_expr_filter_errors(spec: dict[str, Any], error: str) -> None:
    result = check(spec)
    assert not result.passed and result.error is not None and error in result.error


@pytest.mark.parametrize(
    ("context", "passed"),
    [
        ({"type": "webhook"}, True),
        ({"type": "calendar"}, False),
        ({"source": "webhook", "subject": "example"}, True),
        ({"subject": "other"}, False),
        ({"datacontenttype": "application/json"}, True),
        ({"type": ""}, True),  # empty attributes are not compared
    ],
)
def test_context_filter(context: dict[str, str], passed: bool) -> None:
    assert check({"context": context}).passed is passed


@pytest.mark.parametrize(
    ("start", "stop", "at", "zone", "passed"),
    [
        ("09:00:00", "17:00:00", "12:00:00", None, True),
        ("09:00:00", "17:00:00", "09:00:00", None, True),  # start is inclusive
        ("09:00:00", "17:00:00", "17:00:00", None, False),  # stop is exclusive
        ("09:00:00", "17:00:00", "08:59:59", None, False),
        ("22:00:00", "02:00:00", "23:30:00", None, True),  # wraps past midnight
        ("22:00:00", "02:00:00", "01:00:00", None, True),
        ("22:00:00", "02:00:00", "12:00:00", None, False),
        # 14:00 UTC is 09:00 in New York in January (UTC-5)
        ("09:00:00", "17:00:00", "14:00:00", "America/New_York", True),
        ("09:00:00", "17:00:00", "13:59:59", "America/New_York", False),
    ],
)
def test_time_filter(start: str, stop: str, at: str, zone: str | None, passed: bool) -> None:
    when = datetime.fromisoformat(f"2024-01-15T{at}+00:00")
    spec: dict[str, Any] = {"time": {"start": start, "stop": stop}}
    if zone:
        spec["time"]["timezone"] = zone
    assert check(spec, event(time=when)).passed is passed


def test_time_filter_without_event_time_is_an_error() -> None:
    ev = events.Event(id="1", source="webhook", type="webhook", subject="example", data=b"{}")
    result = check({"time": {"start": "00:00:00", "stop": "23:00:00"}}, ev)
    assert not result.passed and result.error == "the event has no time"


@pytest.mark.parametrize(
    ("script", "passed"),
    [
        (
            'if event.body.type == "push" and event.body.count > 3 then return true else return false end',
            True,
        ),
        ("return event.body.count > 10", False),
        ("return 1", False),  # only a literal true passes
        ("return #event.body.tags == 2", True),
        ("return event.body.nested.k == 'v'", True),
    ],
)
def test_script_filter(script: str, passed: bool) -> None:
    assert check({"script": script}).passed is passed


@pytest.mark.parametrize(
    "script",
    [
        "return os.execute('true')",
        "return io.open('/etc/passwd')",
        "return require('os')",
        "while true do end",
    ],
)
def test_script_filter_is_sandboxed(script: str) -> None:
    result = check({"script": script})
    assert not result.passed and result.error is not None and "script filter error" in result.error


CTX_NO = {"context": {"type": "calendar"}}
DATA_YES = data({"path": "body.type", "type": "string", "value": ["push"]})


@pytest.mark.parametrize(
    ("operator", "spec", "passed"),
    [
        (None, {**CTX_NO, **DATA_YES}, False),
        ("and", {**CTX_NO, **DATA_YES}, False),
        ("or", {**CTX_NO, **DATA_YES}, True),
        ("or", {**CTX_NO, "time": {"start": "00:00:00", "stop": "01:00:00"}}, False),
        ("or", {**CTX_NO, **exprs(("count == 5", {"count": "body.count"}))}, True),
        ("or", {**CTX_NO, "script": "return true"}, True),
    ],
)
def test_filters_logical_operator(operator: str | None, spec: dict[str, Any], passed: bool) -> None:
    assert check(spec, operator=operator).passed is passed


def test_or_reports_errors_when_nothing_passes() -> None:
    spec = {**CTX_NO, **data({"path": "missing", "type": "string", "value": ["x"]})}
    result = check(spec, operator="or")
    assert not result.passed
    assert result.error is not None and "missing" in result.error


def test_reasons_explain_mismatches() -> None:
    result = check(data({"path": "body.type", "type": "string", "value": ["pull"]}))
    assert result.reason == "data filter: body.type = 'push' does not match ['pull']"
