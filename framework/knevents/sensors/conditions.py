"""Trigger conditions: which combination of dependencies fires a trigger.

Argo's ``conditions`` is a boolean expression over dependency names with
``&&``, ``||`` and parentheses (``&&`` binds tighter than ``||``); ``-`` and
``_`` in names are interchangeable (Argo rewrites one to the other before
evaluating). No ``conditions`` means the AND of every dependency of the
sensor. An expression is evaluated over the set of dependencies that have a
(saved or current) event.

Pure; compiled once per trigger.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from knevents import errors

__all__ = ["Condition", "ConditionError", "parse_condition"]

Test = Callable[[Collection[str]], bool]

_TOKEN = re.compile(r"\s*(?:(&&)|(\|\|)|(\()|(\))|([A-Za-z0-9_.\-:]+))")


ConditionError = errors.ConditionError


def _key(name: str) -> str:
    return name.replace("-", "_")


@dataclass(frozen=True)
class Condition:
    """A compiled condition: its dependencies (spec order) and a test over satisfied names."""

    text: str
    canonical: str
    dependencies: tuple[str, ...]
    needs_state: bool
    _test: Test

    def holds(self, satisfied: Collection[str]) -> bool:
        """Whether the condition is true when exactly ``satisfied`` dependencies have events."""
        return self._test(satisfied)


class _Parser:
    def __init__(self, text: str, names: dict[str, str]) -> None:
        self.names = names
        self.tokens: list[tuple[str, str]] = []
        index = 0
        while index < len(text):
            if text[index:].strip() == "":
                break
            match = _TOKEN.match(text, index)
            if not match:
                raise ConditionError(f"conditions {text!r}: unexpected {text[index:].strip()[:20]!r}")
            kind = ("and", "or", "(", ")", "name")[match.lastindex - 1 if match.lastindex else 0]
            self.tokens.append((kind, match.group(match.lastindex or 0)))
            index = match.end()
        self.tokens.append(("end", ""))
        self.pos = 0
        self.text = text
        self.used: list[str] = []

    def fail(self, what: str) -> ConditionError:
        return ConditionError(f"conditions {self.text!r}: {what}")

    def parse(self) -> tuple[Test, str]:
        test, canon = self.disjunction()
        if self.tokens[self.pos][0] != "end":
            raise self.fail(f"unexpected {self.tokens[self.pos][1]!r}")
        return test, canon

    def disjunction(self) -> tuple[Test, str]:
        parts = [self.conjunction()]
        while self.tokens[self.pos][0] == "or":
            self.pos += 1
            parts.append(self.conjunction())
        if len(parts) == 1:
            return parts[0]
        tests = [p[0] for p in parts]
        return (lambda sat: any(t(sat) for t in tests)), "(" + " || ".join(p[1] for p in parts) + ")"

    def conjunction(self) -> tuple[Test, str]:
        parts = [self.atom()]
        while self.tokens[self.pos][0] == "and":
            self.pos += 1
            parts.append(self.atom())
        if len(parts) == 1:
            return parts[0]
        tests = [p[0] for p in parts]
        return (lambda sat: all(t(sat) for t in tests)), "(" + " && ".join(p[1] for p in parts) + ")"

    def atom(self) -> tuple[Test, str]:
        kind, value = self.tokens[self.pos]
        self.pos += 1
        if kind == "(":
            inner = self.disjunction()
            if self.tokens[self.pos][0] != ")":
                raise self.fail("missing ')'")
            self.pos += 1
            return inner
        if kind == "name":
            name = self.names.get(_key(value))
            if name is None:
                raise self.fail(f"unknown dependency {value!r}")
            self.used.append(name)
            return (lambda sat: name in sat), name
        if kind == "end":
            raise self.fail("unexpected end")
        raise self.fail(f"unexpected {value!r}")


def parse_condition(text: str | None, dependencies: Sequence[str]) -> Condition:
    """Compile ``conditions`` against the sensor's dependency names (spec order)."""
    names = {_key(name): name for name in dependencies}
    if text is None or not text.strip():
        deps = tuple(dependencies)
        canonical = "(" + " && ".join(deps) + ")"
        return Condition(text or "", canonical, deps, len(deps) > 1, lambda sat: all(d in sat for d in deps))
    parser = _Parser(text, names)
    test, canonical = parser.parse()
    used = set(parser.used)
    ordered = tuple(name for name in dependencies if name in used)
    return Condition(text, canonical, ordered, "&" in text, test)
