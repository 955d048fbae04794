"""The event-source function run as Knative runs it: functions-framework, only env and $PORT.

Both targets (WSGI ``handle`` and ASGI ``handle_async``), publishing to an HTTP
sink (``K_SINK``) or to JetStream (``KNEVENTS_NATS_URL``); a bad spec keeps the
process up and says why.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from knevents import events

from tests.integration.sources_core.sink import http_sink

ROOT = Path(__file__).resolve().parents[3]
SPEC = """
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata:
  name: webhook
spec:
  webhook:
    example:
      port: "12000"
      endpoint: /example
      method: POST
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def function(env: Mapping[str, str], tmp: Path, *, asgi: bool) -> Iterator[str]:
    """Start the function; yield its URL once it listens."""
    port = _free_port()
    target = "handle_async" if asgi else "handle"
    args = [str(Path(sys.executable).parent / "functions-framework"), "--source",
            str(ROOT / "functions/eventsource/main.py"), "--target", target, "--host", "127.0.0.1",
            "--port", str(port)] + (["--asgi"] if asgi else [])
    log_path = tmp / f"function-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(args, env={**os.environ, "PORT": str(port), **env}, stdout=log,
                                stderr=subprocess.STDOUT, cwd=str(ROOT))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(url + "/health", timeout=1)
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(log_path.read_text()) from None
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("asgi", [False, True], ids=["wsgi", "asgi"])
def test_function_publishes_to_the_sink(tmp_path: Path, asgi: bool) -> None:
    with http_sink() as sink:
        env = {"KNEVENTS_SPEC": SPEC, "K_SINK": sink.url, "KNEVENTS_PUBLISH_RETRIES": "0"}
        with function(env, tmp_path, asgi=asgi) as url, httpx.Client(base_url=url, timeout=10) as client:
            assert client.get("/health").status_code == 200
            answer = client.post("/example", json={"hello": "world"},
                                 headers={"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
            assert answer.status_code == 200
            assert client.post("/nope", json={}).status_code == 404
            assert client.get("/example").status_code == 405
            assert client.post("/example", content=b"{not json").status_code == 400
            metrics = client.get("/metrics").text
            assert 'knevents_eventsource_events_published_total{event="example",eventsource="webhook"} 1.0' \
                in metrics
            sink.status = 503
            assert client.post("/example", json={"n": 2}).status_code == 503
    assert len(sink.requests) == 1
    event = events.from_http(sink.requests[0].headers, sink.requests[0].body)
    assert (event.source, event.subject, event.type) == ("webhook", "example", "webhook")
    assert events.data_json(event)["body"] == {"hello": "world"}
    assert event.extensions["traceparent"].startswith("00-4bf92f")


def test_function_publishes_to_jetstream(tmp_path: Path, nats_url: str) -> None:
    import asyncio

    import nats
    from knevents import bus

    spec_file = tmp_path / "es.yaml"
    spec_file.write_text(SPEC)
    env = {"KNEVENTS_SPEC": str(spec_file), "KNEVENTS_NATS_URL": nats_url}
    with function(env, tmp_path, asgi=True) as url:
        assert httpx.post(url + "/example", json={"a": 1}, timeout=60).status_code == 200

    async def read() -> events.Event:
        nc = await nats.connect(nats_url)
        try:
            sub = await nc.jetstream().pull_subscribe(bus.subject_filter("default"), durable=None)
            (msg,) = await sub.fetch(1, timeout=30)
            return bus.decode_nats(msg.headers, msg.data)
        finally:
            await nc.close()

    event = asyncio.run(read())
    assert events.data_json(event)["body"] == {"a": 1}


def test_bad_spec_keeps_the_process_up(tmp_path: Path) -> None:
    env = {"KNEVENTS_SPEC": "kind: EventSource\nspec: {webhook: {x: {port: nope}}}", "K_SINK": "http://127.0.0.1:9/"}
    with function(env, tmp_path, asgi=False) as url:
        health = httpx.get(url + "/health", timeout=30)
        assert health.status_code == 503
        answer = httpx.post(url + "/x", json={}, timeout=30)
        assert answer.status_code == 500
        assert "misconfigured" in answer.text
        assert "Traceback" not in answer.text
