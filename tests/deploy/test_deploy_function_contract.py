"""The rendered functions honour Knative's runtime contract when started exactly as the image starts them.

Only the rendered container environment, the mounted spec and ``$PORT`` are
given (``python -m knevents.deploy.entrypoint``, the image's ENTRYPOINT); a
CloudEvent is posted as the Broker posts it (binary mode, ``ce-`` headers,
Knative's ``knativearrivaltime`` extension). Every behaviour is checked with
both servers the entry point can run (``KNEVENTS_SERVER``): the thin entry
(the default) and functions-framework.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from knevents.deploy import entrypoint, names, render

from tests.deploy import corpus, functionproc, localsink


@pytest.fixture(params=entrypoint.SERVERS)
def server(request: pytest.FixtureRequest) -> str:
    """``KNEVENTS_SERVER``: each contract test runs with the thin entry and with functions-framework."""
    value: str = request.param
    return value


def _sensor(sink_url: str) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Sensor",
        "metadata": {"name": "contract"},
        "spec": {
            "dependencies": [{"name": "push", "eventSourceName": "github", "eventName": "push"}],
            "triggers": [
                {
                    "template": {
                        "name": "notify",
                        "http": {
                            "url": sink_url + "/hook",
                            "method": "POST",
                            "payload": [
                                {"src": {"dependencyName": "push", "dataKey": "body.ref"}, "dest": "ref"}
                            ],
                        },
                    }
                }
            ],
        },
    }


def _broker_post(url: str, event_id: str) -> httpx.Response:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-source": "github",
        "ce-type": "github",
        "ce-subject": "push",
        "ce-time": "2026-01-01T00:00:00Z",
        "ce-knativearrivaltime": "2026-01-01T00:00:00.1Z",
        "content-type": "application/json",
    }
    return httpx.post(
        url, headers=headers, content=b'{"header":{},"body":{"ref":"refs/heads/main"}}', timeout=20
    )


def test_sensor_function_fires_on_a_broker_delivery(tmp_path: Path, nats_url: str, server: str) -> None:
    with localsink.running() as sink:
        objs = render.render([], [_sensor(sink.url)]).objects
        service = next(o for o in objs if o["kind"] == "Service")
        config_map = next(o for o in objs if o["kind"] == "ConfigMap" and names.SPEC_FILE in o["data"])
        overrides = {"KNEVENTS_NATS_URL": nats_url, "KNEVENTS_SERVER": server}
        with functionproc.started(service, config_map, tmp_path, overrides) as url:
            first = _broker_post(url, "e1")
            assert 200 <= first.status_code < 300, first.text
            (hit,) = sink.wait_for(1)
            assert hit.path == "/hook"
            assert hit.headers["knevents-event-ids"] == "e1"
            assert httpx.get(url + "/metrics", timeout=30).status_code == 200
            # a redelivery of the same event (same id) is acknowledged, not fired again
            again = _broker_post(url, "e1")
            assert 200 <= again.status_code < 300
            second = _broker_post(url, "e2")
            assert 200 <= second.status_code < 300
            hits = sink.wait_for(2)
            assert [h.headers["knevents-event-ids"] for h in hits] == ["e1", "e2"]
            # malformed delivery: 400, so the broker does not retry it
            bad = httpx.post(url, headers={"content-type": "application/json"}, content=b"{}", timeout=30)
            assert bad.status_code == 400


def test_entrypoint_refuses_unclear_environments(tmp_path: Path) -> None:
    cases = [
        ({}, "KNEVENTS_FUNCTION must be eventsource or sensor, got ''"),
        ({"KNEVENTS_FUNCTION": "sensor"}, "KNEVENTS_SPEC is not set"),
        (
            {"KNEVENTS_FUNCTION": "sensor", "KNEVENTS_SPEC": "x", "KNEVENTS_FUNCTIONS_DIR": str(tmp_path),
             "KNEVENTS_SERVER": "functions-framework"},
            "function source",
        ),
        (
            {"KNEVENTS_FUNCTION": "sensor", "KNEVENTS_SPEC": "x", "KNEVENTS_SERVER": "gunicorn"},
            "KNEVENTS_SERVER must be knevents or functions-framework, got 'gunicorn'",
        ),
        (
            {
                "KNEVENTS_FUNCTION": "sensor",
                "KNEVENTS_SPEC": "x",
                "KNEVENTS_FUNCTIONS_DIR": str(corpus.REPO / "functions"),
                "PORT": "http",
            },
            "PORT must be a port number",
        ),
    ]
    for env, message in cases:
        done = subprocess.run(
            [sys.executable, "-m", "knevents.deploy.entrypoint"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == entrypoint.EX_USAGE
        assert message in done.stderr
        assert "Traceback" not in done.stderr


def test_thin_entry_names_a_taken_port_without_a_traceback(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        spec = tmp_path / "es.yaml"
        spec.write_text("apiVersion: argoproj.io/v1alpha1\nkind: EventSource\nmetadata: {name: x}\n"
                        "spec: {webhook: {a: {port: '12000', endpoint: /a, method: POST}}}\n")
        done = subprocess.run(
            [sys.executable, "-m", "knevents.deploy.entrypoint"],
            env={"KNEVENTS_FUNCTION": "eventsource", "KNEVENTS_SPEC": str(spec), "HOST": "127.0.0.1",
                 "PORT": str(port), "K_SINK": "http://127.0.0.1:9/"},
            capture_output=True, text=True, check=False, timeout=60,
        )
    assert done.returncode == entrypoint.EX_UNAVAILABLE
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr


def test_entrypoint_fills_functions_framework_defaults_but_keeps_explicit_values() -> None:
    env = {
        "KNEVENTS_FUNCTION": "sensor",
        "KNEVENTS_SPEC": "/etc/knevents/spec.yaml",
        "KNEVENTS_FUNCTIONS_DIR": str(corpus.REPO / "functions"),
        "FUNCTION_TARGET": "sensor",
    }
    assert entrypoint.prepare(env) == entrypoint.DEFAULT_SERVER == "knevents"
    assert env["FUNCTION_SOURCE"] == str(corpus.REPO / "functions" / "sensor" / "main.py")
    assert env["FUNCTION_TARGET"] == "sensor"  # explicit wins
    assert env["FUNCTION_SIGNATURE_TYPE"] == "http"
    assert env["FUNCTION_USE_ASGI"] == "true"
    assert env["PORT"] == "8080"


def test_dockerfile_and_procfile_start_the_entrypoint() -> None:
    dockerfile = (corpus.REPO / "functions" / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["python", "-m", "knevents.deploy.entrypoint"]' in dockerfile
    assert "FROM python:3.11-slim" in dockerfile
    user = [line for line in dockerfile.splitlines() if line.startswith("USER ")][-1]
    assert user.split()[1].split(":")[0].isdigit() and user.split()[1] != "0"
    assert (corpus.REPO / "Procfile").read_text().strip() == "web: python -m knevents.deploy.entrypoint"


def _rendered(doc: dict[str, Any], kind: str = "EventSource") -> tuple[dict[str, Any], dict[str, Any]]:
    objs = render.render([doc] if kind == "EventSource" else [], [doc] if kind == "Sensor" else []).objects
    spec = next(o for o in objs if o["kind"] == "ConfigMap" and names.SPEC_FILE in o["data"])
    return next(o for o in objs if o["kind"] == "Service"), spec


def test_the_thin_entry_needs_no_function_sources(tmp_path: Path) -> None:
    env = {"KNEVENTS_FUNCTION": "eventsource", "KNEVENTS_SPEC": "x", "KNEVENTS_FUNCTIONS_DIR": str(tmp_path)}
    assert entrypoint.prepare(env) == "knevents"  # functions/*/main.py is functions-framework's, not needed here


def test_event_source_function_publishes_to_k_sink_in_binary_mode(tmp_path: Path, server: str) -> None:
    doc = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "EventSource",
        "metadata": {"name": "hooks"},
        "spec": {
            "webhook": {"deploy": {"endpoint": "/deploy", "method": "POST", "port": "12000"}},
            "calendar": {"nightly": {"schedule": "0 2 * * *"}},
        },
    }
    service, config_map = _rendered(doc)
    with localsink.running(status=202) as broker:  # the broker ingress accepts with 202
        overrides = {"K_SINK": broker.url + "/default/default", "KNEVENTS_SERVER": server}
        with functionproc.started(service, config_map, tmp_path, overrides) as url:
            answer = httpx.post(url + "/deploy", json={"ref": "main"}, timeout=20)
            assert answer.status_code == 200, answer.text
            (published,) = broker.wait_for(1)
            assert published.path == "/default/default"
            assert published.headers["ce-source"] == "hooks"
            assert published.headers["ce-subject"] == "deploy"
            assert published.headers["ce-type"] == "webhook"
            assert published.headers["ce-specversion"] == "1.0"
            assert json.loads(published.body)["body"] == {"ref": "main"}
            # a PingSource tick, posted where the rendered PingSource sink points
            ping = next(o for o in render.render([doc], []).objects if o["kind"] == "PingSource")
            tick = httpx.post(
                url + ping["spec"]["sink"]["uri"],
                headers={
                    "ce-specversion": "1.0",
                    "ce-id": "ping-1",
                    "ce-type": "dev.knative.sources.ping",
                    "ce-source": "/apis/v1/namespaces/default/pingsources/hooks-nightly",
                    "ce-time": "2026-01-02T02:00:00Z",
                },
                timeout=20,
            )
            assert 200 <= tick.status_code < 300, tick.text
            published = broker.wait_for(2)[1]
            assert (published.headers["ce-type"], published.headers["ce-subject"]) == ("calendar", "nightly")
            # nothing ticks in process on Knative (K_SERVICE is set): only the ping produced a calendar event
            assert len(broker.received) == 2


def test_health_metrics_routing_and_body_limit_match_functions_framework(tmp_path: Path, server: str) -> None:
    objs = render.render([], [_sensor("http://127.0.0.1:9")]).objects
    service = next(o for o in objs if o["kind"] == "Service")
    config_map = next(o for o in objs if o["kind"] == "ConfigMap" and names.SPEC_FILE in o["data"])
    overrides = {"KNEVENTS_SERVER": server, "KNEVENTS_MAX_BODY": "2048"}
    with functionproc.started(service, config_map, tmp_path, overrides) as url:
        assert httpx.get(url + "/health", timeout=30).text == "ok"
        metrics = httpx.get(url + "/metrics", timeout=30)
        assert metrics.status_code == 200 and "# TYPE" in metrics.text
        # functions-framework answers these two itself; the thin entry does the same
        assert httpx.get(url + "/robots.txt", timeout=30).status_code == 404
        assert httpx.get(url + "/favicon.ico", timeout=30).status_code == 404
        assert httpx.request("TRACE", url + "/", timeout=30).status_code == 405
        big = _ce_headers("big") | {"content-type": "application/json"}
        too_large = httpx.post(url, headers=big, content=b'{"body":"' + b"x" * 4096 + b'"}', timeout=10)
        assert too_large.status_code == 413
        assert "2048" in too_large.text
        no_event = httpx.post(url, headers={"content-type": "application/json"}, content=b"{}", timeout=10)
        assert no_event.status_code == 400  # not a CloudEvent: a retry cannot help
        if server == "knevents":  # the thin entry brings the runner's header guards (functions-framework: gunicorn's)
            crowded = {f"x-h{i}": "v" for i in range(120)}
            assert httpx.get(url + "/health", headers=crowded, timeout=30).status_code == 431
        assert httpx.get(url + "/health", timeout=30).status_code == 200  # still up


def _ce_headers(event_id: str) -> dict[str, str]:
    return {"ce-specversion": "1.0", "ce-id": event_id, "ce-source": "github", "ce-type": "github",
            "ce-subject": "push"}


def test_sigterm_lets_the_request_in_flight_finish(tmp_path: Path, server: str) -> None:
    doc = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "EventSource",
        "metadata": {"name": "hooks"},
        "spec": {"webhook": {"deploy": {"endpoint": "/deploy", "method": "POST", "port": "12000"}}},
    }
    service, config_map = _rendered(doc)
    with localsink.running(status=202, delay=1.5) as broker:  # a slow broker: the POST stays in flight
        overrides = {"K_SINK": broker.url + "/default/default", "KNEVENTS_SERVER": server}
        with functionproc.running(service, config_map, tmp_path, overrides) as function:
            answers: list[int] = []
            post = threading.Thread(target=lambda: answers.append(
                httpx.post(function.url + "/deploy", json={"ref": "main"}, timeout=30).status_code))
            post.start()
            broker.wait_for(1)  # the function is now waiting on the broker
            function.proc.send_signal(signal.SIGTERM)  # Knative scales the revision down
            post.join(30)
            assert answers == [200]  # accepted by the bus, then answered: nothing lost at scale-down
            function.proc.wait(30)  # and the process ends by itself
            assert "Traceback" not in function.log.read_text()
