"""The sensor function under functions-framework, N replicas on one real JetStream KV.

Every test starts real processes (as Knative would: ``$PORT``, env) and a real
nats-server, and checks what reaches the trigger's HTTP sink.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from knevents import events
from knevents.local.natsd import NatsServer, free_port

from tests.integration.sensor_runtime import function_support as fs
from tests.integration.sensor_runtime import pipeline_support as sup


@pytest.fixture
def sink() -> Iterator[fs.Sink]:
    with fs.sink_server() as running:
        yield running


def _and_spec(sink: fs.Sink, name: str) -> str:
    return (
        sup.AND_SENSOR.replace("name: pair", f"name: {name}")
        .replace("{url}", sink.url)
        .replace("{extra}", "")
    )


def _ids(firings: list[fs.Firing]) -> list[tuple[str, ...]]:
    return [f.event_ids for f in firings]


async def test_four_replicas_share_one_and_trigger_exactly_once(
    nats_server: NatsServer, sink: fs.Sink, tmp_path: Path
) -> None:
    spec = _and_spec(sink, "four")
    with fs.replicas(spec, nats_server.url, tmp_path, count=4) as reps:
        urls = [r.url for r in reps]
        async with httpx.AsyncClient(timeout=30) as client:
            # Phase 1: 500 pairs; the two events of a pair race on two different replicas.
            pairs = [(sup.event("a", i), sup.event("b", i)) for i in range(500)]
            for i, (a, b) in enumerate(pairs):
                first, second = (a, b) if i % 2 else (b, a)
                await asyncio.gather(
                    fs.deliver(client, urls[i % 4], first), fs.deliver(client, urls[(i + 1) % 4], second)
                )
            firings = sink.snapshot()
            assert len(firings) == 500
            assert sorted(_ids(firings)) == sorted(tuple(sorted((a.id, b.id))) for a, b in pairs)
            assert all(f.body["a"] == f.body["b"] for f in firings)

            # Phase 2: 200 events at once over the 4 replicas. Argo semantics let a newer event of a
            # dependency replace a waiting one, so the count depends on the interleaving; what must
            # hold is that every firing a replica committed reached the sink once, and no event twice.
            sent = [sup.event("a" if i % 2 == 0 else "b", 1000 + i) for i in range(200)]
            gate = asyncio.Semaphore(32)

            async def one(i: int, ev: events.Event) -> httpx.Response:
                async with gate:
                    return await fs.deliver(client, urls[i % 4], ev)

            answers = await asyncio.gather(*(one(i, ev) for i, ev in enumerate(sent)))
    committed = [tuple(f["event_ids"]) for r in answers for f in r.json()["fired"]]
    burst = sink.snapshot()[500:]
    assert committed and sorted(committed) == sorted(_ids(burst))
    assert max(Counter(_ids(burst)).values()) == 1
    used = list(itertools.chain.from_iterable(_ids(burst)))
    assert len(used) == len(set(used)) == 2 * len(burst)
    by_id = {ev.id: ev.subject for ev in sent}
    assert all(sorted(by_id[i] for i in ids) == ["a", "b"] for ids in _ids(burst))


async def test_replica_crash_after_the_satisfying_write_fires_once_after_redelivery(
    nats_server: NatsServer, sink: fs.Sink, tmp_path: Path
) -> None:
    spec = _and_spec(sink, "crash")
    crashy = fs.start_replica(spec, nats_server.url, tmp_path, env={"KNEVENTS_FAULT": "crash-after-satisfy"})
    healthy = fs.start_replica(spec, nats_server.url, tmp_path)
    try:
        fs.wait_ready([crashy, healthy])
        a, b = sup.event("a", 1), sup.event("b", 2)
        async with httpx.AsyncClient(timeout=30) as client:
            assert (await fs.deliver(client, crashy.url, a)).status_code == 200
            msg = events.to_binary(b)
            with pytest.raises(httpx.TransportError):  # the replica dies mid-request
                await client.post(crashy.url, headers=dict(msg.headers), content=msg.body)
            assert sink.snapshot() == []
            answer = await fs.deliver(client, healthy.url, b)  # the broker's redelivery
            assert answer.status_code == 200 and answer.json()["fired"][0]["trigger"] == "both"
            await fs.deliver(client, healthy.url, b)
            await fs.deliver(client, healthy.url, sup.event("a", 3))
        assert _ids(sink.snapshot()) == [tuple(sorted((a.id, b.id)))]
        assert sink.snapshot()[0].body == {"a": "1", "b": "2"}
    finally:
        crashy.stop()
        healthy.stop()


async def test_same_event_id_twice_fires_once_across_replicas(
    nats_server: NatsServer, sink: fs.Sink, tmp_path: Path
) -> None:
    spec = sup.SINGLE_SENSOR.replace("{url}", sink.url).replace("{extra}", "")
    with fs.replicas(spec, nats_server.url, tmp_path, count=2) as reps:
        ev = sup.event("a", 5)
        async with httpx.AsyncClient(timeout=30) as client:
            await fs.deliver(client, reps[0].url, ev)
            second = await fs.deliver(client, reps[1].url, ev)
    assert second.json()["duplicate"] is True
    assert _ids(sink.snapshot()) == [(ev.id,)]


async def test_nats_restart_between_the_two_events_of_a_pair(
    nats_server: NatsServer, sink: fs.Sink, tmp_path: Path
) -> None:
    with fs.replicas(_and_spec(sink, "restart"), nats_server.url, tmp_path) as reps:
        a, b = sup.event("a", 1), sup.event("b", 2)
        async with httpx.AsyncClient(timeout=30) as client:
            await fs.deliver(client, reps[0].url, a)
            nats_server.restart()
            await fs.deliver(client, reps[0].url, b)
    assert [f.body for f in sink.snapshot()] == [{"a": "1", "b": "2"}]


@pytest.mark.parametrize("asgi", [False, True], ids=["wsgi", "asgi"])
async def test_function_contract_binary_structured_invalid_health_metrics(
    nats_server: NatsServer, sink: fs.Sink, tmp_path: Path, asgi: bool
) -> None:
    spec = sup.SINGLE_SENSOR.replace("{url}", sink.url).replace("{extra}", "")
    with fs.replicas(spec, nats_server.url, tmp_path, asgi=asgi) as reps:
        url = reps[0].url
        async with httpx.AsyncClient(timeout=30) as client:
            binary = events.to_binary(sup.event("a", 1))
            r = await client.post(url, headers=dict(binary.headers), content=binary.body)
            assert r.status_code == 200, r.text
            structured = events.to_structured(sup.event("a", 2))
            r = await client.post(url, headers=dict(structured.headers), content=structured.body)
            assert r.status_code == 200, r.text
            r = await client.post(url, headers={"content-type": "application/json"}, content=b'{"x":1}')
            assert r.status_code == 400 and "ce-specversion" in r.text
            r = await client.post(url, headers={"content-type": "application/cloudevents+json"}, content=b"{")
            assert r.status_code == 400 and "not valid JSON" in r.text
            assert (await client.get(f"{url}health")).status_code == 200
            metrics = (await client.get(f"{url}metrics")).text
    assert 'knevents_sensor_events_received_total{sensor="single"} 2.0' in metrics
    assert 'knevents_sensor_triggers_fired_total{sensor="single",trigger="one"} 2.0' in metrics
    assert sorted(f.body["a"] for f in sink.snapshot()) == ["1", "2"]


@pytest.mark.parametrize("asgi", [False, True], ids=["wsgi", "asgi"])
async def test_nats_down_is_a_5xx_and_a_bad_spec_is_a_clear_500(tmp_path: Path, asgi: bool) -> None:
    spec = sup.SINGLE_SENSOR.replace("{url}", "http://127.0.0.1:9/").replace("{extra}", "")
    dead_nats = f"nats://127.0.0.1:{free_port()}"
    with fs.replicas(spec, dead_nats, tmp_path, asgi=asgi) as reps:
        msg = events.to_binary(sup.event("a", 1))
        r = httpx.post(reps[0].url, headers=dict(msg.headers), content=msg.body, timeout=30)
        assert r.status_code == 503 and "unreachable" in r.text
    bad = fs.start_replica("kind: Sensor\nspec: {}\n", None, tmp_path, asgi=asgi)
    try:
        for _ in range(200):
            try:
                r = httpx.get(f"{bad.url}health", timeout=1)
                break
            except httpx.HTTPError:
                await asyncio.sleep(0.05)
        assert r.status_code == 503
        r = httpx.post(bad.url, content=b"{}", timeout=5)
        assert r.status_code == 500 and "misconfigured" in r.text and "Traceback" not in r.text
    finally:
        bad.stop()
