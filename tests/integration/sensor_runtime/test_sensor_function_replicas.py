"""The sensor function under functions-framework: N replicas on one real JetStream KV.

One rig for the module (starting processes is the slow part): a nats-server,
a trigger sink process, four WSGI replicas and one ASGI replica of the same
sensor, started as Knative would (``$PORT``, env). Each test uses its own
trigger (its own dependencies and sink path), so tests do not share state.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from knevents import events
from knevents.local.natsd import NatsServer

from tests.integration.sensor_runtime import function_support as fs
from tests.integration.sensor_runtime import pipeline_support as sup

_AND = """
    - template:
        name: {name}
        conditions: "{name}-a && {name}-b"
        http:
          url: {sink}/{name}
          method: POST
          payload:
            - {{src: {{dependencyName: {name}-a, dataKey: body.n}}, dest: a}}
            - {{src: {{dependencyName: {name}-b, dataKey: body.n}}, dest: b}}"""

SPEC = """
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {{name: rig, namespace: test}}
spec:
  dependencies:
{deps}
    - name: one
      eventSourceName: hooks
      eventName: one
      filters:
        data:
          - {{path: body.n, type: number, comparator: ">=", value: ["0"]}}
  triggers:
{ands}
    - template:
        name: one
        conditions: one
        http:
          url: {sink}/one
          method: POST
          payload:
            - {{src: {{dependencyName: one, dataKey: body.n}}, dest: a}}
"""
PAIRS = ("four", "crash", "restart", "down")


def rig_spec(sink: str) -> str:
    deps = "\n".join(
        f"    - {{name: {p}-{x}, eventSourceName: hooks, eventName: {p}-{x}}}" for p in PAIRS for x in "ab"
    )
    ands = "\n".join(_AND.format(name=p, sink=sink).lstrip("\n") for p in PAIRS)
    return SPEC.format(deps=deps, ands=ands, sink=sink)


@dataclass
class Rig:
    nats: NatsServer
    sink: fs.Sink
    wsgi: list[fs.Replica]
    asgi: fs.Replica
    crashy: fs.Replica
    """A WSGI replica with ``KNEVENTS_FAULT=crash-after-satisfy``."""
    spec: str
    logs: Path


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    base = tmp_path_factory.mktemp("rig")
    nats = NatsServer(store_dir=base / "nats").start()
    try:
        with fs.sink_server(base) as sink:
            spec = rig_spec(sink.url.rsplit("/", 1)[0])
            started = [fs.start_replica(spec, nats.url, base) for _ in range(4)]
            started.append(fs.start_replica(spec, nats.url, base, asgi=True))
            started.append(
                fs.start_replica(spec, nats.url, base, env={"KNEVENTS_FAULT": "crash-after-satisfy"})
            )
            try:
                fs.wait_ready(started)
                yield Rig(nats, sink, started[:4], started[4], started[5], spec, base)
            finally:
                fs.stop_all(started)
    finally:
        nats.close()


def ev(pair: str, dep: str, n: int) -> events.Event:
    return sup.event(f"{pair}-{dep}", n)


def _ids(firings: list[fs.Firing]) -> list[tuple[str, ...]]:
    return [f.event_ids for f in firings]


async def test_four_replicas_share_one_and_trigger_exactly_once(rig: Rig) -> None:
    urls = [r.url for r in rig.wsgi]
    async with httpx.AsyncClient(timeout=30) as client:
        # Phase 1: 500 pairs; the two events of a pair race on two different replicas.
        pairs = [(ev("four", "a", i), ev("four", "b", i)) for i in range(500)]
        for i, (a, b) in enumerate(pairs):
            first, second = (a, b) if i % 2 else (b, a)
            await asyncio.gather(
                fs.deliver(client, urls[i % 4], first), fs.deliver(client, urls[(i + 1) % 4], second)
            )
        firings = rig.sink.snapshot("/four")
        assert len(firings) == 500
        assert sorted(_ids(firings)) == sorted(tuple(sorted((a.id, b.id))) for a, b in pairs)
        assert all(f.body["a"] == f.body["b"] for f in firings)

        # Phase 2: 200 events at once over the 4 replicas. Argo semantics let a newer event of a
        # dependency replace a waiting one, so the count depends on the interleaving; what must
        # hold is that every firing a replica committed reached the sink once, and no event twice.
        sent = [ev("four", "a" if i % 2 == 0 else "b", 1000 + i) for i in range(200)]
        gate = asyncio.Semaphore(32)

        async def one(i: int, event: events.Event) -> httpx.Response:
            async with gate:
                return await fs.deliver(client, urls[i % 4], event)

        answers = await asyncio.gather(*(one(i, e) for i, e in enumerate(sent)))
    committed = [tuple(f["event_ids"]) for r in answers for f in r.json()["fired"]]
    burst = rig.sink.snapshot("/four")[500:]
    assert committed and sorted(committed) == sorted(_ids(burst))
    assert max(Counter(_ids(burst)).values()) == 1
    used = list(itertools.chain.from_iterable(_ids(burst)))
    assert len(used) == len(set(used)) == 2 * len(burst)
    subject = {e.id: e.subject for e in sent}
    assert all(sorted(subject[i] for i in ids) == ["four-a", "four-b"] for ids in _ids(burst))


async def test_replica_crash_after_the_satisfying_write_fires_once_after_redelivery(rig: Rig) -> None:
    crashy = rig.crashy
    a, b = ev("crash", "a", 1), ev("crash", "b", 2)
    healthy = rig.wsgi[0].url
    async with httpx.AsyncClient(timeout=30) as client:
        assert (await fs.deliver(client, crashy.url, a)).status_code == 200
        msg = events.to_binary(b)
        with pytest.raises(httpx.TransportError):  # the replica dies mid-request
            await client.post(crashy.url, headers=dict(msg.headers), content=msg.body)
        assert rig.sink.snapshot("/crash") == []
        answer = await fs.deliver(client, healthy, b)  # the broker's redelivery, to another replica
        assert answer.status_code == 200 and answer.json()["fired"][0]["trigger"] == "crash"
        await fs.deliver(client, rig.wsgi[1].url, b)  # once more: nothing left to do
        await fs.deliver(client, healthy, ev("crash", "a", 3))  # b was not saved a second time
    assert _ids(rig.sink.snapshot("/crash")) == [tuple(sorted((a.id, b.id)))]
    assert rig.sink.snapshot("/crash")[0].body == {"a": "1", "b": "2"}


async def test_same_event_id_twice_fires_once_across_replicas(rig: Rig) -> None:
    event = sup.event("one", 5)
    async with httpx.AsyncClient(timeout=30) as client:
        await fs.deliver(client, rig.wsgi[0].url, event)
        second = await fs.deliver(client, rig.wsgi[1].url, event)
        third = await fs.deliver(client, rig.asgi.url, event)
    assert second.json()["duplicate"] is True and third.json()["duplicate"] is True
    assert [f.event_ids for f in rig.sink.snapshot("/one") if event.id in f.event_ids] == [(event.id,)]


async def test_nats_restart_between_the_two_events_of_a_pair(rig: Rig) -> None:
    a, b = ev("restart", "a", 1), ev("restart", "b", 2)
    async with httpx.AsyncClient(timeout=30) as client:
        await fs.deliver(client, rig.wsgi[2].url, a)
        rig.nats.restart()
        await fs.deliver(client, rig.wsgi[3].url, b)  # retried like a broker while NATS comes back
    assert [f.body for f in rig.sink.snapshot("/restart")] == [{"a": "1", "b": "2"}]


@pytest.mark.parametrize("target", ["wsgi", "asgi"])
async def test_function_contract_binary_structured_invalid_health_metrics(rig: Rig, target: str) -> None:
    url = rig.asgi.url if target == "asgi" else rig.wsgi[0].url
    base = 100 if target == "asgi" else 200
    async with httpx.AsyncClient(timeout=30) as client:
        binary = events.to_binary(sup.event("one", base + 1))
        r = await client.post(url, headers=dict(binary.headers), content=binary.body)
        assert r.status_code == 200, r.text
        structured = events.to_structured(sup.event("one", base + 2))
        r = await client.post(url, headers=dict(structured.headers), content=structured.body)
        assert r.status_code == 200, r.text
        filtered = events.to_binary(sup.event("one", -1))
        r = await client.post(url, headers=dict(filtered.headers), content=filtered.body)
        assert r.status_code == 200 and r.json()["filtered"] == ["one"]
        r = await client.post(url, headers={"content-type": "application/json"}, content=b'{"x":1}')
        assert r.status_code == 400 and "ce-specversion" in r.text
        r = await client.post(url, headers={"content-type": "application/cloudevents+json"}, content=b"{")
        assert r.status_code == 400 and "not valid JSON" in r.text
        assert (await client.get(f"{url}health")).status_code == 200
        metrics = (await client.get(f"{url}metrics")).text
    assert 'knevents_sensor_events_received_total{sensor="rig"}' in metrics
    assert 'knevents_sensor_triggers_fired_total{sensor="rig",trigger="one"}' in metrics
    assert 'knevents_sensor_events_filtered_total{dependency="one",sensor="rig"}' in metrics
    fired = {f.body["a"] for f in rig.sink.snapshot("/one")}
    assert {str(base + 1), str(base + 2)} <= fired and "-1" not in fired


async def test_nats_down_is_a_5xx_then_the_pair_completes_when_it_is_back(rig: Rig) -> None:
    a, b = ev("down", "a", 1), ev("down", "b", 2)
    async with httpx.AsyncClient(timeout=30) as client:
        await fs.deliver(client, rig.wsgi[0].url, a)
        rig.nats.stop()
        try:
            for url in (rig.wsgi[1].url, rig.asgi.url):
                msg = events.to_binary(b)
                r = await client.post(url, headers=dict(msg.headers), content=msg.body)
                assert r.status_code == 503 and "NATS" in r.text, r.text
                assert "Traceback" not in r.text
        finally:
            rig.nats.start()
        answer = await fs.deliver(client, rig.asgi.url, b)
    assert json.loads(answer.text)["fired"][0]["trigger"] == "down"
    assert [f.body for f in rig.sink.snapshot("/down")] == [{"a": "1", "b": "2"}]
