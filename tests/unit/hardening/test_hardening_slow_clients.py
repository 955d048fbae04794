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


async def _echo(request: web.Request) -> web.Response:
    return web.text_response(200, request.body.decode() + "\n")


def _pipelined(port: int) -> bytes:
    """Two requests in one packet, the second closing the connection; everything until the server hangs up."""
    requests = (b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nfirst"
                b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nConnection: close\r\n\r\nsecond")
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(requests)
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


async def test_answers_written_together_stay_whole_and_in_order_and_close_sends_what_is_left() -> None:
    # the guarded protocol sends what one loop turn wrote as one write: a pipelined pair of answers, the last
    # one closing the connection, must still arrive whole, in order, before the close
    server = httpserve.PortServer(httpserve.bind("127.0.0.1", 0), _echo)
    await server.start()
    try:
        answer = await asyncio.to_thread(_pipelined, server.port)
    finally:
        await server.stop()
    first, _, second = answer.partition(b"HTTP/1.1 200")[2].partition(b"HTTP/1.1 200")
    assert first.endswith(b"\r\n\r\nfirst\n"), answer
    assert second.endswith(b"\r\n\r\nsecond\n"), answer
    assert answer.count(b"HTTP/1.1 ") == 2
