"""The rendered functions honour Knative's runtime contract when started exactly as the image starts them.

Only the rendered container environment, the mounted spec and ``$PORT`` are
given (``python -m knevents.deploy.entrypoint``, the image's ENTRYPOINT); a
CloudEvent is posted as the Broker posts it (binary mode, ``ce-`` headers,
Knative's ``knativearrivaltime`` extension).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from knevents.deploy import entrypoint, names, render

from tests.deploy import corpus, functionproc, localsink


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


def test_sensor_function_fires_on_a_broker_delivery(tmp_path: Path, nats_url: str) -> None:
    with localsink.running() as sink:
        objs = render.render([], [_sensor(sink.url)]).objects
        service = next(o for o in objs if o["kind"] == "Service")
        config_map = next(o for o in objs if o["kind"] == "ConfigMap" and names.SPEC_FILE in o["data"])
        with functionproc.started(service, config_map, tmp_path, {"KNEVENTS_NATS_URL": nats_url}) as url:
            first = _broker_post(url, "e1")
            assert 200 <= first.status_code < 300, first.text
            (hit,) = sink.wait_for(1)
            assert hit.path == "/hook"
            assert hit.headers["knevents-event-ids"] == "e1"
            assert httpx.get(url + "/metrics", timeout=5).status_code == 200
            # a redelivery of the same event (same id) is acknowledged, not fired again
            again = _broker_post(url, "e1")
            assert 200 <= again.status_code < 300
            second = _broker_post(url, "e2")
            assert 200 <= second.status_code < 300
            hits = sink.wait_for(2)
            assert [h.headers["knevents-event-ids"] for h in hits] == ["e1", "e2"]
            # malformed delivery: 400, so the broker does not retry it
            bad = httpx.post(url, headers={"content-type": "application/json"}, content=b"{}", timeout=5)
            assert bad.status_code == 400


def test_entrypoint_refuses_unclear_environments(tmp_path: Path) -> None:
    cases = [
        ({}, "KNEVENTS_FUNCTION must be eventsource or sensor, got ''"),
        ({"KNEVENTS_FUNCTION": "sensor"}, "KNEVENTS_SPEC is not set"),
        (
            {"KNEVENTS_FUNCTION": "sensor", "KNEVENTS_SPEC": "x", "KNEVENTS_FUNCTIONS_DIR": str(tmp_path)},
            "function source",
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


def test_entrypoint_fills_functions_framework_defaults_but_keeps_explicit_values() -> None:
    env = {
        "KNEVENTS_FUNCTION": "sensor",
        "KNEVENTS_SPEC": "/etc/knevents/spec.yaml",
        "KNEVENTS_FUNCTIONS_DIR": str(corpus.REPO / "functions"),
        "FUNCTION_TARGET": "sensor",
    }
    entrypoint.prepare(env)
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


def test_event_source_function_publishes_to_k_sink_in_binary_mode(tmp_path: Path) -> None:
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
        overrides = {"K_SINK": broker.url + "/default/default"}
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
