"""Dependency filters, as argo-events ``pkg/sensors/dependencies/filter.go`` applies them.

Kinds: ``data`` (gjson path + typed comparison; string values are unanchored
regexes, the value list is OR-ed even with ``!=``), ``exprs`` (govaluate over
gjson fields), ``context`` (exact equality on the non-empty attributes),
``time`` (``[start, stop)`` of the day, wrapping midnight when stop <= start),
``script`` (Lua returning ``true``), combined with ``filtersLogicalOperator``
(``and`` default / ``or``) and the ``data``/``expr`` operators. A filter that
cannot be evaluated (missing path, data not JSON …) drops the event and says
why, as Argo does.

Everything that can be checked without an event (regexes, numbers, templates,
expressions, scripts, time formats, time zones) is compiled here once and
reported as a :class:`FilterSpecError` naming the field; Argo would accept such
a sensor and then drop every event, which helps no one.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pygjson

from knevents import errors, events
from knevents.sensors import expr, gotemplate, lua, paths

__all__ = ["Check", "CompiledFilter", "FilterSpecError", "compile_filter"]

OR = "or"


FilterSpecError = errors.FilterSpecError


@dataclass(frozen=True, slots=True)
class Check:
    """The outcome of one filter kind: passed, and why not (or the error)."""

    passed: bool
    error: str | None = None  # the filter could not be evaluated
    reason: str | None = None  # evaluated, but did not match


_PASS = Check(True)
_BOOL_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_BOOL_FALSE = ("0", "f", "F", "FALSE", "false", "False")
_NUMBER_OPS: dict[str, Callable[[float, float], bool]] = {
    "": lambda a, b: a == b,
    "=": lambda a, b: a == b,
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "!=": lambda a, b: a != b,
}


def _operator(value: Any, where: str) -> str:
    text = (value or "and").lower() if isinstance(value, str) or value is None else str(value).lower()
    if text not in ("and", "or", ""):
        raise FilterSpecError(where, f"logical operator must be 'and' or 'or', got {value!r}")
    return text or "and"


def _value(obj: Any, name: str) -> Any:
    value = getattr(obj, name, None)
    return getattr(value, "value", value)  # enums from the spec models


# --- data ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _DataFilter:
    path: str
    compiled_path: Any
    kind: str
    comparator: str
    values: tuple[Any, ...]  # bools, floats or compiled regexes
    raw_values: tuple[str, ...]
    template: gotemplate.Template | None

    def check(self, data: bytes) -> Check:
        found = paths.get(data, self.compiled_path)
        if found is None:
            return Check(False, error=f"path '{self.path}' does not exist")
        if self.template is not None:
            try:
                out = self.template.render({"Input": found.text})
            except gotemplate.TemplateError as exc:
                return Check(False, error=f"template: {exc}")
            if out in ("", "<no value>"):
                return Check(
                    False, error=f"template '{self.template.source}' evaluated to empty string or no value"
                )
            found = paths.Found(paths.STRING, out)
        if self.kind == "bool":
            actual_bool = found.to_bool()
            matched = any(v == actual_bool for v in self.values)
        elif self.kind == "number":
            actual = found.to_float()
            test = _NUMBER_OPS.get(self.comparator)
            matched = test is not None and any(test(actual, v) for v in self.values)
        else:
            text = found.text
            if self.comparator in ("", "="):
                matched = any(v.search(text) for v in self.values)
            elif self.comparator == "!=":
                matched = any(not v.search(text) for v in self.values)
            else:
                matched = False
        if matched:
            return _PASS
        shown = found.text if len(found.text) <= 200 else found.text[:200] + "…"
        comparator = f" {self.comparator}" if self.comparator else ""
        return Check(
            False, reason=f"{self.path} = {shown!r} does not match{comparator} {list(self.raw_values)!r}"
        )


def _compile_data(spec: Any, where: str) -> _DataFilter:
    path = _value(spec, "path") or ""
    kind = str(_value(spec, "type") or "")
    comparator = str(_value(spec, "comparator") or "")
    raw_values = tuple(str(v) for v in (_value(spec, "value") or ()))
    template_text = _value(spec, "template") or ""
    if not path:
        raise FilterSpecError(f"{where}.path", "a path is required")
    if not raw_values:
        raise FilterSpecError(f"{where}.value", "no values specified")
    values: list[Any] = []
    if kind == "bool":
        for i, v in enumerate(raw_values):
            if v not in _BOOL_TRUE + _BOOL_FALSE:
                raise FilterSpecError(f"{where}.value[{i}]", f"{v!r} is not a boolean")
            values.append(v in _BOOL_TRUE)
    elif kind == "number":
        if comparator not in _NUMBER_OPS:
            raise FilterSpecError(f"{where}.comparator", f"unknown comparator {comparator!r}")
        for i, v in enumerate(raw_values):
            try:
                values.append(float(v))
            except ValueError:
                raise FilterSpecError(f"{where}.value[{i}]", f"{v!r} is not a number") from None
    elif kind == "string":
        if comparator not in ("", "=", "!="):
            raise FilterSpecError(f"{where}.comparator", f"comparator {comparator!r} cannot compare strings")
        for i, v in enumerate(raw_values):
            try:
                values.append(re.compile(v))
            except re.error as exc:
                raise FilterSpecError(
                    f"{where}.value[{i}]", f"invalid regular expression {v!r}: {exc}"
                ) from None
    else:
        raise FilterSpecError(f"{where}.type", f"unsupported JSON type {kind!r} (bool, number or string)")
    template = None
    if template_text:
        try:
            template = gotemplate.compile_template(template_text)
        except gotemplate.TemplateError as exc:
            raise FilterSpecError(f"{where}.template", str(exc)) from None
    try:
        compiled_path = paths.compile_path(path)
    except ValueError as exc:
        raise FilterSpecError(f"{where}.path", str(exc)) from None
    return _DataFilter(path, compiled_path, kind, comparator, tuple(values), raw_values, template)


def _combine(kind: str, checks: Callable[[], Any], operator: str) -> Check:
    """Argo's loop over filters of one kind: AND stops at the first failure, OR at the first pass."""
    errors: list[str] = []
    reasons: list[str] = []
    for check in checks():
        if check.passed:
            if operator == OR:
                return _PASS
            continue
        if operator != OR:
            if check.error:
                return Check(False, error=f"{kind} filter error ({check.error})")
            return Check(False, reason=f"{kind} filter: {check.reason}")
        if check.error:
            errors.append(check.error)
        elif check.reason:
            reasons.append(check.reason)
    if operator != OR:
        return _PASS
    if errors:
        return Check(False, error=f"{kind} filter errors [{' / '.join(errors)}]")
    return Check(False, reason=f"no {kind} filter matched: " + " / ".join(reasons))


# --- exprs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ExprFilter:
    expression: expr.Expression
    fields: tuple[tuple[str, str, Any], ...]  # (name, path, compiled path)

    def check(self, data: bytes) -> Check | None:
        params: dict[str, Any] = {}
        for name, path, compiled in self.fields:
            found = paths.get(data, compiled)
            if found is None:
                return Check(False, error=f"path '{path}' does not exist")
            try:
                params[name] = found.value()
            except RecursionError:
                return Check(False, error=f"path '{path}' holds a value nested too deeply")
        if not params:
            return None  # Argo skips an expression without fields
        try:
            result = self.expression.evaluate(params)
        except expr.ExprError as exc:
            return Check(False, error=str(exc))
        if result is True:
            return _PASS
        shown = ", ".join(f"{k}={v!r}" for k, v in params.items())
        return Check(
            False, reason=f"{self.expression.text!r} is {gotemplate.go_print(result, top=False)} with {shown}"
        )


def _compile_expr(spec: Any, where: str) -> _ExprFilter:
    text = _value(spec, "expr") or ""
    try:
        expression = expr.compile_expr(text)
    except expr.ExprError as exc:
        raise FilterSpecError(f"{where}.expr", str(exc)) from None
    fields = []
    for i, field in enumerate(_value(spec, "fields") or ()):
        name, path = _value(field, "name") or "", _value(field, "path") or ""
        if not name or not path:
            raise FilterSpecError(f"{where}.fields[{i}]", "name and path are required")
        fields.append((name, path, paths.compile_path(path)))
    return _ExprFilter(expression, tuple(fields))


# --- context and time ---------------------------------------------------------------------


def _compile_context(spec: Any) -> tuple[tuple[str, str], ...]:
    wanted = []
    for attr in ("type", "subject", "source", "datacontenttype", "specversion", "id"):
        value = _value(spec, attr)
        if value:
            wanted.append((attr, str(value)))
    return tuple(wanted)


def _check_context(wanted: tuple[tuple[str, str], ...], event: events.Event) -> Check:
    for attr, value in wanted:
        actual = getattr(event, attr, None)
        if actual != value:
            return Check(False, reason=f"context filter: {attr} is {actual!r}, want {value!r}")
    return _PASS


def _parse_clock(text: str, where: str) -> time:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", text.strip())
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59 or int(match.group(3) or 0) > 59:
        raise FilterSpecError(where, f"{text!r} is not a time of day (HH:MM:SS)")
    return time(int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))


@dataclass(frozen=True)
class _TimeFilter:
    start: time
    stop: time
    zone: tzinfo
    text: str

    def check(self, event: events.Event) -> Check:
        if event.time is None:
            return Check(False, error="the event has no time")
        local = event.time.astimezone(self.zone)
        day = local.date()
        start = datetime.combine(day, self.start, self.zone)
        stop = datetime.combine(day, self.stop, self.zone)
        # [start, stop) within the day; when stop <= start the window wraps past midnight.
        ok = start <= local < stop if start < stop else local >= start or local < stop
        if ok:
            return _PASS
        return Check(False, reason=f"time filter: {local.time().isoformat()} is outside {self.text}")


def _compile_time(spec: Any, where: str) -> _TimeFilter:
    start = _parse_clock(_value(spec, "start") or "", f"{where}.start")
    stop = _parse_clock(_value(spec, "stop") or "", f"{where}.stop")
    zone_name = _value(spec, "timezone") or ""
    zone: tzinfo = UTC
    if zone_name:
        try:
            zone = ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError):
            raise FilterSpecError(f"{where}.timezone", f"unknown time zone {zone_name!r}") from None
    label = f"[{start.isoformat()}, {stop.isoformat()}) {zone_name or 'UTC'}"
    return _TimeFilter(start, stop, zone, label)


# --- the whole filter ---------------------------------------------------------------------


class CompiledFilter:
    """One dependency's ``filters``, compiled; ``check(event)`` is the hot path."""

    def __init__(self, spec: Any, filters_operator: Any = None, where: str = "filters") -> None:
        problems: list[tuple[str, str]] = []

        def attempt(fn: Callable[[], Any]) -> Any:
            try:
                return fn()
            except FilterSpecError as exc:
                problems.extend(exc.problem_pairs)
                return None

        op_path = where.removesuffix("filters") + "filtersLogicalOperator"
        self.operator = attempt(lambda: _operator(_value_raw(filters_operator), op_path)) or "and"
        self.data_operator = (
            attempt(lambda: _operator(_value(spec, "data_logical_operator"), f"{where}.dataLogicalOperator"))
            or "and"
        )
        self.expr_operator = (
            attempt(lambda: _operator(_value(spec, "expr_logical_operator"), f"{where}.exprLogicalOperator"))
            or "and"
        )
        data = _value(spec, "data")
        exprs = _value(spec, "exprs")
        self.data: Sequence[_DataFilter] | None = None
        if data is not None:
            compiled_data = [
                attempt(functools.partial(_compile_data, f, f"{where}.data[{i}]")) for i, f in enumerate(data)
            ]
            self.data = [f for f in compiled_data if f is not None]
        self.exprs: Sequence[_ExprFilter] | None = None
        if exprs is not None:
            compiled_exprs = [
                attempt(functools.partial(_compile_expr, f, f"{where}.exprs[{i}]"))
                for i, f in enumerate(exprs)
            ]
            self.exprs = [f for f in compiled_exprs if f is not None]
        context = _value(spec, "context")
        self.context = None if context is None else _compile_context(context)
        time_spec = _value(spec, "time")
        self.time = None if time_spec is None else attempt(lambda: _compile_time(time_spec, f"{where}.time"))
        script = _value(spec, "script") or ""
        self.script: lua.LuaScript | None = None
        if script:
            try:
                self.script = lua.LuaScript(script, "filters.script")
            except lua.LuaError as exc:
                problems.append((f"{where}.script", str(exc)))
        if problems:
            raise FilterSpecError(problems[0][0], problems[0][1], problems)

    def _data_check(self, data: bytes | None, valid: bool) -> Check:
        if not self.data or data is None:
            return _PASS
        if not valid:
            return Check(False, error="data filter error (event data not valid JSON)")
        filters = self.data
        if self.data_operator != OR:
            for f in filters:
                result = f.check(data)
                if not result.passed:
                    if result.error:
                        return Check(False, error=f"data filter error ({result.error})")
                    return Check(False, reason=f"data filter: {result.reason}")
            return _PASS
        return _combine("data", lambda: (f.check(data) for f in filters), self.data_operator)

    def _expr_check(self, data: bytes | None, valid: bool) -> Check:
        if self.exprs is None or data is None:
            return _PASS
        if not valid:
            return Check(False, error="expr filter error (event data not valid JSON)")
        filters = self.exprs

        def checks() -> Any:
            for f in filters:
                result = f.check(data)
                if result is not None:
                    yield result

        return _combine("expr", checks, self.expr_operator)

    def _script_check(self, data: bytes | None) -> Check:
        if self.script is None or data is None:
            return _PASS
        try:
            payload = json.loads(data)
        except (ValueError, RecursionError):
            return Check(False, error="script filter error (event data not valid JSON)")
        if not isinstance(payload, dict):
            return Check(False, error="script filter error (event data is not a JSON object)")
        try:
            ok = self.script.returns_true(payload)
        except lua.LuaError as exc:
            return Check(False, error=f"script filter error ({exc})")
        return _PASS if ok else Check(False, reason="script filter did not return true")

    def check(self, event: events.Event) -> Check:
        """Whether the event passes, with the error or the reason when it does not."""
        data = event.data if event.data else None
        valid = data is None or not (self.data or self.exprs is not None) or pygjson.validate(data)
        if self.operator != OR:
            # AND: the first kind that fails decides (Argo's order: exprs, data, context, time, script).
            for present, run in self._kinds(event, data, valid):
                if present:
                    result = run()
                    if not result.passed:
                        return result
            return _PASS
        checks = [(present, run()) for present, run in self._kinds(event, data, valid)]
        script = checks[-1][1]
        if script.error:
            return script  # Argo returns a script error whatever the operator
        if any(present and c.passed for present, c in checks):
            return _PASS
        errors = [c.error for _, c in checks if c.error]
        if errors:
            return Check(False, error=" / ".join(errors))
        reasons = [c.reason for present, c in checks if present and c.reason]
        return Check(False, reason="no filter matched: " + "; ".join(reasons))

    def _kinds(
        self, event: events.Event, data: bytes | None, valid: bool
    ) -> list[tuple[bool, Callable[[], Check]]]:
        context, time_filter = self.context, self.time
        return [
            (self.exprs is not None, lambda: self._expr_check(data, valid)),
            (bool(self.data), lambda: self._data_check(data, valid)),
            (context is not None, lambda: _check_context(context, event) if context is not None else _PASS),
            (time_filter is not None, lambda: time_filter.check(event) if time_filter is not None else _PASS),
            (self.script is not None, lambda: self._script_check(data)),
        ]


def _value_raw(value: Any) -> Any:
    return getattr(value, "value", value)


def compile_filter(spec: Any, filters_operator: Any = None, where: str = "filters") -> CompiledFilter | None:
    """Compile a dependency's ``filters`` (``None`` when there are none)."""
    if spec is None:
        return None
    return CompiledFilter(spec, filters_operator, where)
