"""Reconnecting to a broker with the spec's ``connectionBackoff``, and saying why we are waiting.

Argo retries a broker connection ``steps`` times (``duration``, multiplied by
``factor``, with ``jitter``) and then lets the event source exit, so the pod
crash-loops. A function must stay up and tell its readiness probe why it is
not consuming: :class:`Reconnect` keeps Argo's delays, keeps trying after the
last step at the last delay (capped), and holds the reason that ``not_ready()``
reports. Broker sources (amqp, mqtt …) share it; nothing here does network I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from knevents import errors, events
from knevents.sources import base, common

__all__ = ["MAX_DELAY", "Reconnect", "publish_held_batch"]

log = logging.getLogger(__name__)

MAX_DELAY = 60.0
"""Seconds; the longest pause between attempts, whatever ``factor`` says (Argo has no cap; it gives up)."""
_DEFAULT_DURATION = 1.0
_DEFAULT_FACTOR = 2.0


def _amount(value: Any, where: str, default: float) -> float:
    if value is None or value == "":
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise errors.SpecError(f"{where}: {value!r} is not a number") from None


class Reconnect:
    """Delays between connection attempts, and the current reason the source is not consuming."""

    def __init__(self, backoff: Any, where: str) -> None:
        duration = getattr(backoff, "duration", None)
        if duration is None or duration == "":
            self.first = _DEFAULT_DURATION
        elif isinstance(duration, int):
            self.first = duration / 1e9  # Argo: an integer is nanoseconds
        else:
            self.first = common.parse_go_duration(str(duration), f"{where}.duration")
        self.factor = max(1.0, _amount(getattr(backoff, "factor", None), f"{where}.factor", _DEFAULT_FACTOR))
        self.jitter = max(0.0, _amount(getattr(backoff, "jitter", None), f"{where}.jitter", 0.0))
        self._delay = self.first
        self.waiting: str | None = "connecting"
        """Why the source is not consuming (``None`` once it is)."""

    def connected(self) -> None:
        """The source consumes: ready, and the next outage starts from the first delay again."""
        self.waiting = None
        self._delay = self.first

    def next_delay(self) -> float:
        """The pause before the next attempt (Argo's jitter: up to ``jitter`` × the delay added)."""
        delay = min(self._delay, MAX_DELAY)
        self._delay = min(self._delay * self.factor, MAX_DELAY)
        if self.jitter:
            delay += random.uniform(0, self.jitter * delay)  # spreading retries, not security
        return max(delay, 0.05)

    async def wait(self, reason: str, stop: asyncio.Event) -> float:
        """Record ``reason``, sleep the next delay (or until ``stop``); returns the delay used."""
        self.waiting = reason
        delay = self.next_delay()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        return delay


async def publish_held_batch(publish: base.Publish, batch: Sequence[events.Event | None], stop: asyncio.Event,
                             what: str, accepted: Callable[[int, int], Awaitable[None]]) -> bool:
    """Publish ``batch`` pipelined (one slot per upstream message; ``None``: nothing to publish, ack it).

    ``accepted(start, end)`` acks the slots ``start:end`` upstream as soon as the bus took them, in order.
    A refused event and the slots after it are published again (0.5 s doubling to 60 s) until the bus
    takes them; False if ``stop`` came first (those stay unacked: the broker hands them out again).
    """
    delay, start = 0.5, 0
    while True:
        try:
            await base.publish_batch(publish, batch[start:])
        except errors.BatchRefusedError as exc:
            if exc.done:
                await accepted(start, start + exc.done)
            start += exc.done
            log.error("%s: the bus refused event %s (%s); retrying it and the %d after it in %.1fs, unacked",
                      what, _id(batch[start]), exc, len(batch) - start - 1, delay)
        else:
            if start < len(batch):
                await accepted(start, len(batch))
            return True
        try:
            await asyncio.wait_for(stop.wait(), delay)
            return False
        except TimeoutError:
            delay = min(delay * 2, MAX_DELAY)


def _id(event: events.Event | None) -> str:
    return event.id if event is not None else "-"
