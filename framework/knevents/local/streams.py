"""The runner's own JetStream streams: dead letters and the firing log that ``knevents status`` reads.

``KNEVENTS_DLQ`` holds events a sensor could not take after the allowed
deliveries (subject ``<bus>.dlq.<sensor>``). The bus stream already owns every
``<bus>.>`` subject and NATS forbids two streams to overlap, so dead letters are
published into the bus stream (no sensor consumer is filtered on them) and
``KNEVENTS_DLQ`` *sources* them from there: a separate stream to count, read and
purge, with its own retention. An EventSource must therefore not be named
``dlq``; the runner refuses it. ``KNEVENTS_FIRINGS`` keeps the
last firings per sensor (subject ``knevents.firings.<sensor>``, a few per
subject, older ones dropped by the server; defined in :mod:`knevents.bus.firings`, which the sensor function
shares). Both live in the runner's store, so they survive restarts. The bus stream itself belongs to :mod:`knevents.bus`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from knevents import errors
from knevents.bus import firings, naming

__all__ = [
    "DLQ_STREAM",
    "FIRINGS_STREAM",
    "Firing",
    "delete_dlq",
    "dlq_counts",
    "dlq_subject",
    "ensure",
    "firings_subject",
    "get_dlq",
    "last_firings",
    "read_dlq",
    "record_firing",
    "record_firing_nowait",
]

DLQ_STREAM = "KNEVENTS_DLQ"
FIRINGS_STREAM = firings.FIRINGS_STREAM
FIRINGS_KEPT = firings.FIRINGS_KEPT
Firing = firings.Firing
firings_subject = firings.firings_subject
RESERVED_SOURCE = "dlq"
"""The EventSource name that would collide with the dead-letter subjects."""


def _token(name: str) -> str:
    return naming.encode_token(name)


def dlq_subject(bus: str, sensor: str) -> str:
    """Where a sensor's dead letters go: ``<bus>.dlq.<sensor>``."""
    return f"{_token(bus)}.dlq.{_token(sensor)}"


async def ensure(js: Any, bus: str) -> None:
    """Create the DLQ (sourced from the bus stream) and firings streams; idempotent."""
    from nats.js import api

    source = api.StreamSource(name=naming.stream_name(bus), filter_subject=f"{_token(bus)}.dlq.>")
    try:
        info = await js.stream_info(DLQ_STREAM)
    except Exception:
        await js.add_stream(api.StreamConfig(
            name=DLQ_STREAM, sources=[source], storage=api.StorageType.FILE, max_age=7 * 24 * 3600.0,
        ))
    else:
        known = {(s.name, s.filter_subject) for s in info.config.sources or []}
        if (source.name, source.filter_subject) not in known:  # another bus on the same store
            await js.update_stream(info.config.evolve(sources=[*(info.config.sources or []), source]))
    await firings.ensure_stream(js)


async def record_firing(js: Any, firing: Firing) -> None:
    """Append a firing to the log (best effort: the caller logs a failure, the trigger already ran)."""
    await js.publish(firings_subject(firing.sensor), firing.to_bytes(), stream=FIRINGS_STREAM)


async def record_firing_nowait(nc: Any, firing: Firing) -> None:
    """Append a firing without waiting for the stream's ack (the runner's hot path).

    A firing record is history for ``status`` and the UI, not a delivery guarantee:
    if the server went away before storing it, only that line is missing. Not
    waiting saves a round trip per firing; the client's flusher batches the writes.
    """
    await firings.publish_nowait(nc, firing)


async def last_firings(js: Any, sensor: str, limit: int = 5) -> list[Firing]:
    """The newest ``limit`` firings of a sensor, newest first."""
    subject = firings_subject(sensor)
    try:
        info = await js.stream_info(FIRINGS_STREAM, subjects_filter=subject)
    except Exception:
        return []
    count = (info.state.subjects or {}).get(subject, 0)
    if not count:
        return []
    out: list[Firing] = []
    seq = int(info.state.first_seq or 1)
    # Walk forward over this subject only (at most FIRINGS_KEPT messages), keep the newest.
    for _ in range(count):
        try:
            msg = await js.get_msg(FIRINGS_STREAM, seq=seq, subject=subject, next=True)
        except Exception:
            break
        if msg.data is not None:
            out.append(Firing.from_bytes(msg.data))
        seq = int(msg.seq or seq) + 1
    return list(reversed(out))[:limit]


async def dlq_counts(js: Any, bus: str) -> dict[str, int]:
    """Dead letters held per sensor token."""
    try:
        info = await js.stream_info(DLQ_STREAM, subjects_filter=f"{_token(bus)}.dlq.*")
    except Exception:
        return {}
    return {
        naming.decode_token(subject.rsplit(".", 1)[-1]): n for subject, n in (info.state.subjects or {}).items()
    }


async def read_dlq(js: Any, bus: str, limit: int = 100) -> AsyncIterator[tuple[int, dict[str, str], bytes]]:
    """``(sequence, headers, data)`` of the dead letters of ``bus``, oldest first, at most ``limit``."""
    subject = f"{_token(bus)}.dlq.*"
    try:
        info = await js.stream_info(DLQ_STREAM)
    except Exception:
        return
    seq = int(info.state.first_seq or 1)
    for _ in range(limit):
        try:
            msg = await js.get_msg(DLQ_STREAM, seq=seq, subject=subject, next=True)
        except Exception:  # no message at or after seq
            return
        yield int(msg.seq or seq), dict(msg.headers or {}), msg.data or b""
        seq = int(msg.seq or seq) + 1


async def get_dlq(js: Any, seq: int) -> tuple[dict[str, str], bytes]:
    """One dead letter by sequence; KneventsError when it is gone."""
    try:
        msg = await js.get_msg(DLQ_STREAM, seq=seq)
    except Exception as exc:
        raise errors.KneventsError(f"no dead letter {seq}: {exc}") from exc
    return dict(msg.headers or {}), msg.data or b""


async def delete_dlq(js: Any, seq: int) -> None:
    """Remove one dead letter (after a replay, or discarded by the user)."""
    try:
        await js.delete_msg(DLQ_STREAM, seq)
    except Exception as exc:
        raise errors.KneventsError(f"cannot remove dead letter {seq}: {exc}") from exc
