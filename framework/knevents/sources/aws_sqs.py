"""The SQS long-polling loop shared by the ``sqs`` source and the ``s3`` source in SQS mode.

The loop's promise is the one in ARCHITECTURE.md: a message is deleted only
after every event made from it was accepted by the bus. The events of one
receive (up to 10 messages) are published as one pipelined batch and the
messages they came from deleted with one DeleteMessageBatch. When the bus refuses,
the message stays in the queue and comes back after its visibility timeout
(Argo's 120 s), and the loop backs off. A message that cannot be converted
(e.g. ``jsonBody`` but not JSON) is deleted, unless the spec says a
dead-letter queue is configured (``dlq: true``, Argo's meaning): then it is
left for SQS's redrive policy to move after ``maxReceiveCount`` receives.

Errors never end the loop (the function must stay up): they are logged and
retried with a capped exponential backoff; only ``stop`` ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from knevents import errors, events
from knevents.secrets import SecretResolver
from knevents.sources import aws, base

__all__ = ["Convert", "Poller", "QueueConfig", "wait_seconds"]

log = logging.getLogger(__name__)

VISIBILITY_TIMEOUT = 120
"""Seconds a received message stays invisible to other consumers; Argo's value."""
DEFAULT_WAIT = 3
"""Seconds of long polling when ``waitTimeSeconds`` is 0 or unset; Argo's default."""
MAX_BACKOFF = 30.0
"""Seconds; the longest pause after repeated failures (AWS down, bus down)."""

Convert = Callable[[dict[str, Any]], Sequence[events.Event]]
"""Turn one received SQS message (boto3's dict) into the events to publish; EventError when malformed."""


@dataclass(frozen=True)
class QueueConfig:
    """Which queue, and how to poll it."""

    queue: str
    aws: aws.AwsConfig
    account_id: str | None = None
    wait_time_seconds: int = DEFAULT_WAIT
    keep_malformed: bool = False
    """Argo's ``dlq``: leave unconvertible messages for the queue's redrive policy instead of deleting them."""


def wait_seconds(value: int | None, where: str) -> int:
    """``waitTimeSeconds`` checked against SQS's range (0–20; 0 means Argo's default of 3)."""
    seconds = int(value or 0)
    if not 0 <= seconds <= 20:
        raise errors.SpecError(f"{where}.waitTimeSeconds: {seconds} is outside SQS's long-polling range 0-20")
    return seconds


class Poller:
    """Receive, convert, publish, then delete, until stopped."""

    def __init__(self, what: str, config: QueueConfig, secrets: SecretResolver) -> None:
        self._what = what
        self._config = config
        self._secrets = secrets
        self._client: Any = None
        self._queue_url: str | None = None

    async def _connect(self) -> tuple[Any, str]:
        if self._client is None or self._queue_url is None:
            wait = self._config.wait_time_seconds or DEFAULT_WAIT
            self._client = await aws.call(
                f"{self._what}: create the SQS client",
                aws.client,
                "sqs",
                self._config.aws,
                self._secrets,
                read_timeout=wait + 15.0,
            )
            params: dict[str, Any] = {"QueueName": self._config.queue}
            if self._config.account_id:
                params["QueueOwnerAWSAccountId"] = self._config.account_id
            answer = await aws.call(
                f"{self._what}: get the URL of queue {self._config.queue}",
                self._client.get_queue_url,
                **params,
            )
            self._queue_url = str(answer["QueueUrl"])
        return self._client, self._queue_url

    async def _receive(self) -> list[dict[str, Any]]:
        client, url = await self._connect()
        answer = await aws.call(
            f"{self._what}: receive from {self._config.queue}",
            client.receive_message,
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=self._config.wait_time_seconds or DEFAULT_WAIT,
            VisibilityTimeout=VISIBILITY_TIMEOUT,
            MessageAttributeNames=["All"],
            AttributeNames=["SentTimestamp"],
        )
        return list(answer.get("Messages", []))

    async def _delete(self, messages: Sequence[dict[str, Any]]) -> None:
        """Delete ``messages`` with one DeleteMessageBatch (a receive holds at most 10, SQS's batch limit).

        An entry SQS fails to delete is logged: the message comes back after its visibility timeout and
        its events, ids derived from the MessageId, are dropped downstream as copies.
        """
        if not messages:
            return
        client, url = await self._connect()
        answer = await aws.call(
            f"{self._what}: delete {len(messages)} message(s)",
            client.delete_message_batch,
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )
        for failed in answer.get("Failed") or []:
            message = messages[int(failed["Id"])]
            log.error("%s: message %s not deleted (%s: %s); it comes back after its visibility timeout",
                      self._what, message.get("MessageId"), failed.get("Code"), failed.get("Message"))

    def _convert(self, messages: list[dict[str, Any]], convert: Convert) -> _Batch:
        """One receive's events in order, which message each ends at, and the malformed messages to delete."""
        batch = _Batch()
        for message in messages:
            try:
                produced = convert(message)
            except errors.EventError as exc:
                if self._config.keep_malformed:
                    log.error("%s; left in the queue for its dead-letter queue", self._said(exc))
                else:
                    log.error("%s; message deleted", self._said(exc))
                    batch.malformed.append(message)
                continue
            batch.events.extend(produced)
            batch.kept.append((message, len(batch.events)))
        return batch

    async def _process(self, messages: list[dict[str, Any]], convert: Convert, publish: base.Publish) -> None:
        """Publish one receive's events as one pipelined batch; delete each message whose events were all accepted.

        When the bus refuses an event, the messages with an event from it on stay (they come back after the
        visibility timeout) and the refusal is raised for the loop's backoff.
        """
        batch = self._convert(messages, convert)
        try:
            await base.publish_batch(publish, batch.events)
        except errors.BatchRefusedError as exc:
            await self._delete(batch.malformed + [m for m, end in batch.kept if end <= exc.done])
            raise  # a BusUnavailableError: the loop backs off
        await self._delete(batch.malformed + [m for m, _ in batch.kept])

    async def run(self, convert: Convert, publish: base.Publish, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set; never raises for upstream or bus failures."""
        failures = 0
        try:
            while not stop.is_set():
                try:
                    messages = await self._receive()
                    if messages:
                        await self._process(messages, convert, publish)
                    failures = 0
                except errors.MissingExtraError:
                    raise  # boto3 is not installed: the runtime says so once and stops this source
                except errors.KneventsError as exc:
                    failures += 1
                    if isinstance(exc, errors.PermanentError):
                        self._close()
                    delay = min(MAX_BACKOFF, 2.0 ** min(failures, 6) / 2)
                    log.error("%s (retrying in %.1fs)", self._said(exc), delay)
                    await _sleep_or_stop(stop, delay)
        finally:
            self._close()

    def _said(self, exc: Exception) -> str:
        """The error prefixed with which source it is about, once (the AWS calls' errors already say it)."""
        text = str(exc)
        return text if text.startswith(self._what) else f"{self._what}: {text}"

    def _close(self) -> None:
        client, self._client, self._queue_url = self._client, None, None
        if client is not None:
            client.close()


@dataclass
class _Batch:
    """The events of one receive, in message order."""

    events: list[events.Event] = field(default_factory=list)
    kept: list[tuple[dict[str, Any], int]] = field(default_factory=list)
    """Each message that became events, with the count of events up to and including its own."""
    malformed: list[dict[str, Any]] = field(default_factory=list)
    """Messages that cannot become events and are deleted (unless ``keep_malformed``)."""


async def _sleep_or_stop(stop: asyncio.Event, delay: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=delay)
