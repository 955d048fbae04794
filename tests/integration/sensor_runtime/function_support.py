"""Run the sensor function the way Knative would (functions-framework, ``$PORT``, env) plus a trigger sink."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from knevents import events
from knevents.local.natsd import free_port

from tests.fixtures import ports

ROOT = Path(__file__).resolve().parents[3]
MAIN = ROOT / "functions" / "sensor" / "main.py"
BIN = Path(sys.executable).parent


@dataclass
class Firing:
    path: str
    event_ids: tuple[str, ...]
    body: Any


@dataclass
class Sink:
    """A trigger sink process (see sink_server.py) and the file it records requests in."""

    port: int
    records: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/sink"

    def snapshot(self, path: str | None = None) -> list[Firing]:
        """Every request received so far (to ``path`` only, when given)."""
        out = []
        for line in self.records.read_text().splitlines():
            rec = json.loads(line)
            if path is None or rec["path"] == path:
                ids = tuple(sorted(filter(None, rec["ids"].split(","))))
                out.append(Firing(rec["path"], ids, json.loads(rec["body"] or "null")))
        return out


@contextmanager
def sink_server(directory: Path) -> Iterator[Sink]:
    """A running sink process on a free port."""
    sink = Sink(free_port(), directory / f"sink-{time.monotonic_ns()}.jsonl")
    sink.records.touch()
    sink.proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.integration.sensor_runtime.sink_server",
            str(sink.port),
            str(sink.records),
        ],
        cwd=str(ROOT),
    )
    try:
        ports.wait_for_port(sink.port, sink.proc, "the sink")
        yield sink
    finally:
        sink.proc.terminate()
        sink.proc.wait()


@dataclass
class Replica:
    """One functions-framework process serving the sensor function."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        _reap_group(self.proc)


def _reap_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill what is left of the replica's process group (gunicorn's worker outlives a killed master)."""
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def stop_all(replicas: list[Replica], timeout: float = 10.0) -> None:
    """Stop replicas in parallel: SIGTERM (as the kubelet does) to all, then wait; SIGKILL what lingers."""
    for replica in replicas:
        if replica.proc.poll() is None:
            replica.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for replica in replicas:
        try:
            replica.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            replica.proc.kill()
            replica.proc.wait()
        _reap_group(replica.proc)


def start_replica(
    spec: str,
    nats_url: str | None,
    log_dir: Path,
    *,
    asgi: bool = False,
    env: Mapping[str, str] | None = None,
) -> Replica:
    """Start one sensor function process (not yet waited for)."""
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("KNEVENTS_")}
    full_env.update({"KNEVENTS_SPEC": spec, "PORT": str(port), "THREADS": "8", **(env or {})})
    if nats_url:
        full_env["KNEVENTS_NATS_URL"] = nats_url
    target = "sensor_async" if asgi else "sensor"
    args = [
        str(BIN / "functions-framework"),
        "--source",
        str(MAIN),
        "--target",
        target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    if asgi:
        args.append("--asgi")
    log = log_dir / f"replica-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args, env=full_env, cwd=str(ROOT), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Replica(proc, port, log)


def wait_ready(replicas: list[Replica], timeout: float = 60.0) -> None:
    """Wait until every replica answers ``/health`` with 200."""
    deadline = time.monotonic() + timeout
    pending = list(replicas)
    while pending:
        replica = pending[0]
        if replica.proc.poll() is not None:
            raise RuntimeError(
                f"replica exited with {replica.proc.returncode}:\n{replica.log.read_text()[-3000:]}"
            )
        try:
            if httpx.get(f"{replica.url}health", timeout=1.0).status_code == 200:
                pending.pop(0)
                continue
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"replica not ready:\n{replica.log.read_text()[-3000:]}")
        time.sleep(0.05)


@contextmanager
def replicas(
    spec: str, nats_url: str | None, log_dir: Path, count: int = 1, **kw: Any
) -> Iterator[list[Replica]]:
    """``count`` ready replicas, stopped afterwards."""
    started = [start_replica(spec, nats_url, log_dir, **kw) for _ in range(count)]
    try:
        wait_ready(started)
        yield started
    finally:
        stop_all(started)


async def deliver(
    client: httpx.AsyncClient, url: str, event: events.Event, *, attempts: int = 40
) -> httpx.Response:
    """Deliver like a broker: binary mode, retry on 5xx/429 and connection errors with a short backoff."""
    message = events.to_binary(event)
    last: httpx.Response | None = None
    for attempt in range(attempts):
        try:
            last = await client.post(url, headers=dict(message.headers), content=message.body)
        except httpx.TransportError:
            last = None
        if last is not None and last.status_code < 500 and last.status_code != 429:
            return last
        await asyncio.sleep(min(0.5, 0.02 * 2**attempt))
    raise AssertionError(f"event {event.id} not accepted after {attempts} attempts: {last and last.text}")
