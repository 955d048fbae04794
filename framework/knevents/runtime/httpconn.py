"""One client connection of :class:`knevents.runtime.httpserver.HttpServer`: parse, queue, answer in order.

The behaviour (limits, timeouts, pipelining, refusals) is described in :mod:`.httpserver`; this module is the
connection's state machine: httptools' parser callbacks, the queue of finished requests, the handler task, and
the single deadline timer.
"""

from __future__ import annotations

import asyncio
import collections
import urllib.parse
from typing import TYPE_CHECKING, cast

from knevents import http11, web
from knevents.runtime.asgi import encode_answer

if TYPE_CHECKING:
    from knevents.runtime.httpserver import HttpServer

__all__ = ["MAX_PIPELINED", "Connection"]

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
MAX_PIPELINED = 32
"""Requests one connection may have waiting behind the one being answered; more is 503 and the connection closes.
Reading pauses once one waits, but the bytes already read are parsed to the end, and a single read can hold
thousands of small requests."""
_READ_SLACK = 256 * 1024
"""At most one read's worth of bytes (uvloop reads up to 256 KiB) on top of ``max_header_bytes`` before a request's
headers (or a chunked body's trailers) must be complete: httptools keeps a header line in memory until it ends, so
without this bound one line could grow until the header (or body) timeout."""


class _Stop(Exception):
    """Raised in a parser callback: the request was refused, parse nothing more on this connection."""


class Connection(asyncio.Protocol):
    """One client connection: parse, queue, answer in order."""

    def __init__(self, server: HttpServer) -> None:
        import httptools  # lazily, with the server: `knevents validate` never serves

        self.server = server
        self.limits = server.limits
        self.loop = asyncio.get_running_loop()
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.peer: str | None = None
        self.queue: collections.deque[tuple[web.Request, bool] | web.Response] = collections.deque()
        self.busy = False          # a handler is running
        self.stopped = False       # refused or closing: parse nothing more
        self.read_paused = False
        self.write_paused = False
        self.started = False       # a byte of the current request has come
        self.deadline: float | None = None
        self.expiry = ""           # what the deadline waits for ("" = an idle keep-alive connection)
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = 0.0
        self.head_bytes = 0        # bytes read since the read the current request (or its last body piece) began in
        self.read_size = 0
        self._reset()

    # -- connection events ---------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not its subclasses
        peer = self.transport.get_extra_info("peername")
        self.peer = peer[0] if isinstance(peer, tuple) else None
        self.server.connections.add(self)
        self._expect_in(self.limits.header_timeout, "request headers")

    def connection_lost(self, exc: Exception | None) -> None:
        self.stopped = True
        self.server.connections.discard(self)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def data_received(self, data: bytes) -> None:
        if self.stopped:
            return
        import httptools

        self.head_bytes += len(data)
        self.read_size = len(data)
        try:
            self.parser.feed_data(data)
        except _Stop:
            pass
        except httptools.HttpParserUpgrade:  # an upgrade we do not speak: answer the request, then close
            self._stop_reading()
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _Stop):
                return
            self._refuse(web.text_response(400, "invalid HTTP request\n"))
            return
        if self.started and self.head_bytes > self.limits.max_header_bytes + _READ_SLACK:
            self._refuse(self._too_large_headers())  # one header (or trailer) line that never ends

    def eof_received(self) -> bool | None:
        """The client sent all it will send (a half-close, not a hang-up): answer what it asked, then close.

        Returning None closes the transport at once, and the answer of a request whose handler already runs
        (an event already sent on) would be lost: the client would send it again.
        """
        if not self.busy and not self.queue:
            return None
        self.stopped = True  # parse nothing more; the last answer says close
        return True

    def pause_writing(self) -> None:
        # The client does not read its answers: answer and read nothing more until it does. Reading stops too,
        # else its next request would replace this deadline with a header timeout, then with none at all, and
        # the connection would hold its unread answer for ever.
        self.write_paused = True
        if not self.read_paused and self.transport is not None:
            self.transport.pause_reading()
        self._expect_in(self.limits.body_timeout, "")

    def resume_writing(self) -> None:
        self.write_paused = False
        if not self.read_paused and self.transport is not None:
            self.transport.resume_reading()
        if not self.expiry:
            self.deadline = None
            if self.started:  # a request was arriving meanwhile: it gets the header timeout again
                self._expect_in(self.limits.header_timeout, "request headers")
        self._next()

    # -- parser callbacks ----------------------------------------------------------------------------------

    def _reset(self) -> None:
        self.url = b""
        self.headers: list[tuple[str, str]] = []
        self.header_bytes = 0
        self.body: bytes | bytearray = b""  # one piece as it came, or one growing buffer (see http11.grow)
        self.body_size = 0
        self.headers_done = False

    def on_message_begin(self) -> None:
        self._reset()
        self.started = True
        self.head_bytes = self.read_size  # counted from the read this request began in (an upper bound)
        self._expect_in(self.limits.header_timeout, "request headers")

    def on_url(self, url: bytes) -> None:
        self.url += url
        self._count(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        if self.headers_done:  # a chunked body's trailer: never a request header a proxy in front did not see
            return
        self.headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))
        if len(self.headers) > self.limits.max_headers:
            self._too_many_headers()

    def on_headers_complete(self) -> None:
        self.headers_done = True
        length = expect = ""
        hosts = 0
        for name, value in self.headers:
            if name == "content-length":
                length = value.strip()
            elif name == "expect":
                expect = value.strip().lower()
            elif name == "host":
                hosts += 1
        if hosts > 1 or (hosts == 0 and self.parser.get_http_version() == "1.1"):
            # RFC 9112 3.2: a proxy in front and this server could each take a different one for the target
            self._refuse(web.text_response(400, "an HTTP/1.1 request needs exactly one Host header\n"))
            raise _Stop
        if length.isdigit() and int(length) > self.server.max_body:
            self._refuse(web.too_large(self.server.max_body))
            raise _Stop
        self._expect_in(self.limits.body_timeout, "request body")
        if (expect == "100-continue" and not self.busy and not self.queue and self.transport is not None
                and self.parser.get_http_version() == "1.1"):  # an HTTP/1.0 client would take it for the answer
            self.transport.write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        self.head_bytes = 0  # the body moves: from here only a trailer line can grow without a callback
        self.body_size += len(body)
        if self.body_size > self.server.max_body:
            self._refuse(web.too_large(self.server.max_body))
            raise _Stop
        self.body = http11.grow(self.body, body)

    def on_message_complete(self) -> None:
        import httptools

        self.started = False
        self.deadline = None
        parsed = httptools.parse_url(self.url)
        path = parsed.path.decode("latin-1")
        request = web.Request(
            method=self.parser.get_method().decode("latin-1"),
            path=urllib.parse.unquote(path) if "%" in path else path,
            headers=web.Headers(self.headers),
            body=bytes(self.body) if isinstance(self.body, bytearray) else self.body,
            query_string=(parsed.query or b"").decode("latin-1"),
            remote_addr=self.peer,
        )
        if len(self.queue) >= MAX_PIPELINED:
            self._refuse(web.text_response(503, f"more than {MAX_PIPELINED} pipelined requests waiting\n"))
            raise _Stop
        self.queue.append((request, self.parser.should_keep_alive() and not self.server.stopping))
        if self.busy and not self.read_paused and self.transport is not None:
            self.read_paused = True  # one finished request waits at most: memory per connection stays bounded
            self.transport.pause_reading()
        self._next()

    # -- answering -----------------------------------------------------------------------------------------

    def _next(self) -> None:
        """Start the next queued request when nothing runs (or write the next refusal)."""
        if self.busy or self.write_paused or self.transport is None or self.transport.is_closing():
            return
        if not self.queue:
            if self.stopped:  # refused or upgraded, and everything before it answered
                self.transport.close()
            elif not self.started:
                self._expect_in(self.server.keep_alive, "")
            return
        item = self.queue.popleft()
        if isinstance(item, web.Response):  # a refusal: the last answer on this connection
            self.transport.write(encode_answer(item, close=True))
            self.transport.close()
            return
        if self.read_paused and not self.stopped:
            self.read_paused = False
            self.transport.resume_reading()
        self.busy = True
        self.loop.create_task(self._answer(*item))

    async def _answer(self, request: web.Request, keep_alive: bool) -> None:
        try:
            response = await self.server.handler(request)
        except Exception:  # the process and the connection stay up; the caller may retry
            self.server.log.exception("handler failed for %s %s", request.method, request.path)
            response = web.text_response(500, "internal error\n")
        self.busy = False
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        # an upgrade stopped reading: its answer is the last, and says so
        keep_alive = keep_alive and not self.server.stopping and not (self.stopped and not self.queue)
        head = request.method == "HEAD"
        try:
            answer = encode_answer(response, head=head, close=not keep_alive)
        except Exception:  # a header not latin-1, a body not bytes: the connection must not wait for ever
            self.server.log.exception("answer to %s %s cannot be written", request.method, request.path)
            answer = encode_answer(web.text_response(500, "internal error\n"), head=head, close=not keep_alive)
        transport.write(answer)
        if not keep_alive:
            self.stopped = True
            transport.close()
            return
        self._next()

    def _refuse(self, response: web.Response) -> None:
        """Answer ``response`` after what is in flight, then close; nothing more is parsed."""
        self._stop_reading()
        self.queue.append(response)
        self._next()

    def _stop_reading(self) -> None:
        self.stopped = True
        self.deadline = None
        if not self.read_paused and self.transport is not None:
            self.read_paused = True
            self.transport.pause_reading()

    def _count(self, size: int) -> None:
        self.header_bytes += size
        if self.header_bytes > self.limits.max_header_bytes:
            self._too_many_headers()

    def _too_many_headers(self) -> None:
        self._refuse(self._too_large_headers())
        raise _Stop

    def _too_large_headers(self) -> web.Response:
        return web.text_response(431, f"request headers too large: at most {self.limits.max_headers} headers and "
                                      f"{self.limits.max_header_bytes} bytes\n")

    # -- deadlines -----------------------------------------------------------------------------------------

    def _expect_in(self, seconds: float, what: str) -> None:
        """Give the connection ``seconds`` to reach its next step (``what``; "" = idle keep-alive)."""
        self.deadline = self.loop.time() + seconds
        self.expiry = what
        if self.timer is None or self.deadline < self.timer_at:
            if self.timer is not None:
                self.timer.cancel()
            self.timer_at = self.deadline
            self.timer = self.loop.call_at(self.deadline, self._on_timer)

    def _on_timer(self) -> None:
        self.timer = None
        if self.deadline is None or self.transport is None:
            return
        if self.loop.time() < self.deadline:  # moved on since it was set: wait for the new deadline
            self.timer_at = self.deadline
            self.timer = self.loop.call_at(self.deadline, self._on_timer)
            return
        self.deadline = None
        if self.write_paused:  # answers nobody reads: close() would wait for ever to write them first
            self.transport.abort()
            return
        if self.transport.is_closing():
            return
        if not self.expiry:
            self.transport.close()  # idle keep-alive, or a client that stopped reading: no answer to give
            return
        seconds = self.limits.header_timeout if self.expiry == "request headers" else self.limits.body_timeout
        self._refuse(web.text_response(408, f"{self.expiry} not received within {seconds:g}s\n"))

    def close_when_idle(self) -> None:
        """Server shutdown: close now if nothing is in flight, else after the answer in flight."""
        if not self.busy and not self.queue and self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
