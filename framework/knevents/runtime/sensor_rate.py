"""A trigger's ``rateLimit`` slots kept in the sensor's KV bucket, so every process of a sensor keeps one pace.

Argo runs one active pod per sensor, so its leaky bucket paces the trigger for
the whole sensor. A knevents sensor runs as N workers (``knevents run
--workers``) or N Knative replicas; each keeps the latest slot it handed out
under the key ``rate.<trigger>`` of the sensor's trigger-state bucket (trigger
state keys never hold a dot, so the two cannot meet). A reservation reads the
key, computes the next slot with :func:`ratelimit.next_slot` and writes it back
with a compare-and-set on the revision; a lost race reads again. The slots are
wall-clock times (processes share no monotonic clock), as text.

Only a trigger with a ``rateLimit`` calls in here (two KV requests per firing).
Calls of one process for one trigger take turns behind a lock, so conflicts
only come from other processes, and each conflict means another process got
its slot. When the store cannot be reached, :func:`ratelimit.acquire` falls
back to the process' own limiter.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable

from knevents import errors, state
from knevents.triggers import ratelimit

__all__ = ["ATTEMPTS", "KEY_PREFIX", "RateSlots", "key"]

KEY_PREFIX = "rate."
ATTEMPTS = 50
"""Compare-and-sets lost in a row before giving up (then this firing is paced by the process alone)."""


def key(trigger: str) -> str:
    """The KV key holding the latest slot of ``trigger`` (beside its state key, never equal to one)."""
    return KEY_PREFIX + state.kv_key(trigger)


class RateSlots:
    """Reserves ``rateLimit`` slots in the bucket that ``bucket()`` opens; :meth:`reserve` is a ratelimit.SlotFn."""

    def __init__(
        self, bucket: Callable[[], Awaitable[state.Bucket]], clock: Callable[[], float] = time.time
    ) -> None:
        self._bucket = bucket
        self._clock = clock
        self._locks: dict[str, asyncio.Lock] = {}
        self.conflicts = 0
        """Compare-and-sets lost to another process (for tests and curiosity)."""

    async def reserve(self, trigger: str, interval: float) -> float:
        """Take the trigger's next slot; the seconds to wait for it."""
        slot = await self.slot(trigger, interval)
        return max(0.0, slot - self._clock())

    async def slot(self, trigger: str, interval: float) -> float:
        """Take the trigger's next slot: its wall-clock time."""
        lock = self._locks.get(trigger)
        if lock is None:
            lock = self._locks.setdefault(trigger, asyncio.Lock())
        async with lock:
            bucket = await self._bucket()
            name = key(trigger)
            for _ in range(ATTEMPTS):
                entry = await bucket.get(name)
                slot = ratelimit.next_slot(_decode(entry), self._clock(), interval)
                try:
                    if entry is None:
                        await bucket.create(name, repr(slot).encode())
                    else:
                        await bucket.update(name, repr(slot).encode(), last=entry.revision)
                except errors.StateConflictError:
                    self.conflicts += 1
                    continue
                return slot
        raise errors.StateConflictError(
            f"rateLimit slot of trigger {trigger}: {ATTEMPTS} compare-and-sets lost in a row"
        )


def _decode(entry: state.Entry | None) -> float | None:
    """The latest slot stored, or None when there is none or it is unreadable (then it is overwritten)."""
    if entry is None or not entry.value:
        return None
    try:
        last = float(entry.value)
    except ValueError:
        return None
    return last if math.isfinite(last) else None
