"""The nats trigger publishes to a real nats-server (the nats_url fixture)."""

from __future__ import annotations

import asyncio

import nats
import pytest
from knevents import errors, triggers
from knevents.secrets import env_name
from knevents.spec import models
from knevents.triggers import base
from knevents.triggers import nats as nats_trigger

from tests.unit.triggers import trigger_support as support


async def test_publishes_payload_with_idempotency_header(nats_url: str) -> None:
    client = await nats.connect(nats_url)
    try:
        subscription = await client.subscribe("builds.done")
        await client.flush()  # the server has the subscription before the trigger's connection publishes
        resolved = support.resolved(
            {"name": "tell", "nats": {"url": nats_url, "subject": "builds.done", "payload": []}},
            payload=b'{"project":"kubedojo"}',
            fired={"dep": support.event(id="evt-9")},
        )
        result = await triggers.fire(resolved, support.context(traceparent="00-aa-bb-01"))
        message = await subscription.next_msg(timeout=30)
    finally:
        await client.close()
    assert message.data == b'{"project":"kubedojo"}'
    assert message.headers is not None
    assert message.headers[base.EVENT_IDS_HEADER] == "evt-9"
    assert message.headers["traceparent"] == "00-aa-bb-01"
    assert result.detail == f"published to NATS {nats_url} subject builds.done"


async def test_unreachable_server_is_retryable() -> None:
    resolved = support.resolved(
        {"name": "tell", "nats": {"url": "nats://127.0.0.1:9", "subject": "x", "payload": []}}, payload=b"{}"
    )
    with pytest.raises(errors.TriggerRetryableError, match="could not connect"):
        await asyncio.wait_for(triggers.fire(resolved, support.context()), 30)


def test_auth_options_come_from_secrets_and_are_hidden() -> None:
    spec = models.NATSTrigger.model_validate(
        {
            "url": "nats://x:4222",
            "subject": "s",
            "payload": [],
            "auth": {"token": {"name": "nats", "key": "token"}},
        }
    )
    ctx = support.context(secrets={env_name("SECRET", "nats", "token"): "tok-123"})
    options, hidden = nats_trigger.connect_options(spec, ctx)
    assert options == {"token": "tok-123"}
    assert hidden == ["tok-123"]
