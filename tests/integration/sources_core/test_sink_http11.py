"""The sink client against real servers that frame answers every legal way HTTP/1.x allows."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import cast

import pytest
from knevents import bus, errors, events, http11
from knevents.settings import BusSettings

Answer = Callable[[int], bytes]


class _Server:
    def __init__(self, server: asyncio.AbstractServer, writers: list[asyncio.StreamWriter]) -> None:
        self.server, self.writers = server, writers

    def close(self) -> None:
        self.server.close()
        for writer in self.writers:
            writer.close()


async def _server(answer: Answer) -> tuple[_Server, int, list[bytes]]:
    seen: list[bytes] = []
    writers: list[asyncio.StreamWriter] = []
    count = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal count
        writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                seen.append(head + body)
                count += 1
                out = answer(count)
                writer.write(out)
                await writer.drain()
                if b"close" in out.lower() or out.startswith(b"HTTP/1.0"):
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return _Server(server, writers), server.sockets[0].getsockname()[1], seen


async def _with(answer: Answer, test: Callable[[http11.Http11Pool, list[bytes]], Awaitable[None]]) -> None:
    server, port, seen = await _server(answer)
    pool = http11.Http11Pool(f"http://127.0.0.1:{port}/ingress?x=1", timeout=30)  # only a stalled loop would reach it
    try:
        await test(pool, seen)
    finally:
        await pool.close()
        server.close()
        await asyncio.sleep(0)


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nok",
    b"HTTP/1.0 200 OK\r\n\r\nok",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
], ids=["length", "chunked", "close", "http10", "interim"])
async def test_answers_are_read_and_connections_reused(answer: bytes) -> None:
    async def check(pool: http11.Http11Pool, seen: list[bytes]) -> None:
        for i in range(3):
            got = await pool.post({"ce-id": f"id-{i}", "x-bad": "a\r\nInjected: yes"}, b'{"n": 1}')
            assert got.status in (200, 202, 204)
            assert got.body in (b"ok", b"")
        assert len(seen) == 3
        assert seen[0].startswith(b"POST /ingress?x=1 HTTP/1.1\r\n")
        assert b"\r\nInjected: yes" not in seen[0]

    await _with(lambda n: answer, check)


async def test_publisher_retries_after_a_5xx_and_gives_up_on_a_400() -> None:
    answers = {1: b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n"}
    server, port, seen = await _server(lambda n: answers.get(n, b"HTTP/1.1 202 OK\r\nContent-Length: 0\r\n\r\n"))
    publisher = bus.HttpSinkPublisher(f"http://127.0.0.1:{port}/",
                                      settings=BusSettings(publish_retries=2, publish_backoff=0.01))
    event = events.new_event(source="s", subject="e", type="webhook", data={})
    try:
        await publisher.publish(event)
        assert len(seen) == 2
        answers.update({3: b"HTTP/1.1 400 Bad\r\nContent-Length: 0\r\n\r\n"})
        with pytest.raises(errors.BusUnavailableError, match="HTTP 400"):
            await publisher.publish(event)
        assert len(seen) == 3  # no retry after a 400
    finally:
        await publisher.close()
        server.close()
        await asyncio.sleep(0)


async def test_garbage_answer_is_a_bus_error() -> None:
    server, port, _ = await _server(lambda n: b"SMTP ready\r\n\r\n")
    publisher = bus.HttpSinkPublisher(f"http://127.0.0.1:{port}/", settings=BusSettings(publish_retries=0))
    try:
        with pytest.raises(errors.BusUnavailableError, match="ProtocolError"):
            await publisher.publish(events.new_event(source="s", subject="e", type="webhook", data={}))
    finally:
        await publisher.close()
        server.close()
        await asyncio.sleep(0)


async def test_bad_url_is_a_bus_error() -> None:
    publisher = bus.HttpSinkPublisher("ftp://nowhere/")
    with pytest.raises(errors.BusUnavailableError, match="not an http"):
        await publisher.publish(events.new_event(source="s", subject="e", type="webhook", data={}))


async def test_head_answers_end_with_their_headers() -> None:
    async def check(pool: http11.Http11Pool, seen: list[bytes]) -> None:
        for _ in range(2):  # a HEAD answer's Content-Length announces a body that never comes
            got = await pool.request("HEAD", {}, b"")
            assert (got.status, got.body, got.headers["content-length"]) == (200, b"", "5")

    await _with(lambda n: b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", check)


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\nshort",
    b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000 + b"\r\nContent-Length: 0\r\n\r\n",
], ids=["truncated", "huge-headers"])
async def test_a_broken_answer_is_an_error_not_a_response(answer: bytes) -> None:
    async def check(pool: http11.Http11Pool, seen: list[bytes]) -> None:
        with pytest.raises((OSError, asyncio.IncompleteReadError)):
            await pool.post({}, b"{}")

    await _with(lambda n: answer, check)



Script = Callable[[int, int], Awaitable[tuple[bytes, bool]]]


class _Scripted:
    def __init__(self, server: asyncio.AbstractServer, handlers: list[asyncio.Task[None]]) -> None:
        self.server, self.handlers = server, handlers

    async def close(self) -> None:
        self.server.close()
        await asyncio.wait_for(asyncio.gather(*self.handlers), 10)  # each ends when the client hangs up


async def _scripted(script: Script) -> tuple[_Scripted, int]:
    """A server that answers request ``n`` of connection ``c`` with ``await script(c, n)``: bytes, and close after."""
    connections = 0
    handlers: list[asyncio.Task[None]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        handlers.append(cast(asyncio.Task[None], asyncio.current_task()))
        connections += 1
        conn = connections
        try:
            for n in range(1, 10):
                head = await reader.readuntil(b"\r\n\r\n")
                await reader.readexactly(int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0]))
                answer, close = await script(conn, n)
                writer.write(answer)
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return _Scripted(server, handlers), server.sockets[0].getsockname()[1]


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def test_a_request_the_server_began_to_answer_is_never_sent_again() -> None:
    requests: list[tuple[int, int]] = []

    async def script(conn: int, n: int) -> tuple[bytes, bool]:
        requests.append((conn, n))
        if (conn, n) == (1, 2):  # the kept-alive connection breaks in the middle of the status line
            return b"HTTP/1.1 50", True
        return OK, False

    server, port = await _scripted(script)
    pool = http11.Http11Pool(f"http://127.0.0.1:{port}/", timeout=5)
    try:
        assert (await pool.post({}, b"1")).status == 200
        with pytest.raises(asyncio.IncompleteReadError):
            await pool.post({}, b"2")
        assert requests == [(1, 1), (1, 2)]  # not retried on a new connection: the server may have acted on it
    finally:
        await pool.close()
        await server.close()


async def test_an_answer_to_no_request_is_never_read_as_the_next_ones() -> None:
    sent_stray = asyncio.Event()

    async def script(conn: int, n: int) -> tuple[bytes, bool]:
        if conn == 1 and n == 1:  # then the start of a second answer nobody asked for
            sent_stray.set()
            return OK + b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", False
        if conn == 1:
            return b"\r\nstray", False
        return OK, False

    server, port = await _scripted(script)
    pool = http11.Http11Pool(f"http://127.0.0.1:{port}/", timeout=5)
    try:
        assert (await pool.post({}, b"1")).body == b"ok"
        await sent_stray.wait()
        for _ in range(100):  # give the stray bytes time to reach the client (read, they close the connection)
            if not pool._idle or pool._idle[0].closed:
                break
            await asyncio.sleep(0.02)
        assert (await pool.post({}, b"2")).body == b"ok"  # on a new connection
    finally:
        await pool.close()
        await server.close()


async def _streaming(head: bytes, piece: bytes, pieces: int, tail: bytes = b"") -> tuple[asyncio.Event, int]:
    """A server answering one request with ``head``, ``piece`` ``pieces`` times (drained), ``tail``; then set."""
    served = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(head)
            for _ in range(pieces):
                writer.write(piece)
                await writer.drain()
            writer.write(tail)
            await writer.drain()
            await reader.read()
        except ConnectionError:
            pass
        writer.close()
        server.close()
        served.set()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return served, server.sockets[0].getsockname()[1]


async def test_a_header_line_that_never_ends_is_cut_long_before_the_timeout() -> None:
    served, port = await _streaming(b"HTTP/1.1 200 OK\r\nX-Endless: ", b"a" * 65536, 512)  # 32 MiB
    pool = http11.Http11Pool(f"http://127.0.0.1:{port}/", timeout=30)
    try:
        with pytest.raises(http11.ProtocolError, match="header line"):
            await pool.post({}, b"{}")
    finally:
        await pool.close()
        await asyncio.wait_for(served.wait(), 30)


async def test_an_answer_in_tiny_chunks_costs_about_its_size_in_memory() -> None:
    import tracemalloc

    size = 1024 * 1024
    piece = b"2\r\nab\r\n" * 8192  # 16 KiB of body in 8192 chunks
    served, port = await _streaming(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", piece,
                                    size // 16384, b"0\r\n\r\n")
    pool = http11.Http11Pool(f"http://127.0.0.1:{port}/", timeout=30)
    tracemalloc.start()
    try:
        answer = await pool.post({}, b"{}")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        await pool.close()
        await asyncio.wait_for(served.wait(), 30)
    assert answer.body == b"ab" * (size // 2)
    assert peak < 6 * size, peak  # a piece per chunk held ~60 times the body
