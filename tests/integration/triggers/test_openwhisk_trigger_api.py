"""The openWhisk trigger against the OpenWhisk REST API stand-in (tests/fixtures/openwhisk_api.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from knevents import errors, events, spec, triggers
from knevents.secrets import env_name
from knevents.sensors import engine
from knevents.triggers import open_whisk

from tests import upstream
from tests.fixtures.openwhisk_api import KEY, UUID, OpenWhiskApi
from tests.unit.triggers import trigger_support as support

SECRETS = {env_name("SECRET", "openwhisk", "token"): f"{UUID}:{KEY}"}
TOKEN = {"name": "openwhisk", "key": "token"}


def _template(api: OpenWhiskApi, **fields: Any) -> dict[str, Any]:
    return {"name": "ow", "openWhisk": {"host": api.url, "actionName": "hello", "authToken": TOKEN, **fields}}


async def test_upstream_sensor_with_the_key_spelled_right_invokes_the_action(openwhisk_api: OpenWhiskApi) -> None:
    doc = yaml.safe_load(upstream.example("sensors", "trigger-openwhisk.yaml").read_text())
    template = doc["spec"]["triggers"][0]["template"]
    template["openWhisk"] = {**template.pop("openwhisk"), "host": openwhisk_api.url, "authToken": TOKEN}
    machine = engine.SensorEngine(spec.parse_sensor(doc))
    event = events.new_event(source="minio", subject="example", type="minio", time=datetime.now(UTC),
                             data={"notification": [{"s3": {"bucket": {"name": "input"}}}]})
    [matched] = machine.match(event)
    resolved = machine.resolve(machine.triggers_for(matched.name)[0], {matched.name: matched.event})
    result = await triggers.fire(resolved, support.context(secrets=SECRETS))
    assert openwhisk_api.invocations == [("_", "hello", {"blocking": ["true"], "result": ["true"]},
                                          {"bucket": "input", "type": "minio"})]
    assert result.status == 200


async def test_namespace_version_qualified_names_and_empty_payload(openwhisk_api: OpenWhiskApi) -> None:
    await triggers.fire(support.resolved(_template(openwhisk_api, namespace="guest", version="v1")),
                        support.context(secrets=SECRETS))
    await triggers.fire(support.resolved(_template(openwhisk_api, actionName="/team/hello")),
                        support.context(secrets=SECRETS))
    assert [(ns, action, params) for ns, action, _, params in openwhisk_api.invocations] == [
        ("guest", "hello", {}), ("team", "hello", {})]
    assert open_whisk.invoke_url(support.resolved(_template(openwhisk_api, host="ow.example:9000")).spec.template
                                 .open_whisk).startswith("https://ow.example:9000/api/v1/namespaces/_/actions/hello")


@pytest.mark.parametrize(("fields", "secrets", "kind", "match"), [
    ({"actionName": "missing"}, SECRETS, errors.TriggerError, "answered 404"),
    ({}, {env_name("SECRET", "openwhisk", "token"): f"{UUID}:wrong-key"}, errors.TriggerError, "answered 401"),
    ({"actionName": "fails"}, SECRETS, errors.TriggerRetryableError, "answered 502"),
])
async def test_failures_are_permanent_or_retryable_without_the_key(
        openwhisk_api: OpenWhiskApi, fields: dict[str, Any], secrets: dict[str, str], kind: type[Exception],
        match: str) -> None:
    with pytest.raises(kind, match=match) as info:
        await triggers.fire(support.resolved(_template(openwhisk_api, **fields)), support.context(secrets=secrets))
    assert KEY not in str(info.value) and "wrong-key" not in str(info.value)


async def test_policy_status_allow_decides(openwhisk_api: OpenWhiskApi) -> None:
    resolved = support.resolved(_template(openwhisk_api, actionName="fails"), policy={"status": {"allow": [502]}})
    result = await triggers.fire(resolved, support.context(secrets=SECRETS))
    assert result.status == 502


async def test_unreachable_host_is_retryable() -> None:
    template = {"name": "ow", "openWhisk": {"host": "http://127.0.0.1:9", "actionName": "hello"}}
    with pytest.raises(errors.TriggerRetryableError, match="ConnectError"):
        await triggers.fire(support.resolved(template), support.context())
