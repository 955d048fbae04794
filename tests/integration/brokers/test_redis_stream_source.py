"""The redisStream event source against a real redis-server: Argo's data, XACK after acceptance, pending claimed again."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from tests.fixtures.brokers import Redis
from tests.integration.brokers.kafka_support import Running, until


async def _client(server: Redis) -> aioredis.Redis:
    return aioredis.Redis(host="127.0.0.1", port=server.port)


async def test_argo_data_group_at_dollar_and_ack_only_after_acceptance(redis_server: Redis) -> None:
    client = await _client(redis_server)
    await client.xadd("FOO", {"old": "1"})  # before the group exists: the group starts at `$`
    spec = {"redisStream": {"example": {"hostAddress": redis_server.address, "db": 0, "streams": ["FOO"],
                                        "metadata": {"k": "v"}}}}
    refusing = Running(spec, name="redis-stream")
    refusing.memory.fail = True
    async with refusing:
        await until(lambda: refusing.rt.not_ready() == [])
        first = (await client.xadd("FOO", {"b": "2", "a": "é"})).decode()
        for _ in range(300):  # read (so pending), refused by the bus, not acknowledged
            if (await client.xpending("FOO", "argo-events-cg"))["pending"] == 1:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.5)
    assert (await client.xpending("FOO", "argo-events-cg"))["pending"] == 1
    async with Running(spec, name="redis-stream") as running:  # restart: the pending entry is claimed again
        await until(lambda: len(running.memory.events) == 1)
        second = (await client.xadd("FOO", {"n": "3"})).decode()
        await until(lambda: len(running.memory.events) == 2)
    data = running.data()
    assert data[0] == {"stream": "FOO", "message_id": first, "values": {"a": "é", "b": "2"}, "metadata": {"k": "v"}}
    assert list(data[0]) == ["stream", "message_id", "values", "metadata"]
    assert data[1]["message_id"] == second
    assert running.memory.events[0].id == f"redis-stream:example:FOO:{first}"
    assert running.memory.events[0].type == "redisstream"
    assert (await client.xpending("FOO", "argo-events-cg"))["pending"] == 0
    await client.aclose()


async def test_unreachable_server_health_and_server_restart(tmp_path: object) -> None:
    from pathlib import Path

    server = Redis(Path(str(tmp_path)) / "late")
    spec = {"redisStream": {"s": {"hostAddress": server.address, "streams": ["a", "b"], "consumerGroup": "cg",
                                  "maxMsgCountPerRead": 5}}}
    async with Running(spec) as running:
        await until(lambda: any("s: redis" in p for p in running.rt.not_ready()))
        server.start()
        try:
            await until(lambda: running.rt.not_ready() == [], timeout=90)
            client = await _client(server)
            for i in range(12):
                await client.xadd("a" if i % 2 else "b", {"i": str(i)})
            await until(lambda: len(running.memory.events) == 12)
            await client.aclose()
            server.restart()  # no persistence: streams and group are gone; the source recreates them
            await until(lambda: running.rt.not_ready() == [], timeout=90)
            client = await _client(server)
            for _ in range(100):
                if await client.exists("a") and await client.xinfo_groups("a"):
                    break
                await asyncio.sleep(0.1)
            await client.xadd("a", {"i": "after"})
            await until(lambda: len(running.memory.events) == 13, timeout=90)
            await client.aclose()
        finally:
            server.stop()
    values = sorted(d["values"]["i"] for d in running.data())
    assert values == sorted([str(i) for i in range(12)] + ["after"])


async def test_oversize_entry_is_skipped_acknowledged_and_counted(redis_server: Redis) -> None:
    from knevents import metrics

    counter = metrics.counter("knevents_eventsource_events_rejected", "", ("eventsource", "event", "reason"))
    before = counter.labels("es", "big", "too_large")._value.get()
    client = await _client(redis_server)
    spec = {"redisStream": {"big": {"hostAddress": redis_server.address, "streams": ["S"]}}}
    async with Running(spec) as running:
        await until(lambda: running.rt.not_ready() == [])
        await client.xadd("S", {"blob": "x" * (1024 * 1024 + 1)})
        await client.xadd("S", {"ok": "1"})
        await until(lambda: len(running.memory.events) == 1)
    assert running.data()[0]["values"] == {"ok": "1"}
    assert counter.labels("es", "big", "too_large")._value.get() == before + 1
    assert (await client.xpending("S", "argo-events-cg"))["pending"] == 0  # the skipped entry is acknowledged
    await client.aclose()
