"""The govaluate evaluator used by ``exprs`` filters."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from knevents.sensors import expr


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("a == 1", {"a": 1.0}, True),
        ("a != 1", {"a": 1.0}, False),
        ("a > 1 && b == 'x'", {"a": 2.0, "b": "x"}, True),
        ('a > 1 && b == "y"', {"a": 2.0, "b": "x"}, False),
        ("a < 1 || b", {"a": 2.0, "b": True}, True),
        ("!(a >= 2)", {"a": 2.0}, False),
        ("a <= 2", {"a": 2.0}, True),
        ("1 + 2 * 3", {}, 7.0),
        ("(1 + 2) * 3", {}, 9.0),
        ("2 ** 3 ** 2", {}, 512.0),  # right-associative
        ("10 % 4", {}, 2.0),
        ("-a + 1", {"a": 3.0}, -2.0),
        ("7 / 2", {}, 3.5),
        ("6 & 3", {}, 2.0),
        ("1 << 3", {}, 8.0),
        ("'ab' + 'cd'", {}, "abcd"),
        ("'n' + 1", {}, "n1"),
        ("name =~ '^dep-[0-9]+$'", {"name": "dep-42"}, True),
        ("name !~ 'prod'", {"name": "staging"}, True),
        ("'b' > 'a'", {}, True),
        ("x in (1, 2, 3)", {"x": 2.0}, True),
        ("x in ('a', 'b')", {"x": "c"}, False),
        ("a ? 'yes' : 'no'", {"a": True}, "yes"),
        ("a ? 'yes' : 'no'", {"a": False}, "no"),
        ("a ?? 'fallback'", {"a": None}, "fallback"),
        ("[my var] == 'v'", {"my var": "v"}, True),
        ("a\\-b == 1", {"a-b": 1.0}, True),
        ("body.count > 5", {"body.count": 6.0}, True),  # a field literally named body.count (seed docs)
        ("body.count > 5", {"body": {"count": 6.0}}, True),  # govaluate's accessor into a parameter
        ('body.action == "opened" || body.action == "synchronize"', {"body.action": "synchronize"}, True),
        ("a == true", {"a": True}, True),
        ("a == 1", {"a": True}, False),
        ("0x10 == 16", {}, True),
        ("1 << 63", {}, -9.223372036854776e18),  # int64 arithmetic, as Go wraps
        ("3 << 99999999", {}, 0.0),  # a shift of 64 or more is 0, not a giant integer
        ("-8 >> 1", {}, -4.0),
        ("10 ** 400", {}, float("inf")),  # math.Pow overflows to +Inf
        ("a == 1", {"a": 1}, True),  # ints from Python count as float64
    ],
)
def test_evaluates_like_govaluate(text: str, env: dict[str, Any], expected: Any) -> None:
    assert expr.compile_expr(text).evaluate(env) == expected


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("a > 1", {"a": "x"}, "cannot be used with the operator '>', it is not a number"),
        ("a && true", {"a": 1.0}, "logical operator '&&', it is not a bool"),
        ("missing == 1", {}, "no parameter 'missing' found"),
        ("a =~ 1", {"a": "x"}, "it is not a string"),
        ("a =~ '('", {"a": "x"}, "invalid regular expression"),
        ("a in 1", {"a": 1.0}, "it is not an array"),
        ("a - 'x'", {"a": 1.0}, "not a number"),
        ("1 << -1", {}, "negative shift count"),
        ("(10 ** 400) % 2", {}, "cannot evaluate"),
        ("body.nope == 1", {"body": {"count": 1.0}}, "no field 'nope' in parameter 'body'"),
    ],
)
def test_evaluation_errors_are_specific(text: str, env: dict[str, Any], message: str) -> None:
    with pytest.raises(expr.ExprError, match=message):
        expr.compile_expr(text).evaluate(env)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("a ==", "unexpected end"),
        ("(a == 1", "expected '\\)'"),
        ("a == 'unclosed", "unclosed string"),
        ("f(1)", "unknown function 'f'"),
        ("a # b", "invalid character '#'"),
        ("a\\", "dangling escape"),
        ("a == 1 )", "unexpected '\\)'"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(expr.ExprError, match=message):
        expr.compile_expr(text)


def test_variables_are_listed() -> None:
    assert expr.compile_expr("a > 1 && (b == a || c)").variables == ("a", "b", "c")


def test_short_circuit_skips_type_errors() -> None:
    # govaluate short-circuits && and ||: the right side is not evaluated.
    assert expr.compile_expr("false && missing").evaluate({}) is False
    assert expr.compile_expr("true || missing").evaluate({}) is True


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab()&|!=<>~?:,.[]'\"0123 +-*/%\\e", max_size=25))
def test_any_text_parses_or_fails_with_expr_error(text: str) -> None:
    with contextlib.suppress(expr.ExprError):
        expr.compile_expr(text).evaluate({"a": 1.0, "b": "x"})
