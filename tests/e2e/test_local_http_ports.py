"""The runner's HTTP ports: uvicorn over knevents.web values, routing by path and method, clear bind errors."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from knevents import errors, web
from knevents.local import httpserve, routes


class _Source:
    """A stand-in for a SourceRuntime: records what it was handed and answers 200."""

    def __init__(self) -> None:
        self.requests: list[tuple[web.Request, int | None]] = []

    async def handle(self, request: web.Request, port: int | None = None) -> web.Response:
        self.requests.append((request, port))
        return web.json_response(200, {"got": request.body.decode(), "path": request.path})


async def _serve(table: list[tuple[str | None, str, Any]]) -> httpserve.PortServer:
    sock = httpserve.bind("127.0.0.1", 0)
    server = httpserve.PortServer(sock, routes.router(sock.getsockname()[1], table))
    await server.start()
    return server


async def test_requests_reach_the_source_that_owns_path_and_method() -> None:
    build, deploy = _Source(), _Source()
    server = await _serve([("POST", "/build", build), ("POST", "/deploy", deploy)])
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            answer = await client.post("/build?x=1", content=b'{"a": 1}', headers={"X-Thing": "one"})
            assert answer.status_code == 200 and answer.json() == {"got": '{"a": 1}', "path": "/build"}
            assert (await client.get("/build")).status_code == 405
            assert (await client.post("/nowhere")).status_code == 404
            assert (await client.get("/health")).status_code == 200
    finally:
        await server.stop()
    [(request, port)] = build.requests
    assert port == server.port and request.query == {"x": ["1"]}
    assert request.headers["x-thing"] == "one" and request.method == "POST"
    assert deploy.requests == []


async def test_a_failing_handler_is_a_500_and_the_server_keeps_serving() -> None:
    class Broken:
        async def handle(self, request: web.Request, port: int | None = None) -> web.Response:
            raise RuntimeError("boom")

    ok = _Source()
    server = await _serve([("POST", "/broken", Broken()), (None, "/ok", ok)])
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            broken = await client.post("/broken")
            assert broken.status_code == 500 and "boom" not in broken.text
            assert (await client.put("/ok")).status_code == 200  # method None: any method
    finally:
        await server.stop()


def test_a_taken_port_is_a_knevents_error_naming_it() -> None:
    taken = httpserve.bind("127.0.0.1", 0)
    port = taken.getsockname()[1]
    try:
        with pytest.raises(errors.KneventsError, match=f"cannot listen on 127.0.0.1:{port}"):
            httpserve.bind("127.0.0.1", port)
    finally:
        taken.close()
