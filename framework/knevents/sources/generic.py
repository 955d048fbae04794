"""The ``generic`` event source: Argo's gRPC client for a user's server implementing ``generic.proto``.

The user's server implements ``generic.Eventing/StartEventSource``: knevents
calls it with ``EventSource{name: <event name>, config: <the config string>}``
(plus ``authorization: Bearer <authSecret>`` metadata when set) and every
streamed ``Event{name, payload}`` becomes one event with Argo's
``GenericEventData``: ``{"body", "metadata"?}``. With ``jsonBody`` the body is
the payload's JSON (a payload that is not JSON is dropped, logged and counted,
as Argo cannot marshal it); otherwise the bytes base64-encoded, as Go
marshals ``[]byte``. ``insecure: true`` dials in plaintext, otherwise TLS with
the system roots, as Argo's ``grpc.NewClient``.

Delivery: the protocol has no acknowledgement, so the source publishes each
event before it reads the next one (gRPC flow control then holds the server
back) and retries a refused publish until the bus takes it; only the event in
hand when the process is killed can be lost, as with Argo. A broken stream is
reopened with backoff (1 s doubling to 30 s; Argo retries every 5 s). ``grpc``
is imported lazily; the messages are encoded by :mod:`knevents.protowire`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any

from knevents import errors, events, protowire
from knevents.sources import base, common
from knevents.spec import models

__all__ = ["SOURCE", "GenericSource", "create", "event_data"]

log = logging.getLogger(__name__)

METHOD = "/generic.Eventing/StartEventSource"
_MAX_DELAY = 30.0


def event_data(payload: bytes, *, json_body: bool, metadata: dict[str, str] | None) -> bytes | None:
    """Argo's GenericEventData for one payload; ``None`` when ``json_body`` is set and it is not JSON."""
    if json_body:
        body = common.json_text(payload)
        if body is None:
            return None
    else:
        body = json.dumps(base64.b64encode(payload).decode("ascii"))
    parts = ['{"body":', body]
    if metadata:
        parts += [',"metadata":', json.dumps(metadata, ensure_ascii=False)]
    parts.append("}")
    return "".join(parts).encode()


class GenericSource:
    """One ``generic`` entry: keep a StartEventSource stream open and publish what it sends."""

    def __init__(self, event_name: str, config: Any, ctx: base.SourceContext) -> None:
        if not config.url:
            raise errors.SpecError(f"generic.{event_name}.url is required")
        self.event_name = event_name
        self._config = config
        self._ctx = ctx
        self._json = bool(config.json_body)
        self._metadata = dict(config.metadata) if config.metadata else None
        self._request = protowire.encode({1: event_name, 2: (config.config or "").encode()})

    def _channel(self) -> Any:
        import grpc

        if self._config.insecure:
            return grpc.aio.insecure_channel(self._config.url)
        return grpc.aio.secure_channel(self._config.url, grpc.ssl_channel_credentials())

    def _call_metadata(self) -> tuple[tuple[str, str], ...]:
        if self._config.auth_secret is None:
            return ()
        token = common.read_secret(self._ctx.secrets, self._config.auth_secret, "authSecret")
        return (("authorization", f"Bearer {token}"),)

    async def _publish(self, raw: bytes, publish: base.Publish, stop: asyncio.Event) -> None:
        try:
            payload = protowire.decode(raw).get(2, b"")
        except protowire.ProtoError as exc:
            payload = None
            log.error("generic %s: malformed Event from the server (%s); dropped", self.event_name, exc)
        data = None if not isinstance(payload, bytes) else event_data(
            payload, json_body=self._json, metadata=self._metadata)
        if data is None:
            if isinstance(payload, bytes):
                log.error("generic %s: payload is not JSON but jsonBody is set; dropped", self.event_name)
            common.rejected(self._ctx.event_source_name, self.event_name, "malformed")
            return
        event = events.new_event(source=self._ctx.event_source_name, subject=self.event_name,
                                 type="generic", data=data)
        delay = 0.5
        while True:  # the server cannot resend: hold the stream until the bus takes the event
            try:
                await publish(event)
                return
            except errors.BusUnavailableError as exc:
                if stop.is_set():
                    log.error("generic %s: stopping with an unpublished event: %s", self.event_name, exc)
                    return
                log.warning("generic %s: bus refused the event (%s); retrying in %.1fs", self.event_name,
                            exc, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, _MAX_DELAY)

    async def _stream(self, publish: base.Publish, stop: asyncio.Event) -> int:
        """One StartEventSource call; returns how many events it delivered."""
        count = 0
        async with self._channel() as channel:
            call = channel.unary_stream(METHOD, request_serializer=bytes, response_deserializer=bytes)
            stream = call(self._request, metadata=self._call_metadata())
            log.info("generic %s: event stream open to %s", self.event_name, self._config.url)
            stopper = asyncio.ensure_future(stop.wait())
            try:
                while True:
                    read = asyncio.ensure_future(stream.read())
                    await asyncio.wait({read, stopper}, return_when=asyncio.FIRST_COMPLETED)
                    if not read.done():
                        read.cancel()
                        stream.cancel()
                        return count
                    raw = read.result()
                    if not isinstance(raw, bytes):  # grpc.aio.EOF: the server ended the stream
                        return count
                    await self._publish(raw, publish, stop)
                    count += 1
            finally:
                stopper.cancel()

    async def run(self, publish: base.Publish, stop: asyncio.Event) -> None:
        """Stream until ``stop`` is set, reconnecting with backoff."""
        import grpc

        delay = 1.0
        while not stop.is_set():
            try:
                if await self._stream(publish, stop):
                    delay = 1.0
            except grpc.aio.AioRpcError as exc:
                log.warning("generic %s: stream to %s failed: %s %s; reconnecting in %.1fs", self.event_name,
                            self._config.url, exc.code().name, exc.details(), delay)
            if stop.is_set():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, _MAX_DELAY)


def create(event_name: str, config: models.GenericEventSource, ctx: base.SourceContext) -> base.Source:
    """Factory for the ``generic`` spec key."""
    return GenericSource(event_name, config, ctx)


def _check(config: models.GenericEventSource, path: str) -> Iterator[tuple[str, str]]:
    if not config.url:
        yield f"{path}.url", "a generic event source needs `url` (host:port of the gRPC server)"


SOURCE = base.SourceType(
    key="generic",
    model=models.GenericEventSource,
    factory=create,
    # one stream per event: a second replica would open a second stream and get every event twice
    knative=base.always(base.Knative.ONE_REPLICA),
    check=_check,
    data='{"body": <the payload\'s JSON with jsonBody, else base64>, "metadata"?: {...}}',
)
