"""JetStream fast-ingest batches (nats-server ≥ 2.14, stream ``allow_batched``): a batch stored as it arrives, acked in bulk.

A plain pipelined publish (:mod:`knevents.bus.pipeline`) costs the server one
ack message per event and the client one parsed message, callback and outcome
per ack. In a fast-ingest batch (ADR-50) the server stores each message as it
comes and answers only every ``flow`` messages and once at the end, which
roughly halves the client's and the server's work per event.

The protocol rides entirely on the reply subject, so the stored messages are
exactly those of a plain publish (headers, ``Nats-Msg-Id`` de-duplication
included: a duplicate inside a batch is dropped and counted as stored, as a
plain publish would):

* message ``seq`` (from 1) of a batch goes out with the reply
  ``<inbox>.<batch id>.<flow>.fail.<seq>.<op>.$FI``, ``op`` 0 for the first,
  1 after; a last message ``op`` 3 (``eob``, empty, not stored) ends it;
* the server answers on those subjects: ``{"type":"ack","seq":s}`` (messages
  1..s stored), an error object for a message it refused (too large for the
  stream, no stream: a ``503`` status), and one final pub ack
  ``{"batch":…,"count":c}``;
* gap mode ``fail``: after a refused message the server abandons the batch, so
  the final ``count`` is exactly the stored prefix and nothing after it is
  stored. A lost ack or a lost connection therefore never passes a message
  for stored: what is not covered by an ack is reported failed and sent again
  by the publisher (same ``Nats-Msg-Id``, so a copy that did land is dropped).

At most :data:`WINDOW` × ``flow`` messages are sent ahead of the server's
last ack. Outcomes are those of :meth:`knevents.bus.pipeline.AckInbox.send`,
plus :class:`BatchUnsupportedError` for every message when the stream refuses
fast batches (not enabled, too many batches in flight): nothing of the batch
was stored, and the caller sends it the plain way. Like the pipeline, it
imports nothing but the standard library and nats through the caller's client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from typing import Any

from knevents.bus import pipeline

__all__ = ["FLOW", "WINDOW", "BatchUnsupportedError", "FastBatches", "supported"]

FLOW = 100
"""Messages per flow ack asked of the server (an upper bound; it may ack more often)."""
WINDOW = 3
"""Flow intervals sent ahead of the last ack: a batch of up to 300 goes out without waiting."""
_NO_BATCHING = (10205, 10211)
"""Batch publishing disabled on the stream; too many fast batches in flight on it or on the server."""
_UNKNOWN_BATCH = 10208


class BatchUnsupportedError(Exception):
    """The stream did not take a fast batch at all (disabled, or too many in flight); nothing of it was stored."""

    def __init__(self, message: str, *, disabled: bool) -> None:
        super().__init__(message)
        self.disabled = disabled


def supported(client: Any) -> bool:
    """Whether the server ``client`` is connected to speaks fast-ingest batches (nats-server 2.14 or later)."""
    version = getattr(client, "connected_server_version", None)
    return version is not None and (version.major, version.minor) >= (2, 14)


class _Batch:
    __slots__ = ("acked", "count", "done", "errors", "failure", "moved", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.acked = 0
        """Highest sequence the server said is stored (with every one before it)."""
        self.count: int | None = None
        """The final ack's count: the stored prefix; ``None`` until the batch ended."""
        self.errors: dict[int, BaseException] = {}
        self.failure: BatchUnsupportedError | None = None
        loop = asyncio.get_running_loop()
        self.done: asyncio.Future[None] = loop.create_future()
        self.moved: asyncio.Event = asyncio.Event()

    def end(self, count: int) -> None:
        if self.count is None:
            self.count = count
            self.acked = max(self.acked, count)
        if not self.done.done():
            self.done.set_result(None)
        self.moved.set()

    def on_reply(self, seq: int, headers: Any, data: bytes) -> None:
        if headers and headers.get("Status") == "503":
            self.errors[seq] = pipeline.RefusedByStreamError("no JetStream stream listens on this subject")
        elif b'"type":"ack"' in data:
            self.acked = max(self.acked, int(json.loads(data)["seq"]))
            self.moved.set()
        elif b'"batch"' in data and b'"error"' not in data:
            self.end(int(json.loads(data).get("count", 0)))
        elif b'"error"' in data:
            self._on_error(seq, data)
        # a gap notice needs nothing: in fail mode the final ack (the stored prefix) follows it

    def _on_error(self, seq: int, data: bytes) -> None:
        try:
            answer = json.loads(data)
        except ValueError:
            answer = {"error": {"description": data[:200].decode(errors="replace")}}
        error = answer.get("error") or {}
        code = error.get("err_code")
        seq = int(answer.get("seq") or seq) if answer.get("type") == "err" else seq
        if code in _NO_BATCHING and self.acked == 0 and self.count is None:
            self.failure = BatchUnsupportedError(f"JetStream refused the fast batch: {error.get('description')} "
                                                 f"(code {code})", disabled=code == _NO_BATCHING[0])
            self.end(0)
        elif code == _UNKNOWN_BATCH:  # the server no longer knows the batch (restarted, timed out)
            self.end(self.acked)
        else:
            self.errors[seq] = pipeline.RefusedByStreamError(
                f"JetStream refused the message: {error.get('description', error)} (code {code or '?'})")

    def outcomes(self, unacked: BaseException) -> list[BaseException | None]:
        """Per message: ``None`` within the stored prefix, else its error (``unacked`` when none was given)."""
        if self.failure is not None:
            return [self.failure] * self.size
        stored = self.acked
        if self.count is not None:
            stored = self.count
            unacked = pipeline.RefusedByStreamError(f"not stored: JetStream ended the batch after message {stored}")
        return [None if seq <= stored and seq not in self.errors else self.errors.get(seq, unacked)
                for seq in range(1, self.size + 1)]


class FastBatches(pipeline.ReplyInbox):
    """One reply subscription (``<inbox>.>``) per NATS connection; :meth:`send` publishes one fast batch."""

    WILDCARD = ">"

    def __init__(self) -> None:
        super().__init__()
        self._batches: dict[str, _Batch] = {}

    async def _on_reply(self, msg: Any) -> None:
        # <prefix>.<batch id>.<flow>.<gap>.<seq>.<op>.$FI
        token, _, rest = msg.subject[len(self._prefix) + 1:].partition(".")
        batch = self._batches.get(token)
        if batch is None:  # late (the batch ended) or not ours
            return
        try:
            seq = int(rest.split(".")[2])
        except (IndexError, ValueError):
            return
        batch.on_reply(seq, msg.headers, msg.data)

    async def send(self, client: Any, messages: Sequence[pipeline.Wire],
                   timeout: float) -> list[BaseException | None]:
        """Publish ``messages`` as one fast batch, in order; per message ``None`` (stored) or the error."""
        await self._ready(client)
        # the batch id must be unique on the server: the inbox's random token and a counter
        token = f"{self._prefix.rpartition('.')[2]}{self._next}"
        self._next += 1
        batch = _Batch(len(messages))
        self._batches[token] = batch
        reply = f"{self._prefix}.{token}.{FLOW}.fail."
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            await self._write_all(client, batch, messages, reply, deadline)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(batch.done), max(deadline - loop.time(), 0.001))
        except Exception as exc:  # the connection failed under the writes: only what was acked is stored
            return batch.outcomes(exc)
        finally:
            del self._batches[token]
        return batch.outcomes(pipeline.AckTimeoutError(f"no JetStream ack within {timeout}s"))

    async def _write_all(self, client: Any, batch: _Batch, messages: Sequence[pipeline.Wire], reply: str,
                         deadline: float) -> None:
        """Send the messages ``FLOW`` at a time, never more than ``WINDOW`` flows past the last ack, then ``eob``."""
        loop = asyncio.get_running_loop()
        for start in range(0, len(messages), FLOW):
            while start + FLOW - batch.acked > FLOW * WINDOW and batch.count is None:
                batch.moved.clear()
                left = deadline - loop.time()
                if left <= 0:
                    return  # the ack never came: the outcomes say unacked past batch.acked
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(batch.moved.wait(), left)
            if batch.count is not None:  # ended early (a refused message): the rest would not be stored
                return
            chunk = messages[start:start + FLOW]
            await pipeline.write(client, b"".join(
                pipeline.hpub(subject, f"{reply}{seq}.{0 if seq == 1 else 1}.$FI", block, body)
                for seq, (subject, block, body) in enumerate(chunk, start + 1)))
        end = len(messages) + 1
        await pipeline.write(client, f"PUB {messages[-1][0]} {reply}{end}.3.$FI 0\r\n\r\n".encode())
