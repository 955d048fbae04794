"""The custom trigger against a real grpcio server implementing Argo's trigger.proto (tests/fixtures/argo_grpc.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from knevents import errors, events, spec, triggers
from knevents.local.natsd import free_port
from knevents.sensors import engine

from tests import upstream
from tests.fixtures.argo_grpc import TriggerServer
from tests.integration.sources_more import local_run
from tests.unit.triggers import trigger_support as support


def _fire_upstream(server: TriggerServer, body: dict[str, Any]) -> Any:
    doc = yaml.safe_load(upstream.example("sensors", "custom-trigger.yaml").read_text())
    doc["spec"]["triggers"][0]["template"]["custom"]["serverURL"] = server.url
    machine = engine.SensorEngine(spec.parse_sensor(doc), fetches_resource=triggers.fetches_resource)
    event = events.new_event(source="webhook", subject="example", type="webhook", time=datetime.now(UTC),
                             data={"header": {}, "body": body})
    [matched] = machine.match(event)
    return machine.resolve(machine.triggers_for(matched.name)[0], {matched.name: matched.event})


async def test_upstream_sensor_fetches_parameterises_executes_and_applies_policy(trigger_server: TriggerServer) -> None:
    resolved = _fire_upstream(trigger_server, {"url": "https://example.com/pipeline.yaml", "namespace": "ci"})
    assert resolved.error is None
    result = await triggers.fire(resolved, support.context())
    names = [name for name, _ in trigger_server.calls]
    assert names == ["FetchResource", "Execute", "ApplyPolicy"]
    fetch, execute, policy = (fields for _, fields in trigger_server.calls)
    assert yaml.safe_load(fetch["resource"]) == {"url": "https://example.com/pipeline.yaml"}
    assert fetch["resource"] == b"url: https://example.com/pipeline.yaml\n"
    resource = json.loads(execute["resource"])
    assert resource == {"url": "https://example.com/pipeline.yaml", "metadata": {"namespace": "ci"}}
    assert execute["payload"] == b""
    assert policy["request"] == execute["resource"]
    assert result.detail.endswith("policy success=true: checked")


async def test_payload_is_sent_and_failed_policy_is_reported_not_raised(trigger_server: TriggerServer) -> None:
    trigger_server.success = False
    template = {"name": "t", "custom": {"serverURL": trigger_server.url, "spec": {"k": "v"}, "payload": []}}
    result = await triggers.fire(support.resolved(template, payload=b'{"a":1}'), support.context())
    assert trigger_server.calls[1][1]["payload"] == b'{"a":1}'
    assert "policy success=false" in result.detail


@pytest.mark.parametrize(("code", "kind"), [(grpc.StatusCode.UNAVAILABLE, errors.TriggerRetryableError),
                                            (grpc.StatusCode.INVALID_ARGUMENT, errors.TriggerError)])
async def test_execute_failures_map_to_retryable_or_permanent(trigger_server: TriggerServer, code: Any,
                                                              kind: type[Exception]) -> None:
    trigger_server.fail_execute = code
    template = {"name": "t", "custom": {"serverURL": trigger_server.url, "spec": {"k": "v"}}}
    with pytest.raises(kind, match=f"Execute failed: {code.name}"):
        await triggers.fire(support.resolved(template), support.context())


async def test_unreachable_server_is_retryable_and_secure_needs_a_cert() -> None:
    template = {"name": "t", "custom": {"serverURL": "127.0.0.1:9", "spec": {"k": "v"}}}
    with pytest.raises(errors.TriggerRetryableError, match="FetchResource failed: UNAVAILABLE"):
        await triggers.fire(support.resolved(template), support.context())
    secure = {"name": "t", "custom": {"serverURL": "127.0.0.1:9", "secure": True, "spec": {}}}
    with pytest.raises(errors.TriggerError, match="CERT secret not defined"):
        await triggers.fire(support.resolved(secure), support.context())


def test_upstream_custom_sensor_under_knevents_run(trigger_server: TriggerServer, tmp_path: Path) -> None:
    port = free_port()
    doc = yaml.safe_load(upstream.example("sensors", "custom-trigger.yaml").read_text())
    doc["spec"]["triggers"][0]["template"]["custom"]["serverURL"] = trigger_server.url
    with local_run.running(tmp_path, local_run.upstream_webhook(port), yaml.safe_dump(doc)) as runner:
        local_run.post(runner, port, {"url": "https://example.com/p.yaml", "namespace": "ci"}, tmp_path)
        runner.wait_for(lambda r: r.get("tag") == "fired", "the custom firing")
    assert [name for name, _ in trigger_server.calls] == ["FetchResource", "Execute", "ApplyPolicy"]
    assert json.loads(trigger_server.calls[1][1]["resource"]) == {"url": "https://example.com/p.yaml",
                                                                   "metadata": {"namespace": "ci"}}
