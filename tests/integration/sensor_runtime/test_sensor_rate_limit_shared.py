"""rateLimit holds for the whole sensor: slots reserved in the sensor's KV on a real nats-server.

Two reservers on two connections stand for two processes (``--workers 2``, two
Knative replicas). Assertions are on the reserved slot values; the one end-to-end
check bounds the elapsed time from below only (a slow machine can only add time).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from knevents import state, triggers
from knevents.local.natsd import NatsServer, free_port
from knevents.runtime import sensor_rate
from knevents.runtime.sensor import SensorRuntime
from knevents.secrets import SecretResolver
from knevents.settings import NatsSettings, Settings
from knevents.state.jetstream import JetStreamStore
from knevents.triggers import ratelimit

from tests.integration.sensor_runtime import pipeline_support as sup

BUCKET = "knevents_test_rated"
SETTINGS = Settings(nats=NatsSettings(connect_timeout=5.0, request_timeout=15.0))


@pytest.fixture
async def stores(nats_server: NatsServer) -> AsyncIterator[list[JetStreamStore]]:
    """Two stores, each on its own connection: what two processes of a sensor hold."""
    opened = [await JetStreamStore.connect(nats_server.url, settings=SETTINGS) for _ in range(2)]
    try:
        yield opened
    finally:
        for store in opened:
            await store.close()


def _opener(store: state.StateStore) -> Callable[[], Awaitable[state.Bucket]]:
    return lambda: store.bucket(BUCKET)


async def test_two_processes_get_distinct_slots_spaced_by_the_interval(stores: list[JetStreamStore]) -> None:
    reservers = [sensor_rate.RateSlots(_opener(store)) for store in stores]
    interval = 0.05
    slots = await asyncio.gather(*(reservers[i % 2].slot("deploy", interval) for i in range(30)))
    ordered = sorted(slots)
    assert len(set(slots)) == 30  # none lost, none shared
    # wall-clock floats near 1.8e9 s carry ~2.4e-7 s of rounding
    assert all(b - a >= interval - 1e-6 for a, b in itertools.pairwise(ordered))
    stored = await (await stores[0].bucket(BUCKET)).get(sensor_rate.key("deploy"))
    assert stored is not None and float(stored.value) == ordered[-1]


async def test_a_lost_compare_and_set_is_retried_after_the_winner(stores: list[JetStreamStore]) -> None:
    other = sensor_rate.RateSlots(_opener(stores[1]), clock=lambda: 1000.0)
    real = await stores[0].bucket(BUCKET)
    won: list[float] = []

    class Interleaved:
        """The real bucket; the other process reserves right after this one's first read."""

        async def get(self, key: str) -> state.Entry | None:
            entry = await real.get(key)
            if not won:
                won.append(await other.slot("t", 2.0))
            return entry

        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

    async def interleaved() -> state.Bucket:
        return Interleaved()  # type: ignore[return-value]  # delegates the rest of the protocol

    mine = sensor_rate.RateSlots(interleaved, clock=lambda: 1000.0)
    assert await mine.slot("t", 2.0) == 1002.0
    assert won == [1000.0] and mine.conflicts == 1


async def test_a_rate_change_counts_from_the_latest_slot(stores: list[JetStreamStore]) -> None:
    reservers = [sensor_rate.RateSlots(_opener(store), clock=lambda: 500.0) for store in stores]
    assert await reservers[0].slot("t", 3600.0) == 500.0
    assert await reservers[1].slot("t", 3600.0) == 4100.0
    # the spec now says 2 per second: the next slot is half a second after the latest, not an hour
    assert await reservers[0].slot("t", 0.5) == 4100.5
    assert await reservers[1].slot("other", 0.5) == 500.0  # each trigger has its own key


async def test_an_unreadable_slot_is_overwritten(stores: list[JetStreamStore]) -> None:
    bucket = await stores[0].bucket(BUCKET)
    await bucket.put(sensor_rate.key("t"), b"not a time")
    assert await sensor_rate.RateSlots(_opener(stores[1]), clock=lambda: 7.0).slot("t", 1.0) == 7.0


async def test_unreachable_kv_falls_back_to_the_process_limiter_and_logs_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    ratelimit.reset()
    monkeypatch.setattr(ratelimit, "RETRY_SHARED", 0.0)  # ask the dead store every time: still one warning
    settings = Settings(nats=NatsSettings(url=f"nats://127.0.0.1:{free_port()}", connect_timeout=0.5))
    store = JetStreamStore(settings=settings)  # nothing listens there
    spec = sup.sensor(sup.SINGLE_SENSOR, extra="rateLimit: {unit: Second, requestsPerUnit: 1}")
    limit = spec.spec.triggers[0].rate_limit
    reserve = sensor_rate.RateSlots(_opener(store)).reserve
    with caplog.at_level(logging.WARNING, logger=ratelimit.logger.name):
        waits = [await ratelimit.acquire(("single", "one"), limit, reserve) for _ in range(2)]
    await store.close()
    assert waits[0] == 0.0  # not blocked, not raised
    local = ratelimit.limiter_for(("single", "one"), limit)
    assert local is not None and local.reserve() > 0.5  # the process' own limiter handed out the slots
    warned = [r.getMessage() for r in caplog.records if r.name == ratelimit.logger.name]
    assert len(warned) == 1 and "unreachable" in warned[0], warned


RATED_SENSOR = """
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {name: rated, namespace: test}
spec:
  dependencies:
    - {name: a, eventSourceName: hooks, eventName: a}
  triggers:
    - template: {name: note, log: {}}
      rateLimit: {unit: Second, requestsPerUnit: 10}
"""


async def test_two_sensor_replicas_fire_a_rate_limited_trigger_at_the_sensor_rate(
    stores: list[JetStreamStore],
) -> None:
    ratelimit.reset()
    fired: list[float] = []

    async def fire(resolved: object, ctx: triggers.TriggerContext) -> triggers.TriggerResult:
        result = await triggers.fire(resolved, ctx)  # type: ignore[arg-type]  # the real one, waits included
        fired.append(time.time())
        return result

    sensor = sup.sensor(RATED_SENSOR)
    replicas = [SensorRuntime(sensor, store, settings=SETTINGS, secrets=SecretResolver(env={}), fire=fire)
                for store in stores]
    count, interval = 8, 0.1
    started = time.time()
    outcomes = await asyncio.gather(*(replicas[i % 2].process(sup.event("a", i)) for i in range(count)))
    assert sum(len(o.fired) for o in outcomes) == count == len(fired)
    # Per process, two replicas would be done after (count/2 - 1) intervals; shared, the last slot is
    # (count - 1) intervals after the first, and nothing fires before its slot.
    assert max(fired) - started >= (count - 1) * interval - 0.02
    # In one test process both replicas would share the process' limiter too: the slots must be in KV
    stored = await (await stores[0].bucket(state.bucket_name("test", "rated"))).get(sensor_rate.key("note"))
    assert stored is not None and float(stored.value) - started >= (count - 1) * interval - 0.02
    local = ratelimit.limiter_for(("rated", "note"), sensor.spec.triggers[0].rate_limit)
    assert local is not None and local.reserve() == 0.0  # a fresh limiter: the process' one was never used
