"""Fuzzing the running webhook function over real HTTP (functions-framework, ASGI target).

Random methods, paths, headers and bodies of any size up to past the payload
limit: every answer is below 500 while the sink accepts, the process stays up,
and a well-formed request still publishes afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.sources_core.sink import Sink, http_sink
from tests.integration.sources_core.test_eventsource_function_proc import function

SPEC = """
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata: {name: fuzz}
spec:
  webhook:
    open: {port: "12000", endpoint: /open, method: POST}
    get: {port: "12000", endpoint: /get, method: GET}
    small: {port: "12000", endpoint: /small, method: POST, maxPayloadSize: 100,
            authSecret: {name: hook, key: token}}
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Sink]]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    with http_sink() as sink:
        env = {"KNEVENTS_SPEC": SPEC, "K_SINK": sink.url, "KNEVENTS_SECRET_HOOK_TOKEN": "tok"}
        with function(env, tmp, asgi=True) as url:
            yield url, sink


printable = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
header_names = st.sampled_from(["Content-Type", "Authorization", "traceparent", "ce-id", "ce-source", "X-Any"]) | \
    st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=":()<>@,;\\\"/[]?={} "),
            min_size=1, max_size=15)
header_values = st.sampled_from(["application/json", "application/x-www-form-urlencoded", "text/plain",
                                 "Bearer tok", "Bearer no"]) | printable


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
    path=st.sampled_from(["/open", "/get", "/small", "/health", "/", "/open/", "/x/y"]) |
    printable.map(lambda p: "/" + p.replace("?", "").replace("#", "").replace(" ", "")),
    headers=st.dictionaries(header_names, header_values, max_size=5),
    body=st.binary(max_size=2000) | st.integers(0, 1_200_000).map(lambda n: b'{"a":"' + b"x" * n + b'"}'),
)
def test_no_5xx_while_the_sink_accepts(served: tuple[str, Sink], method: str, path: str,
                                       headers: dict[str, str], body: bytes) -> None:
    url, sink = served
    sink.status = 202
    headers = {k: v.strip() for k, v in headers.items()
               if k.lower() not in ("content-length", "host", "transfer-encoding")}
    try:
        answer = httpx.request(method, url + path, headers=headers, content=body, timeout=20)
    except (httpx.InvalidURL, httpx.LocalProtocolError):
        return  # the client refuses to send it; nothing reached the function
    assert answer.status_code < 500, (answer.status_code, answer.text[:200])


def test_still_publishing_after_the_fuzz(served: tuple[str, Sink]) -> None:
    url, sink = served
    before = len(sink.requests)
    assert httpx.post(url + "/open", json={"ok": 1}, timeout=10).status_code == 200
    assert len(sink.requests) == before + 1
