"""What every knevents HTTP server shares: the listening socket, the answer's bytes, and the uvicorn path.

Two places take :mod:`knevents.web` handlers to the network: the local runner's
ports (:mod:`knevents.local.httpserve`) and the thin function entry that the
container starts (:mod:`knevents.deploy.entrypoint`). Both live above this layer
and must not import each other, so what they share is here: the listening
socket, :func:`answer_parts` (status, headers and redacted body of an answer,
for :mod:`.httpserver` and for uvicorn alike), and for the ports uvicorn still
serves (the UI's streams, and every port when httptools is missing) the ASGI
app that turns a request into a :class:`web.Request` (reading the body only up
to its limit) and the uvicorn settings with the guards of :mod:`.httpguard`.
"""

from __future__ import annotations

import email.utils
import logging
import socket
import time
from collections.abc import Awaitable, Callable, MutableMapping
from http import HTTPStatus
from typing import Any

from knevents import errors, redact, web
from knevents.runtime import httpguard
from knevents.settings import ServerSettings

__all__ = ["App", "Handler", "Receive", "Scope", "Send", "answer_parts", "asgi_app", "bind", "encode_answer", "has_module", "read_body",
           "uvicorn_config"]

Handler = Callable[[web.Request], Awaitable[web.Response]]
"""What a port serves: one request in, one response out."""

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


async def read_body(receive: Receive, limit: int) -> bytes | None:
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
        if not message.get("more_body", False):
            if not chunks:  # the usual case: the whole body in one message, no join
                return bytes(chunk)
            chunks.append(chunk)
            return b"".join(chunks)
        chunks.append(chunk)


def _declared_too_large(scope: Scope, limit: int) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return value.strip().isdigit() and int(value) > limit
    return False


def answer_parts(response: web.Response, *, close: bool = False) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """What both servers write for ``response``: status, headers (with ``content-length``), redacted body.

    A header name or value with a line break is cut at it: an answer never carries a header the handler did not
    set.
    """
    body = redact.redact_bytes(response.body)
    headers = [(_header_value(k.lower()), _header_value(v)) for k, v in response.headers.items()
               if k.lower() != "content-length"]
    headers.append((b"content-length", str(len(body)).encode()))  # never chunked: one small body
    if close:  # the unread rest of the body must not be parsed as the next request
        headers.append((b"connection", b"close"))
    return response.status, headers, body


def _header_value(value: object) -> bytes:
    text = str(value)
    if "\r" in text or "\n" in text:
        text = text.replace("\r", "\n").split("\n", 1)[0]
    return text.encode("latin-1")


_REASONS = {int(s): s.phrase for s in HTTPStatus}


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


def encode_answer(response: web.Response, *, head: bool = False, close: bool = False) -> bytes:
    """The whole answer in bytes: status line, headers (with ``content-length`` and ``date``), body."""
    status, headers, body = answer_parts(response, close=close)
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, "").encode())]
    lines.extend(b"%s: %s\r\n" % (name, value) for name, value in headers)
    lines.append(b"date: %s\r\n\r\n" % _Date.now())
    if not head:
        lines.append(body)
    return b"".join(lines)


async def _send(send: Send, response: web.Response, *, close: bool = False) -> None:
    status, headers, body = answer_parts(response, close=close)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def asgi_app(handler: Handler, log: logging.Logger | None = None,
             max_body: int = ServerSettings.max_body) -> App:
    """An ASGI application that calls ``handler``; an unexpected error is a 500, never a traceback to the caller.

    A body over ``max_body`` bytes is a 413 naming the limit: at once when ``Content-Length`` says so,
    else as soon as the bytes read pass it; the connection is then closed (the rest is never read).
    """
    logger = log or logging.getLogger("knevents.http")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = None if _declared_too_large(scope, max_body) else await read_body(receive, max_body)
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
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
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


def uvicorn_config(app: App, limits: ServerSettings, **options: Any) -> Any:
    """A loaded ``uvicorn.Config`` for ``app`` with the header/body guards of ``limits`` (uvicorn imported here).

    httptools (when installed) gets :mod:`.httpguard`'s limits and timeouts; h11 bounds headers by itself.
    ``options`` are passed through (``loop``, ``timeout_graceful_shutdown`` …).
    """
    import uvicorn  # lazily: `knevents validate` and friends never need it

    settings: dict[str, Any] = {
        "lifespan": "off",
        "log_level": "warning",
        "access_log": False,
        "http": httpguard.guarded_protocol(limits) if has_module("httptools") else "h11",
        "h11_max_incomplete_event_size": limits.max_header_bytes,
        "timeout_graceful_shutdown": 5,
        **options,
    }
    config = uvicorn.Config(app, **settings)
    config.load()
    return config


def has_module(name: str) -> bool:
    """Whether an optional accelerator (``httptools``, ``uvloop``) can be imported."""
    import importlib.util

    return importlib.util.find_spec(name) is not None
