"""The ``log`` trigger: write the firing's events to the log, as Argo's log trigger does.

One line per event (dependency, event context, data as text) on the
``knevents.triggers.log`` logger at INFO. ``intervalSeconds`` throttles it: at
most one firing is logged per interval per trigger (per replica); the others
are reported as skipped, not as failures.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from knevents import errors, events
from knevents.spec import models
from knevents.triggers import base

if TYPE_CHECKING:
    from knevents.sensors import engine

__all__ = ["TRIGGER", "LogTrigger"]

logger = logging.getLogger(__name__)


def _context(event: events.Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "source": event.source,
        "subject": event.subject,
        "type": event.type,
        "time": events.format_time(event.time) if event.time else None,
    }


class LogTrigger:
    """Logs every event of a firing; ``intervalSeconds`` limits how often."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last: dict[tuple[str, str], float] = {}

    async def execute(self, resolved: engine.Resolved, ctx: base.TriggerContext) -> base.TriggerResult:
        spec = resolved.spec.template.log
        if spec is None:
            raise errors.TriggerError("the trigger has no template.log section")
        interval = float(getattr(spec, "interval_seconds", None) or 0)
        key = (ctx.sensor_name, resolved.trigger)
        now = self._clock()
        last = self._last.get(key)
        if interval > 0 and last is not None and now - last < interval:
            return base.TriggerResult(
                resolved.trigger,
                resolved.kind,
                f"skipped: logged less than {interval:g}s ago (intervalSeconds)",
            )
        self._last[key] = now
        for dependency, event in sorted(resolved.events.items()):
            data = (event.data or b"").decode("utf-8", errors="replace")
            logger.info(
                "sensor %s trigger %s dependency %s event %s data %s",
                ctx.sensor_name,
                resolved.trigger,
                dependency,
                json.dumps(_context(event)),
                data,
            )
        return base.TriggerResult(resolved.trigger, resolved.kind, f"logged {len(resolved.events)} event(s)")


TRIGGER = base.TriggerKind(
    key="log",
    model=models.LogTrigger,
    executor=LogTrigger(),
    summary="writes the firing's events to the log (at most once per intervalSeconds)",
)
