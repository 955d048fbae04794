"""The in-memory twin of a bus publisher, for tests, ``knevents test`` and dry runs.

It keeps every accepted event in order; ``fail`` makes it refuse events the way a
broker that is down would (raising :class:`errors.BusUnavailableError`).
"""

from __future__ import annotations

from knevents import errors, events

__all__ = ["MemoryPublisher"]


class MemoryPublisher:
    """Collects published events in a list."""

    def __init__(self) -> None:
        self.events: list[events.Event] = []
        self.fail = False

    async def publish(self, event: events.Event) -> None:
        """Append ``event``, or raise BusUnavailableError while ``fail`` is set."""
        if self.fail:
            raise errors.BusUnavailableError(f"memory bus refused event {event.id} (fail is set)")
        self.events.append(event)

    async def close(self) -> None:
        """Nothing to release."""
