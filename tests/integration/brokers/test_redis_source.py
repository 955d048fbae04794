"""The redis (pub/sub) event source against a real redis-server: Argo's data, bad input, health, restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import redis.asyncio as aioredis

from tests.fixtures.brokers import Redis
from tests.integration.brokers.kafka_support import Running, until


async def _publish_until_heard(client: aioredis.Redis, channel: str, payload: bytes) -> None:
    """PUBLISH until one subscriber got it (pub/sub drops messages nobody is subscribed for)."""
    for _ in range(600):
        if await client.publish(channel, payload):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("no subscriber")


async def test_argo_data_json_body_and_bad_input(redis_server: Redis) -> None:
    from knevents import metrics

    counter = metrics.counter("knevents_eventsource_events_rejected", "", ("eventsource", "event", "reason"))
    before = counter.labels("redis", "example", "malformed")._value.get()
    client = aioredis.Redis(host="127.0.0.1", port=redis_server.port)
    spec = {"redis": {"example": {"hostAddress": redis_server.address, "db": 0, "channels": ["FOO"],
                                  "jsonBody": True, "metadata": {"k": "v"}},
                      "raw": {"hostAddress": redis_server.address, "channels": ["BAR"]}}}
    async with Running(spec, name="redis") as running:
        await _publish_until_heard(client, "FOO", b'{"n": 1}')
        await client.publish("FOO", b"not json")  # jsonBody: skipped and counted
        await client.publish("FOO", b'{"n": 2}')
        await _publish_until_heard(client, "BAR", "héllo".encode())
        await until(lambda: len(running.memory.events) == 3)
    by_event = {}
    for event in running.memory.events:
        by_event.setdefault(event.subject, []).append(event)
    data = [d for d, e in zip(running.data(), running.memory.events, strict=True) if e.subject == "example"]
    assert data == [{"channel": "FOO", "pattern": "", "body": {"n": 1}, "metadata": {"k": "v"}},
                    {"channel": "FOO", "pattern": "", "body": {"n": 2}, "metadata": {"k": "v"}}]
    raw = [d for d, e in zip(running.data(), running.memory.events, strict=True) if e.subject == "raw"]
    assert raw == [{"channel": "BAR", "pattern": "", "body": "héllo"}]
    assert by_event["example"][0].type == "redis"
    assert counter.labels("redis", "example", "malformed")._value.get() == before + 1
    await client.aclose()


async def test_not_ready_until_the_server_is_up_and_resubscribes_after_restart(tmp_path: Path) -> None:
    server = Redis(tmp_path / "late")
    spec = {"redis": {"r": {"hostAddress": server.address, "channels": ["C"]}}}
    async with Running(spec) as running:
        await until(lambda: any("r: redis" in p for p in running.rt.not_ready()))
        server.start()
        try:
            client = aioredis.Redis(host="127.0.0.1", port=server.port)
            await _publish_until_heard(client, "C", b"one")
            await client.aclose()
            server.restart()
            client = aioredis.Redis(host="127.0.0.1", port=server.port)
            await _publish_until_heard(client, "C", b"two")
            await until(lambda: len(running.memory.events) == 2, timeout=90)
            await client.aclose()
        finally:
            server.stop()
    assert [d["body"] for d in running.data()] == ["one", "two"]
