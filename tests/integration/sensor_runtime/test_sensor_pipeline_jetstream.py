"""The pipeline on a real JetStream KV, in process: concurrent events batched per trigger, two replicas."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from collections.abc import AsyncIterator

from knevents.local.natsd import NatsServer
from knevents.runtime.sensor import SensorRuntime
from knevents.secrets import SecretResolver
from knevents.settings import Settings
from knevents.state.jetstream import JetStreamStore

from tests.integration.sensor_runtime import pipeline_support as sup


@contextlib.asynccontextmanager
async def _two_replicas(url: str, template: str, fire: sup.Recorder) -> AsyncIterator[list[SensorRuntime]]:
    """Two runtimes of one sensor, each on its own connection to the same KV (two replicas)."""
    stores = [await JetStreamStore.connect(url) for _ in range(2)]
    sensor = sup.sensor(template)
    try:
        yield [SensorRuntime(sensor, store, settings=Settings(), secrets=SecretResolver(env={}), fire=fire)
               for store in stores]
    finally:
        for store in stores:
            await store.close()


async def test_concurrent_and_events_on_two_replicas_fire_each_satisfied_set_once(
    nats_server: NatsServer,
) -> None:
    fire = sup.Recorder()
    async with _two_replicas(nats_server.url, sup.AND_SENSOR, fire) as replicas:
        sent = [sup.event("a" if i % 2 == 0 else "b", i) for i in range(200)]
        gate = asyncio.Semaphore(40)

        async def one(i: int) -> list[tuple[str, ...]]:
            async with gate:
                out = await replicas[i % 2].process(sent[i])
            return [f.event_ids for f in out.fired]

        committed = list(itertools.chain.from_iterable(await asyncio.gather(*(one(i) for i in range(200)))))
        fired = [tuple(sorted(e.id for e in r.events.values())) for r, _ in fire.calls]
        assert committed and sorted(committed) == sorted(fired)
        assert max(Counter(fired).values()) == 1
        used = list(itertools.chain.from_iterable(fired))
        assert len(used) == len(set(used)) == 2 * len(fired)
        subject = {e.id: e.subject for e in sent}
        assert all(sorted(subject[i] for i in ids) == ["a", "b"] for ids in fired)
        # and sequentially, afterwards, every pair fires exactly once
        before = len(fire.calls)
        for i in range(20):
            await replicas[i % 2].process(sup.event("a", 1000 + i))
            await replicas[(i + 1) % 2].process(sup.event("b", 1000 + i))
        assert len(fire.calls) - before == 20  # a waiting leftover of the burst is replaced or used


async def test_one_event_at_two_replicas_at_once_fires_once_and_a_redelivery_is_a_duplicate(
    nats_server: NatsServer,
) -> None:
    # a first delivery claims the event's dedupe entry in one create; whoever loses the create reads it
    fire = sup.Recorder()
    async with _two_replicas(nats_server.url, sup.SINGLE_SENSOR, fire) as replicas:
        sent = [sup.event("a", i) for i in range(40)]
        outcomes = await asyncio.gather(*(r.process(e) for e in sent for r in replicas))
        assert sorted(r.events["a"].id for r, _ in fire.calls) == sorted(e.id for e in sent)
        assert sum(len(o.fired) for o in outcomes) == len(sent)
        again = [await replicas[i % 2].process(e) for i, e in enumerate(sent)]
        assert all(o.duplicate for o in again) and len(fire.calls) == len(sent)
