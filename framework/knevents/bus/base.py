"""The publisher contract every bus adapter implements.

An event source hands each event to a :class:`Publisher`; ``publish`` returns
only once the bus accepted the event (broker 2xx, JetStream ack) and raises
:class:`knevents.errors.BusUnavailableError` otherwise, so the caller can answer
5xx and let its own caller retry. Nothing here does I/O.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from knevents import events

__all__ = ["Publisher"]


@runtime_checkable
class Publisher(Protocol):
    """Where an event source puts its events."""

    async def publish(self, event: events.Event) -> None:
        """Return when the bus accepted ``event``; raise BusUnavailableError when it did not."""
        ...
