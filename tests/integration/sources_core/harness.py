"""A real JetStream bus for event-source tests: publish through the runtime, read back from the stream."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import nats
from knevents import bus, events
from knevents.runtime import source
from knevents.settings import BusSettings

from tests.unit.sources_core.helpers import event_source, runtime

FAST = BusSettings(publish_retries=1, publish_backoff=0.01, publish_timeout=10.0)  # a busy machine acks late
DOWN = BusSettings(publish_retries=1, publish_backoff=0.01, publish_timeout=1.0)
"""For a test that stops the server: each attempt waits out the timeout."""


class JetStreamBus:
    """The bus stream of one nats-server, with a reader."""

    def __init__(self, nc: Any, js: Any, settings: BusSettings = FAST) -> None:
        self.nc, self.js = nc, js
        self.publisher = bus.JetStreamPublisher(js, "default", settings=settings)

    async def count(self) -> int:
        info = await self.js.stream_info(bus.stream_name("default"))
        return int(info.state.messages)

    async def read(self, n: int) -> list[events.Event]:
        sub = await self.js.pull_subscribe(bus.subject_filter("default"), durable=None)
        msgs = await sub.fetch(n, timeout=30)  # returns once n are there
        return [bus.decode_nats(m.headers, m.data) for m in msgs]

    def runtime(self, spec: Mapping[str, Any], *, secrets: Mapping[str, str] | None = None,
                name: str = "es") -> source.SourceRuntime:
        rt, _ = runtime(spec, self.publisher, secrets=secrets, name=name)
        return rt


@asynccontextmanager
async def jetstream_bus(url: str, settings: BusSettings = FAST) -> AsyncIterator[JetStreamBus]:
    """Connect, create the bus stream, and close at the end."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await bus.ensure_stream(js, "default")
        yield JetStreamBus(nc, js, settings)
    finally:
        with contextlib.suppress(Exception):  # the server may be down on purpose
            await nc.close()


__all__ = ["DOWN", "FAST", "JetStreamBus", "event_source", "jetstream_bus"]
