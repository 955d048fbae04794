"""The mqtt event source against a real mosquitto (the ``mosquitto`` fixture).

Argo's MQTTEventData from real messages, the PUBACK only after the bus took
the event (an unacked message comes back to the persistent session), bad
input counted and skipped, ``/health`` while the broker is away, a broker
restart, and Argo's upstream example in ``knevents run`` through a SIGKILL.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from knevents import events, metrics
from knevents.sources import mqtt
from paho.mqtt.client import Client, MQTTv311
from paho.mqtt.enums import CallbackAPIVersion

from tests import upstream
from tests.e2e import harness
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.rabbitmq import free_port
from tests.unit.sources_core.helpers import QuotaBus, request, runtime

WAIT = 60.0


def _send(broker: Mosquitto, topic: str, payloads: list[bytes], pause: float = 0.0) -> None:
    """Publish with QoS 1 and wait for each PUBACK (the broker has the message)."""
    client = Client(CallbackAPIVersion.VERSION2, client_id=f"producer-{uuid.uuid4().hex[:6]}", protocol=MQTTv311)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        for payload in payloads:
            client.publish(topic, payload, qos=1).wait_for_publish(WAIT)
            if pause:
                time.sleep(pause)
    finally:
        client.disconnect()
        client.loop_stop()


async def _until(check: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT):
        while not check():
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def _running(spec: dict[str, Any], name: str = "es", memory: Any = None,
                   secrets: dict[str, str] | None = None) -> AsyncIterator[tuple[Any, Any]]:
    rt, mem = runtime(spec, memory, name=name, secrets=secrets)
    stop = asyncio.Event()
    task = asyncio.create_task(rt.run_pull(stop))
    try:
        yield rt, memory or mem
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT)
        await rt.close()


def _entry(broker: Mosquitto, topic: str, **extra: Any) -> dict[str, Any]:
    return {"url": broker.url, "topic": topic, "clientId": f"c-{uuid.uuid4().hex[:8]}",
            "connectionBackoff": {"duration": "1s"}, **extra}


async def _subscribed(rt: Any) -> None:
    await _until(lambda: not rt.not_ready())


async def test_data_is_argos_mqtt_event_data(mosquitto: Mosquitto) -> None:
    spec = {"mqtt": {"json": _entry(mosquitto, "sensors/+/temp", jsonBody=True, metadata={"site": "a"}),
                     "raw": _entry(mosquitto, "sensors/#")}}
    async with _running(spec, "mqtt-es") as (rt, memory):
        await _subscribed(rt)
        await asyncio.to_thread(_send, mosquitto, "sensors/k1/temp", [b'{"c": 21.50, "u": "<C>"}'])
        await _until(lambda: len(memory.events) == 2)
    by_subject = {event.subject: event for event in memory.events}
    event = by_subject["json"]
    data = events.data_json(event)
    assert list(data) == ["topic", "messageId", "body", "metadata"]
    assert data["topic"] == "sensors/k1/temp" and data["metadata"] == {"site": "a"}
    assert isinstance(data["messageId"], int) and data["messageId"] > 0  # QoS 1: a real packet id
    assert b'"body":{"c":21.50,"u":"\\u003cC\\u003e"}' in event.data  # Go's RawMessage marshalling
    assert (event.source, event.type) == ("mqtt-es", "mqtt")
    raw = events.data_json(by_subject["raw"])
    assert base64.b64decode(raw["body"]) == b'{"c": 21.50, "u": "<C>"}' and "metadata" not in raw


async def test_unacked_message_comes_back_to_the_session(mosquitto: Mosquitto) -> None:
    entry = _entry(mosquitto, "orders")
    spec = {"mqtt": {"e": entry}}
    async with _running(spec) as (rt, memory):
        await _subscribed(rt)
        memory.fail = True  # the bus refuses: no PUBACK
        await asyncio.to_thread(_send, mosquitto, "orders", [b"one"])
        await asyncio.sleep(0.5)
    assert memory.events == []
    await asyncio.to_thread(_send, mosquitto, "orders", [b"two"])  # queued for the offline session
    async with _running(spec) as (rt, memory):
        await _until(lambda: len(memory.events) == 2)
    assert [base64.b64decode(events.data_json(e)["body"]) for e in memory.events] == [b"one", b"two"]


class _Inboxes:
    """Stands for the ``asyncio`` module in :mod:`knevents.sources.mqtt`, noting the inbox queue it makes."""

    def __init__(self) -> None:
        self.made: list[asyncio.Queue[Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    def Queue(self) -> asyncio.Queue[Any]:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self.made.append(queue)
        return queue


class _FirstHeld(QuotaBus):
    """Holds a first batch of one until more messages wait in the source's inbox: paho hands them over one at
    a time from its thread, so without the hold the source may take each alone on a busy machine."""

    def __init__(self, quota: int, inboxes: _Inboxes) -> None:
        super().__init__(quota)
        self._inboxes = inboxes

    async def publish_many(self, batch: Any) -> list[BaseException | None]:
        if not self.batches and len(batch) == 1:  # the broker sends the rest of its inflight window meanwhile
            await _until(lambda: sum(q.qsize() for q in self._inboxes.made) >= 2)
        return await super().publish_many(batch)


async def test_a_burst_is_published_in_batches_and_each_message_acked_only_after_acceptance(
        mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = {"mqtt": {"e": _entry(mosquitto, "burst")}}
    async with _running(spec) as (rt, _):  # the persistent session exists; the burst waits in it
        await _subscribed(rt)
    await asyncio.to_thread(_send, mosquitto, "burst", [b"%d" % n for n in range(100)])
    inboxes = _Inboxes()
    monkeypatch.setattr(mqtt, "asyncio", inboxes)
    down = _FirstHeld(30, inboxes)  # accepts 30 events of the burst, then refuses
    rt, _ = runtime(spec, down)
    task = asyncio.create_task(rt.run_pull(asyncio.Event()))
    await _until(lambda: len(down.events) == 30 and down.refusals >= 2)
    task.cancel()  # the process ends while it holds unacked messages: no clean stop
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await rt.close()
    monkeypatch.setattr(mqtt, "asyncio", asyncio)
    assert max(down.batches) > 1  # what paho had handed over went out as one batch
    up = QuotaBus(None)
    async with _running(spec, memory=up):
        await _until(lambda: len(up.events) >= 70)
        await asyncio.sleep(1.0)  # anything more would come now
    bodies = [int(base64.b64decode(events.data_json(e)["body"])) for e in down.events + up.events]
    assert bodies[:30] == list(range(30))
    assert sorted(bodies[30:]) == list(range(30, 100))  # the unacked ones again, an acked one never


def _rejected(reason: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "knevents_eventsource_events_rejected_total", {"eventsource": "bad-mqtt", "event": "e", "reason": reason})
    return value or 0.0


async def test_bad_messages_are_counted_and_the_source_keeps_consuming(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    before = (_rejected("malformed"), _rejected("too_large"))
    async with _running({"mqtt": {"e": _entry(mosquitto, "in", jsonBody=True)}}, "bad-mqtt") as (rt, memory):
        await _subscribed(rt)
        await asyncio.to_thread(_send, mosquitto, "in", [
            b"not json", b"\xff\xfe{}", b'{"big": "' + b"x" * mqtt.MAX_DATA + b'"}', b'{"ok": true}'])
        await _until(lambda: len(memory.events) == 1)
    assert events.data_json(memory.events[0])["body"] == {"ok": True}
    assert _rejected("malformed") - before[0] == 2
    assert _rejected("too_large") - before[1] == 1
    assert "jsonBody is set but the payload is not JSON" in caplog.text


async def test_unreachable_broker_health_says_why_then_it_connects(tmp_path: Path) -> None:
    port = free_port()
    entry = {"url": f"tcp://127.0.0.1:{port}", "topic": "t", "clientId": "late-c1",
             "connectionBackoff": {"duration": "1s"}}
    async with _running({"mqtt": {"e": entry}}) as (rt, memory):
        await _until(lambda: "cannot connect" in str(rt.not_ready()))
        answer = await rt.handle(request("GET", "/health"))
        assert answer.status == 503
        assert answer.body.decode().startswith("not ready: e: cannot connect to broker tcp://127.0.0.1:")
        broker = Mosquitto(tmp_path / "late", port=port).start()  # the broker comes up later
        try:
            await _subscribed(rt)
            assert (await rt.handle(request("GET", "/health"))).status == 200
            await asyncio.to_thread(_send, broker, "t", [b"late"])
            await _until(lambda: len(memory.events) == 1)
        finally:
            broker.stop()


async def test_tls_with_a_client_certificate_from_secrets(mosquitto: Mosquitto) -> None:
    pki = mosquitto.pki
    secrets = {"tls/ca": pki.ca.cert, "tls/cert": pki.client.cert, "tls/key": pki.client.key}
    tls = {"caCertSecret": {"name": "tls", "key": "ca"}, "clientCertSecret": {"name": "tls", "key": "cert"},
           "clientKeySecret": {"name": "tls", "key": "key"}}
    entry = {**_entry(mosquitto, "secure"), "url": f"ssl://127.0.0.1:{mosquitto.tls_port}", "tls": tls}
    async with _running({"mqtt": {"e": entry}}, secrets=secrets) as (rt, memory):
        await _subscribed(rt)
        await asyncio.to_thread(_send, mosquitto, "secure", [b"over tls"])
        await _until(lambda: len(memory.events) == 1)
    assert base64.b64decode(events.data_json(memory.events[0])["body"]) == b"over tls"


async def test_broker_restart_mid_stream_loses_nothing(mosquitto: Mosquitto) -> None:
    async with _running({"mqtt": {"e": _entry(mosquitto, "s")}}) as (rt, memory):
        await _subscribed(rt)
        await asyncio.to_thread(_send, mosquitto, "s", [b"%d" % n for n in range(20)])
        await asyncio.to_thread(mosquitto.restart)
        await asyncio.to_thread(_send, mosquitto, "s", [b"%d" % n for n in range(20, 40)])
        await _until(lambda: len({e.data for e in memory.events}) >= 40)
    bodies = {int(base64.b64decode(events.data_json(e)["body"])) for e in memory.events}
    assert bodies == set(range(40))


# --- Argo's upstream example in `knevents run` -----------------------------------------------------------------

_SENSOR = """\
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata:
  name: mqtt-sensor
spec:
  dependencies:
    - name: dep
      eventSourceName: mqtt
      eventName: example
  triggers:
    - template:
        name: to-sink
        http:
          url: SINK/mqtt
          method: POST
          payload:
            - src: {dependencyName: dep, dataKey: body.n}
              dest: n
            - src: {dependencyName: dep, dataKey: topic}
              dest: topic
            - src: {dependencyName: dep, dataKey: messageId}
              dest: messageId
      atLeastOnce: true
      retryStrategy: {steps: 3, duration: 100ms}
"""


def _upstream(folder: Path, broker: Mosquitto, sink: harness.Sink) -> Path:
    text = upstream.example("event-sources", "mqtt.yaml").read_text()
    assert "tcp://mqtt.argo-events:1883" in text
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "eventsource.yaml").write_text(text.replace("tcp://mqtt.argo-events:1883", broker.url))
    (folder / "sensor.yaml").write_text(_SENSOR.replace("SINK", sink.url))
    return folder


@pytest.fixture
def sink() -> Iterator[harness.Sink]:
    server = harness.Sink()
    yield server
    server.close()


def _subscribed_runner(runner: harness.RunnerProcess) -> None:
    runner.wait_for(lambda r: "subscribed to" in str(r.get("msg", "")), "the mqtt source to subscribe")


def test_upstream_example_runs_and_the_sensor_gets_argos_fields(
    tmp_path: Path, mosquitto: Mosquitto, sink: harness.Sink
) -> None:
    folder = _upstream(tmp_path / "m", mosquitto, sink)
    runner = harness.RunnerProcess([folder], tmp_path / "state", harness.knevents_env(tmp_path),
                                   ["--log-level", "info"]).start()
    try:
        _subscribed_runner(runner)
        _send(mosquitto, "bar", [b'{"n": 1}'])
        [got] = sink.wait(1)
    finally:
        runner.kill()
    body = got.json()
    assert body["n"] == "1" and body["topic"] == "bar" and int(body["messageId"]) > 0


def test_sigkill_mid_stream_and_messages_sent_while_down_all_arrive(
    tmp_path: Path, mosquitto: Mosquitto, sink: harness.Sink
) -> None:
    folder = _upstream(tmp_path / "m", mosquitto, sink)
    env = harness.knevents_env(tmp_path)
    first = harness.RunnerProcess([folder], tmp_path / "state", env, ["--log-level", "info"]).start()
    try:
        _subscribed_runner(first)
        producer = threading.Thread(target=_send, args=(mosquitto, "bar", [b'{"n": %d}' % n for n in range(200)],
                                                        0.005))
        producer.start()
        sink.wait(20)
        first.kill()  # SIGKILL while messages arrive
        producer.join(WAIT)
        _send(mosquitto, "bar", [b'{"n": %d}' % n for n in range(200, 300)])  # sent while the runner is down
    finally:
        first.kill()
    second = harness.RunnerProcess([folder], tmp_path / "state", env).start()
    try:
        harness.poll(lambda: len({r.json()["n"] for r in sink.received}) == 300, "all 300 messages", 120)
    finally:
        second.kill()
    numbers = [r.json()["n"] for r in sink.received]
    duplicates = len(numbers) - len(set(numbers))
    print(f"mqtt SIGKILL test: 300 messages, {len(numbers)} trigger calls, {duplicates} duplicates")
    assert set(numbers) == {str(n) for n in range(300)}
    assert duplicates <= 20, duplicates  # mosquitto's max_inflight_messages: what can be unacked at the kill
