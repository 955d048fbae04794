"""Which source runtime answers a request on a local port, and what each push route is called.

On Knative every EventSource is its own Service; locally several EventSources
may share a port (Argo's examples put many on 12000), so requests are routed by
port, path and method to the runtime that declared the route. The helpers that
name a route's event read the spec only; nothing here does I/O.
"""

from __future__ import annotations

from typing import Any

from knevents import web
from knevents.local import httpserve
from knevents.runtime import source as source_runtime

__all__ = ["event_of_route", "router", "spec_entries", "ssl_of", "type_of"]


def router(port: int, routes: list[tuple[str | None, str, Any]]) -> httpserve.Handler:
    """Dispatch a request on ``port`` to the source runtime that owns (method, path)."""

    async def route(request: web.Request) -> web.Response:
        if request.path == "/health":  # the bus is shared: any runtime knows its state
            check = getattr(routes[0][2], "health", None) if routes else None
            health: web.Response = check() if check is not None else web.text_response(200, "ok\n")
            return health
        allowed = []
        for method, endpoint, runtime in routes:
            if endpoint.rstrip("/") != request.path.rstrip("/") and endpoint != request.path:
                continue
            if method is None or method.upper() == request.method.upper():
                response: web.Response = await runtime.handle(request, port)
                return response
            allowed.append(method.upper())
        if allowed:
            refused = web.Response(405, b"method not allowed\n", {"allow": ", ".join(sorted(set(allowed)))})
        else:
            refused = web.text_response(404, f"no event source listens on {request.path} at port {port}\n")
        source_runtime.log_rejected(request, refused, port=port)
        return refused

    return route


def ssl_of(runtime: Any, port: int) -> Any:
    """The TLS context a source runtime wants on ``port`` (``None``: plain HTTP)."""
    make = getattr(runtime, "ssl_context", None)
    return make(port) if make is not None else None


def spec_entries(es: Any) -> list[tuple[str, list[str]]]:
    """(spec key, event names) for every event-source type map set in the spec."""
    from knevents.spec import support

    if es.spec is None:
        return []
    return [(key, list(entries)) for key, entries in support.source_types(es.spec) if entries]


def event_of_route(es: Any, endpoint: str) -> str:
    """The event name behind a push endpoint (for the banner and ``runner.json``): from the types' endpoints."""
    from knevents.validation import sources

    for _path, name, found in sources.endpoints(es.spec):
        if found.path(name) == endpoint:
            return name
    return endpoint.strip("/") or "/"


def type_of(es: Any, event: str) -> str:
    """The spec key (``webhook``, ``github`` …) an event of an EventSource is declared under."""
    from knevents.sources import webhook

    for key, entries in spec_entries(es):
        if event in entries:
            return key
    return webhook.SOURCE.key
