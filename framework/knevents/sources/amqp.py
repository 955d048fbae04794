"""The ``amqp`` event source: consume a RabbitMQ (AMQP 0-9-1) queue bound to an exchange, as Argo's does.

Set-up is Argo's: declare the exchange (``exchangeName``/``exchangeType``,
``exchangeDeclare``), declare the queue (``queueDeclare``, default a
server-named exclusive queue; ``arguments`` is YAML text), bind it with
``routingKey`` (``queueBind``) and consume (``consume``). Each delivery becomes
one event whose data is Argo's ``AMQPEventData`` (see :func:`message_data`).

Delivery: the deliveries already received are published as one pipelined
batch (at most the prefetch window); unless ``consume.autoAck`` is true, a
message is acked only after the bus accepted its event (one ``multiple`` ack
per batch); while the bus refuses, the refused event and those after it are
retried (0.5 s doubling to 60 s; unacked, so the prefetch window stops the
flow), and a connection lost meanwhile hands them back to the queue. Argo acks on
delivery when ``consume`` is absent; knevents acks after publishing then too.
A message that cannot become an event (``jsonBody`` but not JSON, larger than
the bus takes) is logged, counted and rejected without requeue, so a
dead-letter exchange set in ``queueDeclare.arguments`` receives it.

The event id derives from the AMQP ``message-id`` property when the publisher
sets one, so a redelivery dedupes in the sensor. Connecting retries with
``connectionBackoff`` for ever; ``/health`` says why meanwhile. ``aiormq`` (the
AMQP core under aio-pika, a fifth of its import time) is imported lazily.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import yaml

from knevents import errors, events
from knevents.sources import base, common, reconnect, tls, wire
from knevents.spec import models

if TYPE_CHECKING:
    from aiormq.abc import AbstractChannel, AbstractConnection, DeliveredMessage

__all__ = ["MAX_DATA", "PREFETCH", "SOURCE", "AmqpSource", "create", "message_data"]

log = logging.getLogger(__name__)

MAX_DATA = 1008 * 1024
"""Bytes of event data the source publishes at most: the bus (NATS) takes 1 MiB with the event's headers."""
PREFETCH = 64
"""Deliveries in flight while acking after publish: bounds the redeliveries after a crash."""


def message_data(message: DeliveredMessage, *, json_body: bool, metadata: dict[str, str] | None) -> bytes | None:
    """Argo's ``AMQPEventData`` of one delivery (plus ``headers``), ``None`` when ``json_body`` and not JSON."""
    props = message.header.properties
    if json_body:
        body = wire.raw_json(message.body)
        if body is None:
            return None
    else:
        body = wire.base64_json(message.body)
    fields = {
        "contentType": props.content_type or "",
        "contentEncoding": props.content_encoding or "",
        "deliveryMode": int(props.delivery_mode or 0),
        "priority": int(props.priority or 0),
        "correlationId": props.correlation_id or "",
        "replyTo": props.reply_to or "",
        "expiration": props.expiration or "",
        "messageId": props.message_id or "",
        "timestamp": wire.go_time(props.timestamp),
        "type": props.message_type or "",
        "appId": props.app_id or "",
        "exchange": message.exchange or "",
        "routingKey": message.routing_key or "",
        "headers": wire.plain(props.headers or {}),
    }
    head = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))[:-1]
    tail = "}" if not metadata else ',"metadata":' + json.dumps(metadata, ensure_ascii=False) + "}"
    return (head + ',"body":' + body + tail).encode()


class AmqpSource:
    """One ``amqp`` entry: a queue bound to an exchange, consumed until stopped."""

    def __init__(self, event_name: str, config: Any, ctx: base.SourceContext) -> None:
        where = f"amqp.{event_name}"
        if bool(config.url) == (config.url_secret is not None):
            raise errors.SpecError(f"{where}: set exactly one of url and urlSecret")
        if not config.routing_key:
            raise errors.SpecError(f"{where}.routingKey is required")
        if not config.exchange_type:
            raise errors.SpecError(f"{where}.exchangeType is required")
        self.event_name = event_name
        self._where = where
        self._config = config
        self._ctx = ctx
        self._json = bool(config.json_body)
        self._metadata = dict(config.metadata) if config.metadata else None
        consume = config.consume
        # Argo: no `consume` block means autoAck; knevents acks after publishing instead (nothing lost).
        self._auto_ack = bool(consume.auto_ack) if consume is not None else False
        self._queue_args = _queue_arguments(config.queue_declare, where)
        self._tls = tls.client_context(config.tls, ctx.secrets, f"{where}.tls")
        self._retry = reconnect.Reconnect(config.connection_backoff, f"{where}.connectionBackoff")
        self._shown = "(urlSecret)"
        self._hidden: list[str] = []

    def not_ready(self) -> str | None:
        """Why the source is not consuming, ``None`` when it is."""
        return self._retry.waiting

    def _url(self) -> str:
        config, secrets = self._config, self._ctx.secrets
        from yarl import URL

        raw = config.url or common.read_secret(secrets, config.url_secret, f"{self._where}.urlSecret")
        url = URL(raw.strip())
        self._shown = str(url.with_password(None).with_user(None)) if url.user else str(url)
        if config.auth is not None:  # Argo: auth replaces any credentials of the URL
            user = common.read_secret(secrets, config.auth.username, f"{self._where}.auth.username")
            password = common.read_secret(secrets, config.auth.password, f"{self._where}.auth.password")
            url = url.with_user(user).with_password(password)
        self._hidden = [v for v in (url.password, raw) if v]
        return str(url)

    async def run(self, publish: base.Publish, stop: asyncio.Event) -> None:
        """Connect, set up and consume until ``stop``; reconnect after any broker failure."""
        import aiormq
        import aiormq.exceptions

        while not stop.is_set():
            connection: AbstractConnection | None = None
            try:
                connection = await aiormq.connect(self._url(), context=self._tls)
                await self._consume(connection, publish, stop)
            except (aiormq.exceptions.AMQPError, OSError, TimeoutError, errors.SecretError) as exc:
                reason = f"broker {self._shown}: {type(exc).__name__}: {_clean(exc, self._hidden)}"
                delay = self._retry.next_delay()
                self._retry.waiting = reason
                log.warning("amqp %s: %s; reconnecting in %.1fs", self.event_name, reason, delay)
                await _sleep(stop, delay)
            finally:
                if connection is not None and not connection.is_closed:
                    await _quietly(connection.close())

    async def _setup(self, typed: AbstractChannel) -> str:
        """Declare, bind and set QoS as the spec says; the queue name."""
        channel: Any = typed  # aiormq overloads `nowait` on Literal[True/False]; ours is a run-time bool
        config = self._config
        exchange = config.exchange_declare
        await channel.exchange_declare(
            config.exchange_name or "", exchange_type=config.exchange_type,
            durable=True if exchange is None else bool(exchange.durable),
            auto_delete=bool(exchange and exchange.auto_delete), internal=bool(exchange and exchange.internal),
            nowait=bool(exchange and exchange.no_wait))
        queue = config.queue_declare
        declared = await channel.queue_declare(
            (queue.name if queue else None) or "", durable=bool(queue and queue.durable),
            exclusive=True if queue is None else bool(queue.exclusive),
            auto_delete=bool(queue and queue.auto_delete), nowait=bool(queue and queue.no_wait),
            arguments=self._queue_args)
        name = (declared.queue if declared is not None else None) or (queue.name if queue else "") or ""
        bind = config.queue_bind
        await channel.queue_bind(name, config.exchange_name or "", routing_key=config.routing_key,
                                 nowait=bool(bind and bind.no_wait))
        if not self._auto_ack:
            await channel.basic_qos(prefetch_count=PREFETCH)
        return name

    async def _consume(self, connection: AbstractConnection, publish: base.Publish, stop: asyncio.Event) -> None:
        channel = await connection.channel(publisher_confirms=False)
        queue_name = await self._setup(channel)
        inbox: asyncio.Queue[DeliveredMessage | None] = asyncio.Queue()

        async def deliver(message: DeliveredMessage) -> None:
            inbox.put_nowait(message)

        consume = self._config.consume
        await channel.basic_consume(queue_name, deliver, no_ack=self._auto_ack,
                                    exclusive=bool(consume and consume.exclusive),
                                    consumer_tag=(consume.consumer_tag if consume else None) or None)
        self._retry.connected()
        log.info("amqp %s: consuming queue %r on %s", self.event_name, queue_name, self._shown)
        watcher = asyncio.ensure_future(stop.wait())
        watcher.add_done_callback(lambda _: inbox.put_nowait(None))
        channel.closing.add_done_callback(lambda _: inbox.put_nowait(None))
        try:
            while (batch := await _ready(inbox)) is not None:
                await self._handle(batch, channel, publish, stop)
            if not stop.is_set():
                await channel.closing  # raises the broker's reason (connection or channel closed)
        finally:
            watcher.cancel()

    async def _handle(self, messages: list[DeliveredMessage], channel: AbstractChannel, publish: base.Publish,
                      stop: asyncio.Event) -> None:
        """Publish the deliveries' events as one pipelined batch; ack each after its event was accepted.

        A refused event and those after it stay unacked and are published again (0.5 s doubling to 60 s)
        until the bus takes them or ``stop`` (then they go back to the queue with the connection).
        """
        kept = [(m, e) for m in messages if (e := await self._event_of(m, channel)) is not None]

        async def accepted(start: int, end: int) -> None:
            await self._ack([m for m, _ in kept[start:end]], channel)

        await reconnect.publish_held_batch(publish, [e for _, e in kept], stop, f"amqp {self.event_name}", accepted)

    async def _event_of(self, message: DeliveredMessage, channel: AbstractChannel) -> events.Event | None:
        """The delivery's event; ``None`` when it cannot become one (then it is rejected and counted)."""
        data = message_data(message, json_body=self._json, metadata=self._metadata)
        if data is None:
            await self._reject(message, channel, "malformed", "jsonBody is set but the body is not JSON")
            return None
        if len(data) > MAX_DATA:
            await self._reject(message, channel, "too_large",
                               f"the event would be {len(data)} bytes; the bus takes {MAX_DATA}")
            return None
        props = message.header.properties
        return events.new_event(id=self._event_id(props.message_id), source=self._ctx.event_source_name,
                                subject=self.event_name, type="amqp", data=data,
                                extensions=wire.trace_extension(props.headers))

    async def _ack(self, accepted: list[DeliveredMessage], channel: AbstractChannel) -> None:
        """Ack ``accepted`` (deliveries in tag order) with one ``multiple`` ack of the last.

        Safe because every earlier delivery of this channel was acked or rejected before: the batch and
        the ones before it are handled in delivery order.
        """
        tag = accepted[-1].delivery_tag if accepted else None
        if not self._auto_ack and tag is not None:
            await channel.basic_ack(tag, multiple=True)

    async def _reject(self, message: DeliveredMessage, channel: AbstractChannel, reason: str, why: str) -> None:
        """Count, log and reject (no requeue: to the dead-letter exchange, if any) a delivery that is no event."""
        common.rejected(self._ctx.event_source_name, self.event_name, reason)
        log.error("amqp %s: message %r from exchange %r dropped: %s%s", self.event_name,
                  message.header.properties.message_id or message.delivery_tag, message.exchange, why,
                  "" if self._auto_ack else " (rejected without requeue: dead-lettered if the queue has a DLX)")
        if not self._auto_ack and message.delivery_tag is not None:
            await channel.basic_reject(message.delivery_tag, requeue=False)

    def _event_id(self, message_id: str | None) -> str | None:
        if not message_id:
            return None
        text = f"{self._ctx.event_source_name}\x00{self.event_name}\x00{message_id}"
        return hashlib.sha256(text.encode()).hexdigest()[:32]


def _queue_arguments(queue: Any, where: str) -> dict[str, Any] | None:
    text = getattr(queue, "arguments", None) if queue is not None else None
    if not text:
        return None
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise errors.SpecError(f"{where}.queueDeclare.arguments is not YAML: {exc}") from None
    if not isinstance(value, dict):
        raise errors.SpecError(f"{where}.queueDeclare.arguments must be a YAML mapping")
    return value


def _clean(exc: BaseException, hidden: list[str]) -> str:
    """The error's text on one line, without the URL or password it may quote."""
    text = str(exc).replace("\n", " ")
    for secret in sorted(hidden, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text[:300] or "no detail"


async def _ready(inbox: asyncio.Queue[DeliveredMessage | None]) -> list[DeliveredMessage] | None:
    """The next delivery and every one already received after it (at most the prefetch window); ``None``: end.

    One turn of the loop first lets aiormq run the callbacks of deliveries it has read (a task each). A
    batch that the end marker follows is dropped: unacked, it goes back to the queue with the connection.
    """
    if (first := await inbox.get()) is None:
        return None
    await asyncio.sleep(0)
    batch = [first]
    while not inbox.empty():
        if (message := inbox.get_nowait()) is None:
            return None
        batch.append(message)
    return batch


async def _sleep(stop: asyncio.Event, delay: float) -> bool:
    """Sleep ``delay`` or until ``stop``; True when stopped."""
    try:
        await asyncio.wait_for(stop.wait(), delay)
    except TimeoutError:
        return False
    return True


async def _quietly(closing: Any) -> None:
    try:
        await asyncio.wait_for(closing, 5)
    except Exception as exc:  # closing a broken connection must not hide the reason we are closing it
        log.debug("amqp: closing the connection failed: %r", exc)


def create(event_name: str, config: models.AMQPEventSource, ctx: base.SourceContext) -> base.Source:
    """Factory for the ``amqp`` spec key."""
    return AmqpSource(event_name, config, ctx)


def _check(config: models.AMQPEventSource, path: str) -> Iterator[tuple[str, str]]:
    if bool(config.url) == (config.url_secret is not None):
        yield path, "an amqp event source needs exactly one of `url` and `urlSecret`"
    if not config.routing_key:
        yield f"{path}.routingKey", "an amqp event source needs `routingKey`"
    if not config.exchange_type:
        yield f"{path}.exchangeType", "an amqp event source needs `exchangeType`"


def _knative(config: models.AMQPEventSource) -> base.Knative:
    """Replicas may share a named, non-exclusive queue (RabbitMQ hands each message to one consumer).

    Argo's default queue is server-named and exclusive: every replica would declare its own queue, bound to the
    same exchange, and get every message, so that needs exactly one replica.
    """
    queue, consume = config.queue_declare, config.consume
    shared = queue is not None and bool(queue.name) and not queue.exclusive and not (consume and consume.exclusive)
    return base.Knative.CONSUMER_GROUP if shared else base.Knative.ONE_REPLICA


SOURCE = base.SourceType(
    key="amqp",
    model=models.AMQPEventSource,
    factory=create,
    knative=_knative,
    check=_check,
    data='{"contentType", "contentEncoding", "deliveryMode", "priority", "correlationId", "replyTo", "expiration", '
    '"messageId", "timestamp", "type", "appId", "exchange", "routingKey", "headers", "body", "metadata"?}',
)
