"""Issue 12 §7: a trigger URL chosen by event data cannot reach loopback, link-local or metadata addresses.

Nothing is sent to a metadata address: the refusal happens before any connection, and a counting
server on loopback shows that no connection was made to it either.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from knevents import errors, spec, triggers, web
from knevents.runtime import sensor
from knevents.secrets import SecretResolver
from knevents.settings import Settings
from knevents.state import memory

SENSOR = """apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {name: ssrf}
spec:
  dependencies:
    - {name: dep, eventSourceName: hooks, eventName: push}
  triggers:
    - template:
        name: call
        http:
          url: STATIC
          method: POST
      parameters:
        - src: {dependencyName: dep, dataKey: body.url}
          dest: http.url
"""


@pytest.fixture
async def counting_server() -> AsyncIterator[tuple[int, list[int]]]:
    """A loopback HTTP server that counts connections and answers 200."""
    seen: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(1)
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield int(server.sockets[0].getsockname()[1]), seen
    server.close()
    await server.wait_closed()


async def _fire(url_from_event: str, static: str, *, allow: bool = False) -> dict[str, object]:
    settings = Settings()
    settings = dataclasses.replace(settings, http=dataclasses.replace(settings.http, allow_internal_targets=allow))
    model = spec.load_one(SENSOR.replace("STATIC", static), kind="Sensor")
    runtime = sensor.SensorRuntime(model, memory.MemoryStore(), settings=settings,
                                   secrets=SecretResolver(settings.secrets, {}))
    request = web.Request("POST", "/", web.Headers({
        "ce-id": "e1", "ce-source": "hooks", "ce-subject": "push", "ce-type": "webhook", "ce-specversion": "1.0",
        "content-type": "application/json"}), json.dumps({"body": {"url": url_from_event}}).encode())
    answer = await runtime.handle(request)
    result: dict[str, object] = json.loads(answer.body)
    return result


@pytest.mark.parametrize("target", [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://169.254.10.1/", "http://[::1]:9/", "http://localhost:9/", "http://0.0.0.0:9/",
    "http://[::ffff:169.254.169.254]/",
])
async def test_event_chosen_internal_urls_are_refused_before_connecting(target: str) -> None:
    result = await _fire(target, "http://example.invalid/")
    assert "refused" in json.dumps(result["failed"]), result


async def test_loopback_gets_no_connection_unless_allowed(counting_server: tuple[int, list[int]]) -> None:
    port, seen = counting_server
    target = f"http://127.0.0.1:{port}/hook"
    refused = await _fire(target, "http://example.invalid/")
    assert "refused" in json.dumps(refused["failed"]) and seen == []
    allowed = await _fire(target, "http://example.invalid/", allow=True)
    assert allowed["fired"] and len(seen) == 1


async def test_a_url_written_in_the_sensor_is_trusted(counting_server: tuple[int, list[int]]) -> None:
    port, seen = counting_server
    text = SENSOR.replace("STATIC", f"http://127.0.0.1:{port}/x").split("      parameters:")[0]
    model = spec.load_one(text, kind="Sensor")
    settings = Settings()
    runtime = sensor.SensorRuntime(model, memory.MemoryStore(), settings=settings,
                                   secrets=SecretResolver(settings.secrets, {}))
    answer = await runtime.handle(web.Request("POST", "/", web.Headers({
        "ce-id": "e2", "ce-source": "hooks", "ce-subject": "push", "ce-type": "webhook", "ce-specversion": "1.0",
        "content-type": "application/json"}), b'{"body": {}}'))
    assert json.loads(answer.body)["fired"] and len(seen) == 1


async def test_source_file_is_read_only_under_the_files_dir(tmp_path: Path) -> None:
    inside = tmp_path / "ok.yaml"
    inside.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    settings = Settings()
    settings = dataclasses.replace(settings, secrets=dataclasses.replace(settings.secrets, files_dir=str(tmp_path)))
    ctx = triggers.base.TriggerContext(sensor_name="s", namespace="default", settings=settings)

    def trigger(path: str) -> object:
        model = spec.load_one(
            "apiVersion: argoproj.io/v1alpha1\nkind: Sensor\nmetadata: {name: s}\nspec:\n  dependencies:\n"
            "    - {name: d, eventSourceName: a, eventName: b}\n  triggers:\n    - template:\n        name: t\n"
            f"        k8s:\n          operation: create\n          source:\n            file: {{path: {path!r}}}\n",
            kind="Sensor")
        return model.spec.triggers[0]

    assert (await triggers.fetch_resource(trigger("ok.yaml"), ctx)) == {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
    for outside in ("/etc/passwd", "../../etc/hostname", str(tmp_path / ".." / "x.yaml")):
        with pytest.raises(errors.TriggerError, match="outside"):
            await triggers.fetch_resource(trigger(outside), ctx)
