"""The redisStream event source against a real redis-server: Argo's data, XACK after acceptance, pending claimed again."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import redis.asyncio as aioredis
from knevents import events

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
            client = await _client(server)
            # not_ready() may still be [] from before the restart: the group the source creates again is the
            # sign it reconnected. An entry added before it would create the stream without the group, and the
            # group, made at `$` then, would never deliver it.
            for _ in range(900):
                if await client.exists("a") and await client.xinfo_groups("a"):
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the source did not create its group again after the restart")
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


class _Stalled:
    """A bus that never answers: the source stays inside the publish of its first batch (a crash to come)."""

    def __init__(self) -> None:
        self.calls = 0

    async def publish(self, event: events.Event) -> None:
        self.calls += 1
        await asyncio.Event().wait()

    async def publish_many(self, batch: Sequence[events.Event]) -> list[BaseException | None]:
        self.calls += 1
        await asyncio.Event().wait()
        return []


async def _pending_ids(client: aioredis.Redis, stream: str) -> list[str]:
    pending = await client.xpending_range(stream, "argo-events-cg", min="-", max="+", count=1000)
    return [p["message_id"].decode() for p in pending]


async def test_crash_with_a_read_ahead_batch_in_hand_loses_nothing(redis_server: Redis) -> None:
    client = await _client(redis_server)
    ids = [(await client.xadd("R", {"n": str(i)})).decode() for i in range(35)]
    await client.xgroup_create("R", "argo-events-cg", id="0")
    spec = {"redisStream": {"r": {"hostAddress": redis_server.address, "streams": ["R"], "maxMsgCountPerRead": 10}}}
    stalled = _Stalled()
    crashed = Running(spec, stalled)
    await crashed.__aenter__()
    for _ in range(600):  # the first batch is being published, the second read ahead
        if len(await _pending_ids(client, "R")) >= 20 and stalled.calls:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)
    assert await _pending_ids(client, "R") == ids[:20]  # one read ahead, never more
    assert crashed.task is not None
    crashed.task.cancel()  # the process ends in the middle of the publish: no XACK, no clean stop
    with contextlib.suppress(asyncio.CancelledError):
        await crashed.task
    await crashed.rt.close()
    async with Running(spec) as running:  # restart: both batches come first, from the pending list, then the rest
        await until(lambda: len(running.memory.events) == 35)
        for _ in range(300):
            if not await _pending_ids(client, "R"):
                break
            await asyncio.sleep(0.1)
    assert [d["values"]["n"] for d in running.data()] == [str(i) for i in range(35)]
    assert [e.id for e in running.memory.events] == [f"es:r:R:{i}" for i in ids]
    assert await _pending_ids(client, "R") == []
    await client.aclose()
