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
* a malformed request is 400 and the connection is closed; so is an HTTP/1.1
  request without a ``Host`` header, and any request with two (RFC 9112 3.2);
* answers are redacted (:func:`knevents.redact.redact_bytes`), carry
  ``content-length`` and ``date``, and HEAD answers have no body.

Timers: a connection has one deadline and at most one timer. Moving the deadline
later (the usual case: every request) only stores a number; the timer, when it
fires early, sets itself again for the stored deadline.

Streaming answers (the UI's event stream) are not served here: the UI keeps uvicorn.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl

from knevents.runtime import asgi
from knevents.runtime.httpconn import MAX_PIPELINED, Connection
from knevents.settings import ServerSettings

__all__ = ["KEEP_ALIVE", "MAX_PIPELINED", "HttpServer", "new_loop", "serve_forever"]

KEEP_ALIVE = 5.0
"""Seconds an idle keep-alive connection is kept open (uvicorn's default)."""


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
        self.connections: set[Connection] = set()
        self.stopping = False

    async def start(self, sock: socket.socket) -> None:
        """Accept connections on ``sock`` (listening already: nothing is lost before this)."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: Connection(self), sock=sock, ssl=self._ssl, backlog=1024)
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
