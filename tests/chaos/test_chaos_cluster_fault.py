"""Cluster fault: a 3-node NATS cluster on loopback, KV buckets with 3 replicas, the KV leader killed mid-run.

AND correlation must carry on after the leader election, and nothing may be
lost or fired twice. The sensor runtime is the real one on the real JetStream
store; only the trigger execution is injected (it records the firing), because
this test is about the state, not about HTTP.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from knevents import events, state, triggers
from knevents.local.natsd import NatsServer, free_port
from knevents.runtime.sensor import SensorRuntime
from knevents.secrets import SecretResolver
from knevents.sensors import engine
from knevents.settings import NatsSettings, Settings, StateSettings
from knevents.spec import parse_sensor
from knevents.state.jetstream import JetStreamStore

SENSOR = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Sensor",
    "metadata": {"name": "pairs", "namespace": "chaos"},
    "spec": {
        "dependencies": [
            {"name": "a", "eventSourceName": "src", "eventName": "a"},
            {"name": "b", "eventSourceName": "src", "eventName": "b"},
        ],
        "triggers": [
            {
                "template": {
                    "name": "both",
                    "conditions": "a && b",
                    "log": {},
                }
            }
        ],
    },
}
PAIRS = 60


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[NatsServer]]:
    ports = [free_port() for _ in range(3)]
    routes = [f"nats://127.0.0.1:{p}" for p in ports]
    servers = [
        NatsServer(
            store_dir=tmp_path / f"n{i}", name=f"n{i}", cluster_name="knevents-chaos",
            cluster_port=ports[i], cluster_routes=routes,
        )
        for i in range(3)
    ]
    for server in servers:
        server.start()
    try:
        yield servers
    finally:
        for server in servers:
            server.close()


def _event(kind: str, pair: int) -> events.Event:
    return events.new_event(source="src", subject=kind, type="webhook", data={"pair": pair},
                            id=f"{kind}-{pair}")


async def _deliver(runtime: SensorRuntime, event: events.Event) -> int:
    """Deliver like a broker does: redeliver with backoff until the sensor answers 2xx."""
    for attempt in range(200):
        try:
            outcome = await runtime.process(event)
        except Exception:  # a temporary failure is what the broker's retry is for
            await asyncio.sleep(min(0.05 * (attempt + 1), 0.5))
            continue
        if outcome.status < 300:
            return attempt + 1
        await asyncio.sleep(min(0.05 * (attempt + 1), 0.5))
    raise AssertionError(f"event {event.id} was never accepted")


async def _leader(servers: list[NatsServer], stream: str) -> str:
    import nats

    nc = await nats.connect([s.url for s in servers if s.running])
    try:
        info = await nc.jetstream().stream_info(stream)
        assert info.cluster is not None and info.cluster.leader
        return str(info.cluster.leader)
    finally:
        await nc.close()


def test_and_correlation_survives_the_kv_leader_being_killed(cluster: list[NatsServer]) -> None:
    fired: list[tuple[str, ...]] = []

    async def record(resolved: engine.Resolved, ctx: triggers.TriggerContext) -> triggers.TriggerResult:
        fired.append(tuple(sorted(e.id for e in resolved.events.values())))
        return triggers.TriggerResult(trigger=resolved.trigger, kind=resolved.kind, detail="recorded")

    settings = Settings(
        nats=NatsSettings(url=",".join(s.url for s in cluster), connect_timeout=2.0, request_timeout=2.0),
        state=StateSettings(replicas=3),
    )

    async def scenario() -> tuple[str, int]:
        store = await JetStreamStore.connect(settings.nats.url, settings=settings)
        runtime = SensorRuntime(parse_sensor(SENSOR), store, settings=settings,
                                secrets=SecretResolver(env={}), fire=record)
        try:
            for pair in range(PAIRS // 2):
                await _deliver(runtime, _event("a", pair))
                await _deliver(runtime, _event("b", pair))
            # One dependency of the next pair is saved, then the leader of the state bucket dies.
            half = PAIRS // 2
            await _deliver(runtime, _event("a", half))
            bucket_stream = "KV_" + state.bucket_name("chaos", "pairs")
            leader = await _leader(cluster, bucket_stream)
            next(s for s in cluster if s.name == leader).kill()
            retries = await _deliver(runtime, _event("b", half))
            for pair in range(half + 1, PAIRS):
                await _deliver(runtime, _event("a", pair))
                await _deliver(runtime, _event("b", pair))
            new_leader = await _leader(cluster, bucket_stream)
            return f"{leader}->{new_leader}", retries
        finally:
            await store.close()

    change, _ = asyncio.run(scenario())
    leaders = change.split("->")
    assert leaders[0] != leaders[1], "a new leader must have been elected"
    counts = Counter(fired)
    assert len(counts) == PAIRS, f"lost firings: expected {PAIRS}, got {len(counts)}"
    assert all(n == 1 for n in counts.values()), f"fired twice: {[k for k, n in counts.items() if n > 1]}"
    assert set(counts) == {(f"a-{i}", f"b-{i}") for i in range(PAIRS)}
