"""Archive and replay: the bus stream holds every event; read a window of it back and re-deliver it to one sensor.

The bus stream is the archive (its retention is the EventBus's). :func:`archived`
reads the events of a time window that one sensor's dependencies match.
:func:`replay` publishes them again on the sensor's own replay subject
``<bus>.replay.<sensor>.events`` — four tokens, so no EventSource/event subject
(three tokens) can ever equal it, and only that sensor's durable consumer is
filtered on it. A replayed event keeps its id and carries the ``knreplay``
extension (a replay id; ``knreplaytrigger`` when one trigger was asked for):
the sensor runtime dedupes it under ``<id>~<replay id>``, so it is not dropped as
a duplicate of the original, yet a redelivery of the same replay still is.
:func:`explain` is the dry run: the sensor's engine over the window, in memory,
with nothing published — "why didn't my sensor fire yesterday?".
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from knevents import errors, events, testing
from knevents.bus import codec, naming
from knevents.runtime import sensor as sensor_runtime

__all__ = [
    "REPLAY_EXTENSION",
    "REPLAY_TRIGGER_EXTENSION",
    "Archived",
    "Window",
    "archived",
    "explain",
    "replay",
    "replay_subject",
    "sensor_subjects",
]

REPLAY_EXTENSION = sensor_runtime.REPLAY_EXTENSION
"""CloudEvent extension naming the replay an event belongs to (the sensor runtime dedupes by it)."""
REPLAY_TRIGGER_EXTENSION = sensor_runtime.REPLAY_TRIGGER_EXTENSION
"""CloudEvent extension restricting a replayed event to one trigger of the sensor."""
_BATCH = 256
"""Messages fetched per request while reading the archive."""


def replay_subject(bus: str, sensor: str) -> str:
    """The subject only ``sensor``'s consumer listens to for replays."""
    return f"{naming.encode_token(bus)}.replay.{naming.encode_token(sensor)}.events"


@dataclass(frozen=True)
class Window:
    """Which archived events to take: a time range, optionally one EventSource and event."""

    start: datetime
    end: datetime | None = None
    source: str | None = None
    event_name: str | None = None
    limit: int = 10_000
    """At most this many events (a replay is a deliberate act, not a bulk copy)."""


@dataclass(frozen=True)
class Archived:
    """One event read back from the bus stream, with its stream sequence."""

    seq: int
    event: events.Event


def sensor_subjects(bus: str, sensor: Any, window: Window) -> list[str]:
    """The bus subjects of ``sensor``'s dependencies, narrowed to the window's source/event."""
    subjects = set()
    for dep in sensor.spec.dependencies or []:
        if window.source is not None and dep.event_source_name != window.source:
            continue
        if window.event_name is not None and dep.event_name != window.event_name:
            continue
        subjects.add(naming.subject(bus, dep.event_source_name, dep.event_name))
    return sorted(subjects)


async def archived(js: Any, bus: str, subjects: Sequence[str], window: Window) -> AsyncIterator[Archived]:
    """The events on ``subjects`` published in the window, oldest first (stops at ``window.limit``)."""
    if not subjects:
        return
    from nats.js import api

    config = api.ConsumerConfig(
        deliver_policy=api.DeliverPolicy.BY_START_TIME,
        opt_start_time=window.start,
        ack_policy=api.AckPolicy.NONE,
        filter_subjects=list(subjects) if len(subjects) > 1 else None,
        filter_subject=subjects[0] if len(subjects) == 1 else None,
        inactive_threshold=30.0,
        mem_storage=True,
    )
    try:
        sub = await _ephemeral(js, bus, config)
    except Exception as exc:
        raise errors.KneventsError(f"cannot read the archive of bus {bus!r}: {exc}") from exc
    taken = 0
    try:
        while taken < window.limit:
            try:
                batch = await sub.fetch(min(_BATCH, window.limit - taken), timeout=1.0)
            except TimeoutError:
                return
            for msg in batch:
                when = msg.metadata.timestamp
                if window.end is not None and when is not None and when > window.end:
                    return
                try:
                    event = codec.decode_nats(msg.headers, msg.data)
                except errors.EventError:
                    continue  # not an event (it was never deliverable either)
                taken += 1
                yield Archived(int(msg.metadata.sequence.stream), event)
                if taken >= window.limit:
                    return
            if batch and int(batch[-1].metadata.num_pending or 0) == 0:
                return
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


async def _ephemeral(js: Any, bus: str, config: Any) -> Any:
    """An ephemeral pull consumer on the bus stream (nats-py creates it from the config)."""
    subject = config.filter_subject or naming.subject_filter(bus)
    return await js.pull_subscribe(subject, durable=None, stream=naming.stream_name(bus), config=config)


async def replay(js: Any, bus: str, sensor: str, found: Sequence[events.Event], *,
                 trigger: str | None = None) -> str:
    """Publish ``found`` again for ``sensor`` only; returns the replay id carried by every event."""
    replay_id = uuid.uuid4().hex[:16]
    subject = replay_subject(bus, sensor)
    for event in found:
        extensions = {**event.extensions, REPLAY_EXTENSION: replay_id}
        if trigger:
            extensions[REPLAY_TRIGGER_EXTENSION] = trigger
        headers, body = codec.encode_nats(dataclasses.replace(event, extensions=extensions))
        # The original id is inside the stream's duplicate window: a message id of its own, or it is dropped.
        headers[codec.MSG_ID_HEADER] = f"replay-{replay_id}-{event.id}"
        try:
            await js.publish(subject, body, headers=headers, stream=naming.stream_name(bus))
        except Exception as exc:
            raise errors.BusUnavailableError(f"the bus did not accept replayed event {event.id}: {exc}") from exc
    return replay_id


def explain(sensor: Any, found: Sequence[events.Event], trigger: str | None = None) -> testing.Simulation:
    """The sensor's engine over ``found``, in memory (nothing fires): a ``knevents test`` simulation."""
    raw = sensor.model_dump(by_alias=True, exclude_none=True, mode="json")
    run = testing.Simulation(raw)
    for index, event in enumerate(found):
        step = run.feed(events.to_json(event), index)
        if trigger:
            step["fired"] = [f for f in step["fired"] if f["trigger"] == trigger]
    return run
