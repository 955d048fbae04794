"""The UI beside a Knative cluster: the Broker's events, the sensor functions' firings, replay into the Broker.

Knative is not available here, so the test plays its parts with real pieces: CloudEvents are POSTed over HTTP
to the ``knevents ui --receive-events`` process exactly as the Broker's dispatcher delivers them to a Trigger's
subscriber (binary and structured mode, a ``.svc`` Host), the sensor function is the real
:class:`~knevents.runtime.sensor_app.SensorApp` built from its environment, NATS is a real nats-server, and a
small local HTTP server (tests/deploy/localsink.py) **stands in for the Broker's ingress** that replay posts to.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nats
import pytest
from knevents import events, triggers, web
from knevents.local import streams
from knevents.local.natsd import NatsServer, free_port
from knevents.runtime import sensor_app
from knevents.ui import cluster

from tests.deploy import localsink
from tests.fixtures.ports import wait_for_port

INSIDE = "knevents-ui.default.svc.cluster.local"
"""The Host a Broker's delivery names: the UI Service's cluster-local address."""
EVENT_SOURCE = """
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata: {name: hooks, namespace: default}
spec:
  webhook:
    build: {port: "12000", endpoint: /build, method: POST}
"""
SENSOR = """
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {name: NAME, namespace: default}
spec:
  dependencies:
    - {name: dep, eventSourceName: hooks, eventName: build}
  triggers:
    - template:
        name: log-it
        log: {}
"""


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    where = tmp_path / "manifests"
    where.mkdir()
    (where / "source.yaml").write_text(EVENT_SOURCE)
    for name in ("alpha", "beta"):
        (where / f"{name}.yaml").write_text(SENSOR.replace("NAME", name))
    return where


@contextmanager
def _ui(nats_url: str, where: Path, *extra: str) -> Iterator[str]:
    port = free_port()
    argv = [sys.executable, "-m", "knevents", "ui", str(where), "--nats-url", nats_url, "--port", str(port),
            "--receive-events", *extra]
    env = {k: v for k, v in os.environ.items() if k != "K_SINK"}  # the Broker's address only when a test gives it
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, proc, "knevents ui --receive-events")
        yield f"http://127.0.0.1:{port}"
        assert proc.poll() is None, "the UI process died"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out.decode(errors="replace")


def _request(url: str, body: bytes | None = None, headers: dict[str, str] | None = None,
             method: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, method=method or ("POST" if body is not None else "GET"))
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            status, raw = answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw


def _deliver(base: str, message: events.HTTPMessage, host: str = INSIDE) -> tuple[int, Any]:
    """What the Broker's dispatcher does for the UI's Trigger."""
    return _request(f"{base}{cluster.PATH}", message.body, {**message.headers, "Host": host})


def _event(event_id: str, n: int, source: str = "hooks") -> events.Event:
    body = json.dumps({"header": {}, "body": {"n": n}}).encode()
    return events.Event(id=event_id, source=source, type="webhook", subject="build", data=body,
                        datacontenttype="application/json")


def _listed(base: str) -> list[dict[str, Any]]:
    status, listed = _request(f"{base}/api/events")
    assert status == 200
    return list(listed)


async def _wait(predicate: Any, what: str, timeout: float = 60.0) -> Any:
    """Poll ``predicate`` while this loop runs (a function's NATS client flushes its writes on it)."""
    deadline = time.monotonic() + timeout
    while True:
        found = predicate()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_broker_deliveries_are_listed_once_kept_and_bad_ones_refused(
        nats_server: NatsServer, manifests: Path) -> None:
    with _ui(nats_server.url, manifests) as base:
        assert _deliver(base, events.to_binary(_event("ev-1", 1))) == (200, {"event_id": "ev-1", "duplicate": False})
        assert _deliver(base, events.to_structured(_event("ev-2", 2)))[0] == 200
        assert _deliver(base, events.to_binary(_event("ev-1", 1))) == (200, {"event_id": "ev-1", "duplicate": True})
        listed = _listed(base)
        assert [(e["id"], e["source"], e["event"], e["sensors"]) for e in listed] == [
            ("ev-2", "hooks", "build", ["alpha", "beta"]), ("ev-1", "hooks", "build", ["alpha", "beta"])]
        status, graph = _request(f"{base}/api/graph")
        assert graph["counts"]["event:hooks/build"] == 2

        status, answer = _request(f"{base}{cluster.PATH}", b"{}", {"Content-Type": "application/json",
                                                                   "Host": INSIDE})
        assert status == 400 and "invalid CloudEvent" in answer["error"] and "ce-specversion" in answer["error"]
        status, answer = _request(f"{base}{cluster.PATH}", b"{nope", {
            "Content-Type": "application/cloudevents+json", "Host": INSIDE})
        assert status == 400 and "not valid JSON" in answer["error"]
        assert _deliver(base, events.to_binary(_event("ev-3", 3, source="dlq")))[0] == 400
        status, answer = _deliver(base, events.to_binary(_event("ev-4", 4)), host="knevents-ui.default.example.com")
        assert status == 403 and "inside the cluster" in answer["error"]
        big = events.to_binary(_event("ev-5", 5))
        status, answer = _request(f"{base}{cluster.PATH}", b"x" * (2 * 1024 * 1024),
                                  {**big.headers, "Host": INSIDE})
        assert status == 413
        assert _request(f"{base}/health") == (200, b"ok\n")
        assert [e["id"] for e in _listed(base)] == ["ev-2", "ev-1"]  # nothing refused got in

    nc = await nats.connect(nats_server.url)
    try:
        info = await nc.jetstream().stream_info("KNEVENTS-default")
        assert info.state.messages == 2
        assert (info.config.max_age, info.config.max_bytes, info.config.max_msgs) == (
            cluster.ARCHIVE.max_age, cluster.ARCHIVE.max_bytes, cluster.ARCHIVE.max_msgs)
        assert info.config.duplicate_window == cluster.DUPLICATE_WINDOW
    finally:
        await nc.close()
    with _ui(nats_server.url, manifests) as base:  # a new process (Knative scaled it to zero and back) reads them
        assert [e["id"] for e in _listed(base)] == ["ev-2", "ev-1"]


def _post(event: events.Event) -> web.Request:
    message = events.to_binary(event)
    return web.Request("POST", "/", web.Headers(message.headers), message.body)


def _function(manifests: Path, name: str, nats_url: str, **env: str) -> sensor_app.SensorApp:
    app = sensor_app.SensorApp.from_env({"KNEVENTS_SPEC": str(manifests / f"{name}.yaml"),
                                         "KNEVENTS_NATS_URL": nats_url, **env})
    assert app.runtime is not None, app.problem
    return app


async def test_sensor_functions_record_firings_only_when_asked_and_the_ui_shows_them(
        nats_server: NatsServer, manifests: Path) -> None:
    recording = _function(manifests, "alpha", nats_server.url, KNEVENTS_RECORD_FIRINGS="1")
    quiet = _function(manifests, "beta", nats_server.url)
    assert quiet.runtime is not None and quiet.runtime._fire is triggers.fire  # the hot path untouched
    nc = await nats.connect(nats_server.url)
    seen = await nc.subscribe("knevents.firings.>")
    await nc.flush()  # subscribed at the server before the recording function publishes a firing
    try:
        with _ui(nats_server.url, manifests) as base:
            event = _event("ev-fire", 7)
            assert _deliver(base, events.to_binary(event))[0] == 200
            answer = await recording.handle(_post(event))
            assert answer.status == 200 and json.loads(answer.body)["fired"][0]["trigger"] == "log-it"
            firings = await _wait(lambda: _request(f"{base}/api/firings")[1], "the firing on the page")
            assert [(f["sensor"], f["trigger"], f["kind"], f["ok"], f["events"]) for f in firings] == [
                ("alpha", "log-it", "log", True, {"dep": "ev-fire"})]
            story = _request(f"{base}/api/events/{_listed(base)[0]['seq']}")[1]
            fired = {s["sensor"]: [f["trigger"] for f in s["fired"]] for s in story["sensors"]}
            assert fired == {"alpha": ["log-it"], "beta": []}

            first = await seen.next_msg(timeout=10)
            assert first.subject == "knevents.firings.alpha"
            assert streams.Firing.from_bytes(first.data).events == {"dep": "ev-fire"}
            answer = await quiet.handle(_post(event))
            assert answer.status == 200 and json.loads(answer.body)["fired"][0]["trigger"] == "log-it"
            await nc.publish("knevents.firings.sentinel", b"{}")  # after beta's firing: nothing came before it
            assert (await seen.next_msg(timeout=10)).subject == "knevents.firings.sentinel"
        kept = await streams.last_firings(nc.jetstream(), "alpha")
        assert [(f.trigger, f.ok) for f in kept] == [("log-it", True)]
        assert await streams.last_firings(nc.jetstream(), "beta") == []
    finally:
        await nc.close()
        for app in (recording, quiet):
            assert app.runtime is not None
            await app.runtime._store.close()


async def test_replay_beside_a_cluster_posts_to_the_broker_for_one_sensor(
        nats_server: NatsServer, manifests: Path) -> None:
    with localsink.running() as broker, _ui(nats_server.url, manifests, "--allow-actions",
                                             "--broker-url", f"{broker.url}/default/default") as base:
        original = _event("ev-old", 1)
        assert _deliver(base, events.to_binary(original))[0] == 200
        page = _request(f"{base}/")[1]
        token = page.split(b'name="knevents-token" content="')[1].split(b'"')[0].decode()
        ask = {"sensor": "alpha", "since": "1h"}
        status, answer = _request(f"{base}/api/replay", json.dumps(ask).encode(), {"X-Knevents-Token": token})
        assert status == 200 and answer["events"] == 1 and answer["to"] == "broker"
        sent = broker.wait_for(1)[0]
        assert sent.path == "/default/default"
        replayed = events.from_http(sent.headers, sent.body)
        assert (replayed.id, replayed.source, replayed.subject, replayed.data) == (
            "ev-old", "hooks", "build", original.data)
        assert replayed.extensions == {"knreplay": answer["replay"], "knreplaysensor": "alpha"}

        # the Broker hands the replay to every matching Trigger, the UI's too: listed as a replay, never
        # replayed again, and the other sensor leaves it alone
        assert _deliver(base, events.to_binary(replayed)) == (200, {"event_id": "ev-old", "duplicate": False})
        assert [(e["id"], e["replay"]) for e in _listed(base)] == [("ev-old", True), ("ev-old", False)]
        status, dry = _request(f"{base}/api/replay", json.dumps({**ask, "dry_run": True}).encode(),
                               {"X-Knevents-Token": token})
        assert status == 200 and dry["events"] == 1
    beta = sensor_app.SensorApp.from_env({"KNEVENTS_SPEC": str(manifests / "beta.yaml")})
    alpha = sensor_app.SensorApp.from_env({"KNEVENTS_SPEC": str(manifests / "alpha.yaml")})
    assert json.loads((await beta.handle(_post(replayed))).body)["fired"] == []
    assert [f["trigger"] for f in json.loads((await alpha.handle(_post(replayed))).body)["fired"]] == ["log-it"]
    for n, stray in enumerate(({"knreplaysensor": "alpha"}, {"knreplaytrigger": "another"})):  # no knreplay
        event = dataclasses.replace(original, id=f"ev-stray-{n}", extensions=stray)
        fired = json.loads((await beta.handle(_post(event))).body)["fired"]
        assert [f["trigger"] for f in fired] == ["log-it"], stray  # not a replay: the extension means nothing


async def test_dead_letters_from_knative_are_shown_replayed_to_the_broker_and_dropped(
        nats_server: NatsServer, manifests: Path) -> None:
    with localsink.running() as broker, _ui(nats_server.url, manifests, "--allow-actions",
                                             "--broker-url", broker.url) as base:
        # what Knative posts to a Trigger's deadLetterSink after the retries: the event and why it failed
        failed = dataclasses.replace(_event("ev-dead", 9), extensions={
            "knativeerrorcode": "500", "knativeerrordest": "http://alpha-sensor.default.svc.cluster.local"})
        dead = f"{base}{cluster.PATH}/deadletters/alpha"
        message = events.to_binary(failed)
        assert _request(dead, message.body, {**message.headers, "Host": INSIDE})[0] == 200
        status, answer = _request(f"{base}{cluster.PATH}/deadletters/nobody", message.body,
                                  {**message.headers, "Host": INSIDE})
        assert status == 400 and "nobody" in answer["error"]
        held = await _wait(lambda: _request(f"{base}/api/deadletters")[1], "the dead letter on the page")
        assert [(d["sensor"], d["id"], d["reason"]) for d in held] == [
            ("alpha", "ev-dead", "HTTP 500 from http://alpha-sensor.default.svc.cluster.local")]
        assert _listed(base) == []  # a dead letter is not a new event
        token = _request(f"{base}/")[1].split(b'name="knevents-token" content="')[1].split(b'"')[0].decode()
        status, answer = _request(f"{base}/api/deadletters/{held[0]['seq']}/replay", b"{}",
                                  {"X-Knevents-Token": token})
        assert status == 200 and answer["sensor"] == "alpha"
        again = events.from_http(broker.wait_for(1)[0].headers, broker.wait_for(1)[0].body)
        assert (again.id, again.extensions) == ("ev-dead", {"knreplay": answer["replay"], "knreplaysensor": "alpha"})
        assert _request(f"{base}/api/deadletters")[1] == []


async def test_events_nats_would_refuse_are_4xx_and_the_ui_keeps_taking_events(
        nats_server: NatsServer, manifests: Path) -> None:
    # nats-server closes a connection whose publish line passes 4096 bytes, and nats-py then closes its client
    # for good: one such event from the Broker used to leave the UI answering 503 to every later one
    with _ui(nats_server.url, manifests) as base:
        status, answer = _deliver(base, events.to_binary(_event("ev-long", 1, source="s" * 5000)))
        assert status == 400 and "too long for a bus subject" in answer["error"]
        structured = events.to_structured(dataclasses.replace(_event("ev-long-2", 2), subject="é" * 2000))
        status, answer = _deliver(base, structured)  # short in characters, long once escaped
        assert status == 400 and "too long for a bus subject" in answer["error"]
        near = events.to_binary(dataclasses.replace(_event("ev-big", 3), data=b"x" * (1024 * 1024 - 100)))
        status, answer = _deliver(base, near)  # under max_payload alone, over it with its headers: never fits
        assert status == 413 and "max_payload" in answer["error"]
        assert _deliver(base, events.to_binary(_event("ev-fine", 4))) == (
            200, {"event_id": "ev-fine", "duplicate": False})
        assert [e["id"] for e in _listed(base)] == ["ev-fine"]


async def test_an_id_is_a_duplicate_only_from_the_same_source(nats_server: NatsServer, manifests: Path) -> None:
    # CloudEvents makes source + id unique, not id alone: two producers on one Broker may both count from 1
    with _ui(nats_server.url, manifests) as base:
        assert _deliver(base, events.to_binary(_event("1", 1))) == (200, {"event_id": "1", "duplicate": False})
        assert _deliver(base, events.to_binary(_event("1", 2, source="other"))) == (
            200, {"event_id": "1", "duplicate": False})
        assert _deliver(base, events.to_binary(_event("1", 2, source="other"))) == (
            200, {"event_id": "1", "duplicate": True})  # the Broker redelivering it
        assert [(e["id"], e["source"]) for e in _listed(base)] == [("1", "other"), ("1", "hooks")]


@pytest.mark.parametrize("event_source_here", [True, False])
async def test_only_the_graphs_events_are_counted(nats_server: NatsServer, manifests: Path,
                                                  event_source_here: bool) -> None:
    # the Broker brings every producer's events, and a subject may differ per event (an object key, a PR):
    # a count per name would grow without end and be pushed to every open page twice a second. An event a
    # sensor depends on is in the graph (and counted) whether or not its EventSource is among the manifests.
    if not event_source_here:
        (manifests / "source.yaml").unlink()
    with _ui(nats_server.url, manifests) as base:
        for n in range(20):
            event = dataclasses.replace(_event(f"obj-{n}", n, source="bucket"), subject=f"uploads/{n}.png")
            assert _deliver(base, events.to_binary(event))[0] == 200
        assert _deliver(base, events.to_binary(_event("ev-known", 1)))[0] == 200
        assert len(_listed(base)) == 21  # every event is listed and kept
        counts = _request(f"{base}/api/graph")[1]["counts"]
        assert {k: v for k, v in counts.items() if k.startswith("event:")} == {"event:hooks/build": 1}


async def test_without_the_brokers_address_replay_is_refused_not_lost(nats_server: NatsServer, manifests: Path) -> None:
    # K_SINK missing (the SinkBinding did not inject it): onto the NATS bus a replay would reach no sensor on a
    # cluster, while answering that it replayed
    with _ui(nats_server.url, manifests, "--allow-actions") as base:
        assert _deliver(base, events.to_binary(_event("ev-1", 1)))[0] == 200
        failed = dataclasses.replace(_event("ev-dead", 2), extensions={"knativeerrorcode": "500"})
        message = events.to_binary(failed)
        assert _request(f"{base}{cluster.PATH}/deadletters/alpha", message.body,
                        {**message.headers, "Host": INSIDE})[0] == 200
        held = await _wait(lambda: _request(f"{base}/api/deadletters")[1], "the dead letter on the page")
        token = _request(f"{base}/")[1].split(b'name="knevents-token" content="')[1].split(b'"')[0].decode()
        ask = json.dumps({"sensor": "alpha", "since": "1h"}).encode()
        status, answer = _request(f"{base}/api/replay", ask, {"X-Knevents-Token": token})
        assert status == 400 and "no Broker address" in answer["error"]
        status, answer = _request(f"{base}/api/deadletters/{held[0]['seq']}/replay", b"{}",
                                  {"X-Knevents-Token": token})
        assert status == 400 and "no Broker address" in answer["error"]
        assert [d["id"] for d in _request(f"{base}/api/deadletters")[1]] == ["ev-dead"]  # still there
        dry = json.dumps({"sensor": "alpha", "since": "1h", "dry_run": True}).encode()
        assert _request(f"{base}/api/replay", dry, {"X-Knevents-Token": token})[1]["events"] == 1
