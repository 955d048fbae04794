"""The sensor function writes the firing log too, when ``render --ui`` asks it to (``KNEVENTS_RECORD_FIRINGS=1``).

On Knative nobody wraps the function's ``fire`` the way the local runner's
:class:`~knevents.local.observer.FiringObserver` does, so a UI beside the
cluster would never see a firing. :class:`FiringRecorder` is that wrapper for
the function: it calls the real ``fire``, then publishes the outcome in the
runner's record format (:class:`knevents.bus.firings.Firing`) on the same
subject, on the NATS connection the state store already holds. It never waits
for NATS: not for the stream's ack, and the one request it makes (that the
stream exists, before the first record) runs beside the firing. A failure to
record is logged (at most once a minute), never raised: the trigger has run,
the record is only history.
Off by default, so the function's hot path is unchanged unless asked.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from knevents import errors
from knevents.bus import firings

__all__ = ["FiringRecorder", "wanted"]

log = logging.getLogger("knevents.sensor")
_QUIET = 60.0
"""Seconds between two warnings about records that could not be written."""


def wanted(value: str | None) -> bool:
    """Whether ``KNEVENTS_RECORD_FIRINGS`` asks for recording (``1``/``true``/``yes``)."""
    return (value or "").strip().lower() in ("1", "true", "yes")


class FiringRecorder:
    """A ``fire`` function: runs the real one, then appends its outcome to the firing log."""

    def __init__(self, fire: Callable[..., Awaitable[Any]], sensor: str, connect: Callable[[], Awaitable[Any]]) -> None:
        self.fire = fire
        self.sensor = sensor
        self.connect = connect
        """Returns the NATS connection to write on (the state store's)."""
        self._first: asyncio.Task[None] | None = None
        """The first record, sent once the firing log's stream is made sure of, beside the firing: that asks
        NATS and waits for the answer, which a firing must not (with credentials that may not manage streams the
        answer is a timeout). Tried once per process: the UI makes the stream too."""
        self._warned = 0.0

    async def __call__(self, resolved: Any, ctx: Any) -> Any:
        try:
            result = await self.fire(resolved, ctx)
        except errors.KneventsError as exc:
            await self._record(firings.outcome(self.sensor, resolved, ok=False, detail=str(exc), dry_run=ctx.dry_run))
            raise
        await self._record(firings.outcome(self.sensor, resolved, ok=True, detail=str(result.detail),
                                           dry_run=ctx.dry_run, status=result.status))
        return result

    async def _record(self, firing: firings.Firing) -> None:
        try:
            nc = await self.connect()
            if self._first is None:
                self._first = asyncio.create_task(self._ensure_then_send(nc, firing))
                return
            await firings.publish_nowait(nc, firing)
        except Exception as exc:  # history only: never fail a firing that ran for its record
            self._warn(firing, exc)

    async def _ensure_then_send(self, nc: Any, firing: firings.Firing) -> None:
        try:
            await firings.ensure_stream(nc.jetstream())
        except Exception as exc:
            self._warn(firing, exc)
        try:
            await firings.publish_nowait(nc, firing)
        except Exception as exc:
            self._warn(firing, exc)

    def _warn(self, firing: firings.Firing, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned >= _QUIET or not self._warned:
            self._warned = now
            log.warning("firing of %s/%s not recorded: %s", firing.sensor, firing.trigger, type(exc).__name__)
