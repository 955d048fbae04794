"""Serve :mod:`knevents.web` handlers on local TCP ports (no Flask in the library).

The local runner listens on every port an EventSource asks for (webhook
``port``); one server per port (:mod:`knevents.runtime.httpserver`; uvicorn for
the UI's streams) turns requests into :class:`web.Request` values and
:class:`web.Response` values back, so the same handler code runs here and in
the function on Knative. Sockets are bound first (:func:`knevents.runtime.asgi.bind`),
so that "port already in use" is a clear error, not a server's ``sys.exit``.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Any

from knevents.runtime import asgi, httpserver
from knevents.runtime.asgi import Handler, Receive, Scope, Send, asgi_app, bind
from knevents.settings import ServerSettings

# the ASGI app, the socket and the uvicorn settings are shared with the thin function entry (deploy)
__all__ = ["Handler", "PortServer", "Receive", "Scope", "Send", "asgi_app", "bind"]


class PortServer:
    """One server on one already-bound socket, started and stopped from a running loop.

    A handler (one request, one response) is served by :class:`~knevents.runtime.httpserver.HttpServer`; a raw
    ASGI app (the UI's streaming answers) by uvicorn, as is everything when httptools is not installed.
    """

    def __init__(self, sock: socket.socket, handler: Handler | None, ssl_context: ssl.SSLContext | None = None, *,
                 max_body: int = ServerSettings.max_body, limits: ServerSettings | None = None,
                 app: asgi.App | None = None) -> None:
        """Serve ``handler`` (one request, one response), or ``app``, a raw ASGI app (streaming answers)."""
        limits = limits or ServerSettings()
        self.sock = sock
        self.port = int(sock.getsockname()[1])
        self.scheme = "https" if ssl_context is not None else "http"
        self._lean: httpserver.HttpServer | None = None
        self._server: Any = None
        self._loop_task: asyncio.Task[None] | None = None
        if app is None:
            if handler is None:
                raise ValueError("PortServer needs a handler or an ASGI app")
            if asgi.has_module("httptools"):
                self._lean = httpserver.HttpServer(handler, limits=limits, max_body=max_body, ssl_context=ssl_context)
                return
            app = asgi_app(handler, max_body=max_body)
        self._uvicorn(app, limits, ssl_context)

    def _uvicorn(self, app: asgi.App, limits: ServerSettings, ssl_context: ssl.SSLContext | None) -> None:
        import uvicorn  # lazily: `knevents validate` and friends never need it

        config = asgi.uvicorn_config(app, limits)
        if ssl_context is not None:  # uvicorn wants files; the TLS material comes from Secrets, already loaded
            config.ssl = ssl_context
        self._server = uvicorn.Server(config)
        self._server.lifespan = config.lifespan_class(config)

    async def start(self) -> None:
        """Accept connections (the socket is already listening, so nothing is lost before this)."""
        if self._lean is not None:
            await self._lean.start(self.sock)
            return
        await self._server.startup(sockets=[self.sock])
        self._loop_task = asyncio.create_task(self._server.main_loop(), name=f"http-{self.port}")

    async def stop(self) -> None:
        """Stop accepting, let requests in flight finish (bounded), close the socket."""
        if self._lean is not None:
            await self._lean.stop()
            self.sock.close()
            return
        self._server.should_exit = True
        if self._loop_task is not None:
            await self._loop_task
        await self._server.shutdown(sockets=[self.sock])
