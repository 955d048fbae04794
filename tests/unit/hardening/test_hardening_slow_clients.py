"""Issue 12 §5: with the default limits, a client trickling its headers is disconnected well within 60 s."""

from __future__ import annotations

import asyncio
import socket
import time

from knevents import web
from knevents.local import httpserve
from knevents.settings import ServerSettings


async def _ok(request: web.Request) -> web.Response:
    return web.text_response(200, "ok\n")


def _trickle(port: int) -> tuple[float, bytes]:
    """Send a header byte every half second (never finishing); when and how the server hung up."""
    started = time.monotonic()
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=70) as sock:
        sock.sendall(b"POST /hook HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        sock.settimeout(0.5)
        while time.monotonic() - started < 70:
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                try:
                    sock.sendall(b"a")
                except OSError:
                    break
                continue
            if not chunk:
                break
            answer += chunk
    return time.monotonic() - started, answer


async def test_trickled_headers_are_cut_at_the_default_timeout() -> None:
    assert ServerSettings().header_timeout <= 60
    server = httpserve.PortServer(httpserve.bind("127.0.0.1", 0), _ok)
    await server.start()
    try:
        seconds, answer = await asyncio.to_thread(_trickle, server.port)
    finally:
        await server.stop()
    assert seconds < 60, f"the slow client was held {seconds:.1f} s"
    assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
