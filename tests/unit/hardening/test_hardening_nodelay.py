"""Issue 12 §8 (TCP_NODELAY): keep-alive requests to a runner port are not held back by Nagle's algorithm."""

from __future__ import annotations

import asyncio
import socket
import statistics
import time

from knevents import web
from knevents.local import httpserve


async def _ok(request: web.Request) -> web.Response:
    return web.text_response(200, "ok\n")


def _keepalive_latencies(port: int, count: int) -> list[float]:
    request = b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    out = []
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(10)
        for _ in range(count):
            started = time.perf_counter()
            sock.sendall(request)
            answer = b""
            while not answer.endswith(b"ok\n"):
                chunk = sock.recv(4096)
                assert chunk, "server closed the keep-alive connection"
                answer += chunk
            out.append(time.perf_counter() - started)
    return out


async def test_listening_socket_sets_tcp_nodelay() -> None:
    sock = httpserve.bind("127.0.0.1", 0)
    try:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()


async def test_keepalive_median_latency_is_not_nagled() -> None:
    server = httpserve.PortServer(httpserve.bind("127.0.0.1", 0), _ok)
    await server.start()
    try:
        latencies = await asyncio.to_thread(_keepalive_latencies, server.port, 50)
    finally:
        await server.stop()
    # Nagle + delayed ACK costs 40 ms or more per request (Linux's shortest delayed ACK); unhindered it is ~0.1-1 ms.
    # 20 ms tells the two apart and leaves room for a loaded machine, where each wake-up can wait for a core.
    assert statistics.median(latencies[1:]) < 0.020, f"median {statistics.median(latencies[1:]) * 1000:.1f} ms"
