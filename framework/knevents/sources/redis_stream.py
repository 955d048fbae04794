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


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def entry_data(stream: str, message_id: str, values: dict[Any, Any], metadata: dict[str, str] | None) -> bytes:
    """The event data of one stream entry, in Argo's field order."""
    fields = {_text(k): _text(v) for k, v in values.items()}
    parts = ['{"stream":', json.dumps(stream, ensure_ascii=False), ',"message_id":', json.dumps(message_id),
             ',"values":', json.dumps(dict(sorted(fields.items())), ensure_ascii=False)]
    parts += [common.metadata_member(metadata), "}"]
    return "".join(parts).encode()


class RedisStreamSource:
    """One ``redisStream`` entry: XREADGROUP, publish, XACK what the bus accepted."""

    def __init__(self, event_name: str, config: Any, ctx: base.SourceContext) -> None:
        where = f"redisStream.{event_name}"
        common.refuse(check(config, where))
        self.event_name = event_name
        self._config = config
        self._ctx = ctx
        self._group = config.consumer_group or DEFAULT_GROUP
        self._count = config.max_msg_count_per_read or 10
        self._metadata = dict(config.metadata) if config.metadata else None
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
        while not stop.is_set():
            reply: Any = await client.xreadgroup(self._group, CONSUMER, cursors,  # type: ignore[arg-type]
                                                 count=self._count, block=500)
            for raw_stream, entries in reply or []:
                stream = _text(raw_stream)
                if not entries and cursors[stream] != ">":
                    cursors[stream] = ">"  # no pending entry left: read new ones
                    continue
                done, last = await self._publish_entries(stream, entries, publish)
                if done:
                    await client.xack(stream, self._group, *done)
                if last is None:  # the bus refused one: read the pending list again after a pause
                    cursors[stream] = "0-0"
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 1.0)
                elif cursors[stream] != ">":
                    cursors[stream] = last

    async def _publish_entries(self, stream: str, entries: list[Any], publish: base.Publish) -> tuple[list[str], str | None]:
        """Publish entries pipelined, in stream order; the ids to XACK and the last id, ``None`` when the bus refused one."""
        ids = [_text(message_id) for message_id, _ in entries]
        try:
            await base.publish_batch(publish, [self._event_of(stream, i, v or {})
                                               for i, (_, v) in zip(ids, entries, strict=True)])
        except errors.BatchRefusedError as exc:
            log.error("redisStream %s: the bus refused entry %s of %s; it and the entries after it stay pending: %s",
                      self.event_name, ids[exc.done], stream, exc)
            return ids[:exc.done], None
        return ids, ids[-1]

    def _event_of(self, stream: str, message_id: str, values: dict[Any, Any]) -> events.Event | None:
        """The event of one entry, or ``None`` when it is skipped (and acknowledged) for good."""
        try:
            data = entry_data(stream, message_id, values, self._metadata)
        except Exception as exc:  # an entry we cannot convert must not block the stream
            self._reject("poison", f"{stream} {message_id}: {type(exc).__name__}: {exc}")
            return None
        if len(data) > MAX_DATA:
            self._reject("too_large", f"{stream} {message_id}: {len(data)} bytes of event data, limit {MAX_DATA}")
            return None
        trace = common.traceparent(_text(values.get(b"traceparent", b"")) or None)
        return events.new_event(source=self._ctx.event_source_name, subject=self.event_name, type="redisstream",
                                data=data, id=f"{self._ctx.event_source_name}:{self.event_name}:{stream}:{message_id}",
                                extensions={"traceparent": trace} if trace else None)

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
