"""``rateLimit`` (unit, requestsPerUnit): one pace per trigger, shared by every process of a sensor.

Argo paces each trigger with a leaky bucket (uber-go/ratelimit v0.3, its
default slack of 10): executions are spread evenly, one every
``unit / requestsPerUnit``, the first at once, and time left unused by a quiet
spell is kept up to ten intervals, so after one up to eleven executions pass at
once before the spacing resumes. A missing or zero ``requestsPerUnit`` means no
limit (Argo would divide by zero).

Argo runs one active sensor pod, so its limit holds for the whole sensor.
knevents runs a sensor as several processes (``knevents run --workers N``, N
Knative replicas), so the slots are kept where they all see them: the sensor
runtime puts a reserve function on the trigger context (:data:`SlotFn`, a
compare-and-set on the key ``rate.<trigger>`` of the sensor's KV bucket, see
:mod:`knevents.runtime.sensor_rate`). A caller takes the next slot and sleeps
until it.

The shared path and the local one get the interval from :func:`interval` and
the slot from :func:`next_slot`, so both enforce the same rate. Without a
reserve function (unit tests, no bus) or while the shared store cannot be
reached, the trigger falls back to a :class:`Limiter` of this process, with one
warning per trigger and outage, and asks the store again after
:data:`RETRY_SHARED` seconds: firing never waits for the store to come back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from knevents import errors

__all__ = [
    "RETRY_SHARED",
    "SLACK",
    "UNITS",
    "Limiter",
    "SlotFn",
    "acquire",
    "check",
    "interval",
    "limiter_for",
    "next_slot",
    "reset",
]

logger = logging.getLogger(__name__)

UNITS = {"Second": 1.0, "Minute": 60.0, "Hour": 3600.0}
"""Seconds per ``rateLimit.unit``, spelled as Argo's constants (its ``switch`` compares them exactly)."""

SLACK = 10
"""Intervals of unused time kept for a burst after a quiet spell (uber-go/ratelimit's default, Argo's)."""

SlotFn = Callable[[str, float], Awaitable[float]]
"""``await reserve(trigger, interval)``: take the trigger's next slot shared by every process of the sensor;
the seconds to wait for it. Raises :class:`errors.KneventsError` when the shared store cannot say."""


def next_slot(last: float | None, now: float, every: float) -> float:
    """The slot after ``last`` (the latest one handed out): uber-go/ratelimit's rule, slack included.

    A slot in the past passes at once; no more than :data:`SLACK` intervals of the past are kept. Keeping
    the latest slot rather than the next free time makes a rate change count from the next call.
    """
    if last is None:
        return now
    if now - last > (SLACK + 1) * every:
        return now - SLACK * every
    return last + every


class Limiter:
    """This process' slots: calls spaced ``interval`` seconds apart; the first call passes at once."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._last: float | None = None

    def reserve(self) -> float:
        """Take the next slot; the seconds to wait for it (0 when it is free now).

        No ``await`` in here, so a reservation is atomic on the event loop and needs no lock.
        """
        now = self._clock()
        self._last = next_slot(self._last, now, self.interval)
        return max(0.0, self._last - now)

    async def acquire(self) -> float:
        """Wait for a slot; returns how long it waited."""
        wait = self.reserve()
        if wait > 0:
            await asyncio.sleep(wait)
        return wait


RETRY_SHARED = 5.0
"""Seconds a trigger whose shared slot could not be reached is paced locally before the store is asked again
(a firing must not pay a connect timeout each time while NATS is down)."""

_LIMITERS: dict[tuple[str, str], Limiter] = {}
_FALLEN_BACK: dict[tuple[str, str], float] = {}
"""Triggers whose shared slot could not be reached (warned about once), and when to ask the store again."""


def _unit_error(unit: str | None) -> str | None:
    """Why ``unit`` is refused, or None (unset means Second)."""
    if (unit or "Second") in UNITS:
        return None
    return f"rate limit unit `{unit}` is not supported (Second, Minute or Hour)"


def check(rate_limit: Any, path: str) -> Iterator[tuple[str, str]]:
    """``validate``'s rules for a trigger's ``rateLimit`` at ``path``: what :func:`interval` would refuse.

    A ``requestsPerUnit`` below 1 is refused too (Argo's limiter would divide by zero); the runtime, should
    it get one, runs the trigger without a limit.
    """
    problem = _unit_error(rate_limit.unit)
    if problem is not None:
        yield f"{path}.unit", problem
    if rate_limit.requests_per_unit is not None and rate_limit.requests_per_unit < 1:
        yield f"{path}.requestsPerUnit", "requestsPerUnit must be at least 1"


def interval(rate_limit: Any, trigger: str) -> float | None:
    """Seconds between two executions under ``rate_limit``; None for no limit. TriggerError for a bad unit."""
    if rate_limit is None:
        return None
    unit = getattr(rate_limit, "unit", None)
    problem = _unit_error(unit)
    if problem is not None:
        raise errors.TriggerError(f"trigger {trigger}: {problem}")
    per_unit = getattr(rate_limit, "requests_per_unit", None)
    if per_unit is None or int(per_unit) <= 0:
        return None  # a missing rate is no limit
    return UNITS[unit or "Second"] / int(per_unit)


def limiter_for(key: tuple[str, str], rate_limit: Any) -> Limiter | None:
    """This process' limiter of trigger ``key`` (sensor, trigger); a new rate applies from its next slot."""
    every = interval(rate_limit, key[1])
    return None if every is None else _local(key, every)


def _local(key: tuple[str, str], every: float) -> Limiter:
    limiter = _LIMITERS.get(key)
    if limiter is None:
        limiter = _LIMITERS[key] = Limiter(every)
    limiter.interval = every
    return limiter


async def acquire(key: tuple[str, str], rate_limit: Any, shared: SlotFn | None = None) -> float:
    """Wait until trigger ``key`` (sensor, trigger) may run under ``rate_limit``; the seconds waited.

    ``shared`` reserves the slot for every process of the sensor; without it, or when it fails, this
    process' :class:`Limiter` decides.
    """
    every = interval(rate_limit, key[1])
    if every is None:
        return 0.0
    wait = None
    if shared is not None and (key not in _FALLEN_BACK or time.monotonic() >= _FALLEN_BACK[key]):
        wait = await _shared_wait(key, every, shared)
    if wait is None:
        wait = _local(key, every).reserve()
    if wait > 0:
        await asyncio.sleep(wait)
    return wait


async def _shared_wait(key: tuple[str, str], every: float, shared: SlotFn) -> float | None:
    """The wait for the shared slot, or None (logged once per outage) when the store did not answer."""
    try:
        wait = await shared(key[1], every)
    except errors.KneventsError as exc:
        warned = key in _FALLEN_BACK
        _FALLEN_BACK[key] = time.monotonic() + RETRY_SHARED
        if not warned:
            logger.warning(
                "trigger %s of sensor %s: rateLimit is paced by this process alone until the sensor's "
                "shared slot can be reached again (%s)", key[1], key[0], exc,
            )
        return None
    if _FALLEN_BACK.pop(key, None) is not None:
        logger.info(
            "trigger %s of sensor %s: rateLimit is shared by the sensor's processes again", key[1], key[0]
        )
    return wait


def reset() -> None:
    """Forget every limiter and fallback warning (tests, and a sensor reloading its spec)."""
    _LIMITERS.clear()
    _FALLEN_BACK.clear()
