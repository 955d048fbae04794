"""Trigger ``conditions``: parsing, name normalisation, evaluation."""

from __future__ import annotations

import pytest
from knevents.sensors import conditions

DEPS = ["dep-a", "dep_b", "dep-c", "d"]


@pytest.mark.parametrize(
    ("text", "satisfied", "holds"),
    [
        ("dep-a", {"dep-a"}, True),
        ("dep-a && dep_b", {"dep-a"}, False),
        ("dep-a && dep_b", {"dep-a", "dep_b"}, True),
        ("dep-a || dep_b", {"dep_b"}, True),
        ("dep-a || dep_b && dep-c", {"dep-a"}, True),  # && binds tighter
        ("dep-a || dep_b && dep-c", {"dep_b"}, False),
        ("(dep-a || dep_b) && dep-c", {"dep-a"}, False),
        ("(dep-a || dep_b) && dep-c", {"dep_b", "dep-c"}, True),
        ("dep_a && dep-b", {"dep-a", "dep_b"}, True),  # - and _ are interchangeable
        (None, {"dep-a", "dep_b", "dep-c"}, False),  # implicit AND of every dependency
        (None, set(DEPS), True),
    ],
)
def test_condition_holds(text: str | None, satisfied: set[str], holds: bool) -> None:
    assert conditions.parse_condition(text, DEPS).holds(satisfied) is holds


def test_dependencies_and_state_need() -> None:
    c = conditions.parse_condition("dep-c || (dep_a && dep-b)", DEPS)
    assert c.dependencies == ("dep-a", "dep_b", "dep-c")  # spec order
    assert c.needs_state
    assert not conditions.parse_condition("dep-a || d", DEPS).needs_state
    assert not conditions.parse_condition("d", DEPS).needs_state
    assert conditions.parse_condition("", DEPS).needs_state
    assert not conditions.parse_condition(None, ["only"]).needs_state


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("dep-a && nope", "unknown dependency 'nope'"),
        ("dep-a &&", "unexpected end"),
        ("(dep-a || d", "missing '\\)'"),
        ("dep-a ! d", "unexpected"),
        ("dep-a d", "unexpected 'd'"),
    ],
)
def test_condition_errors(text: str, message: str) -> None:
    with pytest.raises(conditions.ConditionError, match=message):
        conditions.parse_condition(text, DEPS)
