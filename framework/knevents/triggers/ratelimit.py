"""``rateLimit`` (unit Second/Minute/Hour, requestsPerUnit) as an async limiter per trigger.

Argo paces each trigger with a leaky bucket (uber-go/ratelimit): executions are
spread evenly, one every ``unit / requestsPerUnit``. Here each trigger gets a
:class:`Limiter` that hands out time slots; a caller whose slot lies in the
future sleeps until then. Reserving a slot has no ``await`` in it, so it is
atomic on the event loop and needs no lock; the limiter works across event
loops because it only keeps a timestamp.

The limit is per process (per function replica), as in Argo (per sensor pod).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from knevents import errors

__all__ = ["UNITS", "Limiter", "acquire", "limiter_for", "reset"]

UNITS = {"second": 1.0, "minute": 60.0, "hour": 3600.0}


class Limiter:
    """Spaces calls ``interval`` seconds apart; the first call passes at once."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._next = 0.0

    def reserve(self) -> float:
        """Take the next slot; the seconds to wait for it (0 when it is free now)."""
        now = self._clock()
        slot = max(now, self._next)
        self._next = slot + self.interval
        return slot - now

    async def acquire(self) -> float:
        """Wait for a slot; returns how long it waited."""
        wait = self.reserve()
        if wait > 0:
            await asyncio.sleep(wait)
        return wait


_LIMITERS: dict[tuple[str, str], Limiter] = {}


def _interval(rate_limit: Any, trigger: str) -> float | None:
    unit = (getattr(rate_limit, "unit", None) or "Second").strip().lower()
    if unit not in UNITS:
        raise errors.TriggerError(
            f"trigger {trigger}: rateLimit.unit {unit!r} is not one of Second, Minute, Hour"
        )
    per_unit = getattr(rate_limit, "requests_per_unit", None)
    if per_unit is None or int(per_unit) <= 0:
        return None  # Argo treats a missing/zero rate as "no limit"
    return UNITS[unit] / int(per_unit)


def limiter_for(key: tuple[str, str], rate_limit: Any) -> Limiter | None:
    """The limiter of trigger ``key`` (sensor, trigger); rebuilt when its rate changes."""
    if rate_limit is None:
        return None
    interval = _interval(rate_limit, key[1])
    if interval is None:
        return None
    limiter = _LIMITERS.get(key)
    if limiter is None or limiter.interval != interval:
        limiter = _LIMITERS[key] = Limiter(interval)
    return limiter


async def acquire(key: tuple[str, str], rate_limit: Any) -> float:
    """Wait until trigger ``key`` may run under ``rate_limit``; seconds waited."""
    limiter = limiter_for(key, rate_limit)
    return await limiter.acquire() if limiter else 0.0


def reset() -> None:
    """Forget every limiter (tests, and a sensor reloading its spec)."""
    _LIMITERS.clear()
