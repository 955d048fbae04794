"""The ``azureQueueStorage`` event source: Azure Storage queue messages, as Argo's AQS event source.

Argo dequeues up to 10 messages at a time with a 120 s visibility timeout,
sleeps ``waitTimeInSeconds`` (3 s) when the queue is empty, and sends one
event per message with Argo's ``AzureQueueStorageEventData``:
``{"body", "messageID", "insertionTime", "metadata"?}``. ``decodeMessage``
base64-decodes the text first (URL alphabet, then standard); ``jsonBody``
puts the body in as JSON, otherwise as bytes (base64 in JSON, as Go marshals
``[]byte``). The messages of one receive are published as one pipelined batch,
and each is deleted only after the bus accepted its event.
Bad input (not base64, not JSON with ``jsonBody``) is logged and counted and
the message deleted, unless ``dlq`` is set: then it is left on the queue for
the queue's own poison handling, as in Argo.

Difference from Argo: when the bus refuses an event, knevents makes the
message visible again at once (Argo waits out the 120 s visibility timeout).
The connection string comes from its Secret; without one the
``storageAccountName`` is reached with ``DefaultAzureCredential`` (needs the
``azure-identity`` package). ``azure.storage.queue`` is imported lazily.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from knevents import errors, events
from knevents.sources import base, common
from knevents.spec import models

__all__ = ["SOURCE", "AzureQueueSource", "create", "message_data"]

log = logging.getLogger(__name__)

_BATCH = 10
_VISIBILITY = 120


def _decode(text: str) -> bytes | None:
    for decoder in (base64.urlsafe_b64decode, base64.standard_b64decode):
        try:
            return decoder(text.encode())
        except (binascii.Error, ValueError):
            continue
    return None


def _go_time(value: datetime | None) -> str:
    """Go's RFC 3339 (nano) text of a time.Time, in UTC as Azure gives it."""
    if value is None:
        return "0001-01-01T00:00:00Z"
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "Z"


def message_data(message_id: str, text: str, inserted: datetime | None, *, json_body: bool, decode: bool,
                 metadata: dict[str, str] | None) -> bytes | None:
    """Argo's event data for one message; ``None`` when it cannot be decoded or is not JSON with ``json_body``."""
    raw = _decode(text) if decode else text.encode()
    if raw is None:
        return None
    if json_body:
        body = common.json_text(raw)
        if body is None:
            return None
    else:
        body = json.dumps(base64.b64encode(raw).decode("ascii"))
    parts = ['{"body":', body, ',"messageID":', json.dumps(message_id), ',"insertionTime":',
             json.dumps(_go_time(inserted))]
    if metadata:
        parts += [',"metadata":', json.dumps(metadata, ensure_ascii=False)]
    parts.append("}")
    return "".join(parts).encode()


class AzureQueueSource:
    """One ``azureQueueStorage`` entry: receive, publish, delete."""

    def __init__(self, event_name: str, config: Any, ctx: base.SourceContext) -> None:
        where = f"azureQueueStorage.{event_name}"
        if not config.queue_name:
            raise errors.SpecError(f"{where}.queueName is required")
        if config.connection_string is None and not config.storage_account_name:
            raise errors.SpecError(f"{where}: set connectionString or storageAccountName")
        self.event_name = event_name
        self._config = config
        self._ctx = ctx
        self._wait = float(config.wait_time_in_seconds if config.wait_time_in_seconds is not None else 3)
        self._metadata = dict(config.metadata) if config.metadata else None

    def _client(self) -> tuple[Any, Any]:
        """A new QueueClient and the credential it owns (``None`` with a connection string)."""
        from azure.storage.queue.aio import QueueClient

        config = self._config
        if config.connection_string is not None:
            conn = common.read_secret(self._ctx.secrets, config.connection_string, "connectionString")
            return QueueClient.from_connection_string(conn, config.queue_name), None
        from azure.identity.aio import DefaultAzureCredential

        url = f"https://{config.storage_account_name}.queue.core.windows.net/"
        credential = DefaultAzureCredential()
        return QueueClient(url, config.queue_name, credential=credential), credential

    def _event(self, message: Any) -> events.Event | None:
        data = message_data(str(message.id), str(message.content or ""), message.inserted_on,
                            json_body=bool(self._config.json_body), decode=bool(self._config.decode_message),
                            metadata=self._metadata)
        if data is None:
            return None
        ident = f"{self._ctx.event_source_name}/{self.event_name}/{message.id}"
        return events.new_event(id=hashlib.sha256(ident.encode()).hexdigest()[:32],
                                source=self._ctx.event_source_name, subject=self.event_name,
                                type="azureQueueStorage", data=data)

    def _convert(self, messages: list[Any]) -> tuple[list[tuple[Any, events.Event]], list[Any]]:
        """The messages that became events (in order), and the malformed ones to delete (none with ``dlq``)."""
        kept: list[tuple[Any, events.Event]] = []
        dropped: list[Any] = []
        for message in messages:
            if (event := self._event(message)) is not None:
                kept.append((message, event))
                continue
            log.error("azureQueueStorage %s: message %s cannot be decoded (decodeMessage/jsonBody)%s",
                      self.event_name, message.id, "; left for the DLQ" if self._config.dlq else "; deleted")
            common.rejected(self._ctx.event_source_name, self.event_name, "malformed")
            if not self._config.dlq:
                dropped.append(message)
        return kept, dropped

    async def _handle(self, client: Any, messages: list[Any], publish: base.Publish) -> None:
        """Publish one receive's events as one pipelined batch; delete each message after its event was accepted.

        A refused event's message and the ones after it are made visible again at once, and the refusal is
        raised for the loop's pause.
        """
        kept, dropped = self._convert(messages)
        try:
            await base.publish_batch(publish, [event for _, event in kept])
        except errors.BatchRefusedError as exc:
            log.warning("azureQueueStorage %s: bus refused message %s and the %d after it (%s); made visible again",
                        self.event_name, kept[exc.done][0].id, len(kept) - exc.done - 1, exc)
            await self._each(client.update_message, [m for m, _ in kept[exc.done:]], "make visible",
                             visibility_timeout=0)
            await self._each(client.delete_message, dropped + [m for m, _ in kept[:exc.done]], "delete")
            raise
        await self._each(client.delete_message, dropped + [m for m, _ in kept], "delete")

    async def _each(self, call: Any, messages: list[Any], what: str, **options: Any) -> None:
        """``call(message)`` for every message at once (Azure has no batch delete); failures are logged.

        A message whose delete failed comes back after its visibility timeout, with the same event id.
        """
        outcomes = await asyncio.gather(*(call(m, **options) for m in messages), return_exceptions=True)
        for message, outcome in zip(messages, outcomes, strict=True):
            if isinstance(outcome, Exception):
                log.error("azureQueueStorage %s: could not %s message %s: %s: %s", self.event_name, what,
                          message.id, type(outcome).__name__, str(outcome).splitlines()[0][:200] if str(outcome) else "")
            elif isinstance(outcome, BaseException):
                raise outcome

    async def _poll(self, client: Any, publish: base.Publish) -> int:
        pages = client.receive_messages(messages_per_page=_BATCH, visibility_timeout=_VISIBILITY,
                                        max_messages=_BATCH)
        messages = [message async for message in pages]
        if messages:
            await self._handle(client, messages, publish)
        return len(messages)

    async def run(self, publish: base.Publish, stop: asyncio.Event) -> None:
        """Poll until ``stop``; a message is deleted only after its event was published."""
        client, credential = self._client()
        try:
            await self._loop(client, publish, stop)
        finally:
            # Each client owns an aiohttp session (and the credential one of its own, which closing the
            # client does not close): close both on every way out, so that no session, connector or
            # socket is left for the garbage collector when the runtime restarts or cancels this loop.
            await _close_all(client, credential)

    async def _loop(self, client: Any, publish: base.Publish, stop: asyncio.Event) -> None:
        from azure.core.exceptions import AzureError

        while not stop.is_set():
            delay = 0.0
            try:
                if await self._poll(client, publish) == 0:
                    delay = self._wait
            except errors.BusUnavailableError:
                delay = 1.0
            except AzureError as exc:
                log.error("azureQueueStorage %s: %s: %s", self.event_name, type(exc).__name__,
                          str(exc).splitlines()[0][:200] if str(exc) else "")
                delay = 1.0
            if delay:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)


async def _close_all(*closables: Any) -> None:
    """Close each of ``closables``, even when closing an earlier one fails."""
    for item in closables:
        if item is None:
            continue
        try:
            # QueueClient.close reaches aiohttp's connector close without yielding, so a cancel arriving
            # meanwhile cannot leave the session half-open
            await item.close()
        except Exception as exc:  # a failed close must not hide why the loop ended
            log.debug("azureQueueStorage: closing %s failed: %r", type(item).__name__, exc)


def create(event_name: str, config: models.AzureQueueStorageEventSource, ctx: base.SourceContext) -> base.Source:
    """Factory for the ``azureQueueStorage`` spec key."""
    return AzureQueueSource(event_name, config, ctx)


def _check(config: models.AzureQueueStorageEventSource, path: str) -> Iterator[tuple[str, str]]:
    if config.connection_string is None and not config.storage_account_name:
        yield path, "must specify connection string or storageAccountName"
    if not config.queue_name:
        yield f"{path}.queueName", "must specify queue name"


SOURCE = base.SourceType(
    key="azureQueueStorage",
    model=models.AzureQueueStorageEventSource,
    factory=create,
    knative=base.always(base.Knative.ONE_REPLICA),
    check=_check,
    data='{"body": <JSON with jsonBody, else the text>, "messageID", "insertionTime", "metadata"?}',
)
