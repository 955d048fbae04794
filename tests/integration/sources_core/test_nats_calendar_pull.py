"""Pull sources against a real nats-server: the nats source subscription and the calendar's KV tick store."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime
from typing import Any

import nats
from knevents import events, metrics
from knevents.settings import NatsSettings
from knevents.sources import calendar_store

from tests.integration.sources_core.harness import jetstream_bus


def _sample(name: str, eventsource: str, event: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, {"eventsource": eventsource, "event": event}) or 0.0


async def _until_heard(client: Any, eventsource: str, event: str, subject: str, payload: bytes,
                       headers: dict[str, str] | None = None) -> None:
    """Publish ``payload`` to ``subject`` until ``event`` of ``eventsource`` received a message."""
    before = _sample("knevents_eventsource_events_received_total", eventsource, event)
    for _ in range(600):
        await client.publish(subject, payload, headers=headers)
        await client.flush()
        for _ in range(10):
            if _sample("knevents_eventsource_events_received_total", eventsource, event) > before:
                return
            await asyncio.sleep(0.01)
    raise AssertionError(f"{event} never got a message on {subject}")


async def test_nats_source_publishes_messages_to_the_bus(nats_url: str) -> None:
    spec = {"nats": {
        "json": {"url": nats_url, "subject": "orders.*", "jsonBody": True, "metadata": {"k": "v"}},
        "raw": {"url": nats_url, "subject": "raw", "queue": "workers"},
        "filtered": {"url": nats_url, "subject": "f", "jsonBody": True, "filter": {"expression": "body.n > 1"}},
    }}
    async with jetstream_bus(nats_url) as jbus:
        rt = jbus.runtime(spec, name="nats-es")
        assert sorted(rt.pull_entries()) == ["filtered", "json", "raw"]
        stop = asyncio.Event()
        task = asyncio.create_task(rt.run_pull(stop))
        published = {e: _sample("knevents_eventsource_events_published_total", "nats-es", e)
                     for e in ("json", "raw", "filtered")}
        client = await nats.connect(nats_url)
        try:
            # each entry subscribes in the background, on its own: resend a first message to each subject until
            # that entry got one (core NATS drops what nobody is subscribed to), then send the rest once
            traced = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
            await _until_heard(client, "nats-es", "json", "orders.new", b'{"id": 1}', traced)
            await _until_heard(client, "nats-es", "raw", "raw", b"\x00\x01binary")
            await _until_heard(client, "nats-es", "filtered", "f", b'{"n": 1}')  # dropped by the filter
            await client.publish("orders.new", b"not json")  # jsonBody: dropped
            await client.publish("f", b'{"n": 2}')
            await client.flush()
            for _ in range(1200):  # every entry's event is on the bus (the filtered entry's: {"n": 2} only)
                if all(_sample("knevents_eventsource_events_published_total", "nats-es", e) > published[e]
                       for e in published):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"not every entry published an event: {published}")
        finally:
            await client.close()
            stop.set()
            await asyncio.wait_for(task, 60)
            await rt.close()
        got = await jbus.read(await jbus.count())
    by_event: dict[str, list[events.Event]] = {}
    for event in got:
        by_event.setdefault(str(event.subject), []).append(event)
    first = events.data_json(by_event["json"][0])
    assert first["subject"] == "orders.new"
    assert first["body"] == {"id": 1}
    assert first["metadata"] == {"k": "v"}
    assert first["header"]["traceparent"] == ["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"]
    assert by_event["json"][0].extensions["traceparent"].startswith("00-4bf92f")
    raw = events.data_json(by_event["raw"][0])
    assert base64.b64decode(raw["body"]) == b"\x00\x01binary"
    assert "header" not in raw
    assert [events.data_json(e)["body"] for e in by_event["filtered"]] == [{"n": 2}]
    assert all(events.data_json(e)["body"] != "not json" for e in by_event["json"])


async def test_nats_source_waits_for_a_server_that_is_not_there_yet() -> None:
    from knevents.local.natsd import NatsServer, free_port

    port = free_port()
    spec = {"nats": {"late": {"url": f"nats://127.0.0.1:{port}", "subject": "s",
                              "connectionBackoff": {"duration": "100ms", "factor": 1}}}}
    server = NatsServer(port=port)
    try:
        from tests.unit.sources_core.helpers import runtime

        rt, memory = runtime(spec)
        stop = asyncio.Event()
        task = asyncio.create_task(rt.run_pull(stop))
        await asyncio.sleep(0.3)
        server.start()
        client = await nats.connect(server.url)
        for _ in range(600):  # until the source, retrying every 100 ms, has subscribed
            await client.publish("s", b"hello")
            await client.flush()
            await asyncio.sleep(0.1)
            if memory.events:
                break
        await client.close()
        stop.set()
        await asyncio.wait_for(task, 60)
        assert memory.events
        assert base64.b64decode(events.data_json(memory.events[0])["body"]) == b"hello"
    finally:
        server.close()


async def test_calendar_tick_store_in_jetstream_kv(nats_url: str) -> None:
    bucket = calendar_store.bucket_name("my.ns", "cal-es")
    assert bucket == "knevents-calendar-my_ns-cal-es"
    store = calendar_store.JetStreamTickStore(NatsSettings(url=nats_url), bucket)
    try:
        assert await store.last("nightly build") is None
        when = datetime(2024, 5, 1, 2, 0, tzinfo=UTC)
        await store.save("nightly build", when)
        await store.save("other", datetime(2020, 1, 1, tzinfo=UTC))
    finally:
        await store.close()
    again = calendar_store.JetStreamTickStore(NatsSettings(url=nats_url), bucket)
    try:
        assert await again.last("nightly build") == when
    finally:
        await again.close()
