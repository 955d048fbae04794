"""Issue 12 §8 (malformed input): deep JSON, invalid UTF-8 and broken CloudEvents are 4xx, never 5xx."""

from __future__ import annotations

from pathlib import Path

import pytest
from knevents import validation, web
from knevents.runtime import sensor, sensor_app
from knevents.secrets import SecretResolver
from knevents.settings import Settings
from knevents.state import memory

from tests.unit.sources_core import helpers

REPO = Path(__file__).resolve().parents[3]
DEEP = b"[" * 100_000 + b"]" * 100_000
BINARY = {"ce-id": "1", "ce-source": "github-events", "ce-subject": "code-push", "ce-type": "webhook",
          "ce-specversion": "1.0", "content-type": "application/json"}
STRUCTURED = {"content-type": "application/cloudevents+json"}


def _sensor_app() -> sensor_app.SensorApp:
    model = validation.load_one((REPO / "examples/http-trigger/sensor.yaml").read_text(), kind="Sensor")
    settings = Settings()
    runtime = sensor.SensorRuntime(model, memory.MemoryStore(), settings=settings,
                                   secrets=SecretResolver(settings.secrets), dry_run=True)
    return sensor_app.SensorApp(runtime)


@pytest.mark.parametrize(("headers", "body"), [
    (STRUCTURED, DEEP),
    (STRUCTURED, b"\xff\xfe{}"),
    (STRUCTURED, b'{"specversion":"1.0","id":"1","source":"s","type":"t","data":' + DEEP + b"}"),
    (STRUCTURED, b'{"specversion":5}'),
    ({**BINARY, "ce-specversion": "0.3"}, b"{}"),
    ({k: v for k, v in BINARY.items() if k != "ce-id"}, b"{}"),
    ({"content-type": "application/json"}, b"{}"),
])
async def test_sensor_function_answers_malformed_events_with_4xx(headers: dict[str, str], body: bytes) -> None:
    answer = await _sensor_app().handle(web.Request("POST", "/", web.Headers(headers), body))
    assert 400 <= answer.status < 500, answer.body[:200]


@pytest.mark.parametrize("body", [DEEP, b"\xff\xfe", b'{"a": "\xff"}', b'{"a": ' + DEEP + b"}"])
async def test_sensor_function_never_answers_5xx_to_odd_data(body: bytes) -> None:
    answer = await _sensor_app().handle(web.Request("POST", "/", web.Headers(BINARY), body))
    assert answer.status < 500, answer.body[:200]


GITHUB = {"github": {"push": {"webhook": {"endpoint": "/gh", "port": "12000", "method": "POST"},
                              "events": ["*"], "repositories": [{"owner": "o", "names": ["r"]}]}}}
WEBHOOK = {"webhook": {"hook": {"endpoint": "/hook", "port": "12000", "method": "POST"}}}


@pytest.mark.parametrize(("spec_body", "path"), [(WEBHOOK, "/hook"), (GITHUB, "/gh")])
@pytest.mark.parametrize("body", [DEEP, b"\xff\xfe", b'{"a": "\xff"}', b'{"a": ' + DEEP + b"}"])
async def test_event_source_answers_malformed_bodies_with_4xx(spec_body: dict[str, object], path: str,
                                                              body: bytes) -> None:
    runtime, memory_bus = helpers.runtime(spec_body)
    answer = await runtime.handle(helpers.request("POST", path, body, {
        "content-type": "application/json", "x-github-event": "push"}))
    assert 400 <= answer.status < 500, answer.body[:200]
    assert not memory_bus.events
