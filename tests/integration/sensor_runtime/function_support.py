"""Run the sensor function the way Knative would (functions-framework, ``$PORT``, env) plus a trigger sink."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from knevents import events
from knevents.local.natsd import free_port

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
    """An HTTP server that records every trigger request it gets."""

    port: int
    firings: list[Firing] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/sink"

    def record(self, path: str, ids: str, body: bytes) -> None:
        with self.lock:
            self.firings.append(
                Firing(path, tuple(sorted(filter(None, ids.split(",")))), json.loads(body or b"null"))
            )

    def snapshot(self) -> list[Firing]:
        with self.lock:
            return list(self.firings)


@contextmanager
def sink_server() -> Iterator[Sink]:
    """A running sink on a free port."""
    sink = Sink(free_port())

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            sink.record(self.path, self.headers.get("Knevents-Event-Ids", ""), body)
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", sink.port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()


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
            args, env=full_env, cwd=str(ROOT), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
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
        for replica in started:
            replica.stop()


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
