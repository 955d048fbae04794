"""Serve :mod:`knevents.web` handlers on local TCP ports with uvicorn (no Flask in the library).

The local runner listens on every port an EventSource asks for (webhook
``port``); one uvicorn server per port turns ASGI requests into
:class:`web.Request` values and :class:`web.Response` values back, so the
same handler code runs here and behind functions-framework on Knative.
Sockets are bound here, not by uvicorn, so that "port already in use" is a
clear error instead of uvicorn's ``sys.exit``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from knevents import errors, redact, web
from knevents.local import httpguard
from knevents.settings import ServerSettings

__all__ = ["Handler", "PortServer", "Receive", "Scope", "Send", "asgi_app", "bind"]

Handler = Callable[[web.Request], Awaitable[web.Response]]
"""What a port serves: one request in, one response out."""

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The body, or ``None`` when it passes ``limit`` (checked per chunk: nothing past it is kept)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _declared_too_large(scope: Scope, limit: int) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return value.strip().isdigit() and int(value) > limit
    return False


async def _send(send: Send, response: web.Response, *, close: bool = False) -> None:
    response = web.Response(response.status, redact.redact_bytes(response.body), response.headers)
    headers = [(k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in response.headers.items()
               if k.lower() != "content-length"]
    headers.append((b"content-length", str(len(response.body)).encode()))  # never chunked: one small body
    if close:  # the unread rest of the body must not be parsed as the next request
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


def asgi_app(handler: Handler, log: logging.Logger | None = None,
             max_body: int = ServerSettings.max_body) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """An ASGI application that calls ``handler``; an unexpected error is a 500, never a traceback to the caller.

    A body over ``max_body`` bytes is a 413 naming the limit: at once when ``Content-Length`` says so,
    else as soon as the bytes read pass it; the connection is then closed (the rest is never read).
    """
    logger = log or logging.getLogger("knevents.local.http")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = None if _declared_too_large(scope, max_body) else await _read_body(receive, max_body)
        if body is None:
            await _send(send, web.too_large(max_body), close=True)
            return
        headers = web.Headers([(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]])
        client = scope.get("client")
        request = web.Request(
            method=scope["method"],
            path=scope["path"],
            headers=headers,
            body=body,
            query_string=scope.get("query_string", b"").decode("latin-1"),
            remote_addr=client[0] if client else None,
        )
        try:
            response = await handler(request)
        except Exception:  # the process stays up; the caller may retry
            logger.exception("handler failed for %s %s", request.method, request.path)
            response = web.text_response(500, "internal error\n")
        await _send(send, response)

    return app


def bind(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A listening TCP socket on ``host:port``; :class:`errors.KneventsError` naming the port when taken.

    ``reuse_port``: several processes (``run --workers``) listen on the port and the kernel spreads connections.
    """
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only when the listening
    # socket says TCP. Without it uvicorn's separate head and body writes meet Nagle's algorithm and
    # the client's delayed ACK: ~40 ms per keep-alive request instead of ~0.1 ms.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise errors.KneventsError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(1024)
    sock.setblocking(False)
    return sock


class PortServer:
    """One uvicorn server on one already-bound socket, started and stopped from a running loop."""

    def __init__(self, sock: socket.socket, handler: Handler | None, ssl_context: ssl.SSLContext | None = None, *,
                 max_body: int = ServerSettings.max_body, limits: ServerSettings | None = None,
                 app: Callable[[Scope, Receive, Send], Awaitable[None]] | None = None) -> None:
        """Serve ``handler`` (one request, one response), or ``app``, a raw ASGI app (streaming answers)."""
        import uvicorn  # lazily: `knevents validate` and friends never need it

        limits = limits or ServerSettings()
        self.sock = sock
        self.port = int(sock.getsockname()[1])
        if app is None:
            if handler is None:
                raise ValueError("PortServer needs a handler or an ASGI app")
            app = asgi_app(handler, max_body=max_body)
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_level="warning",
            access_log=False,
            # h11 bounds headers by itself (but has no header timeout); httptools gets our guards
            http=httpguard.guarded_protocol(limits) if _has_httptools() else "h11",
            h11_max_incomplete_event_size=limits.max_header_bytes,
            timeout_graceful_shutdown=5,
        )
        config.load()
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


def _has_httptools() -> bool:
    try:
        import httptools  # noqa: F401
    except ImportError:
        return False
    return True
