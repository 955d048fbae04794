"""The EventSource-level ``filter: {expression: ...}``: drop events before they reach the bus.

Argo evaluates the expression over the event *data* decoded as a JSON object,
after turning ``-`` into ``_`` in top-level keys (``x-id`` → ``x_id``); nested
values are reached with dots (``body.id == 4``). The expression language is
the govaluate dialect of :mod:`knevents.sensors.expr` (Argo uses expr-lang
here; the comparisons, ``&&``/``||``, strings and numbers people write in these
filters mean the same in both). As in Argo, an event whose data is not a JSON
object, or whose expression cannot be evaluated, is dropped and logged, and
the caller still gets 2xx: retrying would not change the answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from knevents import errors, events
from knevents.sensors import expr

__all__ = ["SourceFilter", "from_config"]


class _PathEnv(Mapping[str, Any]):
    """Parameters for the evaluator: ``a.b.c`` walks nested objects."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data

    def __getitem__(self, name: str) -> Any:
        if name in self._data:
            return self._data[name]
        value: Any = self._data
        for part in name.split("."):
            if not isinstance(value, Mapping) or part not in value:
                raise KeyError(name)
            value = value[part]
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


@dataclass(frozen=True)
class SourceFilter:
    """A compiled ``filter.expression``."""

    expression: expr.Expression
    where: str

    def passes(self, event: events.Event) -> tuple[bool, str | None]:
        """(keep?, why dropped). Never raises."""
        try:
            data = json.loads(event.data or b"null")
        except (ValueError, UnicodeDecodeError):
            return False, "event data is not JSON"
        if not isinstance(data, dict):
            return False, "event data is not a JSON object"
        params = {key.replace("-", "_"): value for key, value in data.items()}
        try:
            result = self.expression.evaluate(_PathEnv(params))
        except expr.ExprError as exc:
            return False, f"{self.where}: {exc}"
        except Exception as exc:  # a bug in an expression must not take the source down
            return False, f"{self.where}: {type(exc).__name__}: {exc}"
        if not isinstance(result, bool):
            return False, f"{self.where}: expression result {result!r} is not a boolean"
        return result, None if result else "filter expression is false"


def from_config(config: Any, where: str) -> SourceFilter | None:
    """The filter of one spec entry (its ``filter.expression``), or ``None``; SpecError if it does not parse."""
    flt = getattr(config, "filter", None)
    text = getattr(flt, "expression", None)
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        return SourceFilter(expr.compile_expr(text), f"{where}.filter.expression")
    except expr.ExprError as exc:
        raise errors.SpecError(f"{where}.filter.expression: {exc}") from None
