"""The thin function entry: one function served by one process, as functions-framework would serve it.

functions-framework's ASGI path costs a gunicorn arbiter, a forked worker,
Starlette routing, two middlewares and a Response object per request; on the
functions' own work of ~0.3 ms that layer was 16–22 % of the CPU per request
(issue 19). This module serves the same app objects the ``functions/*/main.py``
adapters wrap (:class:`~knevents.runtime.sensor_app.SensorApp`,
:class:`~knevents.runtime.source_app.SourceApp`) straight through
:mod:`.httpserver`, and keeps what a caller of a functions-framework HTTP
function can observe:

* it listens on ``$HOST`` (default ``0.0.0.0``) : ``$PORT`` (default 8080);
* every path goes to the function, except ``GET /robots.txt`` and
  ``GET /favicon.ico`` (404, as functions-framework answers them);
* GET, POST, PUT, DELETE, OPTIONS, HEAD and PATCH reach the function; any other
  method is 405 with an ``allow`` header;
* an exception in the function is a 500 and the process stays up.

What it adds: the server of the runner's ports (:mod:`.httpserver`: httptools,
uvloop when installed, header size, header and body timeouts,
``KNEVENTS_MAX_HEADER_*`` / ``KNEVENTS_*_TIMEOUT``; uvicorn with h11 when
httptools is missing), and the body limit checked while reading
(``KNEVENTS_MAX_BODY`` or the routes' ``maxPayloadSize``: 413, as the
functions-framework adapters answer). SIGTERM (Knative's scale-down) stops
accepting, lets requests in flight finish (5 s at most) and exits.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol

from knevents import web
from knevents.runtime import asgi, httpserver
from knevents.settings import ServerSettings

__all__ = ["METHODS", "function_contract", "serve"]

log = logging.getLogger("knevents.serve")

METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH"})
"""The methods functions-framework routes to an HTTP function; others are 405."""
_NOT_FOUND = frozenset({"/robots.txt", "/favicon.ico"})
"""Paths functions-framework answers 404 to on GET without calling the function."""


class FunctionApp(Protocol):
    """What the thin entry serves: the sensor or event-source app."""

    async def handle(self, request: web.Request) -> web.Response: ...

    @property
    def max_body(self) -> int: ...


def function_contract(handler: asgi.Handler) -> asgi.Handler:
    """``handler`` behind functions-framework's routing rules (404 for robots/favicon, 405 for odd methods)."""
    allow = ", ".join(sorted(METHODS))

    async def routed(request: web.Request) -> web.Response:
        if request.method not in METHODS:
            return web.Response(405, b"method not allowed\n", {"allow": allow, "content-type": "text/plain"})
        if request.method == "GET" and request.path in _NOT_FOUND:
            return web.text_response(404, "not found\n")
        return await handler(request)

    return routed


def _function(name: str) -> FunctionApp:
    if name == "sensor":
        from knevents.runtime import sensor_app

        return sensor_app.SensorApp.from_env()
    from knevents.runtime import source_app

    app = source_app.SourceApp.from_env()
    app.start_pull()  # pull loops (nats, calendar interval) run with the process, as under functions-framework
    return app


def serve(name: str, env: Mapping[str, str]) -> None:
    """Serve function ``name`` (``sensor`` | ``eventsource``) on ``$HOST:$PORT`` until SIGTERM/SIGINT."""
    # the socket first: the kernel queues early connections (a probe, the first event) while the app loads
    sock = asgi.bind(env.get("HOST") or "0.0.0.0", int(env.get("PORT") or 8080))
    app = _function(name)
    try:
        limits = ServerSettings.from_env(env)
    except ValueError:  # the app reports the bad setting (503 on /health, 500 with the reason)
        limits = ServerSettings()
    handler = function_contract(app.handle)
    log.debug("serving %s on port %s", name, sock.getsockname()[1])
    if asgi.has_module("httptools"):
        httpserver.serve_forever(handler, sock, limits, app.max_body, log)
        return
    import uvicorn  # lazily, and only without httptools: h11 parses instead

    config = asgi.uvicorn_config(asgi.asgi_app(handler, log, max_body=app.max_body), limits, loop="auto")
    uvicorn.Server(config).run(sockets=[sock])
