"""The ``mqtt`` event source: an MQTT 3.1.1 subscription whose messages are acked after the bus took them.

Data is Argo's ``MQTTEventData``: ``{"topic", "messageId", "body", "metadata"?}``,
``body`` the message's JSON (``jsonBody``; compacted as Go marshals a
``json.RawMessage``) or its bytes base64-encoded.

Argo subscribes with QoS 0 and a clean session, so every message in flight
or sent while the source is down is gone. knevents subscribes with **QoS 1**
in a **persistent session** named by ``clientId``, with manual acknowledgement
(paho-mqtt's ``manual_ack``): the messages handed over meanwhile are published
as one pipelined batch, and the PUBACK of each goes out, in order, only after the
bus accepted its event, so the broker redelivers anything unacked after a
crash and queues what arrives while the source is down (up to the broker's
own limit, mosquitto's ``max_queued_messages``). A redelivered message gets a
new event id (packet ids are reused, so they cannot identify a message):
duplicates after a crash are bounded by the messages in flight (mosquitto's
``max_inflight_messages``, 20 by default).

The client is paho-mqtt (the library under aiomqtt): it offers manual acks in
its public API, aiomqtt does not. Its network loop runs on its own thread and
hands messages to the event loop; it reconnects by itself, starting at
``connectionBackoff.duration`` and doubling up to 60 s, and ``/health`` says
why while it is not connected. paho is imported lazily.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from knevents import errors, events
from knevents.sources import base, common, reconnect, tls, wire
from knevents.spec import models

if TYPE_CHECKING:
    from paho.mqtt.client import Client, MQTTMessage

__all__ = ["MAX_DATA", "SOURCE", "MqttSource", "create", "message_data"]

log = logging.getLogger(__name__)

MAX_DATA = 1008 * 1024
"""Bytes of event data published at most: the bus (NATS) takes 1 MiB with the event's headers."""
_SCHEMES: dict[str, tuple[bool, Literal["tcp", "websockets"], int]] = {"tcp": (False, "tcp", 1883), "mqtt": (False, "tcp", 1883), "ssl": (True, "tcp", 8883),
            "tls": (True, "tcp", 8883), "mqtts": (True, "tcp", 8883), "ws": (False, "websockets", 80),
            "wss": (True, "websockets", 443)}
"""URL scheme → (TLS, paho transport, default port), the schemes Argo's Go client accepts."""


def message_data(topic: str, mid: int, payload: bytes, *, json_body: bool,
                 metadata: dict[str, str] | None) -> bytes | None:
    """Argo's ``MQTTEventData`` of one message, ``None`` when ``json_body`` is set and it is not JSON."""
    body = wire.raw_json(payload) if json_body else wire.base64_json(payload)
    if body is None:
        return None
    head = '{"topic":' + json.dumps(topic, ensure_ascii=False) + ',"messageId":' + str(int(mid)) + ',"body":' + body
    tail = "}" if not metadata else ',"metadata":' + json.dumps(metadata, ensure_ascii=False) + "}"
    return (head + tail).encode()


class MqttSource:
    """One ``mqtt`` entry: a QoS 1 subscription on ``topic`` in the persistent session ``clientId``."""

    def __init__(self, event_name: str, config: Any, ctx: base.SourceContext) -> None:
        where = f"mqtt.{event_name}"
        for field, value in (("url", config.url), ("topic", config.topic), ("clientId", config.client_id)):
            if not value:
                raise errors.SpecError(f"{where}.{field} is required")
        parts = urlsplit(str(config.url))
        if parts.scheme not in _SCHEMES or not parts.hostname:
            raise errors.SpecError(f"{where}.url: {config.url!r} is not an MQTT URL "
                                   f"({', '.join(sorted(_SCHEMES))}://host:port)")
        secure, self._transport, default_port = _SCHEMES[parts.scheme]
        self._host, self._port = parts.hostname, parts.port or default_port
        self._path = parts.path or "/mqtt"
        self._shown = f"{parts.scheme}://{self._host}:{self._port}"
        self.event_name = event_name
        self._where = where
        self._config = config
        self._ctx = ctx
        self._json = bool(config.json_body)
        self._metadata = dict(config.metadata) if config.metadata else None
        self._tls = tls.client_context(config.tls, ctx.secrets, f"{where}.tls")
        if secure and self._tls is None:
            self._tls = ssl.create_default_context()
        self._retry = reconnect.Reconnect(config.connection_backoff, f"{where}.connectionBackoff")

    def not_ready(self) -> str | None:
        """Why the source is not subscribed, ``None`` when it is."""
        return self._retry.waiting

    def _client(self, loop: asyncio.AbstractEventLoop, inbox: asyncio.Queue[MQTTMessage]) -> Client:
        from paho.mqtt.client import Client, MQTTv311
        from paho.mqtt.enums import CallbackAPIVersion

        client = Client(CallbackAPIVersion.VERSION2, client_id=str(self._config.client_id), clean_session=False,
                        protocol=MQTTv311, transport=self._transport, manual_ack=True)
        if self._transport == "websockets":
            client.ws_set_options(path=self._path)
        if self._config.auth is not None:
            auth = self._config.auth
            client.username_pw_set(common.read_secret(self._ctx.secrets, auth.username, f"{self._where}.auth.username"),
                                   common.read_secret(self._ctx.secrets, auth.password, f"{self._where}.auth.password"))
        if self._tls is not None:
            client.tls_set_context(self._tls)
        first = max(1, round(self._retry.first))
        client.reconnect_delay_set(first, max(first, int(reconnect.MAX_DELAY)))
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_subscribe = self._on_subscribe

        def on_message(_client: Client, _userdata: Any, message: MQTTMessage) -> None:
            loop.call_soon_threadsafe(inbox.put_nowait, message)

        client.on_message = on_message
        return client

    # paho calls these on its network thread: they only record state and (re)subscribe.
    def _on_connect(self, client: Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            self._retry.waiting = f"broker {self._shown} refused the connection: {reason}"
            log.warning("mqtt %s: %s", self.event_name, self._retry.waiting)
            return
        client.subscribe(str(self._config.topic), qos=1)

    def _on_subscribe(self, _client: Client, _userdata: Any, _mid: int, reasons: list[Any], _props: Any) -> None:
        refused = [str(r) for r in reasons if r.is_failure]
        if refused:
            self._retry.waiting = f"broker {self._shown} refused the subscription to {self._config.topic!r}: " + \
                ", ".join(refused)
            log.error("mqtt %s: %s", self.event_name, self._retry.waiting)
            return
        self._retry.connected()  # ready only once the broker confirmed the subscription (SUBACK)
        log.info("mqtt %s: subscribed to %r on %s (QoS 1, session %r)", self.event_name, self._config.topic,
                 self._shown, self._config.client_id)

    def _on_disconnect(self, _client: Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        self._retry.waiting = f"disconnected from broker {self._shown}: {reason}; reconnecting"
        log.warning("mqtt %s: %s", self.event_name, self._retry.waiting)

    def _on_connect_fail(self, _client: Client, _userdata: Any) -> None:
        self._retry.waiting = f"cannot connect to broker {self._shown}; retrying"
        log.warning("mqtt %s: %s", self.event_name, self._retry.waiting)

    async def run(self, publish: base.Publish, stop: asyncio.Event) -> None:
        """Subscribe until ``stop``; each message is acked after its event was published."""
        inbox: asyncio.Queue[MQTTMessage] = asyncio.Queue()
        client = self._client(asyncio.get_running_loop(), inbox)
        client.connect_async(self._host, self._port, keepalive=30)
        client.loop_start()
        try:
            while not stop.is_set():
                getter = asyncio.ensure_future(inbox.get())
                stopper = asyncio.ensure_future(stop.wait())
                done, _ = await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                stopper.cancel()
                if getter not in done:
                    getter.cancel()
                    break
                batch = [getter.result()]
                while not inbox.empty():  # what paho handed over meanwhile (at most the broker's inflight window)
                    batch.append(inbox.get_nowait())
                await self._handle(batch, client, publish, stop)
        finally:
            await asyncio.to_thread(_shutdown, client)

    async def _handle(self, messages: list[MQTTMessage], client: Client, publish: base.Publish,
                      stop: asyncio.Event) -> None:
        """Publish the messages' events as one pipelined batch; PUBACK each, in order, after its event was accepted.

        A message that cannot become an event keeps its slot and is acked in its turn (MQTT has no
        dead-letter queue). On ``stop`` while the bus refuses, the rest stay unacked: the broker
        redelivers them to the session.
        """
        async def accepted(start: int, end: int) -> None:
            for message in messages[start:end]:
                client.ack(message.mid, message.qos)

        await reconnect.publish_held_batch(publish, [self._event_of(m) for m in messages], stop,
                                           f"mqtt {self.event_name}", accepted)

    def _event_of(self, message: MQTTMessage) -> events.Event | None:
        """The message's event; ``None`` when it cannot become one (logged and counted)."""
        data = message_data(message.topic, message.mid, bytes(message.payload), json_body=self._json,
                            metadata=self._metadata)
        if data is None or len(data) > MAX_DATA:
            reason, why = (("malformed", "jsonBody is set but the payload is not JSON") if data is None else
                           ("too_large", f"the event would be {len(data)} bytes; the bus takes {MAX_DATA}"))
            common.rejected(self._ctx.event_source_name, self.event_name, reason)
            log.error("mqtt %s: message %d on %r dropped (acked, MQTT has no dead-letter queue): %s",
                      self.event_name, message.mid, message.topic, why)
            return None
        return events.new_event(source=self._ctx.event_source_name, subject=self.event_name, type="mqtt", data=data)


def _shutdown(client: Client) -> None:
    try:
        client.disconnect()
    finally:
        client.loop_stop()


def create(event_name: str, config: models.MQTTEventSource, ctx: base.SourceContext) -> base.Source:
    """Factory for the ``mqtt`` spec key."""
    return MqttSource(event_name, config, ctx)


def _check(config: models.MQTTEventSource, path: str) -> Iterator[tuple[str, str]]:
    for name, value in (("url", config.url), ("topic", config.topic), ("clientId", config.client_id)):
        if not value:
            yield f"{path}.{name}", f"an mqtt event source needs `{name}`"


SOURCE = base.SourceType(
    key="mqtt",
    model=models.MQTTEventSource,
    factory=create,
    # one client id, one persistent session: a second replica would take the session over
    knative=base.always(base.Knative.ONE_REPLICA),
    check=_check,
    data='{"topic", "messageId", "body": <JSON with jsonBody, else base64>, "metadata"?}',
)
