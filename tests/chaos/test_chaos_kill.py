"""Kill test: 5,000 webhook events through the whole local pipeline while sensor replicas are SIGKILLed.

webhook function (process) → JetStream bus → the runner's dispatcher (durable
consumer, ack after 2xx, nak with backoff) → two sensor function replicas
(functions-framework processes sharing one JetStream KV) → HTTP trigger → sink.

Faults: a sensor replica is SIGKILLed at least five times while events flow
(and started again at once on the same port, as Knative starts a new pod), and
nats-server is restarted once (same port and store). The sender behaves like a
real webhook caller: it resends on 5xx or a connection error, and every resend
is a new webhook delivery with a new event id, so the sink counts *payload
keys*; redeliveries of the same event are recognised by the trigger's
idempotency key (``Knevents-Event-Ids``).

Asserted: every key reaches the sink; every request carries its event id; the
consumer ends with nothing pending or unacked and nothing was dead-lettered;
redelivery duplicates stay under the bound explained at ``duplicate_bound``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx
from knevents import bus, events, web
from knevents.local import console as console_mod
from knevents.local import dispatcher, streams
from knevents.local.natsd import NatsServer
from knevents.settings import NatsSettings

from tests.chaos import chaos_support as cs

EVENTS = 5000
REPLICAS = 2
KILL_AT = (500, 1200, 1900, 2600, 3300, 4000)
"""Keys seen at the sink before each SIGKILL (replicas taken in turn): six kills spread over the run."""
NATS_RESTART_AT = 2250
"""Keys seen at the sink before nats-server is restarted (between two kills)."""
CONCURRENCY = 16
"""Events the dispatcher has in flight at once, over all replicas (its default)."""
BUS = "default"
DEADLINE = 240.0
"""Seconds the whole run may take before the test gives up with a diagnosis (it takes far less)."""

SOURCE = """
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata: {name: hooks, namespace: chaos}
spec:
  webhook:
    load: {port: "12000", endpoint: /load, method: POST}
"""

SENSOR = """
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {name: chaos, namespace: chaos}
spec:
  dependencies:
    - {name: load, eventSourceName: hooks, eventName: load}
  triggers:
    - atLeastOnce: true
      template:
        name: sink
        http:
          url: SINK_URL
          method: POST
          payload:
            - {src: {dependencyName: load, dataKey: body.n}, dest: n}
"""


def duplicate_bound(kills: int, nats_restarts: int) -> int:
    """How many redelivered-and-fired-again requests the sink may see.

    A replica killed after its trigger's HTTP call reached the sink but before it
    marked the event done in KV (and before the dispatcher acked) makes the
    redelivered event fire again: at most one duplicate per event in flight on
    that replica, and the dispatcher has at most ``CONCURRENCY`` events in
    flight over all replicas. A nats-server restart can likewise lose the
    "done" mark or the ack of every event in flight, so it counts as one more
    such fault. Anything above that means the dedupe does not work.
    """
    return (kills + nats_restarts) * CONCURRENCY


def _handler(replicas: list[cs.Function], client: httpx.AsyncClient) -> dispatcher.Handler:
    """Deliver to the replicas round-robin, as the Knative Service's load balancer would."""
    turn = itertools.count()

    async def handle(event: events.Event) -> web.Response:
        replica = replicas[next(turn) % len(replicas)]
        message = events.to_binary(event)
        try:
            response = await client.post(replica.url, headers=dict(message.headers), content=message.body)
        except httpx.TransportError as exc:  # killed, or not listening yet: redeliver later
            return web.text_response(503, f"{replica.name} unreachable: {type(exc).__name__}")
        if response.status_code >= 500 or response.status_code == 429:
            return web.text_response(503, f"{replica.name} answered {response.status_code}: {response.text[:200]}")
        return web.Response(response.status_code, response.content)

    return handle


async def _chaos(sink: cs.Sink, replicas: list[cs.Function], nats: NatsServer, tally: cs.Tally) -> None:
    """Kill replicas and restart nats-server when the sink has seen the planned number of keys."""
    plan: list[tuple[int, str]] = [(n, "kill") for n in KILL_AT] + [(NATS_RESTART_AT, "nats")]
    for threshold, action in sorted(plan):
        while len({cs.key(r) for r in sink.poll()}) < threshold:
            await asyncio.sleep(0.05)
        if action == "kill":
            victim = replicas[tally.kills % len(replicas)]
            victim.kill()
            tally.kills += 1
            victim.start()  # a new pod on the same address; it gets traffic once it listens
        else:
            await asyncio.to_thread(nats.restart)
            tally.nats_restarts += 1


async def _settled(js: Any, durable: str) -> tuple[int, int]:
    """(pending, unacked) of the sensor's consumer; (-1, -1) while the server does not answer."""
    try:
        info = await js.consumer_info(bus.stream_name(BUS), durable)
    except Exception:
        return -1, -1
    return int(info.num_pending or 0), int(info.num_ack_pending or 0)


async def _run(nats: NatsServer, tmp: Path) -> tuple[cs.Tally, list[cs.Record], tuple[int, int], dict[str, int]]:
    with cs.sink_server(tmp) as sink:
        common = {"KNEVENTS_NATS_URL": nats.url, "KNEVENTS_BUS": BUS, "KNEVENTS_LOG_LEVEL": "warning"}
        sensor_env = {**common, "KNEVENTS_SPEC": SENSOR.replace("SINK_URL", sink.url)}
        replicas = [
            cs.Function(f"sensor{i}", cs.SENSOR_MAIN, "sensor_async", sensor_env, tmp) for i in range(REPLICAS)
        ]
        source = cs.Function("webhook", cs.SOURCE_MAIN, "handle_async", {**common, "KNEVENTS_SPEC": SOURCE}, tmp)
        functions = [*replicas, source]
        nc = await bus.connect(NatsSettings(url=nats.url))
        log = (tmp / "dispatcher.log").open("w")
        stop = asyncio.Event()
        try:
            for function in functions:
                function.start()
            await asyncio.to_thread(lambda: [f.wait_ready() for f in functions])
            js = nc.jetstream(timeout=5.0)
            stream = await bus.ensure_stream(js, BUS)
            await streams.ensure(js, BUS)
            tally = cs.Tally()
            async with httpx.AsyncClient(
                timeout=10.0, limits=httpx.Limits(max_connections=64, max_keepalive_connections=64)
            ) as client:
                dispatch = dispatcher.Dispatcher(
                    js, stream=stream, bus=BUS, sensor="chaos", subjects=[bus.subject(BUS, "hooks", "load")],
                    handler=_handler(replicas, client),
                    decode=lambda msg: bus.decode_nats(msg.headers, msg.data),
                    console=console_mod.Console(stream=log),
                    policy=dispatcher.DeliveryPolicy(
                        max_deliveries=10_000, backoff=0.05, max_backoff=1.0, ack_wait=20.0,
                        concurrency=CONCURRENCY,
                    ),
                )
                await dispatch.ensure_consumer()
                delivering = asyncio.create_task(dispatch.run(stop))
                chaos = asyncio.create_task(_chaos(sink, replicas, nats, tally))
                await asyncio.wait_for(cs.send_all(f"{source.url}load", tally, EVENTS), DEADLINE)
                await asyncio.wait_for(chaos, DEADLINE)
                deadline = time.monotonic() + DEADLINE
                settled = (-1, -1)
                while time.monotonic() < deadline:
                    settled = await _settled(js, dispatch.durable)
                    seen = {cs.key(r) for r in sink.poll()}
                    if settled == (0, 0) and len(seen) >= EVENTS:
                        break
                    await asyncio.sleep(0.1)
                stop.set()
                await delivering
            return tally, sink.poll(), settled, await streams.dlq_counts(js, BUS)
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await nc.close()
            log.close()
            cs.stop_all(functions)


def test_sigkilled_replicas_and_a_nats_restart_lose_nothing(nats_server: NatsServer, tmp_path: Path) -> None:
    started = time.monotonic()
    tally, records, (pending, unacked), dead = asyncio.run(_run(nats_server, tmp_path))
    seconds = time.monotonic() - started

    assert all(r.event_ids for r in records), "a trigger request without its Knevents-Event-Ids key"
    fired = Counter(r.event_ids for r in records)
    key_of: dict[tuple[str, ...], set[int]] = defaultdict(set)
    for r in records:
        key_of[r.event_ids].add(cs.key(r))
    duplicates = sum(n - 1 for n in fired.values())
    resent_keys = len(fired) - len({cs.key(r) for r in records})
    bound = duplicate_bound(tally.kills, tally.nats_restarts)
    print(
        f"\nchaos: {EVENTS} events, {tally.kills} kills, {tally.nats_restarts} nats restarts, "
        f"{duplicates} duplicates (bound {bound}), {tally.resends} webhook resends "
        f"({dict(tally.rejected)}; {resent_keys} reached the sink as extra events), {seconds:.1f} s"
    )

    assert tally.kills >= 5 and tally.nats_restarts == 1
    missing = set(range(EVENTS)) - {cs.key(r) for r in records}
    assert not missing, f"{len(missing)} keys never reached the sink, e.g. {sorted(missing)[:10]}"
    assert {cs.key(r) for r in records} == set(range(EVENTS))
    assert all(len(keys) == 1 for keys in key_of.values()), "one event id carried two different keys"
    # Every extra event for a key is a webhook resend (a new delivery, so a new id), never more.
    assert resent_keys <= tally.resends
    assert (pending, unacked) == (0, 0), f"consumer not drained: {pending} pending, {unacked} unacked"
    assert not dead, f"events were dead-lettered: {dead}"
    assert duplicates <= bound, f"{duplicates} redelivery duplicates, above the bound {bound}"
