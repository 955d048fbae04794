"""The generic source against a real grpcio server implementing Argo's generic.proto (tests/fixtures/argo_grpc.py)."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from knevents import metrics, protowire
from knevents.runtime import source

from tests import upstream
from tests.e2e import harness
from tests.fixtures import argo_grpc
from tests.fixtures.argo_grpc import EventingServer
from tests.integration.sources_more import local_run
from tests.unit.sources_core.helpers import runtime

WAIT = 60.0  # bounds waits for something that must happen: generous, it costs nothing when all is well


def _upstream_spec(url: str) -> dict[str, Any]:
    doc = yaml.safe_load(upstream.example("event-sources", "generic.yaml").read_text())
    doc["spec"]["generic"]["example"]["url"] = url
    return dict(doc["spec"])


async def _until(check: Any, what: str) -> None:
    for _ in range(int(WAIT / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Running:
    def __init__(self, rt: source.SourceRuntime) -> None:
        self.rt, self.stop = rt, asyncio.Event()
        self.task = asyncio.create_task(rt.run_pull(self.stop))

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, WAIT)


def _rejected(event: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "knevents_eventsource_events_rejected_total", {"eventsource": "generic", "event": event, "reason": "malformed"})
    return value or 0.0


def test_codec_matches_the_compiled_protos() -> None:
    pb2 = argo_grpc.compiled()["generic_pb2"]
    ours = protowire.encode({1: "example", 2: b"key1: value1"})
    assert pb2.EventSource.FromString(ours) == pb2.EventSource(name="example", config=b"key1: value1")
    theirs = pb2.Event(name="x", payload=b"\x00\xffdata").SerializeToString()
    assert protowire.decode(theirs) == {1: b"x", 2: b"\x00\xffdata"}
    with pytest.raises(protowire.ProtoError):
        protowire.decode(b"\x12\x05ab")


async def test_upstream_example_streams_events_with_argo_data(eventing_server: EventingServer) -> None:
    rt, memory = runtime(_upstream_spec(eventing_server.url), name="generic")
    running = Running(rt)
    try:
        await _until(lambda: eventing_server.requests, "the StartEventSource call")
        eventing_server.send(b'{"n": 1}')
        eventing_server.send(b"\x00raw")
        await _until(lambda: len(memory.events) == 2, "two events")
    finally:
        await running.close()
    [(name, config, _)] = eventing_server.requests
    assert (name, config) == ("example", b"key1: value1\nkey2: value2")
    first, second = memory.events
    assert (first.source, first.subject, first.type) == ("generic", "example", "generic")
    assert json.loads(first.data or b"") == {"body": base64.b64encode(b'{"n": 1}').decode()}
    assert json.loads(second.data or b"") == {"body": base64.b64encode(b"\x00raw").decode()}


async def test_json_body_metadata_auth_and_bad_payloads(eventing_server: EventingServer) -> None:
    eventing_server.token = "s3cr3t-token"
    spec = {"generic": {"ev": {"url": eventing_server.url, "insecure": True, "jsonBody": True,
                               "metadata": {"team": "ci"}, "authSecret": {"name": "gen", "key": "token"}}}}
    rt, memory = runtime(spec, secrets={"gen/token": "s3cr3t-token"}, name="generic")
    before = _rejected("ev")
    running = Running(rt)
    try:
        await _until(lambda: eventing_server.requests, "the call")
        eventing_server.send(b"not json")
        eventing_server.send(b'{"build": 7}')
        await _until(lambda: memory.events, "the JSON event")
    finally:
        await running.close()
    assert eventing_server.requests[0][2]["authorization"] == "Bearer s3cr3t-token"
    [event] = memory.events
    assert json.loads(event.data or b"") == {"body": {"build": 7}, "metadata": {"team": "ci"}}
    assert _rejected("ev") == before + 1


async def test_reconnects_after_the_stream_ends_and_the_server_restarts(eventing_server: EventingServer) -> None:
    rt, memory = runtime({"generic": {"ev": {"url": eventing_server.url, "insecure": True}}}, name="generic")
    running = Running(rt)
    try:
        await _until(lambda: len(eventing_server.requests) == 1, "the first call")
        eventing_server.send(b"one")
        eventing_server.end_stream()
        await _until(lambda: len(eventing_server.requests) == 2, "the second call")
        eventing_server.server.stop(grace=None)
        argo_grpc.start_eventing(eventing_server)  # same port, same queue
        await _until(lambda: len(eventing_server.requests) == 3, "the call to the restarted server")
        eventing_server.send(b"two")
        await _until(lambda: len(memory.events) == 2, "both events")
    finally:
        await running.close()
    assert [json.loads(e.data or b"")["body"] for e in memory.events] == [
        base64.b64encode(b"one").decode(), base64.b64encode(b"two").decode()]


async def test_a_refused_publish_is_retried_until_the_bus_takes_it(eventing_server: EventingServer) -> None:
    rt, memory = runtime({"generic": {"ev": {"url": eventing_server.url, "insecure": True}}}, name="generic")
    memory.fail = True
    running = Running(rt)
    try:
        await _until(lambda: eventing_server.requests, "the call")
        eventing_server.send(b"kept")
        await asyncio.sleep(1.0)  # at least one refused attempt
        memory.fail = False
        await _until(lambda: memory.events, "the event")
    finally:
        await running.close()
    assert len(memory.events) == 1


def test_upstream_example_under_knevents_run_feeds_a_sensor(eventing_server: EventingServer, tmp_path: Path) -> None:
    doc = yaml.safe_load(upstream.example("event-sources", "generic.yaml").read_text())
    doc["spec"]["generic"]["example"]["url"] = eventing_server.url
    sink = harness.Sink()
    try:
        with local_run.running(tmp_path, doc, local_run.sensor_yaml("generic", "example", ["body"], sink.url)):
            harness.poll(lambda: bool(eventing_server.requests), "the StartEventSource call")
            eventing_server.send(b"hello")
            [got] = sink.wait(1)
    finally:
        sink.close()
    assert got.json() == {"body": base64.b64encode(b"hello").decode()}
