"""A lean HTTP/1.1 server for knevents handlers: httptools parsing, one write per answer, no ASGI between.

Every request a runner port or a function answers is one :class:`web.Request` in
and one :class:`web.Response` out. Under uvicorn each went through an ASGI scope,
a request/response cycle object, a flow-control object, two ``send`` messages, a
proxy-headers middleware and three or four timer handles (uvicorn's keep-alive
timer and the guards of :mod:`.httpguard`). This server parses with httptools,
calls the handler in one task per request and writes the answer in one call.

What it keeps of the uvicorn servers it replaces, each tested through the ports
that use it:

* keep-alive and pipelining: requests on a connection are answered in order,
  one handler at a time; reading pauses while a finished request waits, and
  what one read already holds may queue at most ``MAX_PIPELINED`` requests
  (more is 503 and the connection closes), so a connection's memory is bounded;
* ``ServerSettings`` guards: more than ``max_headers`` header lines or
  ``max_header_bytes`` bytes of request line and headers is 431 (a header line
  still growing a read's worth past that too, before it ends); headers not
  complete ``header_timeout`` seconds after connect (or after the previous
  answer, once a byte of the next request came) is 408; a body not complete
  ``body_timeout`` seconds after its headers is 408; each closes the connection;
* the body limit: a ``Content-Length`` over it is 413 at once, a body that passes
  it while arriving is 413 as soon as it does; nothing past it is kept;
* an idle keep-alive connection is closed after 5 s (uvicorn's default);
* ``Expect: 100-continue`` is answered before the body is read;
* a handler's exception is a 500, logged; the process and the connection stay up;
* a malformed request is 400 and the connection is closed;
* answers are redacted (:func:`knevents.redact.redact_bytes`), carry
  ``content-length`` and ``date``, and HEAD answers have no body.

Timers: a connection has one deadline and at most one timer. Moving the deadline
later (the usual case: every request) only stores a number; the timer, when it
fires early, sets itself again for the stored deadline.

Streaming answers (the UI's event stream) are not served here: the UI keeps uvicorn.
"""

from __future__ import annotations

import asyncio
import collections
import email.utils
import logging
import socket
import ssl
import time
import urllib.parse
from http import HTTPStatus
from typing import cast

from knevents import http11, web
from knevents.runtime import asgi
from knevents.settings import ServerSettings

__all__ = ["KEEP_ALIVE", "HttpServer", "new_loop", "serve_forever"]

KEEP_ALIVE = 5.0
"""Seconds an idle keep-alive connection is kept open (uvicorn's default)."""
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
MAX_PIPELINED = 32
"""Requests one connection may have waiting behind the one being answered; more is 503 and the connection closes.
Reading pauses once one waits, but the bytes already read are parsed to the end, and a single read can hold
thousands of small requests."""
_READ_SLACK = 256 * 1024
"""At most one read's worth of bytes (uvloop reads up to 256 KiB) on top of ``max_header_bytes`` before a request's
headers (or a chunked body's trailers) must be complete: httptools keeps a header line in memory until it ends, so
without this bound one line could grow until the header (or body) timeout."""
_REASONS = {int(s): s.phrase for s in HTTPStatus}


class _Stop(Exception):
    """Raised in a parser callback: the request was refused, parse nothing more on this connection."""


class _Date:
    """The ``date`` header value, formatted once a second."""

    second = -1
    value = b""

    @classmethod
    def now(cls) -> bytes:
        second = int(time.time())
        if second != cls.second:
            cls.second, cls.value = second, email.utils.formatdate(second, usegmt=True).encode()
        return cls.value


def _encode(response: web.Response, *, head: bool = False, close: bool = False) -> bytes:
    """The whole answer in bytes: status line, headers (with ``content-length`` and ``date``), body."""
    status, headers, body = asgi.answer_parts(response, close=close)
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, "").encode())]
    lines.extend(b"%s: %s\r\n" % (name, value) for name, value in headers)
    lines.append(b"date: %s\r\n\r\n" % _Date.now())
    if not head:
        lines.append(body)
    return b"".join(lines)


class HttpServer:
    """Serve ``handler`` on already-bound sockets until :meth:`stop`."""

    def __init__(self, handler: asgi.Handler, *, limits: ServerSettings | None = None,
                 max_body: int | None = None, ssl_context: ssl.SSLContext | None = None,
                 log: logging.Logger | None = None, keep_alive: float = KEEP_ALIVE) -> None:
        self.handler = handler
        self.limits = limits or ServerSettings()
        self.max_body = self.limits.max_body if max_body is None else max_body
        self.keep_alive = keep_alive
        self.log = log or logging.getLogger("knevents.http")
        self._ssl = ssl_context
        self._servers: list[asyncio.AbstractServer] = []
        self.connections: set[_Connection] = set()
        self.stopping = False

    async def start(self, sock: socket.socket) -> None:
        """Accept connections on ``sock`` (listening already: nothing is lost before this)."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _Connection(self), sock=sock, ssl=self._ssl, backlog=1024)
        self._servers.append(server)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop accepting, let requests in flight finish (``grace`` seconds at most), close every connection."""
        self.stopping = True
        for server in self._servers:
            server.close()
        for connection in list(self.connections):
            connection.close_when_idle()
        deadline = asyncio.get_running_loop().time() + grace
        while self.connections and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        for connection in list(self.connections):
            connection.abort()


class _Connection(asyncio.Protocol):
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
        for name, value in self.headers:
            if name == "content-length":
                length = value.strip()
            elif name == "expect":
                expect = value.strip().lower()
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
            self.transport.write(_encode(item, close=True))
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
            answer = _encode(response, head=head, close=not keep_alive)
        except Exception:  # a header not latin-1, a body not bytes: the connection must not wait for ever
            self.server.log.exception("answer to %s %s cannot be written", request.method, request.path)
            answer = _encode(web.text_response(500, "internal error\n"), head=head, close=not keep_alive)
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


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop when installed (less CPU per event), else asyncio's; ``KNEVENTS_LOOP=asyncio`` opts out."""
    import os

    if os.environ.get("KNEVENTS_LOOP", "auto") != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def serve_forever(handler: asgi.Handler, sock: socket.socket, limits: ServerSettings, max_body: int,
                  log: logging.Logger, grace: float = 5.0) -> None:
    """Serve on ``sock`` until SIGTERM or SIGINT, then stop as :meth:`HttpServer.stop` does."""
    import signal

    async def main() -> None:
        server = HttpServer(handler, limits=limits, max_body=max_body, log=log)
        await server.start(sock)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.stop(grace)

    with asyncio.Runner(loop_factory=new_loop) as runner:
        runner.run(main())
