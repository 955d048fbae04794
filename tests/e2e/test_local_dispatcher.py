"""The local dispatcher on a real nats-server: ack on 2xx, redeliver on 5xx, dead-letter after max deliveries."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from knevents import events, web
from knevents.bus import codec, jetstream, naming
from knevents.local import console, dispatcher, streams


@pytest.fixture
async def js(nats_url: str) -> AsyncIterator[Any]:
    nc = await nats.connect(nats_url)
    context = nc.jetstream()
    await jetstream.ensure_stream(context, "default")
    await streams.ensure(context, "default")
    yield context
    await nc.close()


async def _publish(js: Any, event: events.Event) -> None:
    headers, body = codec.encode_nats(event)
    await js.publish(naming.subject("default", event.source, event.subject), body, headers=headers)


def _event(subject: str = "build", body: dict[str, Any] | None = None) -> events.Event:
    return events.new_event(source="webhook", subject=subject, type="webhook", data={"body": body or {}})


async def _until(check: Any, timeout: float = 60.0) -> None:
    async def loop() -> None:
        while not await check():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(loop(), timeout)


def _dispatcher(js: Any, handler: Any, out: io.StringIO, **policy: Any) -> dispatcher.Dispatcher:
    return dispatcher.Dispatcher(
        js, stream=naming.stream_name("default"), bus="default", sensor="build-sensor",
        subjects=[naming.subject("default", "webhook", "build")], handler=handler,
        decode=lambda msg: codec.decode_nats(msg.headers, msg.data), console=console.Console("text", out),
        policy=dispatcher.DeliveryPolicy(backoff=0.05, max_backoff=0.1, **policy),
    )


async def test_events_are_delivered_once_acked_and_other_subjects_are_ignored(js: Any) -> None:
    seen: list[str] = []

    async def handler(event: events.Event) -> web.Response:
        seen.append(event.id)
        return web.Response(200)

    out = io.StringIO()
    d = _dispatcher(js, handler, out)
    await d.ensure_consumer()
    stop = asyncio.Event()
    task = asyncio.create_task(d.run(stop))
    first, other = _event(), _event("deploy")
    await _publish(js, first)
    await _publish(js, other)
    await _until(lambda: _async(seen == [first.id]))
    await asyncio.sleep(0.3)  # nothing else arrives: the deploy event is not for this sensor
    stop.set()
    await task
    assert seen == [first.id]
    info = await js.consumer_info(naming.stream_name("default"), d.durable)
    assert info.num_ack_pending == 0 and info.num_pending == 0


async def test_failing_sensor_gets_redeliveries_then_the_event_is_dead_lettered(js: Any) -> None:
    attempts: dict[str, int] = {}

    async def handler(event: events.Event) -> web.Response:
        attempts[event.id] = attempts.get(event.id, 0) + 1
        if event.data and b"poison" in event.data:
            return web.text_response(503, "trigger failed")
        return web.Response(200)

    out = io.StringIO()
    d = _dispatcher(js, handler, out, max_deliveries=3)
    await d.ensure_consumer()
    stop = asyncio.Event()
    task = asyncio.create_task(d.run(stop))
    poison, good = _event(body={"kind": "poison"}), _event(body={"kind": "fine"})
    await _publish(js, poison)
    await _publish(js, good)

    async def dead() -> bool:
        return (await streams.dlq_counts(js, "default")).get("build-sensor", 0) == 1

    await _until(dead)
    stop.set()
    await task
    assert attempts[poison.id] == 3
    assert attempts[good.id] == 1
    msg = await js.get_msg(streams.DLQ_STREAM, seq=1)
    assert msg.subject == "default.dlq.build-sensor"
    assert msg.headers["Knevents-Sensor"] == "build-sensor"
    assert "503" in msg.headers["Knevents-Reason"]
    assert codec.decode_nats(msg.headers, msg.data).id == poison.id
    assert "dead-lettered to default.dlq.build-sensor after 3 attempt(s)" in out.getvalue()


async def test_undecodable_message_goes_to_the_dead_letters_at_once(js: Any) -> None:
    calls = 0

    async def handler(event: events.Event) -> web.Response:
        nonlocal calls
        calls += 1
        return web.Response(200)

    d = _dispatcher(js, handler, io.StringIO())
    await d.ensure_consumer()
    stop = asyncio.Event()
    task = asyncio.create_task(d.run(stop))
    await js.publish(naming.subject("default", "webhook", "build"), b"not a cloudevent")

    async def dead() -> bool:
        return (await streams.dlq_counts(js, "default")).get("build-sensor", 0) == 1

    await _until(dead)
    stop.set()
    await task
    assert calls == 0


async def test_the_consumer_survives_a_restart_of_the_dispatcher(js: Any) -> None:
    seen: list[str] = []

    async def handler(event: events.Event) -> web.Response:
        seen.append(event.id)
        return web.Response(200)

    d = _dispatcher(js, handler, io.StringIO())
    await d.ensure_consumer()
    published_while_down = _event()
    await _publish(js, published_while_down)  # the consumer exists but nobody is fetching
    again = _dispatcher(js, handler, io.StringIO())
    await again.ensure_consumer()
    stop = asyncio.Event()
    task = asyncio.create_task(again.run(stop))
    await _until(lambda: _async(seen == [published_while_down.id]))
    stop.set()
    await task


async def test_firings_log_keeps_the_newest_per_sensor(js: Any) -> None:
    for n in range(streams.FIRINGS_KEPT + 3):
        await streams.record_firing(js, streams.Firing(
            time=f"t{n}", sensor="s1", trigger="t", kind="http", ok=True, detail=f"#{n}", events={"d": str(n)}))
    await streams.record_firing(js, streams.Firing(
        time="x", sensor="s2", trigger="t", kind="log", ok=False, detail="other"))
    last = await streams.last_firings(js, "s1", 3)
    assert [f.detail for f in last] == [f"#{streams.FIRINGS_KEPT + 2}", f"#{streams.FIRINGS_KEPT + 1}",
                                        f"#{streams.FIRINGS_KEPT}"]
    assert [f.detail for f in await streams.last_firings(js, "s2")] == ["other"]
    assert await streams.last_firings(js, "nobody") == []


async def _async(value: bool) -> bool:
    return value


class _SlowFirstAnswer:
    """The real JetStream context, except that the first consumer creation gets no answer in time."""

    def __init__(self, js: Any) -> None:
        self._js = js
        self.timeouts = 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._js, name)

    async def add_consumer(self, *args: Any, **kwargs: Any) -> Any:
        if self.timeouts:
            self.timeouts -= 1
            raise nats.errors.TimeoutError
        return await self._js.add_consumer(*args, **kwargs)


async def test_a_timeout_while_a_worker_creates_the_consumer_keeps_what_it_holds(js: Any) -> None:
    async def handler(event: events.Event) -> web.Response:
        return web.Response(200)

    await _dispatcher(js, handler, io.StringIO()).ensure_consumer()
    for _ in range(3):  # not delivered yet: only the durable consumer remembers them
        await _publish(js, _event())
    # another process of `run --workers` starts and the server is slow to answer it
    await _dispatcher(_SlowFirstAnswer(js), handler, io.StringIO()).ensure_consumer()
    info = await js.consumer_info(naming.stream_name("default"), dispatcher.consumer_name("build-sensor"))
    assert info.num_pending == 3, "the consumer was dropped and recreated: its undelivered events are lost"
