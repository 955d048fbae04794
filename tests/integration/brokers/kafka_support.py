"""Helpers for the kafka tests: topics, a producer, waiting for events on a memory bus."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from knevents import events

from tests.unit.sources_core.helpers import runtime


async def create_topic(url: str, topic: str, partitions: int) -> None:
    """Create ``topic`` with ``partitions`` partitions."""
    admin = AIOKafkaAdminClient(bootstrap_servers=url)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()


async def produce(url: str, topic: str, values: list[bytes], *, partition: int | None = None,
                  key: bytes | None = None, headers: list[tuple[str, bytes]] | None = None) -> None:
    """Produce ``values`` and wait for the broker's acks."""
    producer = AIOKafkaProducer(bootstrap_servers=url, max_request_size=4 * 1024 * 1024)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=key, partition=partition, headers=headers)
    finally:
        await producer.stop()


async def first_record(topic: str, **client: Any) -> Any:
    """The first record of ``topic``'s partition 0, read with a consumer built from ``client`` options."""
    consumer = AIOKafkaConsumer(**client)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        for _ in range(60):
            batch = await consumer.getmany(timeout_ms=500)
            if batch:
                return next(iter(batch.values()))[0]
        raise AssertionError("nothing produced")
    finally:
        await consumer.stop()


async def until(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    """Wait until ``predicate()`` holds (generous: the machine is shared)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


class Running:
    """A source runtime running its pull loops in the background (``async with``)."""

    def __init__(self, spec: dict[str, Any], publisher: Any = None, name: str = "es",
                 secrets: dict[str, str] | None = None) -> None:
        self.rt, self.memory = runtime(spec, publisher, name=name, secrets=secrets)
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Running:
        self.task = asyncio.ensure_future(self.rt.run_pull(self.stop))
        return self

    async def __aexit__(self, *_: Any) -> None:
        self.stop.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, 60)
        await self.rt.close()

    def data(self) -> list[Any]:
        """The event data published so far, decoded."""
        return [events.data_json(e) for e in self.memory.events]


__all__ = ["Running", "create_topic", "first_record", "produce", "until"]
