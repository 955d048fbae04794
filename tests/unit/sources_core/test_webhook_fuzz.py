"""Fuzzing the push sources through the runtime: any request gets an answer, never an exception.

Random methods, paths, headers (including the ones the sources read), bodies of
any bytes, JSON or form shape, and sizes around the limits. With the bus up no
answer is 5xx; with the bus down the only 5xx is 503. Every published event's
data is valid JSON.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from knevents import events, web

from tests.unit.sources_core.helpers import runtime

SPEC = {
    "webhook": {
        "open": {"port": "12000", "endpoint": "/open", "method": "POST"},
        "get": {"port": "12000", "endpoint": "/get", "method": "GET", "metadata": {"m": "1"}},
        "auth": {"port": "12000", "endpoint": "/auth", "method": "POST", "maxPayloadSize": 64,
                 "authSecret": {"name": "hook", "key": "token"}},
        "filtered": {"port": "13000", "endpoint": "/filtered", "method": "POST",
                     "filter": {"expression": "body.a > 1 && header.X_y != 'z'"}},
    },
    "github": {"gh": {"webhook": {"endpoint": "/gh", "port": "12000", "method": "POST"},
                      "events": ["push"], "webhookSecret": {"name": "gh", "key": "secret"},
                      "repositories": [{"owner": "o", "names": ["r"]}]}},
    "gitlab": {"gl": {"webhook": {"endpoint": "/gl", "port": "12000", "method": "POST"},
                      "events": ["PushEvents"], "secretToken": {"name": "gl", "key": "token"},
                      "accessToken": {"name": "gl", "key": "access"}, "gitlabBaseURL": "https://gitlab.com",
                      "projects": ["1"]}},
    "calendar": {"tick": {"schedule": "0 * * * *"}},
}
SECRETS = {"hook/token": "tok", "gh/secret": "ghs", "gl/token": "glt"}
RT, BUS = runtime(SPEC, secrets=SECRETS)

header_names = st.sampled_from([
    "Content-Type", "content-type", "Authorization", "X-Hub-Signature-256", "X-Hub-Signature", "X-GitHub-Event",
    "X-GitHub-Delivery", "X-Gitlab-Token", "X-Gitlab-Event", "Idempotency-Key", "ce-id", "ce-source",
    "ce-specversion", "ce-time", "traceparent", "X-Y", "Content-Length",
]) | st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=":"), min_size=1, max_size=20)
header_values = st.sampled_from([
    "application/json", "application/x-www-form-urlencoded", "text/plain", "Bearer tok", "Bearer nope",
    "sha256=00", "sha1=zz", "push", "Push Hook", "glt", "2024-01-01T00:00:00Z", "",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
]) | st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=60)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
bodies = (
    st.binary(max_size=300)
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=4).map(
        lambda d: "&".join(f"{k}={v}" for k, v in d.items()).encode())
    | st.integers(min_value=0, max_value=2 * 1024 * 1024).map(lambda n: b'{"a":"' + b"x" * n + b'"}')
)
requests = st.builds(
    lambda method, path, headers, body, query: web.Request(
        method=method, path=path, headers=web.Headers(headers), body=body, query_string=query),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]) | st.text(max_size=8),
    path=st.sampled_from(["/open", "/get", "/auth", "/filtered", "/gh", "/gl", "/calendar/tick", "/health",
                          "/metrics", "/", "/open/"]) | st.text(max_size=20),
    headers=st.lists(st.tuples(header_names, header_values), max_size=8),
    body=bodies,
    query=st.text(max_size=40),
)


def _answer(request: web.Request, port: int | None) -> web.Response:
    return asyncio.run(RT.handle(request, port))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(request=requests, port=st.sampled_from([None, 12000, 13000, 1]))
def test_any_request_gets_a_non_5xx_answer(request: web.Request, port: int | None) -> None:
    BUS.fail = False
    before = len(BUS.events)
    answer = _answer(request, port)
    assert isinstance(answer, web.Response)
    assert 200 <= answer.status < 500, (answer.status, answer.body[:200])
    for event in BUS.events[before:]:
        assert isinstance(events.data_json(event), dict)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(request=requests)
def test_bus_down_is_the_only_5xx(request: web.Request) -> None:
    BUS.fail = True
    try:
        answer = _answer(request, None)
    finally:
        BUS.fail = False
    assert answer.status < 500 or answer.status == 503


def test_a_valid_request_still_publishes_after_fuzzing() -> None:
    before = len(BUS.events)
    answer: Any = _answer(web.Request("POST", "/open", web.Headers([("Content-Type", "application/json")]),
                                      b'{"ok": true}'), None)
    assert answer.status == 200
    assert len(BUS.events) == before + 1
