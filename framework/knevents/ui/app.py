"""The UI's HTTP surface: the page, its JSON API, a Server-Sent Events stream, and the few actions.

A raw ASGI app (served by uvicorn through :class:`knevents.local.httpserve.PortServer`)
so the live stream can be a long answer; nothing here needs a web framework.

Safe by default:
- it binds to loopback; anything else needs a bearer token (``--ui-token``),
  given as ``Authorization: Bearer …`` or once as ``/?token=…``, which sets a
  same-site cookie;
- on loopback, the ``Host`` header must name loopback (a page on another site
  cannot reach it through DNS rebinding);
- actions are POSTs that carry the per-session token embedded in the page
  (``X-Knevents-Token``); a cross-site form cannot send that header;
- ``read_only`` refuses every action (the default for a deployed UI);
- ``GET /health`` is the one path open without the token (a probe has none): it
  answers ``ok`` and nothing else;
- beside a cluster (``receive_events``), ``POST /cloudevents`` takes CloudEvents from
  the Broker without the token, only at a cluster-local address, and nothing but
  CloudEvents (:mod:`knevents.ui.cluster`).
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import logging
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

from knevents import errors, events
from knevents.local import replay
from knevents.runtime import asgi
from knevents.ui import cluster
from knevents.ui import hub as hub_mod

__all__ = ["UiApp", "parse_since"]

log = logging.getLogger("knevents.ui")

Scope = asgi.Scope
Receive = asgi.Receive
Send = asgi.Send

_MAX_BODY = 64 * 1024
"""Bytes: the API takes small JSON objects only."""
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})
_STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml",
                 ".txt": "text/plain"}
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy",
     b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'"),
]
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """``2h``/``30m``/``45s``/``7d`` before now, or an RFC 3339 time; ValueError with the accepted forms."""
    current = now or datetime.now(UTC)
    found = _DURATION.match(value.strip())
    if found:
        return current - timedelta(seconds=int(found.group(1)) * _UNITS[found.group(2)])
    try:
        return events.parse_time(value)
    except (ValueError, errors.KneventsError):
        raise ValueError(f"{value!r} is neither a duration (30s, 15m, 2h, 7d) nor an RFC 3339 time") from None


class UiApp:
    """The ASGI application of the UI."""

    def __init__(self, hub: hub_mod.Hub, *, port: int, loopback: bool, bearer: str | None = None,
                 read_only: bool = False, workers: Callable[[], list[dict[str, Any]]] | None = None,
                 receive_events: bool = False) -> None:
        """``receive_events``: take the Broker's CloudEvents at :data:`cluster.PATH` (replay goes the hub's
        ``resend`` way then: through the Broker)."""
        if not loopback and not bearer:
            raise errors.KneventsError("the UI listens beyond loopback only with a token (--ui-token)")
        self.hub = hub
        self.port = port
        self.loopback = loopback
        self.bearer = bearer
        self.read_only = read_only
        self.workers = workers or (lambda: [])
        """The processes serving the runner (``run --workers``), listed by ``/api/workers``."""
        self.session_token = secrets.token_urlsafe(24)
        """Sent in the page; every action must carry it back."""
        self.receive_events = receive_events
        self.max_event = int(getattr(hub.nc, "max_payload", 0) or 1024 * 1024) if receive_events else 0
        """Bytes of one received event: what the NATS server takes in one message."""

    # --- ASGI ----------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method, path = scope["method"].upper(), scope["path"]
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if self.receive_events and path.startswith(cluster.PATH) and method == "POST":  # the Broker: no token
            if sum(k.lower() == b"host" for k, _ in scope["headers"]) != 1:  # which one did a proxy route by?
                headers["host"] = ""
            read = functools.partial(asgi.read_body, receive, self.max_event)
            await _json(send, *await cluster.accept(self.hub, path, headers, read, self.max_event))
            return
        if path == "/health" and method == "GET":  # Knative's readiness probe: no token, no data
            await _answer(send, 200, b"ok\n", "text/plain")
            return
        refusal = self._refuse(headers, query, path)
        if refusal is not None:
            await _answer(send, *refusal)
            return
        if self.bearer and query.get("token") and path == "/":
            await _answer(send, 303, b"", "text/plain", [
                (b"location", b"/"),
                (b"set-cookie", f"knevents_ui={self.bearer}; HttpOnly; SameSite=Strict; Path=/".encode()),
            ])
            return
        try:
            if method == "GET":
                await self._get(path, query, send)
            elif method == "POST":
                await self._post(path, headers, receive, send)
            else:
                await _json(send, 405, {"error": "use GET or POST"})
        except (errors.KneventsError, ValueError) as exc:
            await _json(send, 400, {"error": str(exc)})
        except Exception:  # the UI must never take the runner down
            log.exception("UI request %s %s failed", method, path)
            await _json(send, 500, {"error": "internal error"})

    def _refuse(self, headers: dict[str, str], query: dict[str, list[str]],
                path: str) -> tuple[int, bytes, str] | None:
        host = headers.get("host", "").rsplit(":", 1)[0] if not headers.get("host", "").endswith("]") \
            else headers.get("host", "")
        if self.loopback and host not in _LOOPBACK_HOSTS:
            return 403, b"this UI answers on loopback names only\n", "text/plain"
        if self.bearer:
            given = headers.get("authorization", "").removeprefix("Bearer ").strip()
            cookie = _cookie(headers.get("cookie", ""), "knevents_ui")
            offered = given or cookie or (query.get("token", [""])[0] if path == "/" else "")
            if not offered or not hmac.compare_digest(offered, self.bearer):
                return 401, b"a bearer token is needed (Authorization: Bearer ... or /?token=...)\n", "text/plain"
        return None

    # --- GET -----------------------------------------------------------------------------

    async def _get(self, path: str, query: dict[str, list[str]], send: Send) -> None:
        one = {k: v[0] for k, v in query.items() if v}
        if path == "/":
            await _answer(send, 200, self._page(), "text/html; charset=utf-8")
        elif path.startswith("/static/"):
            await self._static(path.removeprefix("/static/"), send)
        elif path == "/api/graph":
            await _json(send, 200, {"graph": self.hub.graph(), "counts": self.hub.node_counts(),
                                    "last_failed": self.hub.last_failed, "read_only": self.read_only})
        elif path == "/api/events":
            await _json(send, 200, self.hub.recent_events(one.get("source"), one.get("sensor")))
        elif path.startswith("/api/events/"):
            story = self.hub.story(_int(path.rsplit("/", 1)[-1]))
            await _json(send, 200 if story else 404, story or {"error": "that event is no longer kept"})
        elif path == "/api/state":
            await _json(send, 200, await self.hub.sensor_state())
        elif path == "/api/firings":
            await _json(send, 200, self.hub.firings(one.get("sensor")))
        elif path == "/api/deadletters":
            await _json(send, 200, await self.hub.dead_letters())
        elif path == "/api/workers":
            await _json(send, 200, self.workers())
        elif path == "/api/live":
            await self._live(send)
        else:
            await _json(send, 404, {"error": f"nothing at {path}"})

    def _page(self) -> bytes:
        page = resources.files("knevents.ui").joinpath("static/index.html").read_text()
        return page.replace("{{TOKEN}}", self.session_token).encode()

    async def _static(self, name: str, send: Send) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-.]+)?\.(js|css|svg|txt)", name):
            await _json(send, 404, {"error": "no such asset"})
            return
        asset = resources.files("knevents.ui").joinpath("static", *name.split("/"))
        if not asset.is_file():
            await _json(send, 404, {"error": "no such asset"})
            return
        suffix = "." + name.rsplit(".", 1)[-1]
        await _answer(send, 200, asset.read_bytes(), _STATIC_TYPES[suffix], [(b"cache-control", b"max-age=300")])

    async def _live(self, send: Send) -> None:
        queue = self.hub.listen()
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/event-stream"), (b"cache-control", b"no-store"), *_SECURITY_HEADERS]})
        try:
            await send({"type": "http.response.body", "body": b": connected\n\n", "more_body": True})
            while True:
                try:
                    chunk = await asyncio.wait_for(queue.get(), 15.0)
                except TimeoutError:
                    chunk = b": keep-alive\n\n"  # also how a closed browser is noticed
                if not chunk:
                    break
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except OSError:
            pass  # the browser went away
        finally:
            self.hub.forget(queue)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    # --- POST ----------------------------------------------------------------------------

    async def _post(self, path: str, headers: dict[str, str], receive: Receive, send: Send) -> None:
        if self.read_only:
            await _json(send, 403, {"error": "this UI is read-only"})
            return
        if not hmac.compare_digest(headers.get("x-knevents-token", ""), self.session_token):
            await _json(send, 403, {"error": "missing or wrong X-Knevents-Token (reload the page)"})
            return
        body = await asgi.read_body(receive, _MAX_BODY)
        if body is None:
            await _json(send, 413, {"error": f"request body over {_MAX_BODY} bytes"})
            return
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "deadletters"] and len(parts) == 4 and parts[3] in ("replay", "discard"):
            seq = _int(parts[2])
            if parts[3] == "replay":
                await _json(send, 200, await self.hub.replay_dead_letter(seq))
            else:
                await self.hub.discard_dead_letter(seq)
                await _json(send, 200, {"discarded": seq})
        elif parts == ["api", "replay"]:
            await _json(send, 200, await self._replay(_object(body)))
        else:
            await _json(send, 404, {"error": f"no action at {path}"})

    async def _replay(self, ask: dict[str, Any]) -> dict[str, Any]:
        sensor = self.hub.sensors.get(str(ask.get("sensor", "")))
        if sensor is None:
            raise errors.KneventsError(f"no sensor {ask.get('sensor')!r} here")
        window = replay.Window(
            start=parse_since(str(ask.get("since") or "1h")),
            end=parse_since(str(ask["to"])) if ask.get("to") else None,
            source=ask.get("source") or None, event_name=ask.get("event_name") or None,
        )
        subjects = replay.sensor_subjects(self.hub.bus, sensor, window)
        found = [a.event async for a in replay.archived(self.hub.js, self.hub.bus, subjects, window)]
        if self.receive_events:  # the Broker brings earlier replays back into the archive: take originals only
            found = cluster.originals(found)
        trigger = ask.get("trigger") or None
        if ask.get("dry_run"):
            report = replay.explain(sensor, found, trigger).report()
            return {"dry_run": True, "events": len(found), "report": report}
        if self.hub.resend is not None:  # beside a cluster: through the Broker, for this sensor only
            replay_id = await self.hub.resend(sensor.metadata.name, found, trigger=trigger)
            return {"dry_run": False, "events": len(found), "replay": replay_id, "to": "broker"}
        replay_id = await replay.replay(self.hub.js, self.hub.bus, sensor.metadata.name, found, trigger=trigger)
        return {"dry_run": False, "events": len(found), "replay": replay_id}


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a sequence number") from None


def _object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body or b"{}")
    except (ValueError, RecursionError):
        raise ValueError("the body must be a JSON object") from None
    if not isinstance(value, dict):
        raise ValueError("the body must be a JSON object")
    return value


def _cookie(header: str, name: str) -> str:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return ""


async def _answer(send: Send, status: int, body: bytes, content_type: str,
                  extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode()),
               *_SECURITY_HEADERS, *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _json(send: Send, status: int, value: Any) -> None:
    await _answer(send, status, json.dumps(value, default=str).encode(), "application/json")
