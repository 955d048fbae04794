"""The sftp source against Debian's OpenSSH server (tests/fixtures/sshd.py), its listing in real JetStream KV."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import yaml
from knevents import bus, metrics
from knevents.runtime import source
from knevents.secrets import SecretResolver, env_name
from knevents.settings import NatsSettings, SecretSettings, Settings
from knevents.sources import progress, sftp

from tests import upstream
from tests.e2e import harness
from tests.fixtures.sshd import PASSWORD, USER, Sshd
from tests.integration.sources_more import local_run
from tests.unit.sources_core.helpers import event_source

WAIT = 60.0  # bounds waits for something that must happen: generous, it costs nothing when all is well


async def _until(check: Any, what: str) -> None:
    for _ in range(int(WAIT / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _secrets(sshd: Sshd, *, user: str = USER, password: str = PASSWORD) -> dict[str, str]:
    return {env_name("SECRET", "address", "address"): sshd.address, env_name("SECRET", "username", "username"): user,
            env_name("SECRET", "password", "password"): password,
            env_name("SECRET", "sftp-key", "key"): sshd.private_key}


class Running:
    def __init__(self, spec: dict[str, Any], nats_url: str, secrets: dict[str, str]) -> None:
        self.memory = bus.MemoryPublisher()
        resolver = SecretResolver(SecretSettings(secrets_dir="/nonexistent", configmaps_dir="/nonexistent"), secrets)
        self.rt = source.SourceRuntime(event_source(spec, "sftp"), self.memory,
                                       settings=Settings(nats=NatsSettings(url=nats_url)), secrets=resolver)
        self.nats_url = nats_url
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.rt.run_pull(self.stop))

    async def ready(self, *names: str) -> None:
        store = progress.JetStreamProgress(NatsSettings(url=self.nats_url), progress.bucket_name("default", "sftp"))
        try:
            for name in names:
                for _ in range(int(WAIT / 0.05)):
                    if await store.load(name) is not None:
                        break
                    await asyncio.sleep(0.05)
                else:
                    raise AssertionError(f"no baseline listing for {name}")
        finally:
            await store.close()

    def data(self) -> list[dict[str, Any]]:
        return [json.loads(e.data or b"") for e in self.memory.events]

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, WAIT)
        await self.rt.close()


def _key_spec(sshd: Sshd, **fields: Any) -> dict[str, Any]:
    base = {"address": {"name": "address", "key": "address"}, "username": {"name": "username", "key": "username"},
            "sshKeySecret": {"name": "sftp-key", "key": "key"}, "pollIntervalDuration": "200ms",
            "watchPathConfig": {"directory": f"{sshd.root}/", "pathRegexp": r"\.csv$"}}
    return {"sftp": {"drop": {**base, **fields}}}


def test_changes_as_argo_diff_files() -> None:
    old = {"a": (1, 10), "b": (1, 10), "c": (1, 10)}
    new = {"a": (1, 10), "c": (2, 11), "d": (1, 12)}
    assert sftp.changes(old, new) == [("REMOVE", "b"), ("CREATE", "c"), ("CREATE", "d")]


async def test_upstream_example_with_a_password_reports_the_new_file(sshd: Sshd, nats_url: str) -> None:
    doc = yaml.safe_load(upstream.example("event-sources", "sftp.yaml").read_text())
    entry = doc["spec"]["sftp"]["example"]
    entry["watchPathConfig"]["directory"] = f"{sshd.root}/"
    entry["pollIntervalDuration"] = "200ms"
    (sshd.root / "before.txt").write_text("not an event")
    running = Running({"sftp": doc["spec"]["sftp"]}, nats_url, _secrets(sshd))
    try:
        await running.ready("example")
        (sshd.root / "other.txt").write_text("not watched")
        # written under another name and renamed: a listing between the file's creation and its write would
        # see it twice (empty, then with its size) and Argo's diff reports a changed file as CREATE again
        (sshd.root / "x.part").write_text("hello")
        (sshd.root / "x.part").rename(sshd.root / "x.txt")
        await _until(lambda: running.memory.events, "the CREATE event")
        await asyncio.sleep(0.5)
    finally:
        await running.close()
    [event] = running.memory.events
    assert (event.source, event.subject, event.type) == ("sftp", "example", "sftp")
    assert running.data() == [{"name": "x.txt", "op": "CREATE"}]


async def test_key_login_remove_events_and_catch_up_after_a_restart(sshd: Sshd, nats_url: str) -> None:
    (sshd.root / "gone.csv").write_text("1")
    spec = _key_spec(sshd, eventType="REMOVE", metadata={"site": "ftp"})
    running = Running(spec, nats_url, _secrets(sshd, user=sshd.user))
    await running.ready("drop")
    (sshd.root / "gone.csv").unlink()
    await _until(lambda: running.memory.events, "the REMOVE event")
    await running.close()
    (sshd.root / "later.csv").write_text("2")  # while nothing runs
    (sshd.root / "later.csv").unlink()
    (sshd.root / "again.csv").write_text("3")
    (sshd.root / "again.csv").unlink()
    assert running.data() == [{"name": "gone.csv", "op": "REMOVE", "metadata": {"site": "ftp"}}]
    create_spec = _key_spec(sshd, eventType="CREATE")
    (sshd.root / "while-down.csv").write_text("4")
    again = Running({"sftp": {"drop": create_spec["sftp"]["drop"]}}, nats_url, _secrets(sshd, user=sshd.user))
    try:
        await _until(lambda: again.memory.events, "the file created while down")
        await asyncio.sleep(0.5)
    finally:
        await again.close()
    assert again.data() == [{"name": "while-down.csv", "op": "CREATE"}]


async def test_a_wrong_password_is_logged_counted_and_retried(sshd: Sshd, nats_url: str,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    def failures() -> float:
        value = metrics.REGISTRY.get_sample_value("knevents_eventsource_events_rejected_total",
                                                  {"eventsource": "sftp", "event": "example", "reason": "connection"})
        return value or 0.0

    doc = yaml.safe_load(upstream.example("event-sources", "sftp.yaml").read_text())
    doc["spec"]["sftp"]["example"]["watchPathConfig"]["directory"] = f"{sshd.root}/"
    before = failures()
    running = Running({"sftp": doc["spec"]["sftp"]}, nats_url, _secrets(sshd, password="wrong-pa55word"))
    try:
        await _until(lambda: failures() >= before + 2, "two failed logins")
    finally:
        await running.close()
    assert running.memory.events == []
    assert "PermissionDenied" in caplog.text and "wrong-pa55word" not in caplog.text


def test_upstream_example_under_knevents_run_survives_a_kill(sshd: Sshd, tmp_path: Path) -> None:
    doc = yaml.safe_load(upstream.example("event-sources", "sftp.yaml").read_text())
    entry = doc["spec"]["sftp"]["example"]
    entry["watchPathConfig"] = {"directory": f"{sshd.root}/", "pathRegexp": r"^f\d$|^probe"}
    entry["pollIntervalDuration"] = "200ms"
    sink = harness.Sink()
    try:
        sensor = local_run.sensor_yaml("sftp", "example", ["name", "op"], sink.url)
        with local_run.running(tmp_path, doc, sensor, _secrets(sshd)) as runner:
            local_run.probe(lambda n: (sshd.root / f"probe{n}").write_text("p"), sink)
            for i in range(3):
                (sshd.root / f"f{i}").write_text(str(i))
            harness.poll(lambda: len({r.json()["name"] for r in sink.received if r.json()["name"][0] == "f"}) == 3,
                         "the first three files")
            assert runner.proc is not None
            os.kill(runner.proc.pid, signal.SIGKILL)  # the runner dies; its nats-server is stopped by the next one
            runner.proc.wait()
            for i in range(3, 6):
                (sshd.root / f"f{i}").write_text(str(i))
            runner.start()
            harness.poll(lambda: {r.json()["name"] for r in sink.received} >= {f"f{i}" for i in range(6)},
                         "the files dropped while the runner was dead", timeout=60)
    finally:
        sink.close()
    assert {r.json()["op"] for r in sink.received} == {"CREATE"}
