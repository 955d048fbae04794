"""Helpers for the cloud source integration tests: serve handlers on a real port, read the JetStream bus.

``serve`` runs a :mod:`knevents.web` handler on a free loopback port with the
local runner's uvicorn server, so moto and the Pub/Sub emulator deliver over
real HTTP. ``Bus`` is a real JetStream bus on the test's nats-server: the
publisher event sources use, and an ordered consumer to read back what was
published. ``push_handler`` is the runtime's push contract (publish every
event, then 2xx; 5xx when the bus refused) for tests that inject a cert
fetcher or a key set into a source they build themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from knevents import bus, errors, events, web
from knevents.local import httpserve
from knevents.settings import BusSettings
from knevents.sources import base

Handler = Callable[[web.Request], Awaitable[web.Response]]
WAIT = 60.0  # bounds waits for something that must happen: generous, it costs nothing when all is well
"""Seconds to wait for something that should happen in well under a second (generous for loaded CI)."""


@contextlib.asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[str]:
    """Serve ``handler`` on 127.0.0.1; yields the base URL."""
    server = httpserve.PortServer(httpserve.bind("127.0.0.1", 0), handler)
    await server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.stop()


def push_handler(source: base.PushSource, publisher: Any) -> Handler:
    """What the event source runtime does with a push source, reduced to the delivery contract."""

    async def handle(request: web.Request) -> web.Response:
        result = await source.handle(request)
        try:
            for event in result.events:
                await publisher.publish(event)
        except errors.BusUnavailableError as exc:
            return web.text_response(503, str(exc))
        return result.response or web.text_response(200, "ok")

    return handle


class Bus:
    """A JetStream bus on a real nats-server: publish like an event source, read like a dispatcher."""

    def __init__(self, client: Any, name: str = "default") -> None:
        self.name = name
        self._client = client
        self.js = client.jetstream(timeout=5)
        self.publisher = bus.JetStreamPublisher(
            self.js, name, settings=BusSettings(publish_retries=1, publish_backoff=0.05, publish_timeout=10.0)
        )
        self._sub: Any = None

    @classmethod
    async def connect(cls, url: str, name: str = "default") -> Bus:
        """Connect and create the bus stream."""
        import nats

        client = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=1)
        self = cls(client, name)
        await bus.ensure_stream(self.js, name)
        return self

    async def next_event(self, timeout: float = WAIT) -> events.Event:
        """The next event published on the bus (from the start of the stream)."""
        if self._sub is None:
            self._sub = await self.js.subscribe(bus.subject_filter(self.name), ordered_consumer=True)
        msg = await self._sub.next_msg(timeout=timeout)
        return bus.decode_nats(msg.headers, msg.data)

    async def count(self) -> int:
        """How many events the bus stream holds."""
        info = await self.js.stream_info(bus.stream_name(self.name))
        return int(info.state.messages)

    async def close(self) -> None:
        """Close the NATS connection."""
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
        await self._client.close()


class ObservedPublisher:
    """Wraps a publisher; ``attempted`` is set on the first publish, ``failed`` on the first failure."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.attempted = asyncio.Event()
        self.failed = asyncio.Event()
        self.published: list[events.Event] = []

    async def publish(self, event: events.Event) -> None:
        self.attempted.set()
        try:
            await self.inner.publish(event)
        except errors.KneventsError:
            self.failed.set()
            raise
        self.published.append(event)


async def to_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a blocking client call (boto3, google) without blocking the loop serving our endpoints."""
    return await asyncio.to_thread(fn, *args, **kwargs)
