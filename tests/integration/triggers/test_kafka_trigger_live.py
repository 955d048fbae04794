"""The kafka trigger produces to a real Tansu broker; retries, permanent errors, secrets kept out of messages."""

from __future__ import annotations

import asyncio
import logging

import pytest
from knevents import errors, triggers, validation
from knevents.secrets import env_name

from tests.fixtures.brokers import Tansu
from tests.fixtures.ports import connections_to
from tests.fixtures.stall import StallingRelay
from tests.integration.brokers.kafka_support import create_topic, first_record, until
from tests.unit.triggers import trigger_support as support


async def test_produces_payload_key_and_headers(tansu: Tansu) -> None:
    await create_topic(tansu.url, "builds", 1)
    template = {"name": "tell", "kafka": {
        "url": tansu.url, "topic": "builds", "partition": 0, "partitioningKey": "kubedojo", "payload": [],
        "requiredAcks": 1, "compress": True, "flushFrequency": 100, "headers": {"team": "a"},
        "secureHeaders": [{"name": "token", "valueFrom": {"secretKeyRef": {"name": "k", "key": "t"}}}]}}
    resolved = support.resolved(template, payload=b'{"project":"kubedojo"}', fired={"dep": support.event(id="evt-9")})
    ctx = support.context(secrets={env_name("SECRET", "k", "t"): "s3cr3t-value"}, traceparent="00-aa-bb-01")
    result = await triggers.fire(resolved, ctx)
    record = await first_record("builds", bootstrap_servers=tansu.url)
    assert record.value == b'{"project":"kubedojo"}'  # type: ignore[attr-defined]
    assert record.key == b"kubedojo"  # type: ignore[attr-defined]
    headers = dict(record.headers)  # type: ignore[attr-defined]
    assert headers["team"] == b"a" and headers["token"] == b"s3cr3t-value"
    assert headers["Knevents-Event-Ids"] == b"evt-9" and headers["traceparent"] == b"00-aa-bb-01"
    assert result.detail.startswith(f"produced to Kafka {tansu.url} topic builds (partition 0, offset 0)")
    await triggers.aclose()


async def test_a_firing_cancelled_while_the_broker_hangs_leaves_no_connection_behind(tansu: Tansu) -> None:
    """The producer's start cut short in aiokafka's bootstrap metadata request (the broker answered the first
    request, then hung): its connection, held by aiokafka in a local variable, used to stay open."""
    async with StallingRelay(tansu.port, answers=1) as relay:
        template = {"name": "tell", "kafka": {"url": f"127.0.0.1:{relay.port}", "topic": "t", "payload": []}}
        firing = asyncio.ensure_future(triggers.fire(support.resolved(template, payload=b"{}"), support.context()))
        await until(lambda: relay.held == 1)
        firing.cancel()  # the sensor's delivery gave up, or a shutdown
        with pytest.raises(asyncio.CancelledError):
            await firing
        assert connections_to(relay.port) == 0
        await triggers.aclose()


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_loop_that_ends_without_aclose_stops_its_producer(tansu: Tansu, loop: str) -> None:
    """The producer of a loop that ended without ``triggers.aclose`` used to stay in the pool with its
    connections open, and the loop, for the life of the process (uvloop closed the sockets, warning)."""
    import gc

    asyncio.run(create_topic(tansu.url, "ended", 1))
    template = {"name": "tell", "kafka": {"url": tansu.url, "topic": "ended", "payload": []}}
    resolved = support.resolved(template, payload=b"{}")
    result, ended, warned = support.fire_on_a_loop_of_its_own(resolved, support.context(), loop)
    assert result.detail.startswith("produced to")
    assert connections_to(tansu.port) == 0
    assert warned == []
    gc.collect()
    assert ended() is None  # nothing of that loop is kept


async def test_unreachable_broker_is_retried_then_given_up(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    template = {"name": "tell", "kafka": {"url": "127.0.0.1:9", "topic": "t", "payload": [],
                                          "sasl": {"mechanism": "PLAIN", "userSecret": {"name": "k", "key": "u"},
                                                   "passwordSecret": {"name": "k", "key": "p"}}}}
    resolved = support.resolved(template, payload=b"{}", retryStrategy={"steps": 2, "duration": "10ms"})
    ctx = support.context(secrets={env_name("SECRET", "k", "u"): "me", env_name("SECRET", "k", "p"): "hunter22pw"})
    with pytest.raises(errors.TriggerRetryableError, match="gave up after 2 attempt") as info:
        await asyncio.wait_for(triggers.fire(resolved, ctx), 90)
    assert "hunter22pw" not in str(info.value)
    assert "hunter22pw" not in caplog.text


async def test_missing_payload_and_schema_registry_are_permanent_and_refused_by_validation() -> None:
    no_payload = support.resolved({"name": "x", "kafka": {"url": "h:1", "topic": "t"}}, payload=b"{}",
                                  retryStrategy={"steps": 3})
    with pytest.raises(errors.TriggerError, match=r"payload parameters are not specified \(attempt 1\)"):
        await triggers.fire(no_payload, support.context())
    text = """
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {name: s}
spec:
  dependencies: [{name: d, eventSourceName: e, eventName: n}]
  triggers:
    - template:
        name: k
        kafka: {url: "h:1", topic: t, payload: [], schemaRegistry: {url: "http://r", schemaId: 1}}
"""
    problems = [f"{p.path}: {p.message}" for p in validation.load_text(text).problems]
    assert any("kafka.schemaRegistry: not supported" in p for p in problems), problems
