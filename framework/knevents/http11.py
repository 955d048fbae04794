"""A small keep-alive HTTP/1.1 client for sending requests to one URL.

Why not httpx: measured on this project's 2-core machines, ``httpx.AsyncClient``
sustained ~70 POSTs/s at 16-way concurrency against a local sink that a raw
asyncio client drives at ~3500/s (pool contention in httpcore), and it costs
~0.25 s of CPU to import on a cold start. An event source only ever POSTs a
small body to one broker ingress, so a pool of asyncio connections is
enough (the HTTP trigger uses it too, for plain-``http`` targets without a TLS or
proxy configuration): one write per request; httptools reads the answer (status line,
headers, and a body framed by ``Content-Length``, chunked encoding or connection close). ``https`` URLs use the
default TLS context. Errors surface as :class:`OSError` subclasses or
``TimeoutError``; the caller (:class:`~knevents.bus.http.HttpSinkPublisher`)
retries and translates them.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit

__all__ = ["Http11Pool", "ProtocolError", "Response", "grow"]

_MAX_LINE = 64 * 1024
_MAX_BODY = 16 * 1024 * 1024
_READ_SLACK = 256 * 1024
"""Bytes a read may add on top of ``_MAX_LINE`` with no parser callback: httptools keeps a header line whole until
it ends, so a line that never ends is cut here, not at the timeout."""


class ProtocolError(OSError):
    """The server's answer is not HTTP/1.x we can read."""


@dataclass(frozen=True)
class Response:
    """What the sink answered."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    """Lower-cased header names."""


class _Conn(asyncio.Protocol):
    """One kept-alive connection; httptools reads its answers as the bytes come (no line-by-line reads)."""

    def __init__(self) -> None:
        import httptools  # a dependency of knevents; imported with the first connection

        self._errors = (httptools.HttpParserError, httptools.HttpParserUpgrade)
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[tuple[Response, bool]] | None = None
        self.head = False
        """The request was HEAD: the answer ends with its headers."""
        self.closed = False
        self.answered = False
        """A byte of an answer came since the request was sent: it must not be sent again."""
        self._reset()

    def _reset(self) -> None:
        self.headers: dict[str, str] = {}
        self.header_bytes = 0
        self.body: bytes | bytearray = b""  # see grow()
        self.unparsed = 0
        """Bytes read since the last body piece (or the answer's start)."""
        self.size = 0
        self.headers_done = False
        self.framed = False
        """The body has a length or chunks (else it ends when the server closes)."""

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def send(self, request: bytes, head: bool) -> asyncio.Future[tuple[Response, bool]]:
        """Write ``request``; the future gets the answer and whether the connection can be kept."""
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.head = head
        self.answered = False
        self._reset()
        self.transport.write(request)
        return self.waiter

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.answered = True
        self.unparsed += len(data)
        try:
            self.parser.feed_data(data)
        except self._errors as exc:
            cause = exc.__context__  # a ProtocolError of a callback below, or the parser's own complaint
            self._fail(cause if isinstance(cause, ProtocolError) else ProtocolError(f"unreadable answer: {exc}"))
            self.close()
            return
        if self.unparsed > _MAX_LINE + _READ_SLACK:
            self._fail(ProtocolError(f"answer header line over {_MAX_LINE} bytes"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.headers_done and not self.framed and not self.head:  # the body was delimited by the close
            self._done(keep=False)
        elif self.answered:  # the server began to answer, so it had the request: never send it again
            self._fail(asyncio.IncompleteReadError(bytes(self.body) or b"?", None))
        else:  # nothing of an answer: a kept-alive connection the server had closed (the caller tries another)
            self._fail(asyncio.IncompleteReadError(b"", None))

    # httptools callbacks
    def on_message_begin(self) -> None:
        if self.waiter is None:  # an answer to no request (or a second one): it must not pass for the next one's
            raise ProtocolError("answer without a request")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_bytes += len(name) + len(value)
        if self.header_bytes > _MAX_LINE:
            raise ProtocolError(f"answer headers over {_MAX_LINE} bytes")
        self.headers[name.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()

    def on_headers_complete(self) -> None:
        self.headers_done = True
        self.framed = "content-length" in self.headers or "chunked" in self.headers.get("transfer-encoding", "")
        if self.head and not 100 <= self.parser.get_status_code() < 200:
            self._done(keep=False)  # the parser would wait for a body HEAD never has: the connection goes

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > _MAX_BODY:
            raise ProtocolError(f"answer of more than {_MAX_BODY} bytes is too large")
        self.unparsed = 0
        self.body = grow(self.body, body)

    def on_message_complete(self) -> None:
        if 100 <= self.parser.get_status_code() < 200:  # 100 Continue and friends: the answer follows
            self._reset()
            return
        self._done(keep=self.parser.should_keep_alive())

    def _done(self, keep: bool) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            body = bytes(self.body) if isinstance(self.body, bytearray) else self.body
            waiter.set_result((Response(self.parser.get_status_code(), body, self.headers), keep))

    def _fail(self, exc: BaseException) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


def grow(buffer: bytes | bytearray, piece: bytes) -> bytes | bytearray:
    """``buffer`` followed by ``piece``: the first piece as it came (no copy), then one bytearray that grows.

    A list of the parser's pieces joined at the end costs ~20 times the body when they are tiny (2-byte chunks:
    a 4 MiB body held ~105 MB, ~280 MB at the join); ``bytes(buffer)`` gives the result.
    """
    if not buffer:
        return piece
    if isinstance(buffer, bytearray):
        buffer += piece
        return buffer
    return bytearray(buffer) + piece


def _clean(value: str) -> str:
    if "\r" in value or "\n" in value:  # a header a caller set must not start another one
        return value.replace("\r", " ").replace("\n", " ")
    return value


class Http11Pool:
    """Keep-alive connections to the origin of one URL."""

    def __init__(self, url: str, *, timeout: float = 5.0, max_connections: int = 100) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"sink URL {url!r} is not an http(s) URL")
        self.url = url
        self._host = parts.hostname
        self._tls = parts.scheme == "https"
        self._port = parts.port or (443 if self._tls else 80)
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        default_port = 443 if self._tls else 80
        host = f"[{self._host}]" if ":" in self._host else self._host
        self._host_header = host if self._port == default_port else f"{host}:{self._port}"
        self._timeout = timeout
        self._idle: list[_Conn] = []
        self._slots = asyncio.Semaphore(max_connections)

    async def _open(self) -> _Conn:
        context = ssl.create_default_context() if self._tls else None
        _, conn = await asyncio.get_running_loop().create_connection(_Conn, self._host, self._port, ssl=context)
        return conn

    async def post(self, headers: dict[str, str], body: bytes) -> Response:
        """POST ``body`` with ``headers``; the answer, whatever its status."""
        return await self.request("POST", headers, body)

    async def request(self, method: str, headers: dict[str, str], body: bytes) -> Response:
        """Send one request to the pool's URL; the answer, whatever its status."""
        async with self._slots:
            host = next((v for k, v in headers.items() if k.lower() == "host"), self._host_header)
            head = [f"{_clean(method)} {self._target} HTTP/1.1", f"Host: {_clean(host)}", f"Content-Length: {len(body)}"]
            head += [f"{_clean(k)}: {_clean(v)}" for k, v in headers.items() if k.lower() not in
                     ("host", "content-length", "connection", "transfer-encoding")]
            request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1", "replace") + body
            while self._idle:  # a kept-alive connection the server closed fails before any answer: try the next
                conn = self._idle.pop()
                if conn.closed:
                    continue
                try:
                    async with asyncio.timeout(self._timeout):  # not wait_for: that costs a task per request
                        return await self._exchange(conn, request, method)
                except (ConnectionError, asyncio.IncompleteReadError) as exc:
                    conn.close()
                    if not isinstance(exc, asyncio.IncompleteReadError) or exc.partial:
                        raise
                except BaseException:
                    conn.close()
                    raise
            async with asyncio.timeout(self._timeout):
                conn = await self._open()
            try:
                async with asyncio.timeout(self._timeout):
                    return await self._exchange(conn, request, method)
            except BaseException:
                conn.close()
                raise

    async def _exchange(self, conn: _Conn, request: bytes, method: str = "POST") -> Response:
        answer, keep = await conn.send(request, head=method.upper() == "HEAD")
        if keep and not conn.closed:
            self._idle.append(conn)
        else:
            conn.close()
        return answer

    async def close(self) -> None:
        """Close idle connections."""
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
