"""Pipelined JetStream publishing: send a batch back to back, then collect the acks.

A JetStream publish is a request: the message goes out with a reply subject
and the server answers with an ack once the message is stored. Waiting for
each ack before sending the next costs a round trip per event; a task per
event (``asyncio.gather`` over ``js.publish``) costs a task, a timer and a
future per event. Here one wildcard inbox subscription (``<inbox>.*``) serves
every batch of one publisher: each message gets the reply subject
``<inbox>.<n>``, the batch is written in order as one buffer (so the
server stores it in that order: one connection, one writer), and each ack
lands in the batch's outcome list. The batch waits once, for all of them.
This is the fallback of :mod:`knevents.bus.fastbatch` (a server or stream
without fast-ingest batches) and the path of retries and of single events.

Messages are ``(subject, header block, body)``: the header block comes
ready-encoded (:func:`knevents.bus.codec.header_block`) and :func:`write`
puts the ``HPUB`` commands of a whole batch on the connection at once,
through nats-py's own outgoing buffer and flusher (``_send_command``,
``_flush_pending``: the calls its ``publish`` makes), without nats-py's
per-message header checks and re-encoding. The caller has checked sizes.

Nothing here retries or raises for a refused message: :meth:`AckInbox.send`
returns one outcome per message (``None`` stored, else the error), and the
publisher decides. It must not import anything but nats (lazily, through the
caller's client) and the standard library.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from typing import Any

__all__ = ["AckInbox", "AckTimeoutError", "RefusedByStreamError", "Wire", "hpub", "write"]

Wire = tuple[str, bytes, bytes]
"""One message: ``(subject, header block, body)``."""

_STATUS = "Status"
_NO_RESPONDERS = "503"


def hpub(subject: str, reply: str, block: bytes, body: bytes) -> bytes:
    """The ``HPUB`` command of one message (``block`` is a whole ``NATS/1.0`` header block)."""
    return b"%s %d %d\r\n%s%s\r\n" % (f"HPUB {subject} {reply}".encode(), len(block), len(block) + len(body),
                                       block, body)


async def write(client: Any, data: bytes) -> None:
    """Queue ``data`` (protocol commands) on ``client``'s connection and wake its flusher, as its publish does."""
    if client.is_closed:
        from nats.errors import ConnectionClosedError

        raise ConnectionClosedError
    await client._send_command(data)
    if client._flush_queue is not None and client._flush_queue.empty():
        await client._flush_pending()


class AckTimeoutError(TimeoutError):
    """No ack came for a message within the batch's timeout."""


class RefusedByStreamError(Exception):
    """JetStream answered a message with an error (or no stream listens on its subject)."""


class _Batch:
    __slots__ = ("done", "outcomes", "remaining")

    def __init__(self, size: int) -> None:
        self.outcomes: list[BaseException | None] = [None] * size
        self.remaining = size
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def settle(self, index: int, outcome: BaseException | None) -> None:
        self.outcomes[index] = outcome
        self.remaining -= 1
        if self.remaining == 0 and not self.done.done():
            self.done.set_result(None)


class ReplyInbox:
    """One reply subscription (``<inbox>.<wildcard>``) per NATS connection, made again on a new client.

    Subclasses set ``WILDCARD`` and handle every reply in :meth:`_on_reply`; ``_next`` numbers what they send.
    """

    WILDCARD = "*"

    def __init__(self) -> None:
        self._client: Any = None
        self._prefix = ""
        self._sub: Any = None
        self._next = 0

    async def _ready(self, client: Any) -> None:
        if self._client is client and self._sub is not None:
            return
        if self._sub is not None:  # a new client (the old one closed for good): subscribe on it
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
        self._prefix = client.new_inbox()
        self._sub = await client.subscribe(f"{self._prefix}.{self.WILDCARD}", cb=self._on_reply)
        self._client = client

    async def _on_reply(self, msg: Any) -> None:
        raise NotImplementedError


class AckInbox(ReplyInbox):
    """One reply inbox per NATS connection; :meth:`send` publishes a batch and returns each message's outcome."""

    def __init__(self) -> None:
        super().__init__()
        self._waiting: dict[str, tuple[_Batch, int]] = {}

    async def _on_reply(self, msg: Any) -> None:
        waiting = self._waiting.pop(msg.subject[len(self._prefix) + 1:], None)
        if waiting is None:  # late (the batch timed out) or not ours
            return
        batch, index = waiting
        batch.settle(index, _refusal(msg))

    async def send(self, client: Any, messages: Sequence[Wire], timeout: float) -> list[BaseException | None]:
        """Publish ``(subject, header block, body)`` in order; wait up to ``timeout`` s after the last for every ack."""
        await self._ready(client)
        batch = _Batch(len(messages))
        tokens = [str(n) for n in range(self._next, self._next + len(messages))]
        self._next += len(messages)
        commands = []
        for index, ((subject, block, body), token) in enumerate(zip(messages, tokens, strict=True)):
            self._waiting[token] = (batch, index)
            commands.append(hpub(subject, f"{self._prefix}.{token}", block, body))
        try:
            await write(client, b"".join(commands))
            if messages:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(batch.done), timeout)
        except BaseException as exc:  # a send failed (connection closed) or we were cancelled
            self._settle_rest(batch, tokens, exc, len(messages))
            if not isinstance(exc, Exception):
                raise
            return batch.outcomes
        self._settle_rest(batch, tokens, AckTimeoutError(f"no JetStream ack within {timeout}s"), len(messages))
        return batch.outcomes

    def _settle_rest(self, batch: _Batch, tokens: list[str], exc: BaseException, size: int) -> None:
        """Fail every message of ``batch`` still waiting (sent or not) with ``exc``; forget their tokens."""
        for index in range(size):
            token = tokens[index] if index < len(tokens) else None
            if token is None or self._waiting.pop(token, None) is not None:
                batch.settle(index, exc)


def _refusal(msg: Any) -> BaseException | None:
    """``None`` for a JetStream ack, else why the message was not stored."""
    if msg.headers and msg.headers.get(_STATUS) == _NO_RESPONDERS:
        return RefusedByStreamError("no JetStream stream listens on this subject (no responders)")
    data: bytes = msg.data
    if b'"error"' not in data:
        return None
    try:
        error = json.loads(data).get("error") or {}
    except (ValueError, AttributeError):
        return RefusedByStreamError(f"unreadable JetStream answer: {data[:200]!r}")
    return RefusedByStreamError(f"JetStream refused the message: {error.get('description', error)} "
                                f"(code {error.get('err_code', '?')})")
