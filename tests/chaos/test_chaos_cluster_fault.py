"""Cluster fault: a 3-node NATS cluster on loopback, KV buckets with 3 replicas, the KV leader killed mid-run.

Twice: the sensor runtime alone, and `knevents run --nats-url <the three>` with one worker and with two
(webhook pairs, an at-most-once and an atLeastOnce ``a && b`` trigger, the bus stream made R3 beforehand).

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
from typing import Any

import httpx
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


# --- knevents run on the cluster, with one worker and with two ------------------------------------------------

RUN_PAIRS = 30
KILL_AFTER = 10
"""Pairs fired before the leader of the pairs sensor's state bucket is killed."""

async def _replicated_bus(servers: list[NatsServer]) -> None:
    """The bus stream with 3 replicas, as an operator sets up a clustered EventBus (the runner keeps it)."""
    import nats
    from knevents import bus

    nc = await nats.connect([s.url for s in servers])
    try:
        for attempt in range(120):  # the cluster elects its meta leader first
            try:
                await nc.jetstream(timeout=1.0).add_stream(name=bus.stream_name("default"), subjects=["default.>"],
                                                num_replicas=3)
                return
            except (nats.errors.TimeoutError, nats.js.errors.ServiceUnavailableError):
                if attempt == 119:
                    raise
                await asyncio.sleep(0.25)
    finally:
        await nc.close()


async def _pairs_through_the_runner(servers: list[NatsServer], tmp: Path, workers: int) -> tuple[list[Any], str]:
    from tests.chaos import chaos_support as cs
    from tests.e2e import harness

    await _replicated_bus(servers)
    with cs.sink_server(tmp) as sink:
        port, folder = free_port(), tmp / "m"
        folder.mkdir()
        (folder / "all.yaml").write_text(cs.pair_manifests(port, f"http://127.0.0.1:{sink.port}"))
        env = harness.knevents_env(tmp, {"KNEVENTS_STATE_REPLICAS": "3"})
        runner = harness.RunnerProcess([folder], tmp / "state", env, [
            "--nats-url", ",".join(s.url for s in servers), "--workers", str(workers), "--retry-backoff", "0.05",
            "--max-deliveries", "1000"]).start()
        if workers > 1:
            runner.wait_for(lambda r: r.get("worker") == 1 and "pid" in r, "worker 1 ready", timeout=60)
        tally, change = cs.Tally(), ""
        try:
            async with httpx.AsyncClient(timeout=10.0, limits=httpx.Limits(max_keepalive_connections=0)) as client:
                for n in range(RUN_PAIRS):
                    await asyncio.gather(cs.post_accepted(client, f"http://127.0.0.1:{port}/a", n, tally),
                                         cs.post_accepted(client, f"http://127.0.0.1:{port}/b", n, tally))
                    await _fired(sink, n)
                    if n == KILL_AFTER:
                        stream = "KV_" + state.bucket_name("chaos", "pairs")
                        leader = await _leader(servers, stream)
                        next(s for s in servers if s.name == leader).kill()
                        change = leader
            change += "->" + await _leader(servers, "KV_" + state.bucket_name("chaos", "pairs"))
            assert runner.stop() == 0
            return sink.poll(), change
        finally:
            runner.kill()


async def _fired(sink: Any, n: int, timeout: float = 90.0) -> None:
    from tests.chaos import chaos_support as cs

    deadline = asyncio.get_running_loop().time() + timeout
    while not any(r.path == "/sure" and n in cs.pair_keys(r) for r in sink.poll()):
        assert asyncio.get_running_loop().time() < deadline, f"pair {n} never fired"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("workers", [1, 2])
def test_the_runner_fires_every_pair_once_when_the_kv_leader_dies(
    cluster: list[NatsServer], tmp_path: Path, workers: int
) -> None:
    records, change = asyncio.run(_pairs_through_the_runner(cluster, tmp_path, workers))
    old, new = change.split("->")
    assert old != new, "a new leader must have been elected"
    once = Counter(r.event_ids for r in records if r.path == "/once")
    sure = Counter(r.event_ids for r in records if r.path == "/sure")
    print(f"\ncluster fault, runner with {workers} worker(s): leader {change}; once {len(once)} sets "
          f"({sum(n - 1 for n in once.values())} twice), sure {len(sure)} sets ({sum(n - 1 for n in sure.values())} again)")
    for sets in (once, sure):
        used = Counter(i for ids in sets for i in ids)
        assert all(n == 1 for n in used.values()), f"an event in two fired sets: {used.most_common(3)}"
    assert all(n == 1 for n in once.values()), f"at-most-once fired a set twice: {once.most_common(3)}"
    assert RUN_PAIRS - 1 <= len(once) <= RUN_PAIRS, "at most the pair in flight at the kill is lost at most once"
    assert len(sure) == RUN_PAIRS and sum(sure.values()) <= RUN_PAIRS + 1
