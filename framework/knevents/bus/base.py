"""The publisher contract every bus adapter implements.

An event source hands each event to a :class:`Publisher`; ``publish`` returns
only once the bus accepted the event (broker 2xx, JetStream ack) and raises
:class:`knevents.errors.BusUnavailableError` otherwise, so the caller can answer
5xx and let its own caller retry. Nothing here does I/O.

A publisher may also have ``publish_many(batch) -> list[BaseException | None]``
(:class:`BatchPublisher`): send every event of a batch in order without waiting
for each acceptance in between, then report per event ``None`` (accepted) or the
error. The source runtime uses it for pull sources' batches when present.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from knevents import events

__all__ = ["BatchPublisher", "Publisher"]


@runtime_checkable
class Publisher(Protocol):
    """Where an event source puts its events."""

    async def publish(self, event: events.Event) -> None:
        """Return when the bus accepted ``event``; raise BusUnavailableError when it did not."""
        ...


@runtime_checkable
class BatchPublisher(Publisher, Protocol):
    """A publisher that pipelines a batch: sends all of it in order, then collects every acceptance."""

    async def publish_many(self, batch: Sequence[events.Event]) -> list[BaseException | None]:
        """Per event of ``batch``: ``None`` when accepted, else EventTooLargeError or BusUnavailableError."""
        ...
