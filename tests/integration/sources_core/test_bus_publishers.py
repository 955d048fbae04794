"""The bus adapters against a real nats-server and a real HTTP sink."""

from __future__ import annotations

import asyncio

import nats
import pytest
from knevents import bus, errors, events
from knevents.settings import BusSettings, NatsSettings, Settings

from tests.integration.sources_core.sink import http_sink

FAST = BusSettings(publish_retries=1, publish_backoff=0.01, publish_timeout=1.0)


def _event(name: str = "example", source: str = "webhook", id: str | None = None) -> events.Event:
    return events.new_event(source=source, subject=name, type="webhook", data={"body": {"n": 1}}, id=id)


async def test_jetstream_publish_is_read_back_and_deduplicated(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        stream = await bus.ensure_stream(js, "default")
        assert stream == bus.stream_name("default")
        assert await bus.ensure_stream(js, "default") == stream  # idempotent
        await bus.ensure_stream(js, "default", duplicate_window=600.0)  # widened for an older stream
        assert (await js.stream_info(stream)).config.duplicate_window == 600.0
        await bus.ensure_stream(js, "default")  # never narrowed
        assert (await js.stream_info(stream)).config.duplicate_window == 600.0
        publisher = bus.JetStreamPublisher(js, "default", settings=FAST)
        event = _event(name="my.event *>", source="es one")
        await publisher.publish(event)
        await publisher.publish(event)  # a retry: same id, stored once
        info = await js.stream_info(stream)
        assert info.state.messages == 1
        sub = await js.pull_subscribe(bus.subject_filter("default"), durable="t")
        (msg,) = await sub.fetch(1, timeout=30)
        assert msg.subject == bus.subject("default", "es one", "my.event *>")
        assert msg.subject.count(".") == 2
        back = bus.decode_nats(msg.headers, msg.data)
        assert back.id == event.id
        assert back.source == "es one"
        assert back.subject == "my.event *>"
        assert back.data == event.data
        assert back.type == "webhook"
    finally:
        await nc.close()


async def test_lazy_jetstream_publisher_creates_stream(nats_url: str) -> None:
    settings = Settings(nats=NatsSettings(url=nats_url), bus=FAST)
    publisher = bus.from_settings(settings)
    assert isinstance(publisher, bus.JetStreamPublisher)
    await publisher.publish(_event())
    await publisher.close()
    nc = await nats.connect(nats_url)
    try:
        info = await nc.jetstream().stream_info(bus.stream_name("default"))
        assert info.state.messages == 1
    finally:
        await nc.close()


async def test_jetstream_down_raises_bus_unavailable(nats_server) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(nats=NatsSettings(url=nats_server.url, connect_timeout=0.5), bus=FAST)
    publisher = bus.JetStreamPublisher.lazy(settings)
    await publisher.publish(_event())
    nats_server.stop()
    with pytest.raises(errors.BusUnavailableError) as info:
        await publisher.publish(_event())
    assert isinstance(info.value, errors.TemporaryError)
    await publisher.close()


async def test_jetstream_never_up_raises_bus_unavailable() -> None:
    from knevents.local.natsd import free_port

    settings = Settings(nats=NatsSettings(url=f"nats://127.0.0.1:{free_port()}", connect_timeout=0.3), bus=FAST)
    publisher = bus.from_settings(settings)
    with pytest.raises(errors.BusUnavailableError):
        await publisher.publish(_event())


async def test_http_sink_gets_binary_cloudevent() -> None:
    with http_sink() as sink:
        publisher = bus.HttpSinkPublisher(sink.url, settings=FAST)
        event = _event(name="é vent")
        await publisher.publish(event)
        await publisher.publish(_event())
        await publisher.close()
    assert len(sink.requests) == 2
    got = sink.requests[0]
    assert got.headers["ce-id"] == event.id
    assert got.headers["ce-source"] == "webhook"
    assert got.headers["content-type"] == "application/json"
    back = events.from_http(got.headers, got.body)
    assert back.subject == "é vent"
    assert back.data == event.data


async def test_http_sink_refusing_raises_bus_unavailable() -> None:
    with http_sink() as sink:
        sink.status = 503
        publisher = bus.HttpSinkPublisher(sink.url, settings=FAST)
        with pytest.raises(errors.BusUnavailableError, match="HTTP 503"):
            await publisher.publish(_event())
        await publisher.close()


async def test_http_sink_unreachable_raises_bus_unavailable() -> None:
    from knevents.local.natsd import free_port

    publisher = bus.HttpSinkPublisher(f"http://127.0.0.1:{free_port()}/", settings=FAST)
    with pytest.raises(errors.BusUnavailableError):
        await publisher.publish(_event())
    await publisher.close()


def test_from_settings_prefers_sink() -> None:
    publisher = bus.from_settings(Settings(bus=BusSettings(sink="http://broker/")))
    assert isinstance(publisher, bus.HttpSinkPublisher)
    asyncio.run(publisher.close())
