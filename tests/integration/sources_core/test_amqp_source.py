"""The amqp event source against a real RabbitMQ node (the session's ``rabbitmq`` fixture).

Argo's AMQPEventData from real deliveries, ack only after the bus accepted the
event, bad messages dead-lettered with a reason and a metric, an unreachable
broker reported by ``/health``, and a broker restart survived.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiormq
import pytest
from knevents import events, metrics
from knevents.secrets import env_name
from knevents.sources import amqp

from tests import upstream
from tests.e2e import harness
from tests.fixtures.rabbitmq import RabbitMQ, free_port
from tests.unit.sources_core.helpers import QuotaBus, request, runtime

WAIT = 60.0
"""Seconds to wait for something that normally takes milliseconds."""


def _names() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"ex-{tag}", f"q-{tag}"


def _entry(url: str, exchange: str, queue: str, **extra: Any) -> dict[str, Any]:
    return {"url": url, "exchangeName": exchange, "exchangeType": "topic", "routingKey": "orders.#",
            "queueDeclare": {"name": queue, "durable": True, "exclusive": False},
            "consume": {"autoAck": False}, **extra}


@contextlib.asynccontextmanager
async def _producer(url: str) -> AsyncIterator[aiormq.abc.AbstractChannel]:
    connection = await aiormq.connect(url)
    try:
        yield await connection.channel()  # publisher confirms on: basic_publish returns once the broker has it
    finally:
        await connection.close()


async def _publish(channel: aiormq.abc.AbstractChannel, exchange: str, body: bytes, key: str = "orders.new",
                   **props: Any) -> None:
    await channel.basic_publish(body, exchange=exchange, routing_key=key,
                                properties=aiormq.spec.Basic.Properties(delivery_mode=2, **props))


async def _until(check: Callable[[], bool], what: str) -> None:
    async with asyncio.timeout(WAIT):
        while not check():
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def _running(spec: dict[str, Any], name: str = "es",
                   secrets: dict[str, str] | None = None) -> AsyncIterator[tuple[Any, Any]]:
    rt, memory = runtime(spec, name=name, secrets=secrets)
    stop = asyncio.Event()
    task = asyncio.create_task(rt.run_pull(stop))
    try:
        yield rt, memory
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT)
        await rt.close()


async def _declared(rt: Any) -> None:
    """Wait until the source consumes (its queue is declared and bound)."""
    await _until(lambda: not rt.not_ready(), "the source to consume")


async def _queue_depth(url: str, queue: str) -> int:
    async with _producer(url) as channel:
        declared = await channel.queue_declare(queue, passive=True)
        return int(declared.message_count or 0)


async def _depth_becomes(url: str, queue: str, depth: int) -> None:
    """Wait until ``queue`` holds ``depth`` ready messages (the broker requeues and dead-letters asynchronously)."""
    async with asyncio.timeout(WAIT):
        while await _queue_depth(url, queue) != depth:
            await asyncio.sleep(0.1)
    assert await _queue_depth(url, queue) == depth


async def test_data_is_argos_amqp_event_data(rabbitmq: RabbitMQ) -> None:
    exchange, queue = _names()
    spec = {"amqp": {"json": _entry(rabbitmq.url, exchange, queue, jsonBody=True, metadata={"team": "a"}),
                     "raw": _entry(rabbitmq.url, exchange, queue + "-raw")}}
    stamp = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
    async with _running(spec, "amqp-es") as (rt, memory):
        await _declared(rt)
        async with _producer(rabbitmq.url) as channel:
            await _publish(channel, exchange, b'{"id": 7, "note": "<b>"}', content_type="application/json",
                           content_encoding="utf-8", priority=3, correlation_id="c-1", reply_to="answers",
                           expiration="60000", message_id="m-1", timestamp=stamp, message_type="order",
                           app_id="shop", headers={"traceparent":
                                                   "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                                                   "n": 5})
        await _until(lambda: len(memory.events) == 2, "two events")
    by_subject = {event.subject: event for event in memory.events}
    data = events.data_json(by_subject["json"])
    assert list(data) == ["contentType", "contentEncoding", "deliveryMode", "priority", "correlationId", "replyTo",
                          "expiration", "messageId", "timestamp", "type", "appId", "exchange", "routingKey",
                          "headers", "body", "metadata"]
    assert data == {
        "contentType": "application/json", "contentEncoding": "utf-8", "deliveryMode": 2, "priority": 3,
        "correlationId": "c-1", "replyTo": "answers", "expiration": "60000", "messageId": "m-1",
        "timestamp": "2024-05-06 07:08:09 +0000 UTC", "type": "order", "appId": "shop", "exchange": exchange,
        "routingKey": "orders.new",
        "headers": {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "n": 5},
        "body": {"id": 7, "note": "<b>"}, "metadata": {"team": "a"},
    }
    assert b'"body":{"id":7,"note":"\\u003cb\\u003e"}' in by_subject["json"].data  # Go's RawMessage marshalling
    event = by_subject["json"]
    assert (event.source, event.type) == ("amqp-es", "amqp")
    assert event.extensions["traceparent"].startswith("00-4bf92f")
    raw = events.data_json(by_subject["raw"])
    assert base64.b64decode(raw["body"]) == b'{"id": 7, "note": "<b>"}'
    assert "metadata" not in raw
    # the id derives from message-id (a redelivery dedupes), and differs per event of the EventSource
    assert by_subject["raw"].id != event.id and len(event.id) == 32
    assert await _queue_depth(rabbitmq.url, queue) == 0


def test_replicas_only_when_they_share_a_named_queue() -> None:
    def knative(entry: dict[str, Any]) -> Any:
        return amqp.SOURCE.knative(amqp.SOURCE.model.model_validate(entry))

    base_entry = {"url": "amqp://h/", "exchangeName": "x", "exchangeType": "fanout", "routingKey": "k"}
    assert knative(base_entry).name == "ONE_REPLICA"  # Argo's default: a server-named exclusive queue each
    shared = {**base_entry, "queueDeclare": {"name": "work", "durable": True, "exclusive": False}}
    assert knative(shared).name == "CONSUMER_GROUP"  # RabbitMQ gives each message to one consumer
    assert knative({**shared, "consume": {"exclusive": True}}).name == "ONE_REPLICA"


async def test_ack_only_after_the_bus_accepted(rabbitmq: RabbitMQ) -> None:
    exchange, queue = _names()
    spec = {"amqp": {"e": _entry(rabbitmq.url, exchange, queue, connectionBackoff={"duration": "50ms"})}}
    async with _running(spec) as (rt, memory):
        await _declared(rt)
        memory.fail = True
        async with _producer(rabbitmq.url) as channel:
            for n in range(3):
                await _publish(channel, exchange, b"%d" % n, message_id=f"m{n}")
        await asyncio.sleep(0.5)  # the source retries the first event while the bus refuses
        assert memory.events == []
        memory.fail = False
        await _until(lambda: len(memory.events) == 3, "the three events once the bus is back")
    assert [base64.b64decode(events.data_json(e)["body"]) for e in memory.events] == [b"0", b"1", b"2"]
    assert await _queue_depth(rabbitmq.url, queue) == 0


async def test_stopping_while_the_bus_refuses_leaves_the_message_queued(rabbitmq: RabbitMQ) -> None:
    exchange, queue = _names()
    spec = {"amqp": {"e": _entry(rabbitmq.url, exchange, queue)}}
    async with _running(spec) as (rt, memory):
        await _declared(rt)
        memory.fail = True
        async with _producer(rabbitmq.url) as channel:
            await _publish(channel, exchange, b"kept")
        await asyncio.sleep(0.3)
    await _depth_becomes(rabbitmq.url, queue, 1)  # back in the queue with the connection's unacked deliveries


def _rejected(reason: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "knevents_eventsource_events_rejected_total", {"eventsource": "bad-es", "event": "e", "reason": reason})
    return value or 0.0


async def test_bad_messages_are_dead_lettered_and_counted(rabbitmq: RabbitMQ, caplog: pytest.LogCaptureFixture) -> None:
    exchange, queue = _names()
    dlx, dlq = exchange + "-dlx", queue + "-dead"
    async with _producer(rabbitmq.url) as channel:
        await channel.exchange_declare(dlx, exchange_type="fanout")
        await channel.queue_declare(dlq, durable=True)
        await channel.queue_bind(dlq, dlx)
    entry = _entry(rabbitmq.url, exchange, queue, jsonBody=True)
    entry["queueDeclare"]["arguments"] = f"x-dead-letter-exchange: {dlx}\n"
    before = (_rejected("malformed"), _rejected("too_large"))
    async with _running({"amqp": {"e": entry}}, "bad-es") as (rt, memory):
        await _declared(rt)
        async with _producer(rabbitmq.url) as channel:
            await _publish(channel, exchange, b"not json")
            await _publish(channel, exchange, b"\xff\xfe{}")  # poison: not even UTF-8
            await _publish(channel, exchange, b'{"big": "' + b"x" * amqp.MAX_DATA + b'"}')
            await _publish(channel, exchange, b'{"ok": true}')
        await _until(lambda: len(memory.events) == 1, "the good message after the bad ones")
    assert events.data_json(memory.events[0])["body"] == {"ok": True}
    assert _rejected("malformed") - before[0] == 2
    assert _rejected("too_large") - before[1] == 1
    assert "jsonBody is set but the body is not JSON" in caplog.text
    assert "the bus takes" in caplog.text
    await _depth_becomes(rabbitmq.url, dlq, 3)  # the broker dead-letters a rejected message on its own time
    assert await _queue_depth(rabbitmq.url, queue) == 0


async def _forward(listen: int, target: int) -> asyncio.Server:
    """A TCP forwarder 127.0.0.1:listen -> 127.0.0.1:target: the broker "appears" at ``listen`` once started."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", target)
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    return await asyncio.start_server(serve, "127.0.0.1", listen)


async def test_unreachable_broker_is_retried_and_health_says_why(rabbitmq: RabbitMQ) -> None:
    port = free_port()
    exchange, queue = _names()
    spec = {"amqp": {"e": _entry(f"amqp://user:s3cret-pw@127.0.0.1:{port}/", exchange, queue,
                                 connectionBackoff={"duration": "50ms", "factor": 2})}}
    spec["amqp"]["e"]["auth"] = {"username": {"name": "rmq", "key": "user"}, "password": {"name": "rmq", "key": "pw"}}
    async with _running(spec, secrets={"rmq/user": "guest", "rmq/pw": "guest"}) as (rt, memory):
        for _ in range(200):  # until the first attempt has failed (the first is "connecting")
            answer = await rt.handle(request("GET", "/health"))
            text = answer.body.decode()
            if "connecting" not in text:
                break
            await asyncio.sleep(0.05)
        assert answer.status == 503
        assert text.startswith("not ready: e: broker amqp://127.0.0.1:") and "Error" in text
        assert "s3cret" not in text and "guest" not in text
        server = await _forward(port, rabbitmq.port)  # the broker becomes reachable
        try:
            await _declared(rt)
            assert (await rt.handle(request("GET", "/health"))).status == 200
            async with _producer(rabbitmq.url) as channel:
                await _publish(channel, exchange, b"late")
            await _until(lambda: len(memory.events) == 1, "the message after the broker appeared")
        finally:
            server.close()


async def test_tls_with_a_client_certificate_from_secrets(rabbitmq: RabbitMQ) -> None:
    exchange, queue = _names()
    tls = {"caCertSecret": {"name": "tls", "key": "ca"}, "clientCertSecret": {"name": "tls", "key": "cert"},
           "clientKeySecret": {"name": "tls", "key": "key"}}
    url = f"amqps://guest:guest@127.0.0.1:{rabbitmq.tls_port}/"
    pki = rabbitmq.pki
    secrets = {"tls/ca": pki.ca.cert, "tls/cert": pki.client.cert, "tls/key": pki.client.key}
    spec = {"amqp": {"e": _entry(url, exchange, queue, tls=tls)}}
    async with _running(spec, secrets=secrets) as (rt, memory):
        await _declared(rt)
        async with _producer(rabbitmq.url) as channel:
            await _publish(channel, exchange, b"over tls")
        await _until(lambda: len(memory.events) == 1, "the message consumed over TLS")
    assert base64.b64decode(events.data_json(memory.events[0])["body"]) == b"over tls"
    # without the client certificate the broker refuses the handshake; /health says so
    no_cert = {"amqp": {"e": _entry(url, exchange, queue, tls={"caCertSecret": tls["caCertSecret"]},
                                    connectionBackoff={"duration": "100ms"})}}
    async with _running(no_cert, secrets=secrets) as (rt, _):
        await _until(lambda: "broker amqps://127.0.0.1" in " ".join(rt.not_ready()), "the refused handshake")
        answer = await rt.handle(request("GET", "/health"))
    # the broker's refusal reads CERTIFICATE_REQUIRED or a reset connection, depending on timing
    assert answer.status == 503 and answer.body.decode().startswith("not ready: e: broker amqps://127.0.0.1:")
    assert pki.client.key not in answer.body.decode()


async def test_broker_restart_mid_stream_loses_nothing(rabbitmq: RabbitMQ) -> None:
    exchange, queue = _names()
    spec = {"amqp": {"e": _entry(rabbitmq.url, exchange, queue, connectionBackoff={"duration": "200ms"})}}
    async with _running(spec) as (rt, memory):
        await _declared(rt)
        async with _producer(rabbitmq.url) as channel:
            for n in range(20):
                await _publish(channel, exchange, b"%d" % n, message_id=f"m{n}")
        await asyncio.to_thread(rabbitmq.restart)
        async with _producer(rabbitmq.url) as channel:
            for n in range(20, 40):
                await _publish(channel, exchange, b"%d" % n, message_id=f"m{n}")
        await _until(lambda: {e.id for e in memory.events} and len({e.id for e in memory.events}) == 40,
                     "all 40 messages")
    bodies = {int(base64.b64decode(events.data_json(e)["body"])) for e in memory.events}
    assert bodies == set(range(40))


async def test_a_burst_is_published_in_batches_and_each_message_acked_only_after_acceptance(
        rabbitmq: RabbitMQ) -> None:
    exchange, queue = _names()
    spec = {"amqp": {"e": _entry(rabbitmq.url, exchange, queue)}}
    async with _producer(rabbitmq.url) as channel:  # the queue exists and holds the burst before the source starts
        await channel.exchange_declare(exchange, exchange_type="topic", durable=True)
        await channel.queue_declare(queue, durable=True)
        await channel.queue_bind(queue, exchange, routing_key="orders.#")
        for n in range(200):
            await _publish(channel, exchange, b"%d" % n, message_id=f"m{n}")
    down = QuotaBus(70)  # the bus accepts 70 events of the burst, then refuses
    rt, _ = runtime(spec, down)
    stop = asyncio.Event()
    task = asyncio.create_task(rt.run_pull(stop))
    await _until(lambda: len(down.events) == 70 and down.refusals >= 2, "70 accepted, the rest refused")
    task.cancel()  # the process ends while it holds the refused ones: no clean stop
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await rt.close()
    assert 1 < max(down.batches) <= amqp.PREFETCH  # batches, bounded by the prefetch window
    await _depth_becomes(rabbitmq.url, queue, 130)  # exactly the 70 accepted were acked; the others went back
    up = QuotaBus(None)
    rt, _ = runtime(spec, up)
    stop = asyncio.Event()
    task = asyncio.create_task(rt.run_pull(stop))
    await _until(lambda: len(up.events) == 130, "the 130 unaccepted messages, delivered again")
    stop.set()
    await asyncio.wait_for(task, WAIT)
    await rt.close()
    bodies = [int(base64.b64decode(events.data_json(e)["body"])) for e in down.events + up.events]
    assert bodies == list(range(200))  # every message once, in order
    assert await _queue_depth(rabbitmq.url, queue) == 0


# --- Argo's upstream example in `knevents run` -----------------------------------------------------------------

_UPSTREAM = "examples/event-sources/amqp.yaml"
_SENSOR = """\
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata:
  name: amqp-sensor
spec:
  dependencies:
    - name: dep
      eventSourceName: amqp
      eventName: example
  triggers:
    - template:
        name: to-sink
        http:
          url: SINK/amqp
          method: POST
          payload:
            - src: {dependencyName: dep, dataKey: body}
              dest: body
            - src: {dependencyName: dep, dataKey: messageId}
              dest: messageId
            - src: {dependencyName: dep, dataKey: routingKey}
              dest: routingKey
            - src: {dependencyName: dep, dataKey: exchange}
              dest: exchange
            - src: {dependencyName: dep, dataKey: contentType}
              dest: contentType
      atLeastOnce: true
      retryStrategy: {steps: 3, duration: 100ms}
"""


def _upstream(folder: Path, rabbitmq: RabbitMQ, sink: harness.Sink, replace: dict[str, str] | None = None) -> Path:
    """Argo's amqp example with only its address changed (plus ``replace``), and an http-trigger sensor."""
    text = upstream.example(*_UPSTREAM.split("/")[1:]).read_text()
    text = text.replace("amqp://rabbitmq-service.argo-events:5672", f"amqp://127.0.0.1:{rabbitmq.port}")
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "eventsource.yaml").write_text(text)
    (folder / "sensor.yaml").write_text(_SENSOR.replace("SINK", sink.url))
    return folder


def _env(tmp_path: Path) -> dict[str, str]:
    # the example's auth reads Secret my-secret (username, password): RabbitMQ's default user here
    return harness.knevents_env(tmp_path, {env_name("SECRET", "my-secret", "username"): "guest",
                                           env_name("SECRET", "my-secret", "password"): "guest"})


def _send_sync(url: str, exchange: str, numbers: range, pause: float = 0.0) -> None:
    async def send() -> None:
        async with _producer(url) as channel:
            for n in numbers:
                await _publish(channel, exchange, b'{"n": %d}' % n, key="hello", message_id=f"m{n}",
                               content_type="application/json")
                if pause:
                    await asyncio.sleep(pause)

    asyncio.run(send())


def _consuming(runner: harness.RunnerProcess) -> None:
    runner.wait_for(lambda r: "consuming queue" in str(r.get("msg", "")), "the amqp source to consume")


@pytest.fixture
def sink() -> Iterator[harness.Sink]:
    server = harness.Sink()
    yield server
    server.close()


def test_upstream_example_runs_and_the_sensor_gets_argos_fields(
    tmp_path: Path, rabbitmq: RabbitMQ, sink: harness.Sink
) -> None:
    folder = _upstream(tmp_path / "m", rabbitmq, sink)
    runner = harness.RunnerProcess([folder], tmp_path / "state", _env(tmp_path), ["--log-level", "info"]).start()
    try:
        _consuming(runner)  # the example's exclusive queue exists only while the source is connected
        _send_sync(rabbitmq.url, "test", range(1))
        [got] = sink.wait(1)
    finally:
        runner.kill()
    assert got.path == "/amqp"
    # a JSON object picked by dataKey is put in the payload as its (Go-compacted) JSON text, as in Argo
    assert got.json() == {"body": '{"n":0}', "messageId": "m0", "routingKey": "hello", "exchange": "test",
                          "contentType": "application/json"}


def test_sigkill_mid_stream_and_messages_sent_while_down_all_arrive(
    tmp_path: Path, rabbitmq: RabbitMQ, sink: harness.Sink
) -> None:
    # Durability needs a named durable queue and acks after publishing: the example's exclusive queue and
    # autoAck drop what is sent while no consumer is connected (in Argo too).
    exchange = f"test-{uuid.uuid4().hex[:6]}"
    folder = _upstream(tmp_path / "m", rabbitmq, sink, {
        "exchangeName: test": f"exchangeName: {exchange}",
        'name: "my-queue-name"': f'name: "{exchange}-q"',
        "durable: false": "durable: true",
        "exclusive: true": "exclusive: false",
        "autoAck: true": "autoAck: false",
    })
    env = _env(tmp_path)
    first = harness.RunnerProcess([folder], tmp_path / "state", env, ["--log-level", "info"]).start()
    try:
        _consuming(first)
        producer = threading.Thread(target=_send_sync, args=(rabbitmq.url, exchange, range(200), 0.005))
        producer.start()
        sink.wait(20)
        first.kill()  # SIGKILL while messages arrive
        producer.join(WAIT)
        _send_sync(rabbitmq.url, exchange, range(200, 300))  # all sent while the runner is down
    finally:
        first.kill()
    second = harness.RunnerProcess([folder], tmp_path / "state", env).start()
    try:
        harness.poll(lambda: len({r.json()["messageId"] for r in sink.received}) == 300, "all 300 messages", 120)
    finally:
        second.kill()
    ids = [r.json()["messageId"] for r in sink.received]
    duplicates = len(ids) - len(set(ids))
    print(f"amqp SIGKILL test: 300 messages, {len(ids)} trigger calls, {duplicates} duplicates")
    assert set(ids) == {f"m{n}" for n in range(300)}
    assert duplicates <= amqp.PREFETCH, duplicates  # at most the deliveries in flight at the kill
