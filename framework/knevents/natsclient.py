"""The nats-py client knevents connects with: the same client, with a request path that allocates less.

Every JetStream call of the hot path is a NATS request: a bus publish waits for its ack, a KV
read or write for its answer. nats-py's request (2.16) makes, per call, a 22-character NUID token
plus two random bytes from ``os.urandom`` (a system call), an ``asyncio.Future()`` (which looks the
loop up again, and on Python 3.11 every loop look-up calls ``getpid``), a done callback, and an
``asyncio.wait_for`` (another future, a timer, more loop look-ups) — measured in the profile of
``bench/profile.py`` as the request paths' share of the runner's and the sensor function's CPU.

:class:`LeanClient` keeps nats-py's wire protocol and its response multiplexing (one wildcard
subscription per connection, replies routed by the token after the prefix) and only builds the
request more cheaply: the token is a per-connection counter (unique for the life of the process,
so a late reply can never match a newer request), the future comes from the running loop, and
one timer gives the timeout. Errors are nats-py's: ``nats.errors.TimeoutError`` after ``timeout``,
``NoRespondersError`` (raised by ``request``), ``ConnectionDrainingError``. It is a subclass used
by knevents' own connections, not a patch of nats-py. It overrides private methods of
nats-py's ``Client``: ``_request_new_style``, which ``request`` calls; ``_parse_header_lines``,
which reads every message's headers (a bus event carries a dozen; nats-py's runs a generator per
name); ``_flush_pending``, which nats-py calls after each publish to wake its flusher task
through a queue with a new future. Here the publishes of one turn of the loop are written together
by one callback at its end, with no future, queue or task switch; under back-pressure (more than
the pending limit unsent on the socket), on a forced flush and without a connection, nats-py's
flusher does it as before, with its ``drain`` and its errors. And for the replies of requests,
``_init_request_sub`` notes the wildcard subscription and ``_process_msg`` resolves a reply's
future as it is read, instead of queueing it for the subscription's task; :meth:`LeanClient.subscribe_direct`
does the same for a subscription of the caller's (the dispatcher's pull inbox). Other messages are
nats-py's as before. ``tests/integration/state/test_natsclient.py`` checks them against a real nats-server and
nats-py's own parser, so an upgrade that changes them fails there.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

__all__ = ["LeanClient"]


def _time_out(future: asyncio.Future[Msg]) -> None:
    if not future.done():
        future.set_exception(nats.errors.TimeoutError())


_WHITESPACE = re.compile(r"\s")


def _header_lines(raw: bytes) -> dict[str, str]:
    """nats-py's ``_parse_header_lines`` (2.16) with the same result, without a generator per header name.

    ``Name: Value`` per CRLF-separated line; a line without ``:``, a name that is not ASCII or holds
    whitespace is skipped; values are stripped and decoded as UTF-8 with replacement characters.
    """
    out: dict[str, str] = {}
    for line in raw.split(b"\r\n"):
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        try:
            key = name.strip().decode("ascii")
        except UnicodeDecodeError:
            continue
        if _WHITESPACE.search(key) is None:
            out[key] = value.strip().decode("utf-8", "replace")
    return out


class LeanClient(Client):
    """nats-py's ``Client`` with a cheaper request, flush and header parsing (see the module docstring)."""

    _parse_header_lines = staticmethod(_header_lines)
    _write_soon: asyncio.Handle | None = None
    """The pending commands' write, due once the publishes of this turn of the loop are in."""

    def __init__(self) -> None:
        super().__init__()
        self._direct: dict[int, Callable[[Msg], None]] = {}
        """Subscriptions whose messages go straight to a handler, by id (:meth:`subscribe_direct`, request replies)."""

    async def _init_request_sub(self) -> None:
        await super()._init_request_sub()
        assert self._resp_sub_prefix
        wildcard = self._resp_sub_prefix.decode() + "*"
        for sid, subscription in self._subs.items():
            if subscription.subject == wildcard:  # replies resolve their futures as they are read
                self._direct[sid] = self._resolve_reply

    def _resolve_reply(self, msg: Msg) -> None:
        future = self._resp_map.get(msg.subject[len(self._resp_sub_prefix or b""):])
        if future is not None and not future.done():
            future.set_result(msg)

    async def subscribe_direct(self, subject: str, handler: Callable[[Msg], None]) -> Subscription:
        """A plain subscription whose messages go to ``handler`` as they are read, without a queue and a task.

        ``handler`` runs inside the read loop: it must not block (put the message in a queue of its own, set a
        future). JetStream consumers keep nats-py's ``subscribe``: their flow control needs its path.
        """
        sub = await self.subscribe(subject)  # no callback: nats-py starts no task for it
        self._direct[sub._id] = handler
        return sub

    async def _process_msg(self, sid: int, subject: bytes, reply: bytes, data: bytes, headers: bytes) -> None:
        direct = self._direct.get(sid)
        if direct is None:
            return await super()._process_msg(sid, subject, reply, data, headers)
        if sid not in self._subs:  # unsubscribed while this message was on its way
            self._direct.pop(sid, None)
            return None
        self.stats["in_msgs"] += 1
        self.stats["in_bytes"] += len(data)
        direct(self._build_message(sid, subject, reply, data, await self._process_headers(headers)))
        return None

    async def _flush_pending(self, force_flush: bool = False) -> Any:
        writer = getattr(self._transport, "_io_writer", None)  # a TCP (or TLS) connection; nats-py's own otherwise
        if (force_flush or writer is None or not self.is_connected or self._flusher_task is None
                or self._flusher_task.done() or writer.transport.get_write_buffer_size() > self._max_pending_size):
            return await super()._flush_pending(force_flush)  # back-pressure and errors as nats-py handles them
        if self._write_soon is None:
            self._write_soon = asyncio.get_running_loop().call_soon(self._write_pending, writer)
        return None

    def _write_pending(self, writer: asyncio.StreamWriter) -> None:
        self._write_soon = None
        if not self._pending_data_size or not self.is_connected or getattr(self._transport, "_io_writer", None) \
                is not writer:  # reconnected meanwhile: the new connection's flush sends what waits
            return
        try:
            writer.writelines(self._pending)
        except OSError as exc:  # as nats-py's flusher: report, then reconnect (or close)
            asyncio.get_running_loop().create_task(self._on_write_error(exc))
            return
        self._pending = []
        self._pending_data_size = 0

    async def _on_write_error(self, exc: OSError) -> None:
        await self._error_cb(exc)
        await self._process_op_err(exc)

    _requests = 0
    """Requests sent on this client: the next reply token."""

    async def _request_new_style(
        self, subject: str, payload: bytes, timeout: float = 1, headers: dict[str, Any] | None = None
    ) -> Msg:
        if self.is_draining_pubs:
            raise nats.errors.ConnectionDrainingError
        if not self._resp_sub_prefix:
            await self._init_request_sub()
        assert self._resp_sub_prefix
        self._requests += 1
        # a letter first: never all digits, so never like the bus's own ``_INBOX.<id>.<n>`` ack inboxes
        token = "r" + format(self._requests, "x")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Msg] = loop.create_future()
        self._resp_map[token] = future
        timer = loop.call_later(timeout, _time_out, future) if timeout is not None else None
        try:
            await self.publish(subject, payload, reply=self._resp_sub_prefix.decode() + token, headers=headers)
            return await future
        finally:
            if timer is not None:
                timer.cancel()
            self._resp_map.pop(token, None)
