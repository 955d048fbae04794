"""Argo's ``Backoff`` (retryStrategy, policy.k8s.backoff) as a schedule of delays.

Argo converts a ``Backoff`` into Kubernetes' ``wait.Backoff`` and runs
``wait.ExponentialBackoff``: ``steps`` is the total number of attempts, the
first delay is ``duration``, each next one is multiplied by ``factor``, and
every delay gets up to ``jitter × delay`` added at random. ``duration`` is an
``Int64OrString``: a number of nanoseconds, or a Go duration (``"1s"``,
``"500ms"``, ``"1m30s"``). Fields left out take Argo's defaults
(duration 1s, factor 1.0, jitter 1, steps 5).

Pure: no sleeping here; callers sleep the delays this yields.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from knevents import errors

__all__ = ["DEFAULT", "Schedule", "from_spec", "parse_duration"]

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(value: int | float | str, *, field: str = "duration") -> float:
    """Seconds from an ``Int64OrString``: an integer of nanoseconds or a Go duration string."""
    if isinstance(value, bool):
        raise errors.TriggerError(f"{field}: {value!r} is not a duration")
    if isinstance(value, int | float):
        seconds = float(value) * 1e-9
    else:
        text = value.strip()
        seconds = int(text) * 1e-9 if re.fullmatch(r"\d+", text) else _parse_go_duration(text, field)
    if seconds < 0:
        raise errors.TriggerError(f"{field}: {value!r} is negative")
    return seconds


def _parse_go_duration(text: str, field: str) -> float:
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    if body == "0":
        return 0.0
    total, position = 0.0, 0
    for match in _PART.finditer(body):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if not body or position != len(body):
        raise errors.TriggerError(
            f"{field}: {text!r} is not a duration (use nanoseconds or a Go duration such as '1s', '500ms')"
        )
    return sign * total


def _amount(value: Any, field: str, default: float) -> float:
    if value is None:
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise errors.TriggerError(f"{field}: {value!r} is not a number") from None


@dataclass(frozen=True)
class Schedule:
    """A resolved backoff: ``steps`` attempts, delays growing from ``duration`` by ``factor``."""

    steps: int = 5
    duration: float = 1.0
    factor: float = 1.0
    jitter: float = 1.0

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """The ``steps - 1`` sleeps between attempts, jitter applied."""
        draw = (rng or random).random
        base = self.duration
        for _ in range(self.steps - 1):
            yield base + (draw() * self.jitter * base if self.jitter > 0 else 0.0)
            if self.factor:
                base *= self.factor

    def total(self) -> float:
        """The longest time the whole schedule can sleep (jitter at its maximum)."""
        return sum(
            d * (1 + max(self.jitter, 0.0))
            for d in Schedule(self.steps, self.duration, self.factor, 0).delays()
        )


DEFAULT = Schedule()
"""Argo's ``DefaultBackoff``: 5 steps, 1s, factor 1.0, jitter 1."""


def from_spec(backoff: Any, *, where: str = "retryStrategy") -> Schedule:
    """A :class:`Schedule` from a spec ``Backoff`` model (or a plain mapping); Argo's defaults fill gaps."""
    if backoff is None:
        return DEFAULT

    def get(name: str) -> Any:
        if isinstance(backoff, dict):
            return backoff.get(name)
        return getattr(backoff, name, None)

    duration = get("duration")
    steps = get("steps")
    return Schedule(
        steps=int(steps) if steps and int(steps) > 0 else DEFAULT.steps,
        duration=DEFAULT.duration
        if duration is None
        else parse_duration(duration, field=f"{where}.duration"),
        factor=_amount(get("factor"), f"{where}.factor", DEFAULT.factor),
        jitter=_amount(get("jitter"), f"{where}.jitter", DEFAULT.jitter),
    )
