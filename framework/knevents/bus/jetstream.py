"""Publish to the JetStream bus (the local runner, or a Knative-less deployment).

Each event goes to ``bus.subject(bus, event.source, event.subject)`` in the
stream ``bus.stream_name(bus)`` (subjects ``<bus>.>``), as a binary-mode
CloudEvent (:mod:`knevents.bus.codec`) with ``Nats-Msg-Id`` = the event id, so
a retried publish inside the stream's duplicate window is stored once. The
publisher waits for JetStream's ack; no ack within the timeout, or any NATS
error, is retried with backoff and finally raised as
:class:`errors.BusUnavailableError` (``from`` the NATS error). A batch
(:meth:`JetStreamPublisher.publish_many`) goes out as one fast-ingest batch
(:mod:`knevents.bus.fastbatch`) where the server and stream take one, else
pipelined with an ack per event (:mod:`knevents.bus.pipeline`); the stream
itself is made by :mod:`knevents.bus.stream`.

Size: nats-server closes a connection that publishes more than its
``max_payload`` (headers included), and nats-py then closes its client for
good. So every client made by :func:`connect` refuses such a publish before
sending it, and the publisher refuses an event that would not leave
:data:`DLQ_HEADROOM` bytes for the dead-letter headers, as
:class:`errors.EventTooLargeError` (a 413 to the caller), naming the limit.
While the connection is down the publisher fails at once
(:class:`errors.BusUnavailableError`, a 503) instead of queueing behind the
reconnect, and a closed client is replaced on the next publish.

``nats`` is imported lazily: it costs ~0.4 s, and an event source on Knative
publishing to ``$K_SINK`` never needs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from knevents import errors, events, natskv, redact
from knevents.bus import codec, fastbatch, naming, pipeline
from knevents.bus.stream import DEFAULT_DUPLICATE_WINDOW, ensure_stream
from knevents.settings import BusSettings, NatsSettings, Settings

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient
    from nats.js import JetStreamContext

__all__ = ["DEFAULT_DUPLICATE_WINDOW", "DLQ_HEADROOM", "JetStreamPublisher", "connect", "ensure_stream", "fits",
           "message_size"]

_log = logging.getLogger("knevents.bus")



_nats_errors = natskv.nats_errors


DLQ_HEADROOM = 2048
"""Bytes an event leaves free under ``max_payload``: the local dispatcher's dead-letter copy adds headers
(sensor, reason ≤ 500 bytes, original subject, attempts) and must still fit."""
_ERROR_LOG_EVERY = 10.0
"""Seconds between two connection-problem log lines (nats-py retries every 0.2 s)."""
_last_error_log = 0.0


def message_size(payload: bytes, headers: dict[str, str] | None) -> int:
    """Bytes nats-server counts against ``max_payload``: the payload plus the ``NATS/1.0`` header block."""
    if not headers:
        return len(payload)
    block = len(b"NATS/1.0\r\n\r\n")
    for key, value in headers.items():
        block += len(key.strip().encode()) + len(str(value).strip().encode()) + 4
    return block + len(payload)


def fits(payload: bytes, headers: dict[str, str] | None, limit: int) -> bool:
    """Whether :func:`message_size` is at most ``limit``; exact, but measured only near the limit.

    A code point is at most 4 bytes of UTF-8, so the characters of the headers times 4 bound their
    bytes: far below the limit (every event but a huge one) no header is encoded.
    """
    rough = len(payload) + 12 + ((sum(map(len, headers)) + sum(map(len, headers.values())) + len(headers)) * 4
                                 if headers else 0)
    return rough <= limit or message_size(payload, headers) <= limit


async def _log_error(exc: Exception) -> None:
    # nats-py's default logs a full traceback per reconnect attempt; one line per 10 s is enough.
    global _last_error_log
    now = asyncio.get_running_loop().time()
    if now - _last_error_log >= _ERROR_LOG_EVERY:
        _last_error_log = now
        _log.warning("NATS connection problem: %r", exc)


def _guarded_client() -> Any:
    """A nats-py client that refuses, before sending, a message nats-server would close the connection for
    (and sends requests the lean way, :mod:`knevents.natsclient`)."""
    import nats.errors

    from knevents.natsclient import LeanClient

    class GuardedClient(LeanClient):
        async def publish(self, subject: str, payload: bytes = b"", reply: str = "",
                          headers: dict[str, str] | None = None) -> None:
            if not fits(payload, headers, self.max_payload):
                raise nats.errors.MaxPayloadError
            await super().publish(subject, payload, reply, headers)

    return GuardedClient()


async def connect(settings: NatsSettings) -> NatsClient:
    """Connect to NATS: fail fast when no server answers now, reconnect forever once connected."""
    servers = natskv.servers(settings.url)
    client: NatsClient = _guarded_client()
    try:
        # nats-py retries the *first* connect up to max_reconnect_attempts per server, which
        # with unlimited attempts never ends; so connect with one retry, then allow unlimited.
        options: dict[str, Any] = {"reconnect_time_wait": 0.2, **natskv.options(settings)}
        await client.connect(
            servers=servers, allow_reconnect=False, max_reconnect_attempts=1, error_cb=_log_error, **options
        )
    except _nats_errors() as exc:
        with contextlib.suppress(Exception):  # a refused handshake (auth) leaves the socket open otherwise
            await client.close()
        raise errors.BusUnavailableError(f"cannot connect to NATS at {redact.redact(settings.url)}: {exc!r}") from exc
    client.options["allow_reconnect"] = True
    client.options["max_reconnect_attempts"] = -1
    return client


class JetStreamPublisher:
    """Publishes binary-mode CloudEvents to a JetStream bus and waits for the ack."""

    def __init__(
        self,
        js: JetStreamContext | None,
        bus_name: str,
        *,
        settings: BusSettings | None = None,
        connector: Callable[[], Awaitable[JetStreamContext]] | None = None,
    ) -> None:
        if js is None and connector is None:
            raise ValueError("JetStreamPublisher needs a JetStream context or a connector")
        self.bus_name = bus_name
        self._js = js
        self._connector = connector
        self._settings = settings or BusSettings()
        self._lock = asyncio.Lock()
        self._client: NatsClient | None = None
        self._inbox = pipeline.AckInbox()
        self._fast = fastbatch.FastBatches()
        self._fast_client: Any = None
        """The connection whose stream refused fast batches (they are not tried again on it)."""
        self._subjects: dict[tuple[str, str | None], str] = {}

    @classmethod
    def lazy(cls, settings: Settings) -> JetStreamPublisher:
        """A publisher that connects (and creates the stream) on first use, and again after a failure."""
        publisher: JetStreamPublisher

        async def connector() -> JetStreamContext:
            client = await connect(settings.nats)
            publisher._client = client
            js = client.jetstream(timeout=settings.nats.request_timeout)
            await ensure_stream(js, settings.bus.bus_name)
            return js

        publisher = cls(None, settings.bus.bus_name, settings=settings.bus, connector=connector)
        return publisher

    @property
    def connected(self) -> bool | None:
        """Whether the NATS connection is up now (``None``: not connected yet, a lazy publisher)."""
        client = self._nats_client()
        return None if client is None else bool(client.is_connected)

    def _nats_client(self) -> Any:
        return getattr(self._js, "_nc", None) if self._js is not None else None

    async def _context(self) -> JetStreamContext:
        client = self._nats_client()
        if client is not None and client.is_closed and self._connector is not None:
            self._js = None  # closed for good (nats-py gives up after some server errors): connect again
        if self._js is not None:
            if client is not None and not client.is_connected:
                # Reconnecting: a publish would wait in nats-py's buffer for the ack timeout. Fail now (503).
                raise errors.BusUnavailableError("the connection to NATS is down; reconnecting")
            return self._js
        assert self._connector is not None
        async with self._lock:
            if self._js is None:
                self._js = await self._connector()
        return self._js

    def _check_size(self, event: events.Event, body: bytes, headers: dict[str, str]) -> None:
        limit = self._size_limit()
        if limit > 0 and not fits(body, headers, limit):
            raise self._too_large(event, message_size(body, headers), limit)

    async def publish(self, event: events.Event) -> None:
        """Publish ``event`` and wait for the ack; BusUnavailableError when it never came, EventTooLargeError."""
        subject = naming.subject(self.bus_name, event.source, event.subject)
        headers, body = codec.encode_nats(event)
        delay = self._settings.publish_backoff
        attempts = self._settings.publish_retries + 1
        failure: BaseException | None = None
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(delay)
                delay *= 2
            try:
                js = await self._context()
                self._check_size(event, body, headers)
                await js.publish(subject, body, timeout=self._settings.publish_timeout, headers=headers)
                return
            except errors.BusUnavailableError as exc:
                # No server answered the connect (which already tried every URL twice): answer 5xx now
                # rather than keep the caller waiting through more connect timeouts; it retries anyway.
                failure = exc
                break
            except _nats_errors() as exc:
                failure = exc
        raise errors.BusUnavailableError(
            f"JetStream did not accept event {event.id} on {subject}: {failure!r}"
        ) from failure

    async def publish_many(self, batch: Sequence[events.Event]) -> list[BaseException | None]:
        """Publish ``batch`` pipelined, in order; per event ``None`` (acked), EventTooLargeError or BusUnavailableError.

        Every message is sent before any ack is awaited, so the server stores them in batch order: as one
        fast-ingest batch (:mod:`knevents.bus.fastbatch`) where the server and stream allow it, else with an
        ack per message (:mod:`knevents.bus.pipeline`). Messages not acked are sent again, one ack each
        (same ``Nats-Msg-Id``: a copy that was stored after all is dropped), with the same retries and
        backoff as :meth:`publish`.
        """
        outcomes: list[BaseException | None] = [None] * len(batch)
        wire: dict[int, pipeline.Wire] = {}
        try:
            await self._context()  # connected first: the size limit is the server's max_payload
        except errors.BusUnavailableError as exc:
            return [exc] * len(batch)
        limit = self._size_limit()
        subjects = self._subjects
        for index, event in enumerate(batch):
            block, body = codec.header_block(event), event.data or b""
            if 0 < limit < len(block) + len(body):
                outcomes[index] = self._too_large(event, len(block) + len(body), limit)
                continue
            key = (event.source, event.subject)
            subject = subjects.get(key)
            if subject is None:
                subject = subjects[key] = naming.subject(self.bus_name, event.source, event.subject)
            wire[index] = (subject, block, body)
        for index, failure in (await self._send_retrying(wire)).items():
            refused = errors.BusUnavailableError(f"JetStream did not accept event {batch[index].id}: {failure!r}")
            refused.__cause__ = failure
            outcomes[index] = refused
        return outcomes

    async def _send_retrying(self, wire: dict[int, pipeline.Wire]) -> dict[int, BaseException]:
        """Send ``wire`` (index → message) until acked or out of attempts; the last failure of each left."""
        failures: dict[int, BaseException] = {}
        pending = sorted(wire)
        delay = self._settings.publish_backoff
        for attempt in range(self._settings.publish_retries + 1):
            if not pending:
                break
            if attempt:
                await asyncio.sleep(delay)
                delay *= 2
            try:
                await self._context()
                outcomes = await self._send_once([wire[i] for i in pending], first=not attempt)
            except errors.BusUnavailableError as exc:  # no connection: as publish(), fail now
                failures.update(dict.fromkeys(pending, exc))
                break
            except _nats_errors() as exc:
                outcomes = [exc] * len(pending)
            failures = {i: out for i, out in zip(pending, outcomes, strict=True) if out is not None}
            pending = sorted(failures)
        return failures

    async def _send_once(self, messages: list[pipeline.Wire], *, first: bool) -> list[BaseException | None]:
        """One attempt: a fast batch the first time (when the server may take one), else one ack per message."""
        client = self._nats_client()
        timeout = self._settings.publish_timeout
        if first and len(messages) > 1 and self._fast_client is not client and fastbatch.supported(client):
            outcomes = await self._fast.send(client, messages, timeout)
            unsupported = outcomes[0]
            if not isinstance(unsupported, fastbatch.BatchUnsupportedError):
                return outcomes
            if unsupported.disabled:  # this stream does not take fast batches: not again on this connection
                _log.info("the bus stream refuses fast-ingest batches (%s); publishing with an ack per event",
                          unsupported)
                self._fast_client = client
        return await self._inbox.send(client, messages, timeout)

    def _size_limit(self) -> int:
        """Bytes a message (headers included) may have: NATS max_payload less the dead-letter headroom; 0: unknown."""
        return int(getattr(self._nats_client(), "max_payload", 0) or 0) - DLQ_HEADROOM

    @staticmethod
    def _too_large(event: events.Event, size: int, limit: int) -> errors.EventTooLargeError:
        return errors.EventTooLargeError(
            f"event {event.id} is {size} bytes with its headers; the bus accepts at most {limit} bytes "
            f"(NATS max_payload less {DLQ_HEADROOM} for dead-letter headers)", limit=limit)

    async def close(self) -> None:
        """Close the connection this publisher opened itself (not one it was given)."""
        client, self._client = self._client, None
        if client is not None and not client.is_closed:
            try:
                await client.close()
            except Exception as exc:  # closing a broken connection must not fail a shutdown
                _log.debug("closing the NATS connection failed: %r", exc)


