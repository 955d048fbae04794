"""Batches published pipelined to a real JetStream bus: partition/stream order kept, a refusal commits only before it.

The kafka and redisStream sources hand each fetched batch to the runtime, which
sends it without waiting for each ack in between. These tests read the bus
stream back: the events are stored in offset/entry order, and when JetStream
refuses one event in the middle of a batch (here a stream ``max_msg_size`` the
event exceeds, which refuses that one message and stores the ones after it),
the source commits / XACKs nothing from it on, reads it again until the bus
takes it, and the copies of the later events are dropped by their id.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition
from knevents import bus, errors, events, metrics
from knevents.local.natsd import NatsServer
from knevents.settings import BusSettings, NatsSettings, Settings
from knevents.sources import base

from tests.fixtures.brokers import Redis, Tansu
from tests.integration.brokers.kafka_support import Running, create_topic, produce

STREAM = bus.stream_name("default")


@pytest.fixture
async def js(nats_url: str) -> AsyncIterator[Any]:
    client = await nats.connect(nats_url)
    try:
        yield client.jetstream()
    finally:
        await client.close()


async def _bus_stream(js: Any, *, max_msg_size: int = -1) -> None:
    """Create (or update) the bus stream first, so the source's publisher finds it with these limits."""
    await bus.ensure_stream(js, "default")
    info = await js.stream_info(STREAM)
    info.config.max_msg_size = max_msg_size
    await js.update_stream(info.config)


async def _stored(js: Any) -> list[events.Event]:
    """Every event in the bus stream, in stream order."""
    count = (await js.stream_info(STREAM)).state.messages
    out = []
    for seq in range(1, count + 1):
        msg = await js.get_msg(STREAM, seq)
        out.append(bus.decode_nats(msg.headers, msg.data))
    return out


async def _count(js: Any) -> int:
    return int((await js.stream_info(STREAM)).state.messages)


def _publisher(nats_url: str) -> bus.JetStreamPublisher:
    return bus.JetStreamPublisher.lazy(Settings(nats=NatsSettings(url=nats_url)))


async def _commit_start(url: str, group: str, topic: str) -> None:
    """Commit offset 0 for the partition reader's private group: it reads the backlog from the start."""
    consumer = AIOKafkaConsumer(bootstrap_servers=url, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.commit({tp: 0})
    finally:
        await consumer.stop()


async def _committed(url: str, group: str, topic: str) -> int | None:
    consumer = AIOKafkaConsumer(bootstrap_servers=url, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        return await consumer.committed(tp)
    finally:
        await consumer.stop()


def _ns(stored: list[events.Event]) -> list[int]:
    return [int(events.data_json(e)["body"]["n"]) for e in stored]


async def test_kafka_batches_reach_the_bus_in_partition_order(tansu: Tansu, nats_url: str, js: Any) -> None:
    await create_topic(tansu.url, "ordered", 1)
    await produce(tansu.url, "ordered", [json.dumps({"n": i}).encode() for i in range(450)], partition=0)
    await _commit_start(tansu.url, "knevents.default.order.o", "ordered")
    await _bus_stream(js)
    publisher = _publisher(nats_url)
    spec = {"kafka": {"o": {"url": tansu.url, "topic": "ordered", "partition": "0", "jsonBody": True}}}
    try:
        async with Running(spec, publisher, name="order"):
            # the stream holds the last batch before its acks reach the source, which counts it then: stopping
            # in between would cancel that publish uncounted, so the wait is for the source's count
            await _until_async(lambda: _published_is("order", "o", 450))
    finally:
        await publisher.close()
    assert _ns(await _stored(js)) == list(range(450))  # three fetched batches (200, 200, 50), in offset order
    for name in ("received", "published"):  # counted per event, as one at a time
        series = metrics.REGISTRY.get_sample_value(f"knevents_eventsource_events_{name}_total",
                                                   {"eventsource": "order", "event": "o"})
        assert series == 450, (name, series)
    assert metrics.REGISTRY.get_sample_value("knevents_eventsource_publish_seconds_count",
                                             {"eventsource": "order", "event": "o"}) == 450
    assert metrics.REGISTRY.get_sample_value("argo_events_events_sent_total", {
        "namespace": "default", "eventsource_name": "order", "event_name": "o"}) == 450


async def test_kafka_refused_middle_event_commits_only_before_it_and_is_read_again(
        tansu: Tansu, nats_url: str, js: Any) -> None:
    await create_topic(tansu.url, "mid", 1)
    values = [json.dumps({"n": i, "pad": "x" * (3000 if i == 4 else 10)}).encode() for i in range(10)]
    await produce(tansu.url, "mid", values, partition=0)
    await _commit_start(tansu.url, "knevents.default.mid.m", "mid")
    await _bus_stream(js, max_msg_size=1500)  # the bus refuses record 4 only
    publisher = _publisher(nats_url)
    spec = {"kafka": {"m": {"url": tansu.url, "topic": "mid", "partition": "0", "jsonBody": True}}}
    try:
        refusals = _failed("mid", "m")
        async with Running(spec, publisher, name="mid"):
            await _until_async(lambda: _count_is(js, 9))
            # at least two more attempts: the batch from record 4 on is sent again (each attempt's refusal is
            # counted once all its outcomes are in, after the commit of the attempt before)
            await _until_async(lambda: _failed_at_least("mid", "m", refusals + 3))
            assert await _count(js) == 9  # the copies of records 5..9 were dropped by their id
            assert await _committed(tansu.url, "knevents.default.mid.m", "mid") == 4  # nothing past the refusal
            await _bus_stream(js)  # the bus takes it now
            await _until_async(lambda: _count_is(js, 10))
            await _until_async(lambda: _committed_is(tansu.url, "knevents.default.mid.m", "mid", 10))
    finally:
        await publisher.close()
    stored = _ns(await _stored(js))
    assert stored == [0, 1, 2, 3, 5, 6, 7, 8, 9, 4]  # once each; the refused one arrives when the bus took it


async def test_redis_stream_order_and_refused_middle_entry_stays_pending(
        redis_server: Redis, nats_url: str, js: Any) -> None:
    client = aioredis.Redis(host="127.0.0.1", port=redis_server.port)
    ids = [(await client.xadd("S", {"n": str(i), "pad": "x" * (3000 if i == 150 else 10)})).decode()
           for i in range(350)]
    await client.xgroup_create("S", "argo-events-cg", id="0")  # the backlog is read, in batches of 100
    await _bus_stream(js, max_msg_size=1500)  # refuses entry 150, in the middle of the second batch
    publisher = _publisher(nats_url)
    spec = {"redisStream": {"r": {"hostAddress": redis_server.address, "streams": ["S"], "maxMsgCountPerRead": 100}}}
    try:
        refusals = _failed("rs", "r")
        async with Running(spec, publisher, name="rs"):
            await _until_async(lambda: _count_is(js, 199))  # all of the first two batches but entry 150
            await _until_async(lambda: _failed_at_least("rs", "r", refusals + 3))  # two more attempts at least
            assert await _count(js) == 199
            pending = await client.xpending_range("S", "argo-events-cg", min="-", max="+", count=500)
            # XACKed up to the refused entry only; the third read (the read-ahead, sent while the second batch
            # was published) is pending too, unpublished, and nothing beyond it was read (entries 300-349)
            assert [p["message_id"].decode() for p in pending] == ids[150:300]
            await _bus_stream(js)
            await _until_async(lambda: _count_is(js, 350))
            await _until_async(lambda: _pending_is(client, 0))
    finally:
        await publisher.close()
        await client.aclose()
    got = [int(events.data_json(e)["values"]["n"]) for e in await _stored(js)]
    # stream order, except the refused entry, stored when the bus took it (before the read-ahead's entries)
    assert got == [*range(150), *range(151, 200), 150, *range(200, 350)]


async def test_jetstream_publish_many_outcomes_too_large_bus_down_and_back(nats_server: NatsServer, js: Any) -> None:
    settings = Settings(nats=NatsSettings(url=nats_server.url),
                        bus=BusSettings(publish_retries=1, publish_backoff=0.05, publish_timeout=2.0))
    publisher = bus.JetStreamPublisher.lazy(settings)

    def ev(i: int, size: int = 10) -> events.Event:
        return events.new_event(source="s", subject="e", type="t", data=json.dumps({"n": i, "p": "x" * size}).encode(),
                                id=f"s:e:{i}")

    try:
        outcomes = await publisher.publish_many([ev(0), ev(1, 2 * 1024 * 1024), ev(2)])
        assert outcomes[0] is None and outcomes[2] is None
        assert isinstance(outcomes[1], errors.EventTooLargeError)  # refused before sending, the others stored
        assert await publisher.publish_many([ev(0), ev(2)]) == [None, None]  # again: stored once (same ids)
        assert await _count(js) == 2
        nats_server.kill()
        down = await publisher.publish_many([ev(3), ev(4)])
        assert all(isinstance(o, errors.BusUnavailableError) for o in down)
        nats_server.restart()
        for _ in range(1200):  # nats-py reconnects on its own (every 2 s; slower on a busy machine)
            if publisher.connected:
                break
            await asyncio.sleep(0.05)
        assert await publisher.publish_many([ev(3), ev(4), ev(5)]) == [None, None, None]
    finally:
        await publisher.close()
    client = await nats.connect(nats_server.url)
    try:
        stored = await _stored(client.jetstream())
    finally:
        await client.close()
    assert [int(events.data_json(e)["n"]) for e in stored] == [0, 2, 3, 4, 5]


async def test_publish_batch_without_many_maps_refusal_to_slots() -> None:
    """A plain ``publish`` (a test's, not the runtime's) goes one at a time; ``done`` counts upstream items."""
    seen: list[str] = []

    async def publish(event: events.Event) -> None:
        if event.id == "c":
            raise errors.BusUnavailableError("refused")
        seen.append(event.id)

    def ev(name: str) -> events.Event:
        return events.new_event(source="s", subject="e", type="t", data=b"{}", id=name)

    with pytest.raises(errors.BatchRefusedError) as refused:
        await base.publish_batch(publish, [ev("a"), None, ev("b"), None, ev("c"), ev("d")])
    assert refused.value.done == 4 and seen == ["a", "b"]  # the two skipped items before "c" count as done
    await base.publish_batch(publish, [ev("a"), None])


async def _until_async(check: Any, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def _failed(eventsource: str, event: str) -> float:
    value = metrics.REGISTRY.get_sample_value("knevents_eventsource_events_failed_total",
                                              {"eventsource": eventsource, "event": event})
    return value or 0.0


async def _failed_at_least(eventsource: str, event: str, n: float) -> bool:
    return _failed(eventsource, event) >= n


async def _published_is(eventsource: str, event: str, n: int) -> bool:
    value = metrics.REGISTRY.get_sample_value("knevents_eventsource_events_published_total",
                                              {"eventsource": eventsource, "event": event})
    return value == n


async def _count_is(js: Any, n: int) -> bool:
    return await _count(js) == n


async def _committed_is(url: str, group: str, topic: str, offset: int) -> bool:
    return await _committed(url, group, topic) == offset


async def _pending_is(client: aioredis.Redis, n: int) -> bool:
    return int((await client.xpending("S", "argo-events-cg"))["pending"]) == n
