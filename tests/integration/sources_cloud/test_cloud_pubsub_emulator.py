"""The pubSub source against the real Pub/Sub emulator and a real JetStream bus.

Push: the emulator's push subscription delivers to the source served on a
local port (the emulator sends no OIDC token; token checks are unit-tested
with a local key). Pull: the source creates its subscription and topic, acks
only after the bus took the event, and leaves the message for redelivery
when the bus is down.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from knevents import events, validation
from knevents.local.natsd import NatsServer
from knevents.runtime import source as source_runtime
from knevents.settings import Settings
from knevents.sources import base, pubsub
from knevents.spec import models

from tests.integration.sources_cloud import cloud_harness as harness

pytestmark = pytest.mark.usefixtures("pubsub_emulator_env")

PROJECT = "test"


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def clients(pubsub_emulator_env: str) -> Iterator[tuple[Any, Any]]:
    """A publisher and a subscriber client on the emulator (the test's own, not the source's)."""
    from google.cloud import pubsub_v1

    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    yield publisher, subscriber
    subscriber.close()
    publisher.transport.close()


@pytest.fixture
async def jetstream(nats_url: str) -> AsyncIterator[harness.Bus]:
    bus = await harness.Bus.connect(nats_url)
    yield bus
    await bus.close()


async def _publish(publisher: Any, topic: str, data: bytes, **attributes: str) -> str:
    future = await harness.to_thread(
        publisher.publish, f"projects/{PROJECT}/topics/{topic}", data, **attributes
    )
    return str(await harness.to_thread(future.result, timeout=harness.WAIT))


async def test_push_subscription_delivers_to_the_source(
    clients: tuple[Any, Any], jetstream: harness.Bus
) -> None:
    publisher, subscriber = clients
    topic, subscription = _name("orders"), _name("orders-push")
    await harness.to_thread(publisher.create_topic, name=f"projects/{PROJECT}/topics/{topic}")
    event_source = validation.parse_event_source(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "EventSource",
            "metadata": {"name": "gcp-pubsub"},
            "spec": {
                "pubSub": {
                    "orders": {
                        "projectID": PROJECT,
                        "subscriptionID": subscription,
                        "jsonBody": True,
                        "push": {"endpoint": "/orders"},
                    }
                }
            },
        }
    )
    runtime = source_runtime.SourceRuntime(event_source, jetstream.publisher, settings=Settings())
    assert runtime.routes() == [(None, "/orders", "POST")]
    async with harness.serve(runtime.handle) as url:
        await harness.to_thread(
            subscriber.create_subscription,
            request={
                "name": f"projects/{PROJECT}/subscriptions/{subscription}",
                "topic": f"projects/{PROJECT}/topics/{topic}",
                "push_config": {"push_endpoint": f"{url}/orders"},
            },
        )
        message_id = await _publish(publisher, topic, json.dumps({"order": 7}).encode(), kind="order")
        event = await jetstream.next_event()
    await runtime.close()
    assert (event.source, event.subject, event.type) == ("gcp-pubsub", "orders", "pubsub")
    data = events.data_json(event)
    assert data["id"] == message_id
    assert data["body"] == {"order": 7}
    assert data["attributes"] == {"kind": "order"}
    assert data["publishTime"].endswith(" +0000 UTC")


async def _run_until(source: Any, publish: Any, done: asyncio.Event) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(source.run(publish, stop))
    try:
        await asyncio.wait_for(done.wait(), harness.WAIT)
    finally:
        stop.set()
        await asyncio.wait_for(task, harness.WAIT)


async def test_pull_creates_topic_and_subscription_and_acks_after_publish(
    clients: tuple[Any, Any], jetstream: harness.Bus
) -> None:
    publisher, subscriber = clients
    topic, subscription = _name("events"), _name("events-sub")
    event_source = validation.parse_event_source(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "EventSource",
            "metadata": {"name": "gcp-pubsub"},
            "spec": {
                "pubSub": {
                    "example": {
                        "projectID": PROJECT,
                        "topic": topic,
                        "subscriptionID": subscription,
                        "jsonBody": True,
                    }
                }
            },
        }
    )
    runtime = source_runtime.SourceRuntime(event_source, jetstream.publisher, settings=Settings())
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run_pull(stop))
    try:
        path = f"projects/{PROJECT}/subscriptions/{subscription}"
        for _ in range(int(harness.WAIT * 10)):  # the source creates both when it starts
            try:
                await harness.to_thread(subscriber.get_subscription, subscription=path)
                break
            except Exception:
                await asyncio.sleep(0.1)
        message_id = await _publish(publisher, topic, b'{"n": 1}')
        event = await jetstream.next_event()
    finally:
        stop.set()
        await asyncio.wait_for(task, harness.WAIT)
    assert events.data_json(event)["id"] == message_id
    assert events.data_json(event)["body"] == {"n": 1}
    answer = await harness.to_thread(
        subscriber.pull, request={"subscription": path, "max_messages": 10}, timeout=5
    )
    assert list(answer.received_messages) == []  # acknowledged


async def test_pull_leaves_the_message_for_redelivery_when_the_bus_is_down(
    clients: tuple[Any, Any], nats_server: NatsServer
) -> None:
    publisher, subscriber = clients
    topic, subscription = _name("events"), _name("events-sub")
    path = f"projects/{PROJECT}/subscriptions/{subscription}"
    await harness.to_thread(publisher.create_topic, name=f"projects/{PROJECT}/topics/{topic}")
    await harness.to_thread(
        subscriber.create_subscription, name=path, topic=f"projects/{PROJECT}/topics/{topic}"
    )
    message_id = await _publish(publisher, topic, b"plain bytes")
    bus = await harness.Bus.connect(nats_server.url)
    nats_server.kill()
    observed = harness.ObservedPublisher(bus.publisher)
    config = models.PubSubEventSource(projectID=PROJECT, subscriptionID=subscription)
    source = pubsub.create("example", config, base.SourceContext(event_source_name="gcp-pubsub"))
    try:
        await _run_until(source, observed.publish, observed.failed)
    finally:
        await bus.close()
    assert observed.published == []
    answer = await harness.to_thread(
        subscriber.pull, request={"subscription": path, "max_messages": 10}, timeout=10
    )
    assert [m.message.message_id for m in answer.received_messages] == [message_id]


async def test_subscription_is_deleted_on_finish_when_asked(clients: tuple[Any, Any]) -> None:
    from google.api_core import exceptions as gex

    _, subscriber = clients
    topic, subscription = _name("events"), _name("events-sub")
    path = f"projects/{PROJECT}/subscriptions/{subscription}"
    config = models.PubSubEventSource(
        projectID=PROJECT, topic=topic, subscriptionID=subscription, deleteSubscriptionOnFinish=True
    )
    source = pubsub.create("example", config, base.SourceContext(event_source_name="gcp-pubsub"))
    stop = asyncio.Event()
    task = asyncio.create_task(source.run(harness.ObservedPublisher(None).publish, stop))  # type: ignore[union-attr]
    try:
        for _ in range(int(harness.WAIT * 10)):
            try:
                await harness.to_thread(subscriber.get_subscription, subscription=path)
                break
            except gex.NotFound:
                await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(task, harness.WAIT)
    with pytest.raises(gex.NotFound):
        await harness.to_thread(subscriber.get_subscription, subscription=path)


async def test_subscription_on_another_topic_is_a_logged_error_not_a_crash(
    clients: tuple[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    publisher, subscriber = clients
    topic, other, subscription = _name("events"), _name("other"), _name("events-sub")
    await harness.to_thread(publisher.create_topic, name=f"projects/{PROJECT}/topics/{other}")
    await harness.to_thread(
        subscriber.create_subscription,
        name=f"projects/{PROJECT}/subscriptions/{subscription}",
        topic=f"projects/{PROJECT}/topics/{other}",
    )
    config = models.PubSubEventSource(projectID=PROJECT, topic=topic, subscriptionID=subscription)
    source = pubsub.create("example", config, base.SourceContext(event_source_name="gcp-pubsub"))
    stop = asyncio.Event()
    task = asyncio.create_task(source.run(harness.ObservedPublisher(None).publish, stop))  # type: ignore[union-attr]
    try:
        for _ in range(int(harness.WAIT * 10)):
            if any("belongs to topic" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.1)
        assert not task.done()  # still running, retrying with backoff
    finally:
        stop.set()
        await asyncio.wait_for(task, harness.WAIT)
    (record,) = [r for r in caplog.records if "belongs to topic" in r.getMessage()][:1]
    assert other in record.getMessage()
