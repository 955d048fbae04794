"""The UI's HTTP rules, in process: who may read, who may act, what is never served."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
from knevents import errors, events
from knevents.ui import app, cluster, is_loopback


class _Hub:
    """The few members of :class:`knevents.ui.hub.Hub` these rules touch."""

    sensors: ClassVar[dict[str, Any]] = {}
    last_failed = None
    nc = js = None  # no NATS: a delivery that got past the Broker path's rules would be a 503
    bus = "default"

    def graph(self) -> dict[str, Any]:
        return {"nodes": [], "edges": []}

    def node_counts(self) -> dict[str, int]:
        return {}

    async def discard_dead_letter(self, seq: int) -> None:
        self.discarded = seq


async def _call(ui: app.UiApp, method: str, path: str, headers: dict[str, str] | None = None,
                body: bytes = b"", query: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    sent: list[dict[str, Any]] = []
    scope = {"type": "http", "method": method, "path": path, "query_string": query,
             "headers": [(k.encode(), v.encode()) for k, v in {"host": "127.0.0.1:9", **(headers or {})}.items()]}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await ui(scope, receive, send)
    start = sent[0]
    return (start["status"], {k.decode(): v.decode() for k, v in start["headers"]},
            b"".join(m.get("body", b"") for m in sent[1:]))


def _ui(**kwargs: Any) -> app.UiApp:
    return app.UiApp(_Hub(), port=9, loopback=kwargs.pop("loopback", True), **kwargs)  # type: ignore[arg-type]


async def test_the_page_carries_a_session_token_that_actions_must_send_back() -> None:
    ui = _ui()
    status, headers, page = await _call(ui, "GET", "/")
    assert status == 200 and ui.session_token.encode() in page
    assert "script-src 'self'" in headers["content-security-policy"]
    assert (await _call(ui, "POST", "/api/deadletters/4/discard"))[0] == 403
    assert (await _call(ui, "POST", "/api/deadletters/4/discard", {"x-knevents-token": "guess"}))[0] == 403
    ok = await _call(ui, "POST", "/api/deadletters/4/discard", {"x-knevents-token": ui.session_token})
    assert ok[0] == 200 and ui.hub.discarded == 4  # type: ignore[attr-defined]


async def test_loopback_ui_answers_loopback_host_names_only() -> None:
    ui = _ui()
    for host in ("127.0.0.1:9", "localhost:9", "[::1]:9"):
        assert (await _call(ui, "GET", "/api/graph", {"host": host}))[0] == 200
    assert (await _call(ui, "GET", "/api/graph", {"host": "rebind.attacker.example:9"}))[0] == 403


def test_beyond_loopback_a_token_is_required() -> None:
    with pytest.raises(errors.KneventsError, match="--ui-token"):
        _ui(loopback=False)
    assert not is_loopback("0.0.0.0") and is_loopback("127.0.0.1") and is_loopback("::1")


async def test_bearer_token_by_header_or_by_a_cookie_set_once() -> None:
    ui = _ui(loopback=False, bearer="s3cret-token")
    assert (await _call(ui, "GET", "/api/graph", {"host": "ui.example"}))[0] == 401
    assert (await _call(ui, "GET", "/api/graph", {"host": "ui.example", "authorization": "Bearer nope"}))[0] == 401
    assert (await _call(ui, "GET", "/api/graph", {"host": "ui.example",
                                                  "authorization": "Bearer s3cret-token"}))[0] == 200
    status, headers, _ = await _call(ui, "GET", "/", {"host": "ui.example"}, query=b"token=s3cret-token")
    assert status == 303 and "HttpOnly" in headers["set-cookie"] and "SameSite=Strict" in headers["set-cookie"]
    cookie = headers["set-cookie"].split(";")[0]
    assert (await _call(ui, "GET", "/api/graph", {"host": "ui.example", "cookie": cookie}))[0] == 200


async def test_read_only_refuses_every_action() -> None:
    ui = _ui(read_only=True)
    status, _, body = await _call(ui, "POST", "/api/replay", {"x-knevents-token": ui.session_token}, b"{}")
    assert status == 403 and b"read-only" in body


@pytest.mark.parametrize("path", ["/static/../app.py", "/static/vendor/../../hub.py", "/static/index.html%00.js",
                                  "/static/nothing.js", "/static/app.py"])
async def test_only_shipped_assets_are_served(path: str) -> None:
    assert (await _call(_ui(), "GET", path))[0] == 404


async def test_assets_ship_in_the_package() -> None:
    ui = _ui()
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css"),
                       ("vendor/dagre.min.js", "text/javascript")):
        status, headers, body = await _call(ui, "GET", f"/static/{name}")
        assert status == 200 and headers["content-type"] == kind and body


async def test_bad_action_bodies_are_4xx() -> None:
    ui = _ui()
    token = {"x-knevents-token": ui.session_token}
    assert (await _call(ui, "POST", "/api/replay", token, b"[1]"))[0] == 400
    assert (await _call(ui, "POST", "/api/replay", token, b'{"sensor": "none"}'))[0] == 400
    assert (await _call(ui, "POST", "/api/replay", token, b"x" * 70_000))[0] == 413
    assert (await _call(ui, "POST", "/api/deadletters/x/replay", token))[0] == 400


def test_since_takes_durations_and_times() -> None:
    now = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)
    assert app.parse_since("2h", now) == now - timedelta(hours=2)
    assert app.parse_since("45s", now) == now - timedelta(seconds=45)
    assert app.parse_since("2026-01-01T00:00:00Z", now) == datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="neither a duration"):
        app.parse_since("yesterday", now)


async def test_health_answers_without_the_token_and_says_nothing_else() -> None:
    ui = _ui(loopback=False, bearer="s3cret-token")
    status, headers, body = await _call(ui, "GET", "/health", {"host": "10.0.0.7:8080"})
    assert (status, body, headers["content-type"]) == (200, b"ok\n", "text/plain")
    for path in ("/health/", "/healthz", "/api/graph", "/"):  # only that one path is open
        assert (await _call(ui, "GET", path, {"host": "10.0.0.7:8080"}))[0] == 401
    assert (await _call(ui, "POST", "/health", {"host": "10.0.0.7:8080"}))[0] == 401


async def test_workers_lists_what_the_runner_says_and_nothing_without_workers() -> None:
    listed = [{"index": 0, "pid": 10, "alive": True}, {"index": 1, "pid": 11, "alive": False}]
    status, _, body = await _call(_ui(workers=lambda: listed), "GET", "/api/workers")
    assert (status, json.loads(body)) == (200, listed)
    assert json.loads((await _call(_ui(), "GET", "/api/workers"))[2]) == []


@pytest.mark.parametrize(("host", "inside"), [
    ("knevents-ui.default.svc.cluster.local", True), ("knevents-ui.default.svc", True),
    ("knevents-ui.ops.svc.cluster.local:80", True), ("127.0.0.1:8080", True), ("localhost", True), ("[::1]:9", True),
    ("knevents-ui.default.example.com", False), ("svc.example.com", False), ("a..svc", False), ("", False),
    ("knevents-ui.default.svc.example.com", False),  # a public domain starting with svc. is not the cluster
    ("LOCALHOST", True), ("Knevents-UI.Default.SVC", True), ("[::1].attacker.example", False),
    ("[::1]attacker.example:80", False), ("127.0.0.1.nip.io", False), ("localhost.attacker.example", False),
    ("knevents-ui.default.svc.cluster.local.attacker.example", False), ("knevents-ui.default.svc.cluster.local.", False),
])
def test_the_brokers_path_answers_cluster_local_hosts_only(host: str, inside: bool) -> None:
    assert cluster.addressed_inside(host, "cluster.local") is inside


def test_another_cluster_domain_is_named() -> None:
    assert cluster.addressed_inside("knevents-ui.ops.svc.corp.internal", "corp.internal")
    assert not cluster.addressed_inside("knevents-ui.ops.svc.cluster.local", "corp.internal")


async def test_cloudevents_are_taken_only_when_receiving() -> None:
    event = events.to_binary(events.Event(id="1", source="s", type="t", subject="e"))
    headers = {**event.headers, "host": "knevents-ui.default.svc.cluster.local"}
    # a UI not told to receive: the path is like any other, behind the loopback/token rules
    assert (await _call(_ui(), "POST", cluster.PATH, headers, event.body))[0] == 403
    assert (await _call(_ui(loopback=False, bearer="t0ken"), "POST", cluster.PATH, headers, event.body))[0] == 401


async def _deliver(hosts: list[bytes]) -> tuple[int, int]:
    """A CloudEvent POSTed to the Broker's path of a receiving UI with these Host headers: (status, body reads)."""
    event = events.to_binary(events.Event(id="1", source="s", type="t", subject="e"))
    sent: list[dict[str, Any]] = []
    reads: list[int] = []
    scope = {"type": "http", "method": "POST", "path": cluster.PATH, "query_string": b"",
             "headers": [(b"host", h) for h in hosts] + [(k.encode(), v.encode()) for k, v in event.headers.items()]}

    async def receive() -> dict[str, Any]:
        reads.append(1)
        return {"type": "http.request", "body": event.body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await _ui(receive_events=True)(scope, receive, send)
    return sent[0]["status"], len(reads)


async def test_two_host_headers_are_refused_on_the_brokers_path() -> None:
    # a proxy may have routed by the other one (the public name) than the one read here
    assert (await _deliver([b"knevents-ui.default.example.com", b"knevents-ui.default.svc"]))[0] == 403


async def test_a_delivery_from_outside_is_refused_before_its_body_is_read() -> None:
    assert await _deliver([b"knevents-ui.default.example.com"]) == (403, 0)  # up to max_payload, for nothing
    assert await _deliver([b"knevents-ui.default.svc"]) == (503, 1)  # read, then no NATS here
