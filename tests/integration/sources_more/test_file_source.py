"""The file source on a real directory, with its snapshot in a real JetStream KV bucket (nats_url fixture)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

import yaml
from knevents import bus, events
from knevents.runtime import source
from knevents.secrets import SecretResolver
from knevents.settings import NatsSettings, SecretSettings, Settings
from knevents.sources import file, progress

from tests import upstream
from tests.e2e import harness
from tests.integration.sources_more import local_run
from tests.unit.sources_core.helpers import event_source

WAIT = 60.0  # bounds waits for something that must happen: generous, it costs nothing when all is well


async def _until(check: Any, what: str) -> None:
    for _ in range(int(WAIT / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def _ready(nats_url: str, *event_names: str) -> None:
    """Wait until every event's baseline listing is saved (the source is watching from then on)."""
    store = progress.JetStreamProgress(NatsSettings(url=nats_url), progress.bucket_name("default", "file"))
    try:
        for name in event_names:
            for _ in range(int(WAIT / 0.05)):
                if await store.load(name) is not None:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"no baseline for {name}")
    finally:
        await store.close()


class Running:
    """A SourceRuntime over a memory bus running its pull loops."""

    def __init__(self, spec: dict[str, Any], nats_url: str, memory: bus.MemoryPublisher | None = None) -> None:
        self.memory = memory or bus.MemoryPublisher()
        settings = Settings(nats=NatsSettings(url=nats_url))
        resolver = SecretResolver(SecretSettings(secrets_dir="/nonexistent", configmaps_dir="/nonexistent"), {})
        self.rt = source.SourceRuntime(event_source(spec, "file"), self.memory, settings=settings, secrets=resolver)
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.rt.run_pull(self.stop))

    def data(self) -> list[dict[str, Any]]:
        return [json.loads(e.data or b"") for e in self.memory.events]

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, WAIT)
        await self.rt.close()


def _upstream(directory: Path) -> dict[str, Any]:
    doc = yaml.safe_load(upstream.example("event-sources", "file.yaml").read_text())
    doc["spec"]["file"]["example"]["watchPathConfig"]["directory"] = f"{directory}/"
    return doc


def test_changes_follow_inotify_order() -> None:
    old = {"a": (1, 10, 1, 0o644), "b": (2, 10, 1, 0o644), "c": (3, 10, 1, 0o644), "d": (4, 10, 1, 0o644)}
    new = {"a2": (1, 10, 1, 0o644), "c": (3, 11, 2, 0o644), "d": (4, 10, 1, 0o600), "e": (5, 1, 1, 0o644)}
    assert file.changes(old, new) == [("RENAME", "a"), ("REMOVE", "b"), ("CREATE", "a2"), ("CREATE", "e"),
                                      ("WRITE", "c"), ("CHMOD", "d")]


async def test_upstream_example_reports_creation_of_the_watched_file(nats_url: str, tmp_path: Path) -> None:
    (tmp_path / "before.txt").write_text("existing files are not events")
    running = Running(dict(_upstream(tmp_path)["spec"]), nats_url)
    try:
        await _ready(nats_url, "example")
        (tmp_path / "other.txt").write_text("not watched")
        (tmp_path / "x.txt").write_text("hello")
        await _until(lambda: running.memory.events, "the CREATE event")
        await asyncio.sleep(0.3)
    finally:
        await running.close()
    [event] = running.memory.events
    assert (event.source, event.subject, event.type) == ("file", "example", "file")
    assert running.data() == [{"name": f"{tmp_path}/x.txt", "op": "CREATE"}]


async def test_regexp_write_remove_rename_with_polling_names(nats_url: str, tmp_path: Path) -> None:
    spec = {"file": {op.lower(): {"watchPathConfig": {"directory": str(tmp_path), "pathRegexp": r"\.csv$"},
                                  "eventType": op, "polling": True, "metadata": {"op": op}}
                     for op in ("WRITE", "REMOVE", "RENAME")}}
    (tmp_path / "a.csv").write_text("1")
    (tmp_path / "b.csv").write_text("1")
    (tmp_path / "c.csv").write_text("1")
    running = Running(spec, nats_url)
    try:
        await _ready(nats_url, "write", "remove", "rename")
        with open(tmp_path / "a.csv", "a") as out:
            out.write("2")
        (tmp_path / "b.csv").unlink()
        (tmp_path / "c.csv").rename(tmp_path / "d.csv")
        (tmp_path / "skip.txt").write_text("no")
        await _until(lambda: len(running.memory.events) >= 3, "three events")
        await asyncio.sleep(0.3)
    finally:
        await running.close()
    assert sorted(running.data(), key=lambda d: d["op"]) == [
        {"name": "b.csv", "op": "REMOVE", "metadata": {"op": "REMOVE"}},
        {"name": "c.csv", "op": "RENAME", "metadata": {"op": "RENAME"}},
        {"name": "a.csv", "op": "WRITE", "metadata": {"op": "WRITE"}},
    ]


async def test_changes_while_stopped_are_published_after_a_restart(nats_url: str, tmp_path: Path) -> None:
    spec = {"file": {"drop": {"watchPathConfig": {"directory": str(tmp_path), "pathRegexp": ".*"},
                              "eventType": "CREATE"}}}
    running = Running(spec, nats_url)
    await _ready(nats_url, "drop")
    (tmp_path / "one").write_text("1")
    await _until(lambda: running.memory.events, "the first event")
    await running.close()
    (tmp_path / "two").write_text("2")  # while nothing runs
    (tmp_path / "three").write_text("3")
    again = Running(spec, nats_url)
    try:
        await _until(lambda: len(again.memory.events) >= 2, "the missed events")
        await asyncio.sleep(0.3)
    finally:
        await again.close()
    assert sorted(d["name"] for d in again.data()) == [f"{tmp_path}/three", f"{tmp_path}/two"]


async def test_refused_publish_is_retried_and_a_missing_directory_is_reported(nats_url: str, tmp_path: Path) -> None:
    watched = tmp_path / "later"
    spec = {"file": {"drop": {"watchPathConfig": {"directory": str(watched), "path": "f"}, "eventType": "CREATE"}}}
    memory = bus.MemoryPublisher()
    running = Running(spec, nats_url, memory)
    try:
        await asyncio.sleep(0.5)  # the directory does not exist: logged, the loop keeps going
        watched.mkdir()
        await _ready(nats_url, "drop")
        memory.fail = True
        (watched / "f").write_text("x")
        await asyncio.sleep(0.5)
        assert memory.events == []
        memory.fail = False
        await _until(lambda: memory.events, "the retried event")
    finally:
        await running.close()
    assert [json.loads(e.data or b"")["name"] for e in memory.events] == [f"{watched}/f"]


def test_killed_runner_delivers_every_dropped_file_after_restart(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    doc = {"apiVersion": "argoproj.io/v1alpha1", "kind": "EventSource", "metadata": {"name": "file"},
           "spec": {"file": {"example": {"watchPathConfig": {"directory": f"{drop}/", "pathRegexp": ".*"},
                                         "eventType": "CREATE"}}}}
    sink = harness.Sink()
    try:
        sensor = local_run.sensor_yaml("file", "example", ["name", "op"], sink.url)
        with local_run.running(tmp_path, doc, sensor) as runner:
            local_run.probe(lambda n: (drop / f"probe{n}").write_text("p"), sink)
            for i in range(5):
                (drop / f"f{i}").write_text(str(i))
            # all delivered before the kill: an event a sensor holds when the runner dies comes back only after
            # the local dispatcher's 120 s ack wait, which this test does not sit out
            sink.wait(5, lambda r: "/f" in r.json()["name"])
            assert runner.proc is not None
            # the runner dies (SIGKILL); its nats-server, which stands for the bus and the state store that outlive
            # a function on Knative, is stopped by the next runner
            os.kill(runner.proc.pid, signal.SIGKILL)
            runner.proc.wait()
            for i in range(5, 10):
                (drop / f"f{i}").write_text(str(i))
            runner.start()
            wanted = {f"{drop}/f{i}" for i in range(10)}
            # at least once: a firing in flight at the kill may come twice, so wait for every distinct name
            harness.poll(lambda: wanted <= {r.json()["name"] for r in sink.received}, "all ten files", timeout=60)
    finally:
        sink.close()
    got = [r for r in sink.received if "/f" in r.json()["name"]]
    assert {r.json()["name"] for r in got} == wanted
    assert {r.json()["op"] for r in got} == {"CREATE"}


def test_event_data_shape_is_argo() -> None:
    event = events.new_event(source="s", subject="e", type="file", data={"name": "/d/x", "op": "CREATE"})
    assert json.loads(event.data or b"") == {"name": "/d/x", "op": "CREATE"}


def test_upstream_example_under_knevents_run_feeds_a_sensor(tmp_path: Path) -> None:
    drop = tmp_path / "test-data"
    drop.mkdir()
    sink = harness.Sink()
    try:
        sensor = local_run.sensor_yaml("file", "example", ["name", "op"], sink.url)
        with local_run.running(tmp_path, _upstream(drop), sensor) as runner:
            # x.txt again until the watcher has its first listing; generous on a loaded machine (no timing asserted)
            for n in range(int(harness.WAIT)):
                (drop / "x.txt").write_text(str(n))
                if _got(sink, 1.0):
                    break
                (drop / "x.txt").unlink()
                # let a scan see it gone: a file recreated between two scans (same inode) is a WRITE, not a CREATE
                _got(sink, 1.0)
            output = runner.output()
    finally:
        sink.close()
    assert sink.received, f"no file event reached the sensor's target; runner output:\n{output}"
    assert sink.received[0].json() == {"name": f"{drop}/x.txt", "op": "CREATE"}


def _got(sink: harness.Sink, seconds: float) -> bool:
    try:
        sink.wait(1, timeout=seconds)
    except AssertionError:
        return False
    return True
