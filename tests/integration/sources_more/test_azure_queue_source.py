"""The azureQueueStorage source against Azurite, Microsoft's Azure Storage emulator (tests/fixtures/azurite.py)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import json
import os
import signal
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from azure.storage.queue import QueueServiceClient
from azure.storage.queue.aio import QueueClient
from knevents import metrics
from knevents.secrets import env_name
from knevents.sources import azure_queue

from tests import upstream
from tests.e2e import harness
from tests.fixtures.azurite import Azurite
from tests.integration.sources_more import local_run
from tests.unit.sources_core.helpers import QuotaBus, runtime

WAIT = 60.0  # bounds waits for something that must happen: generous, it costs nothing when all is well


async def _until(check: Any, what: str) -> None:
    for _ in range(int(WAIT / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


Queues = Callable[..., Awaitable[QueueClient]]


@pytest.fixture
async def queues(azurite: Azurite) -> AsyncIterator[Queues]:
    """Creates queues; every client it hands out is closed at teardown, whatever the test did."""
    async with contextlib.AsyncExitStack() as stack:
        async def make(name: str = "test") -> QueueClient:
            client = await stack.enter_async_context(
                QueueClient.from_connection_string(azurite.connection_string, name))
            await client.create_queue()
            return client

        yield make


async def _count(client: QueueClient) -> int:
    return int((await client.get_queue_properties()).approximate_message_count)


async def _drained(queue: QueueClient) -> None:
    """Wait until ``queue`` is empty (deletes follow the bus's acceptance)."""
    for _ in range(int(WAIT / 0.1)):
        if await _count(queue) == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the queue was not drained")


def _rejected(event: str) -> float:
    value = metrics.REGISTRY.get_sample_value("knevents_eventsource_events_rejected_total",
                                              {"eventsource": "aqs", "event": event, "reason": "malformed"})
    return value or 0.0


class Running:
    def __init__(self, spec: dict[str, Any], azurite: Azurite) -> None:
        self.rt, self.memory = runtime(spec, secrets={"azure-secret/connectionstring": azurite.connection_string},
                                       name="aqs")
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.rt.run_pull(self.stop))

    def data(self) -> list[dict[str, Any]]:
        return [json.loads(e.data or b"") for e in self.memory.events]

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, WAIT)


def _upstream_spec() -> dict[str, Any]:
    doc = yaml.safe_load(upstream.example("event-sources", "azure-queue-storage.yaml").read_text())
    return dict(doc["spec"])


async def test_upstream_example_publishes_and_deletes_json_messages(azurite: Azurite, queues: Queues) -> None:
    queue = await queues()
    sent = await queue.send_message('{"build": 42}')
    running = Running(_upstream_spec(), azurite)
    try:
        await _until(lambda: running.memory.events, "the event")
        await _drained(queue)
    finally:
        await running.close()
        remaining = await _count(queue)
    [data] = running.data()
    assert data["body"] == {"build": 42} and data["messageID"] == sent.id
    assert data["insertionTime"].endswith("Z") and data["insertionTime"][:4].isdigit()
    assert list(data) == ["body", "messageID", "insertionTime"]
    assert running.memory.events[0].type == "azureQueueStorage"
    assert remaining == 0


async def test_decode_message_bytes_body_and_metadata(azurite: Azurite, queues: Queues) -> None:
    queue = await queues("raw")
    await queue.send_message(base64.b64encode(b"\x00binary").decode())
    spec = {"azureQueueStorage": {"raw": {"queueName": "raw", "decodeMessage": True, "waitTimeInSeconds": 1,
                                          "metadata": {"k": "v"},
                                          "connectionString": {"name": "azure-secret", "key": "connectionstring"}}}}
    running = Running(spec, azurite)
    try:
        await _until(lambda: running.memory.events, "the event")
    finally:
        await running.close()
    [data] = running.data()
    assert data["body"] == base64.b64encode(b"\x00binary").decode()  # []byte, as Go marshals it
    assert data["metadata"] == {"k": "v"}


async def test_bad_messages_are_deleted_or_kept_for_the_dlq(azurite: Azurite, queues: Queues) -> None:
    plain, dlq = await queues("plain"), await queues("dlq")
    await plain.send_message("not json")
    await dlq.send_message("not json either")
    secret = {"name": "azure-secret", "key": "connectionstring"}
    spec = {"azureQueueStorage": {
        "plain": {"queueName": "plain", "jsonBody": True, "waitTimeInSeconds": 1, "connectionString": secret},
        "dlq": {"queueName": "dlq", "jsonBody": True, "dlq": True, "waitTimeInSeconds": 1, "connectionString": secret},
    }}
    before = _rejected("plain") + _rejected("dlq")
    running = Running(spec, azurite)
    try:
        await _until(lambda: _rejected("plain") + _rejected("dlq") >= before + 2, "both rejections")
        await plain.send_message('{"ok": true}')
        await _until(lambda: running.memory.events, "the good message after the bad one")
        await _drained(plain)
        assert await _count(dlq) == 1  # left on the queue (invisible for 120 s), as Argo does with dlq
    finally:
        await running.close()


async def test_a_refused_event_keeps_its_message_until_the_bus_takes_it(azurite: Azurite, queues: Queues) -> None:
    queue = await queues()
    await queue.send_message('{"n": 1}')
    running = Running(_upstream_spec(), azurite)
    running.memory.fail = True
    try:
        await asyncio.sleep(1.5)
        assert running.memory.events == [] and await _count(queue) == 1
        running.memory.fail = False
        await _until(lambda: running.memory.events, "the event once the bus is back")
    finally:
        await running.close()
    assert len(running.memory.events) == 1


async def test_a_burst_is_published_per_receive_and_each_message_deleted_only_after_acceptance(
        azurite: Azurite, queues: Queues, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(azure_queue, "_VISIBILITY", 2)  # what a crash held comes back in 2 s, not Argo's 120
    queue = await queues("burst")
    for n in range(25):
        await queue.send_message(json.dumps({"n": n}))
    spec = {"azureQueueStorage": {"burst": {"queueName": "burst", "jsonBody": True, "waitTimeInSeconds": 1,
                                            "connectionString": {"name": "azure-secret", "key": "connectionstring"}}}}
    secrets = {"azure-secret/connectionstring": azurite.connection_string}

    async def run_until(bus: QuotaBus, done: Callable[[], bool], drained: bool = False) -> None:
        rt, _ = runtime(spec, bus, secrets=secrets, name="aqs")
        stop = asyncio.Event()
        task = asyncio.create_task(rt.run_pull(stop))
        try:
            await _until(done, "the burst")
            if drained:  # the last batch's deletes follow its acceptance
                await _drained(queue)
        finally:
            task.cancel()  # the process ends: no clean stop
            with contextlib.suppress(asyncio.CancelledError):
                await task

    down = QuotaBus(12)  # accepts 12 events of the burst, then refuses
    await run_until(down, lambda: len(down.events) == 12 and down.refusals >= 2)
    assert max(down.batches) > 1  # a receive's messages were published as one batch
    assert await _count(queue) == 13  # exactly the accepted ones were deleted
    up = QuotaBus(None)  # refused ones were made visible again at once, the batch held at the crash after 2 s
    await run_until(up, lambda: len(up.events) == 13, drained=True)
    numbers = [json.loads(e.data or b"")["body"]["n"] for e in down.events + up.events]
    assert sorted(numbers) == list(range(25))  # each once: an accepted (deleted) message never came again
    assert await _count(queue) == 0


async def test_no_client_session_is_left_open_after_a_stop_or_a_cancel(azurite: Azurite, queues: Queues) -> None:
    queue = await queues("leak")
    await queue.send_message('{"n": 1}')
    spec = {"azureQueueStorage": {"leak": {"queueName": "leak", "jsonBody": True, "waitTimeInSeconds": 1,
                                           "connectionString": {"name": "azure-secret", "key": "connectionstring"}}}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        stopped = Running(spec, azurite)
        await _until(lambda: stopped.memory.events, "the event")
        await stopped.close()
        cancelled = Running(spec, azurite)  # cancelled while it polls, as a shutdown of the process does
        await asyncio.sleep(0.5)
        cancelled.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await cancelled.task
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_knevents_run_feeds_a_sensor_and_loses_nothing_across_a_kill(azurite: Azurite, tmp_path: Path) -> None:
    doc = yaml.safe_load(upstream.example("event-sources", "azure-queue-storage.yaml").read_text())
    env = {env_name("SECRET", "azure-secret", "connectionstring"): azurite.connection_string}
    sink = harness.Sink()
    sensor = local_run.sensor_yaml("azure-queue-storage", "example", ["body", "messageID"], sink.url)
    service = QueueServiceClient.from_connection_string(azurite.connection_string)
    client = service.get_queue_client("test")  # shares the service's HTTP session: closing it leaves that open
    try:
        client.create_queue()
        with local_run.running(tmp_path, doc, sensor, env) as runner:
            for i in range(5):
                client.send_message(json.dumps({"n": i}))
            sink.wait(5)
            assert runner.proc is not None
            os.kill(runner.proc.pid, signal.SIGKILL)
            runner.proc.wait()
            for i in range(5, 10):
                client.send_message(json.dumps({"n": i}))
            runner.start()
            # at least once: a firing in flight at the kill may come twice, so wait for every distinct message
            harness.poll(lambda: {json.loads(r.json()["body"])["n"] for r in sink.received} >= set(range(10)),
                         "all ten messages", timeout=60)
    finally:
        sink.close()
        client.close()
        service.close()
    # the body arrives as a string, as Argo's payload sends a JSON value picked by dataKey
    assert {json.loads(r.json()["body"])["n"] for r in sink.received} == set(range(10))
    assert all(r.json()["messageID"] for r in sink.received)
