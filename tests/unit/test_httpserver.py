"""The lean HTTP/1.1 server of runner ports and functions, over real sockets: order, limits, timeouts, shutdown."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from knevents import redact, web
from knevents.runtime import asgi, httpserver
from knevents.settings import ServerSettings

SEEN: list[web.Request] = []
HOLD = asyncio.Event()


async def _handler(request: web.Request) -> web.Response:
    SEEN.append(request)
    if request.path == "/slow":
        await asyncio.sleep(0.3)
    if request.path == "/hold":
        await asyncio.wait_for(HOLD.wait(), 10)
    if request.path == "/boom":
        raise RuntimeError("handler bug")
    if request.path == "/inject":
        return web.Response(200, b"x", {"x-ok": "1\r\nx-evil: 1", "x-name\r\nx-evil-name: 2": "3"})
    if request.path == "/unwritable":
        return web.Response(200, b"x", {"x-price": "5 \u20ac"})  # not latin-1: no header can say it
    if request.path == "/headers":
        return web.text_response(200, " ".join(name for name, _ in request.headers.items()))
    if request.path == "/big":
        return web.Response(200, b"x" * 8 * 1024 * 1024)
    if request.path == "/secret":
        return web.text_response(200, "token=sup3r-s3cret-value\n")
    return web.Response(200, request.method.encode() + b" " + request.path.encode() + b" " + request.body,
                        {"content-type": "text/plain"})


@pytest.fixture
async def server() -> AsyncIterator[tuple[httpserver.HttpServer, int]]:
    SEEN.clear()
    limits = ServerSettings(max_header_bytes=2048, max_headers=20, header_timeout=0.5, body_timeout=0.5)
    srv = httpserver.HttpServer(_handler, limits=limits, max_body=100, keep_alive=0.5)
    sock = asgi.bind("127.0.0.1", 0)
    await srv.start(sock)
    yield srv, sock.getsockname()[1]
    await srv.stop(grace=1.0)
    sock.close()


async def _exchange(port: int, data: bytes, wait: float = 5.0) -> bytes:
    """Send ``data``; everything answered until the server closes (or ``wait`` seconds pass)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    got = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), wait):
            got += chunk
    except TimeoutError:
        pass
    writer.close()
    return got


def _statuses(answer: bytes) -> list[int]:
    return [int(part[:3]) for part in answer.split(b"HTTP/1.1 ")[1:]]


async def test_pipelined_requests_are_answered_in_order_on_one_connection(server: tuple[object, int]) -> None:
    _, port = server
    requests = (b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\na"
                b"POST /fast HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nb"
                b"GET /last?q=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answer = await _exchange(port, requests)
    assert _statuses(answer) == [200, 200, 200]
    assert answer.index(b"POST /slow a") < answer.index(b"POST /fast b") < answer.index(b"GET /last")
    assert [r.query_string for r in SEEN] == ["", "", "q=1"]
    assert answer.count(b"connection: close") == 1


async def test_keep_alive_serves_many_requests_then_closes_an_idle_connection(server: tuple[object, int]) -> None:
    _, port = server
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for n in range(3):
        writer.write(b"POST /n HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n%d" % n)
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK") and b"date: " in head
        assert await reader.readexactly(int(head.split(b"content-length: ")[1].split(b"\r\n")[0])) == b"POST /n %d" % n
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed after 0.5 s idle, without an answer
    writer.close()


async def test_limits_and_timeouts_answer_and_close(server: tuple[object, int]) -> None:
    _, port = server
    assert _statuses(await _exchange(port, b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n")) == [413]
    chunk = b"40\r\n" + b"a" * 64 + b"\r\n"  # two 64-byte chunks pass the 100-byte limit: no length declared
    assert _statuses(await _exchange(port, b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk * 2)) == [413]
    many = b"".join(b"X-%d: v\r\n" % i for i in range(21))
    assert _statuses(await _exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")) == [431]
    assert _statuses(await _exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 3000 + b"\r\n\r\n")) == [431]
    assert _statuses(await _exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n")) == [408]      # headers never end
    assert _statuses(await _exchange(port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nab")) == [408]
    assert _statuses(await _exchange(port, b"")) == [408]                                    # nothing ever sent
    assert _statuses(await _exchange(port, b"NOT HTTP\r\n\r\n")) == [400]


async def test_a_refusal_waits_for_the_answer_in_flight(server: tuple[object, int]) -> None:
    _, port = server
    answer = await _exchange(port, b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\nPOST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n")
    assert _statuses(answer) == [200, 413]


async def test_chunked_bodies_expect_continue_head_and_percent_paths(server: tuple[object, int]) -> None:
    _, port = server
    chunked = b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    assert (await _exchange(port, chunked)).endswith(b"POST /c abcde")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\n")
    assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b"hi")
    assert (await reader.read()).endswith(b"POST /e hi")
    writer.close()
    head = await _exchange(port, b"HEAD /h HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert b"content-length: 8" in head and head.endswith(b"\r\n\r\n")
    assert (await _exchange(port, b"GET /a%20b HTTP/1.0\r\n\r\n")).endswith(b"GET /a b ")  # HTTP/1.0: closed after


async def test_handler_errors_injection_and_secrets_never_reach_the_caller(server: tuple[object, int]) -> None:
    _, port = server
    redact.register("sup3r-s3cret-value")
    try:
        answer = await _exchange(port, b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\nGET /unwritable HTTP/1.1\r\nHost: x\r\n\r\n"
                                       b"GET /inject HTTP/1.1\r\nHost: x\r\n\r\n"
                                       b"GET /secret HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    finally:
        redact.clear()
    assert _statuses(answer) == [500, 500, 200, 200]  # the connection outlived the handler's errors
    assert b"handler bug" not in answer and b"x-evil" not in answer and b"x-ok: 1\r\n" in answer
    assert b"x-name: 3\r\n" in answer
    assert b"sup3r-s3cret-value" not in answer and b"token=***" in answer


async def test_stop_finishes_the_request_in_flight_and_refuses_new_connections(
        server: tuple[httpserver.HttpServer, int]) -> None:
    srv, port = server
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    async with asyncio.timeout(60):  # the request is in flight once the handler has it (it takes 0.3 s then)
        while not SEEN:
            await asyncio.sleep(0.01)
    stopping = asyncio.create_task(srv.stop(grace=5.0))
    answer = await asyncio.wait_for(reader.read(), 5)
    await stopping
    assert answer.startswith(b"HTTP/1.1 200") and b"connection: close" in answer
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).recv(1)
    writer.close()


async def test_a_flood_of_pipelined_requests_is_bounded_and_the_rest_refused(server: tuple[object, int]) -> None:
    _, port = server
    HOLD.clear()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n" + b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n" * 500)  # one write, one read
    await asyncio.sleep(0.2)
    HOLD.set()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    statuses = _statuses(answer)
    assert statuses == [200] * (1 + httpserver.MAX_PIPELINED) + [503], statuses[-3:]
    assert len(SEEN) == 1 + httpserver.MAX_PIPELINED  # the refused ones never reached the handler


@pytest.mark.parametrize("start", [b"GET / HTTP/1.1\r\nHost: x\r\nX-Endless: ",
                                   b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX-Endless: "],
                         ids=["header", "trailer"])
async def test_a_header_line_that_never_ends_is_cut_long_before_its_timeout(start: bytes) -> None:
    limits = ServerSettings(max_header_bytes=2048, header_timeout=60, body_timeout=60)  # else a minute of reading
    srv = httpserver.HttpServer(_handler, limits=limits)
    sock = asgi.bind("127.0.0.1", 0)
    await srv.start(sock)
    port = sock.getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(start)
    sent = 0
    try:
        with pytest.raises(ConnectionError):  # the server hangs up while the line still grows
            while sent < 100 * 1024 * 1024:
                writer.write(b"a" * 65536)
                await writer.drain()
                sent += 65536
        try:  # the 431 is written first; the reset for the bytes the server never read may overtake it
            answer = await asyncio.wait_for(reader.read(), 5)
        except ConnectionError:
            answer = b""
        writer.close()
        assert _statuses(answer) in ([431], [])
        assert sent < 32 * 1024 * 1024  # the kernel's socket buffers took the rest, never the server
        assert _statuses(await _exchange(port, b"GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")) == [200]
    finally:
        await srv.stop(grace=1.0)
        sock.close()


async def test_trailers_http10_expectations_and_upgrades_follow_http11(server: tuple[object, int]) -> None:
    _, port = server
    trailer = (b"POST /headers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
               b"1\r\na\r\n0\r\nAuthorization: forged\r\n\r\n")
    answer = await _exchange(port, trailer)
    assert answer.endswith(b"transfer-encoding connection")  # a trailer is not a request header
    http10 = await _exchange(port, b"POST /e HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi")
    assert _statuses(http10) == [200]  # no 100 Continue: an HTTP/1.0 client would read it as the answer
    upgrade = await _exchange(port, b"GET /u HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
    assert _statuses(upgrade) == [200] and b"connection: close" in upgrade  # the server closes after it


async def test_a_client_that_never_reads_its_answers_is_closed(server: tuple[httpserver.HttpServer, int]) -> None:
    srv, port = server
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.setblocking(False)
    await asyncio.get_running_loop().sock_connect(client, ("127.0.0.1", port))
    try:
        await asyncio.get_running_loop().sock_sendall(client, b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        while not any(connection.write_paused for connection in srv.connections):
            await asyncio.sleep(0.02)
        # a request sent meanwhile must not lift the deadline of the answer nobody reads
        await asyncio.get_running_loop().sock_sendall(client, b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
        async with asyncio.timeout(10):  # body_timeout is 0.5 s
            while srv.connections:
                await asyncio.sleep(0.05)
    finally:
        client.close()


async def test_a_body_in_tiny_chunks_costs_about_its_size_in_memory() -> None:
    import tracemalloc

    limit = 256 * 1024
    srv = httpserver.HttpServer(_handler, max_body=limit)
    sock = asgi.bind("127.0.0.1", 0)
    await srv.start(sock)
    request = (b"POST /n HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
               + b"2\r\nab\r\n" * (limit // 2) + b"0\r\n\r\n")
    tracemalloc.start()
    try:
        answer = await _exchange(sock.getsockname()[1], request)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        await srv.stop(grace=1.0)
        sock.close()
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"ab" * 10)
    assert peak < 12 * limit, peak  # with the client's send buffer; a piece per chunk held ~60 times the body


async def test_a_client_that_half_closes_after_its_request_gets_the_answer(server: tuple[object, int]) -> None:
    _, port = server
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\na")
    writer.write_eof()  # e.g. `nc -N`: the request is whole, the client only stops sending
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert _statuses(answer) == [200] and answer.endswith(b"POST /slow a")  # the handler ran: so must its answer
    assert b"connection: close" in answer


async def test_a_request_without_exactly_one_host_header_is_refused(server: tuple[object, int]) -> None:
    """RFC 9112 3.2: an HTTP/1.1 request needs one Host header, and no request may carry two."""
    _, port = server
    for request in (b"GET /a HTTP/1.1\r\n\r\n",
                    b"GET /b HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
                    b"GET /c HTTP/1.0\r\nHost: x\r\nHost: y\r\n\r\n"):
        answer = await _exchange(port, request)
        assert answer.startswith(b"HTTP/1.1 400 "), answer
        assert b"exactly one Host header" in answer
    assert SEEN == []
    answer = await _exchange(port, b"GET /d HTTP/1.0\r\n\r\n")  # HTTP/1.0 needs none
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"GET /d ")
