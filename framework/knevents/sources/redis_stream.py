"""The ``redisStream`` event source: Argo's RedisStreamEventSource, XACK only after the bus accepted.

Every entry of the ``streams`` becomes one event with Argo's
``RedisStreamEventData``: ``{"stream", "message_id", "values", "metadata"?}``
(``values`` the entry's fields as strings, keys sorted as Go marshals a map).

As in Argo, one consumer group (``consumerGroup``, default ``argo-events-cg``)
is created on every stream at ``$`` (new entries only) when it does not exist,
and the source reads as the consumer ``argo-events-worker``: first its own
pending entries (read before, never acknowledged: a crash between publish and
XACK), from ``0-0``, then new ones (``>``), ``maxMsgCountPerRead`` at a time
(default 10). So a restarted source claims again what a killed one had in
hand; those entries are published again with the same event id
(``eventSource:event:stream:message_id``) and dropped downstream as copies.

Differences from Argo, each because Argo loses entries there: a stream that
does not exist yet is created with the group (``MKSTREAM``) instead of failing
the source; an entry the bus refuses is not acknowledged and is read again from
the pending list after a pause (Argo moves on); the connection is retried with
backoff (Argo has none for Redis) while ``/health`` says why. redis-py is
imported lazily.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from knevents import errors, events
from knevents.sources import base, common, reconnect, redis_client
from knevents.spec import models

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["CONSUMER", "DEFAULT_GROUP", "SOURCE", "RedisStreamSource", "check", "create", "entry_data"]

log = logging.getLogger(__name__)

DEFAULT_GROUP = "argo-events-cg"
CONSUMER = "argo-events-worker"
"""Argo's consumer name: one per group, so a restarted source finds its own pending entries."""
MAX_DATA = 1008 * 1024
"""Bytes of event data an entry may become (NATS takes 1 MiB per message, headers included)."""
_PAUSE = 1.0
"""Seconds before the pending list is read again after the bus refused an event."""
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
"""Built once: ``json.dumps`` with options builds an encoder per call."""


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def entry_data(stream: str, message_id: str, values: dict[Any, Any], metadata: dict[str, str] | None) -> bytes:
    """The event data of one stream entry, in Argo's field order (``metadata`` keys sorted by the caller)."""
    try:  # the common case: redis-py's bytes, valid UTF-8; sorted by bytes as Go sorts its string keys
        fields = {k.decode(): v.decode() for k, v in sorted(values.items())}
    except (AttributeError, UnicodeDecodeError):
        fields = {_text(k): _text(v) for k, v in sorted(values.items(), key=lambda kv: _text(kv[0]))}
    data: dict[str, Any] = {"stream": stream, "message_id": message_id, "values": fields}
    if metadata:
        data["metadata"] = metadata
    return _JSON.encode(data).encode()


class RedisStreamSource:
    """One ``redisStream`` entry: XREADGROUP, publish, XACK what the bus accepted.

    The next read is sent before the current batch is published, so Redis and the bus work at the same
    time; at most one batch is read ahead (its entries are pending, so a crash loses none of them), and
    at most one XACK is in flight (awaited before the next is sent, and before the pending list is read).
    """

    def __init__(self, event_name: str, config: Any, ctx: base.SourceContext) -> None:
        where = f"redisStream.{event_name}"
        common.refuse(check(config, where))
        self.event_name = event_name
        self._config = config
        self._ctx = ctx
        self._group = config.consumer_group or DEFAULT_GROUP
        self._count = config.max_msg_count_per_read or 10
        self._metadata = dict(sorted(config.metadata.items())) if config.metadata else None
        self._id_prefix = f"{ctx.event_source_name}:{event_name}:"
        self._reconnect = reconnect.Reconnect(None, f"{where}.connection")

    def not_ready(self) -> str | None:
        """Why this source cannot consume now, or ``None``."""
        return self._reconnect.waiting

    async def run(self, publish: base.Publish, stop: asyncio.Event) -> None:
        """Read until ``stop`` is set; reconnect whenever the server is lost."""
        while not stop.is_set():
            client = await redis_client.connect_retrying(self._config, self._ctx, self._reconnect, stop)
            if client is None:
                return
            try:
                await self._consume(client, publish, stop)
            except redis_client.lost_group() as exc:  # NOGROUP: the server forgot the group (restart, no persistence)
                if "NOGROUP" not in str(exc):
                    raise
                log.warning("redisStream %s: %s; creating the group again", self.event_name, exc)
            except redis_client.errors() as exc:
                log.warning("redisStream %s: connection lost (%r); reconnecting", self.event_name, exc)
                await self._reconnect.wait(f"redis {self._config.host_address}: {exc!r}", stop)
            finally:
                with contextlib.suppress(Exception):
                    await client.aclose()

    async def _consume(self, client: Redis, publish: base.Publish, stop: asyncio.Event) -> None:
        import redis.exceptions

        for stream in self._config.streams:
            with contextlib.suppress(redis.exceptions.ResponseError):  # BUSYGROUP: it exists already
                await client.xgroup_create(stream, self._group, id="$", mkstream=True)
        cursors = dict.fromkeys(self._config.streams, "0-0")  # pending entries first, as Argo
        self._reconnect.connected()
        log.info("redisStream %s: reading %s as %s/%s", self.event_name, ", ".join(cursors), self._group, CONSUMER)
        reading = asyncio.ensure_future(self._read(client, cursors))
        acking: asyncio.Future[Any] | None = None
        try:
            while not stop.is_set():
                batches = self._advance(cursors, await reading)
                reading = asyncio.ensure_future(self._read(client, cursors))  # the read-ahead
                acking, left = await self._publish_batches(client, batches, publish, acking)
                if left:  # drop the read-ahead (its entries stay pending) and read the pending lists again
                    await self._settle(reading, acking)
                    acking = None
                    cursors = dict.fromkeys(cursors, "0-0")
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), _PAUSE)
                    # first only the refused entry and the rest of its read, as without the read-ahead: the
                    # read-ahead's entries (pending too) follow once the bus took it, so it is not stored after them
                    reading = asyncio.ensure_future(self._read(client, cursors, left))
        finally:
            reading.cancel()  # at a stop its entries are pending: the next start reads them first
            await self._settle(reading, acking)

    async def _read(self, client: Redis, cursors: dict[str, str], count: int | None = None) -> Any:
        return await client.xreadgroup(self._group, CONSUMER, dict(cursors),  # type: ignore[arg-type]
                                       count=count or self._count, block=500)

    @staticmethod
    def _advance(cursors: dict[str, str], reply: Any) -> list[tuple[str, list[Any]]]:
        """The non-empty batches of ``reply``; moves ``cursors`` past them (``>`` once a pending list is empty)."""
        batches = []
        for raw_stream, entries in reply or []:
            stream = _text(raw_stream)
            if cursors[stream] != ">":
                cursors[stream] = _text(entries[-1][0]) if entries else ">"
            if entries:
                batches.append((stream, entries))
        return batches

    async def _publish_batches(self, client: Redis, batches: list[tuple[str, list[Any]]], publish: base.Publish,
                               acking: asyncio.Future[Any] | None) -> tuple[asyncio.Future[Any] | None, int]:
        """Publish each stream's batch and XACK what was accepted.

        Returns the XACK in flight and how many entries of a batch the bus refused (0: none; it stops at the
        first such batch).
        """
        for stream, entries in batches:
            done = await self._publish_entries(stream, entries, publish)
            if done:
                if acking is not None:
                    await acking  # one XACK in flight at a time
                acking = asyncio.ensure_future(client.xack(stream, self._group, *done))
            if len(done) < len(entries):
                return acking, len(entries) - len(done)
        return acking, 0

    async def _settle(self, reading: asyncio.Future[Any], acking: asyncio.Future[Any] | None) -> None:
        """Wait for the read-ahead (its reply is dropped: the entries stay pending) and the XACK in flight.

        Their errors are logged, not raised: an entry whose XACK failed is read again from the pending list
        and its copy dropped by id. Only this task's own cancellation propagates.
        """
        for future in (reading, acking):
            if future is None:
                continue
            await asyncio.wait([future])
            if not future.cancelled() and future.exception() is not None:
                log.warning("redisStream %s: %r while stopping a read or an XACK", self.event_name,
                            future.exception())

    async def _publish_entries(self, stream: str, entries: list[Any], publish: base.Publish) -> list[str]:
        """Publish entries pipelined, in stream order; the ids to XACK (all but a refused one and those after it)."""
        ids = [_text(message_id) for message_id, _ in entries]
        try:
            await base.publish_batch(publish, self._events_of(stream, ids, entries))
        except errors.BatchRefusedError as exc:
            log.error("redisStream %s: the bus refused entry %s of %s; it and the entries after it stay pending: %s",
                      self.event_name, ids[exc.done], stream, exc)
            return ids[:exc.done]
        return ids

    def _events_of(self, stream: str, ids: list[str], entries: list[Any]) -> list[events.Event | None]:
        """One slot per entry: its event, or ``None`` when it is skipped (and acknowledged) for good."""
        out: list[events.Event | None] = []
        prefix, source = f"{self._id_prefix}{stream}:", self._ctx.event_source_name
        for message_id, (_, values) in zip(ids, entries, strict=True):
            values = values or {}
            try:
                data = entry_data(stream, message_id, values, self._metadata)
            except Exception as exc:  # an entry we cannot convert must not block the stream
                self._reject("poison", f"{stream} {message_id}: {type(exc).__name__}: {exc}")
                out.append(None)
                continue
            if len(data) > MAX_DATA:
                self._reject("too_large", f"{stream} {message_id}: {len(data)} bytes of event data, limit {MAX_DATA}")
                out.append(None)
                continue
            trace = values.get(b"traceparent")
            trace = common.traceparent(_text(trace)) if trace else None
            out.append(events.Event(id=prefix + message_id, source=source, subject=self.event_name, type="redisstream",
                                    time=datetime.now(UTC), data=data,
                                    extensions={"traceparent": trace} if trace else {}))
        return out

    def _reject(self, reason: str, why: str) -> None:
        common.rejected(self._ctx.event_source_name, self.event_name, reason)
        log.error("redisStream %s: entry skipped and acknowledged (%s): %s", self.event_name, reason, why)


def check(config: models.RedisStreamEventSource, path: str) -> Iterator[tuple[str, str]]:
    """Argo's ``validate.go`` rules: a host address and at least one stream."""
    yield from redis_client.check_address(config, path)
    if not config.streams:
        yield f"{path}.streams", "a redisStream event source needs at least one stream"
    if config.max_msg_count_per_read is not None and config.max_msg_count_per_read < 0:
        yield f"{path}.maxMsgCountPerRead", "maxMsgCountPerRead cannot be negative"


def create(event_name: str, config: models.RedisStreamEventSource, ctx: base.SourceContext) -> base.Source:
    """Factory for the ``redisStream`` spec key."""
    return RedisStreamSource(event_name, config, ctx)


SOURCE = base.SourceType(
    key="redisStream",
    model=models.RedisStreamEventSource,
    factory=create,
    # one replica: every replica would read as Argo's one consumer name, and each would re-read the
    # shared pending list at start (duplicates); see docs/event-sources.md
    knative=base.always(base.Knative.ONE_REPLICA),
    check=check,
    data='{"stream", "message_id", "values": {field: value}, "metadata"?}',
)
