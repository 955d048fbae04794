"""Argo's upstream kafka, redis-streams and redis examples in ``knevents run``, only the address changed.

A sensor's http trigger receives Argo's data fields from real messages. For kafka and redisStream the runner is
SIGKILLed while messages arrive, more are produced while it is down, and after a restart every message reaches
the trigger; duplicates are counted and bounded (the source's uncommitted batch).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from knevents.sources import kafka

from tests import upstream
from tests.e2e import harness
from tests.fixtures.brokers import Redis, Tansu
from tests.integration.brokers.kafka_support import create_topic, produce

pytestmark = pytest.mark.skipif(upstream.examples_dir() is None, reason=upstream.REASON)

_SENSOR = """\
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata:
  name: SOURCE-sensor
spec:
  dependencies:
    - name: dep
      eventSourceName: SOURCE
      eventName: example
  triggers:
    - template:
        name: to-sink
        http:
          url: SINK/SOURCE
          method: POST
          payload:
FIELDS
      atLeastOnce: true
      retryStrategy: {steps: 3, duration: 100ms}
"""


def _sensor(source: str, sink: harness.Sink, fields: list[str]) -> str:
    lines = "\n".join(f"            - src: {{dependencyName: dep, dataKey: {f}}}\n              dest: {f.replace('.', '_')}"
                      for f in fields)
    return _SENSOR.replace("SOURCE", source).replace("SINK", sink.url).replace("FIELDS", lines)


def _folder(tmp: Path, name: str, address: str, new: str, sensor: str) -> Path:
    example = upstream.examples_dir()
    assert example is not None
    text = (example / "event-sources" / name).read_text()
    assert address in text
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "eventsource.yaml").write_text(text.replace(address, new))
    (tmp / "sensor.yaml").write_text(sensor)
    return tmp


@pytest.fixture
def sink() -> Iterator[harness.Sink]:
    server = harness.Sink()
    yield server
    server.close()


def _runner(folder: Path, tmp: Path) -> harness.RunnerProcess:
    return harness.RunnerProcess([folder], tmp / "state", harness.knevents_env(tmp), ["--log-level", "info"]).start()


def _waiting_for(runner: harness.RunnerProcess, text: str) -> None:
    runner.wait_for(lambda r: text in str(r.get("msg", "")), f"log line {text!r}", timeout=90)


def _kafka_send(url: str, numbers: range, pause: float = 0.0, partitions: int = 1) -> None:
    async def send() -> None:
        for n in numbers:
            await produce(url, "topic-2", [b'{"n": %d}' % n], partition=1 if partitions == 1 else n % partitions,
                          key=b"k")
            if pause:
                await asyncio.sleep(pause)

    asyncio.run(send())


def test_kafka_upstream_example_sigkill_and_down_time_lose_nothing(tmp_path: Path, tansu: Tansu,
                                                                    sink: harness.Sink) -> None:
    asyncio.run(create_topic(tansu.url, "topic-2", 2))
    folder = _folder(tmp_path / "k", "kafka.yaml", "kafka.argo-events:9092", tansu.url,
                     _sensor("kafka", sink, ["body.n", "topic", "partition", "key", "timestamp"]))
    first = _runner(folder, tmp_path)
    try:
        _waiting_for(first, "consuming topic-2")
        _kafka_send(tansu.url, range(1))
        [got] = sink.wait(1, timeout=60)
        assert got.path == "/kafka"
        fields = got.json()
        assert (fields["body_n"], fields["topic"], fields["partition"], fields["key"]) == ("0", "topic-2", "1", "k")
        assert fields["timestamp"].endswith(" +0000 UTC")
        producer = threading.Thread(target=_kafka_send, args=(tansu.url, range(1, 120), 0.01))
        producer.start()
        sink.wait(20, timeout=60)
        first.kill()  # SIGKILL while records arrive
        producer.join(120)
        _kafka_send(tansu.url, range(120, 170))  # produced while the runner is down
    finally:
        first.kill()
    second = _runner(folder, tmp_path)
    try:
        harness.poll(lambda: len({r.json()["body_n"] for r in sink.received}) == 170, "all 170 records", 120)
    finally:
        second.kill()
    numbers = [r.json()["body_n"] for r in sink.received]
    duplicates = len(numbers) - len(set(numbers))
    print(f"kafka SIGKILL test: 170 records, {len(numbers)} trigger calls, {duplicates} duplicates")
    assert set(numbers) == {str(n) for n in range(170)}
    assert duplicates <= kafka.BATCH


def test_kafka_consumer_group_variant_sigkill_loses_nothing(tmp_path: Path, tansu: Tansu, sink: harness.Sink) -> None:
    """The example's commented-out consumerGroup instead of `partition`: all 3 partitions, offsets committed
    only after the bus accepted; a SIGKILLed member's uncommitted batch is read again by the restarted one."""
    asyncio.run(create_topic(tansu.url, "topic-2", 3))
    folder = _folder(tmp_path / "g", "kafka.yaml", "kafka.argo-events:9092", tansu.url,
                     _sensor("kafka", sink, ["body.n", "partition"]))
    text = (folder / "eventsource.yaml").read_text()
    (folder / "eventsource.yaml").write_text(text.replace('partition: "1"', "consumerGroup:\n        groupName: "
                                                                            "test-group\n        oldest: true"))
    _kafka_send(tansu.url, range(30), partitions=3)  # before the group exists: read (oldest: true)
    first = _runner(folder, tmp_path)
    try:
        sink.wait(10, timeout=90)
        producer = threading.Thread(target=_kafka_send, args=(tansu.url, range(30, 120), 0.01, 3))
        producer.start()
        sink.wait(40, timeout=60)
        first.kill()
        producer.join(120)
        _kafka_send(tansu.url, range(120, 150), partitions=3)
    finally:
        first.kill()
    second = _runner(folder, tmp_path)
    try:
        harness.poll(lambda: len({r.json()["body_n"] for r in sink.received}) == 150, "all 150 records", 150)
    finally:
        second.kill()
    numbers = [r.json()["body_n"] for r in sink.received]
    duplicates = len(numbers) - len(set(numbers))
    print(f"kafka group SIGKILL test: 150 records on 3 partitions, {len(numbers)} trigger calls, {duplicates} duplicates")
    assert set(numbers) == {str(n) for n in range(150)}
    assert {r.json()["partition"] for r in sink.received} == {"0", "1", "2"}
    assert duplicates <= kafka.BATCH


def test_redis_streams_upstream_example_sigkill_and_down_time_lose_nothing(tmp_path: Path, redis_server: Redis,
                                                                           sink: harness.Sink) -> None:
    folder = _folder(tmp_path / "r", "redis-streams.yaml", "redis.argo-events.svc:6379", redis_server.address,
                     _sensor("redis-stream", sink, ["values.n", "stream", "message_id"]))
    client = redis.Redis(host="127.0.0.1", port=redis_server.port)

    def send(numbers: range, pause: float = 0.0) -> None:
        for n in numbers:
            client.xadd("FOO", {"n": str(n)})
            if pause:
                threading.Event().wait(pause)

    first = _runner(folder, tmp_path)
    try:
        _waiting_for(first, "reading FOO")
        send(range(1))
        [got] = sink.wait(1, timeout=60)
        assert got.json()["stream"] == "FOO" and got.json()["values_n"] == "0" and "-" in got.json()["message_id"]
        producer = threading.Thread(target=send, args=(range(1, 150), 0.005))
        producer.start()
        sink.wait(20, timeout=60)
        first.kill()
        producer.join(120)
        send(range(150, 200))
    finally:
        first.kill()
    second = _runner(folder, tmp_path)
    try:
        harness.poll(lambda: len({r.json()["values_n"] for r in sink.received}) == 200, "all 200 entries", 120)
    finally:
        second.kill()
        client.close()
    numbers = [r.json()["values_n"] for r in sink.received]
    duplicates = len(numbers) - len(set(numbers))
    print(f"redisStream SIGKILL test: 200 entries, {len(numbers)} trigger calls, {duplicates} duplicates")
    assert set(numbers) == {str(n) for n in range(200)}
    assert duplicates <= 20  # 2 x maxMsgCountPerRead: a read whose XACK was in flight at the kill, and the next


def test_redis_upstream_example_delivers_argos_fields(tmp_path: Path, redis_server: Redis,
                                                      sink: harness.Sink) -> None:
    folder = _folder(tmp_path / "p", "redis.yaml", "redis.argo-events.svc:6379", redis_server.address,
                     _sensor("redis", sink, ["channel", "pattern", "body"]))
    client = redis.Redis(host="127.0.0.1", port=redis_server.port)
    runner = _runner(folder, tmp_path)
    try:
        _waiting_for(runner, "subscribed to FOO")
        client.publish("FOO", "hello")
        [got] = sink.wait(1, timeout=60)
    finally:
        runner.kill()
        client.close()
    assert got.json() == {"channel": "FOO", "pattern": "", "body": "hello"}
