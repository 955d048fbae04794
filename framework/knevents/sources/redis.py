"""The ``redis`` event source: Argo's RedisEventSource, a Redis pub/sub subscription.

Each message on one of the ``channels`` becomes one event with Argo's
``RedisEventData``: ``{"channel", "pattern", "body", "metadata"?}``. Argo
subscribes with SUBSCRIBE (channel names, not patterns), so ``pattern`` is
``""``. ``body`` is the payload as a string, or its JSON with ``jsonBody``
(a payload that is not JSON is skipped, logged and counted: Argo cannot marshal
it either).

**Pub/sub has no redelivery.** Redis hands a message to the subscribers
connected at that moment and forgets it: a message published while the source
is disconnected (restart, scale from zero, broker restart) is gone, and one the
bus refuses cannot be asked for again (it is logged and counted as failed, as
in Argo). Use ``redisStream`` when events must not be lost. ``namespace`` is
Argo's deprecated field for where to read the password Secret; knevents reads
Secrets from the function's own mounts, so it is accepted and unused. redis-py
is imported lazily.
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
    from redis.asyncio.client import PubSub

__all__ = ["SOURCE", "RedisSource", "check", "create", "message_data"]

log = logging.getLogger(__name__)

MAX_DATA = 1008 * 1024
"""Bytes of event data a message may become (NATS takes 1 MiB per message, headers included)."""


def message_data(channel: str, payload: bytes, *, json_body: bool, metadata: dict[str, str] | None) -> bytes | None:
    """The event data of one message, or ``None`` when ``json_body`` is set and it is not JSON."""
    if json_body:
        body = common.json_text(payload)
        if body is None:
            return None
    else:
        body = json.dumps(payload.decode("utf-8", "replace"), ensure_ascii=False)
    parts = ['{"channel":', json.dumps(channel, ensure_ascii=False), ',"pattern":""', ',"body":', body]
    parts += [common.metadata_member(metadata), "}"]
    return "".join(parts).encode()


class RedisSource:
    """One ``redis`` entry: SUBSCRIBE, publish each message as it arrives."""

    def __init__(self, event_name: str, config: Any, ctx: base.SourceContext) -> None:
        where = f"redis.{event_name}"
        common.refuse(check(config, where))
        self.event_name = event_name
        self._config = config
        self._ctx = ctx
        self._json = bool(config.json_body)
        self._metadata = dict(config.metadata) if config.metadata else None
        self._reconnect = reconnect.Reconnect(None, f"{where}.connection")

    def not_ready(self) -> str | None:
        """Why this source is not subscribed now, or ``None``."""
        return self._reconnect.waiting

    async def run(self, publish: base.Publish, stop: asyncio.Event) -> None:
        """Subscribe until ``stop`` is set; subscribe again whenever the server is lost."""
        while not stop.is_set():
            client = await redis_client.connect_retrying(self._config, self._ctx, self._reconnect, stop)
            if client is None:
                return
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(*self._config.channels)
                self._reconnect.connected()
                log.info("redis %s: subscribed to %s", self.event_name, ", ".join(self._config.channels))
                await self._listen(pubsub, publish, stop)
            except redis_client.errors() as exc:
                log.warning("redis %s: subscription lost (%r); messages published meanwhile are lost "
                            "(pub/sub has no redelivery)", self.event_name, exc)
                await self._reconnect.wait(f"redis {self._config.host_address}: {exc!r}", stop)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                with contextlib.suppress(Exception):
                    await client.aclose()

    async def _listen(self, pubsub: PubSub, publish: base.Publish, stop: asyncio.Event) -> None:
        while not stop.is_set():
            message = await pubsub.get_message(timeout=0.5)
            if message is None or message.get("type") != "message":
                continue
            channel = common_text(message["channel"])
            payload = message["data"] if isinstance(message["data"], bytes) else str(message["data"]).encode()
            await self._handle(channel, payload, publish)

    async def _handle(self, channel: str, payload: bytes, publish: base.Publish) -> None:
        data = message_data(channel, payload, json_body=self._json, metadata=self._metadata)
        if data is None:
            self._reject("malformed", f"message on {channel}: jsonBody is set but the payload is not JSON")
            return
        if len(data) > MAX_DATA:
            self._reject("too_large", f"message on {channel}: {len(data)} bytes of event data, limit {MAX_DATA}")
            return
        event = events.new_event(source=self._ctx.event_source_name, subject=self.event_name, type="redis", data=data)
        try:
            await publish(event)
        except errors.BusUnavailableError as exc:
            log.error("redis %s: message on %s lost, the bus refused it (pub/sub cannot redeliver): %s",
                      self.event_name, channel, exc)

    def _reject(self, reason: str, why: str) -> None:
        common.rejected(self._ctx.event_source_name, self.event_name, reason)
        log.error("redis %s: message skipped (%s): %s", self.event_name, reason, why)


def common_text(value: Any) -> str:
    """A channel name from redis-py (bytes or str) as text."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def check(config: models.RedisEventSource, path: str) -> Iterator[tuple[str, str]]:
    """Argo's ``validate.go`` rules: a host address and at least one channel."""
    yield from redis_client.check_address(config, path)
    if not config.channels:
        yield f"{path}.channels", "a redis event source needs at least one channel"


def create(event_name: str, config: models.RedisEventSource, ctx: base.SourceContext) -> base.Source:
    """Factory for the ``redis`` spec key."""
    return RedisSource(event_name, config, ctx)


SOURCE = base.SourceType(
    key="redis",
    model=models.RedisEventSource,
    factory=create,
    # pub/sub gives every subscriber every message: a second replica would publish each twice
    knative=base.always(base.Knative.ONE_REPLICA),
    check=check,
    data='{"channel", "pattern", "body": <JSON with jsonBody, else the text>, "metadata"?}',
)
