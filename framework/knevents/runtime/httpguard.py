"""Connection guards for the ports uvicorn serves (the UI; runner ports and the thin function entry only when
httptools is missing, else :mod:`.httpserver` serves them with the same limits): header size and count limits,
header and body timeouts.

uvicorn's httptools protocol accepts any amount of header data and waits for a
slow client forever, so one client could pin memory with megabytes of headers
and a thousand could hold every connection by sending a byte a second. This
subclass counts what the parser hands over and arms a timer per phase:

* from connect (or the previous answer) to the end of the headers: ``header_timeout``;
* from the end of the headers to the end of the body: ``body_timeout``.

A request over ``max_header_bytes`` or ``max_headers`` is answered 431 and the
connection closed; a timer that fires closes the connection (408 when nothing
was answered yet). The body limit itself is checked by the ASGI app while it
reads (:mod:`.asgi`), so nothing past it is buffered.
"""

from __future__ import annotations

import asyncio
from typing import Any

from knevents.settings import ServerSettings

__all__ = ["guarded_protocol"]


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing a request that was already answered."""


def _answer(status: str, text: str) -> bytes:
    body = text.encode()
    return (f"HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {len(body)}\r\n"
            "connection: close\r\n\r\n").encode() + body


def guarded_protocol(limits: ServerSettings) -> type[Any]:
    """uvicorn's httptools protocol class with ``limits`` applied (uvicorn is imported here, lazily)."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        _timer: asyncio.TimerHandle | None = None
        _refused = False
        _header_bytes = 0
        _header_count = 0

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm(limits.header_timeout, "request headers")

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if not self._refused:
                super().data_received(data)

        def send_400_response(self, msg: str) -> None:
            if not self._refused:  # a callback of ours stopped the parser: the answer is already sent
                super().send_400_response(msg)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._header_bytes = self._header_count = 0
            self._arm(limits.header_timeout, "request headers")

        def on_url(self, url: bytes) -> None:
            super().on_url(url)
            self._count(len(url), 0)

        def on_header(self, name: bytes, value: bytes) -> None:
            super().on_header(name, value)
            self._count(len(name) + len(value) + 4, 1)

        def on_headers_complete(self) -> None:
            self._arm(limits.body_timeout, "request body")
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._disarm()
            super().on_message_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm(limits.header_timeout, "request headers")

        def _count(self, size: int, lines: int) -> None:
            self._header_bytes += size
            self._header_count += lines
            if self._header_bytes > limits.max_header_bytes or self._header_count > limits.max_headers:
                self._refuse("431 Request Header Fields Too Large",
                             f"request headers too large: at most {limits.max_headers} headers and "
                             f"{limits.max_header_bytes} bytes\n")
                raise _Refused

        def _arm(self, seconds: float, what: str) -> None:
            self._disarm()
            self._timer = self.loop.call_later(seconds, self._expire, what, seconds)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _expire(self, what: str, seconds: float) -> None:
            self._timer = None
            if self.transport.is_closing():
                return
            if self.cycle is None or not self.cycle.response_started:
                self._refuse("408 Request Timeout", f"{what} not received within {seconds:g}s\n")
            else:
                self.transport.close()

        def _refuse(self, status: str, text: str) -> None:
            self._refused = True
            self._disarm()
            if self.cycle is not None:
                self.cycle.disconnected = True  # the app (if any) stops waiting for a body that will not come
                self.cycle.message_event.set()
            self.transport.write(_answer(status, text))
            self.transport.close()

    return GuardedHttpToolsProtocol
