"""Serve :mod:`knevents.web` handlers on local TCP ports with uvicorn (no Flask in the library).

The local runner listens on every port an EventSource asks for (webhook
``port``); one uvicorn server per port turns ASGI requests into
:class:`web.Request` values and :class:`web.Response` values back, so the
same handler code runs here and behind functions-framework on Knative.
Sockets are bound (:func:`knevents.runtime.asgi.bind`), not by uvicorn, so that "port already in use" is a
clear error instead of uvicorn's ``sys.exit``.
"""

from __future__ import annotations

import asyncio
import socket
import ssl

from knevents.runtime import asgi
from knevents.runtime.asgi import Handler, Receive, Scope, Send, asgi_app, bind
from knevents.settings import ServerSettings

# the ASGI app, the socket and the uvicorn settings are shared with the thin function entry (deploy)
__all__ = ["Handler", "PortServer", "Receive", "Scope", "Send", "asgi_app", "bind"]


class PortServer:
    """One uvicorn server on one already-bound socket, started and stopped from a running loop."""

    def __init__(self, sock: socket.socket, handler: Handler | None, ssl_context: ssl.SSLContext | None = None, *,
                 max_body: int = ServerSettings.max_body, limits: ServerSettings | None = None,
                 app: asgi.App | None = None) -> None:
        """Serve ``handler`` (one request, one response), or ``app``, a raw ASGI app (streaming answers)."""
        import uvicorn  # lazily: `knevents validate` and friends never need it

        limits = limits or ServerSettings()
        self.sock = sock
        self.port = int(sock.getsockname()[1])
        if app is None:
            if handler is None:
                raise ValueError("PortServer needs a handler or an ASGI app")
            app = asgi_app(handler, max_body=max_body)
        config = asgi.uvicorn_config(app, limits)
        if ssl_context is not None:  # uvicorn wants files; the TLS material comes from Secrets, already loaded
            config.ssl = ssl_context
        self.scheme = "https" if ssl_context is not None else "http"
        self._server = uvicorn.Server(config)
        self._server.lifespan = config.lifespan_class(config)
        self._loop_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Accept connections (the socket is already listening, so nothing is lost before this)."""
        await self._server.startup(sockets=[self.sock])
        self._loop_task = asyncio.create_task(self._server.main_loop(), name=f"http-{self.port}")

    async def stop(self) -> None:
        """Stop accepting, let requests in flight finish (bounded), close the socket."""
        self._server.should_exit = True
        if self._loop_task is not None:
            await self._loop_task
        await self._server.shutdown(sockets=[self.sock])

