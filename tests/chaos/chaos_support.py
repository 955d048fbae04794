"""Processes for the kill test: functions-framework functions on fixed ports, and a recording trigger sink.

The chaos test SIGKILLs sensor replicas and starts each one again on the *same*
port (as a new Knative pod behind the same Service would be), so a function
process here keeps its port across restarts. The sink is its own process (the
test process is busy sending and dispatching): it answers 200 to every request
and appends one JSON line per request with the ``Knevents-Event-Ids`` header
and the body; the test reads the file incrementally.

Run the sink as ``python -m tests.chaos.chaos_support sink <port> <file>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from knevents.local.natsd import free_port

from tests.fixtures import ports

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SENSOR_MAIN = ROOT / "functions" / "sensor" / "main.py"
SOURCE_MAIN = ROOT / "functions" / "eventsource" / "main.py"


# --- function processes -------------------------------------------------------------------------


@dataclass
class Function:
    """One functions-framework process (ASGI) that can be killed and started again on its port."""

    name: str
    source: Path
    target: str
    env: Mapping[str, str]
    log_dir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def log(self) -> Path:
        return self.log_dir / f"{self.name}-{self.starts}.log"

    def start(self) -> None:
        """Start the process (not waited for: see :meth:`wait_ready`)."""
        self.starts += 1
        env = {k: v for k, v in os.environ.items() if not k.startswith("KNEVENTS_")}
        env.update({"PORT": str(self.port), **self.env})
        args = [
            str(BIN / "functions-framework"), "--source", str(self.source), "--target", self.target,
            "--host", "127.0.0.1", "--port", str(self.port), "--asgi",
        ]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                args, env=env, cwd=str(ROOT), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # gunicorn forks a worker: signal the whole group
            )

    def kill(self) -> None:
        """SIGKILL, as a node failure or an OOM kill would."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout)
        with contextlib.suppress(ProcessLookupError):  # workers left behind by the master
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def ready(self) -> bool:
        """Whether ``/health`` answers 200 now; raises when the process died."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
        try:
            return httpx.get(f"{self.url}health", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not ready after {timeout}s:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.05)


def stop_all(functions: list[Function]) -> None:
    """SIGTERM every process at once, then wait for each (SIGKILL what lingers)."""
    for function in functions:
        if function.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(function.proc.pid, signal.SIGTERM)
    for function in functions:
        function.stop()


# --- the webhook caller ----------------------------------------------------------------------

SENDERS = 24
"""Webhook requests in flight at once."""


@dataclass
class Tally:
    """What the chaos controller and the sender did."""

    kills: int = 0
    nats_restarts: int = 0
    sent: int = 0
    resends: int = 0
    rejected: Counter[str] = field(default_factory=Counter)


def key(record: Record) -> int:
    """The ``n`` a single-event trigger request carries."""
    body = record.body
    assert isinstance(body, dict) and "n" in body, f"sink got a request without the key: {body!r}"
    return int(body["n"])


async def post_accepted(client: httpx.AsyncClient, url: str, n: int, tally: Tally) -> None:
    """POST ``{"n": n}`` until the webhook answers 2xx; a 5xx or a connection error is resent (a new delivery)."""
    body = json.dumps({"n": n}).encode()
    for attempt in range(300):
        try:
            response = await client.post(url, content=body, headers={"content-type": "application/json"})
            status = response.status_code
        except httpx.TransportError as exc:
            status, reason = 0, type(exc).__name__
        else:
            reason = f"HTTP {status}"
        if 200 <= status < 300:
            tally.sent += 1
            return
        assert status == 0 or status >= 500, f"the webhook refused key {n}: {response.text}"
        tally.resends += 1
        tally.rejected[reason] += 1
        await asyncio.sleep(min(1.0, 0.05 * (attempt + 1)))
    raise AssertionError(f"key {n} was never accepted by {url}")


async def send_all(url: str, tally: Tally, count: int) -> None:
    """POST ``{"n": i}`` for every key from ``SENDERS`` callers at once, each resent until accepted."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(count):
        queue.put_nowait(n)
    limits = httpx.Limits(max_connections=SENDERS, max_keepalive_connections=SENDERS)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            await post_accepted(client, url, queue.get_nowait(), tally)

    async with httpx.AsyncClient(timeout=10.0, limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(SENDERS)))


# --- a && b pairs -------------------------------------------------------------------------------

PAIRS_YAML = """
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata: {{name: pairsrc, namespace: chaos}}
spec:
  webhook:
    a: {{port: "{port}", endpoint: /a, method: POST}}
    b: {{port: "{port}", endpoint: /b, method: POST}}
---
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {{name: pairs, namespace: chaos}}
spec:
  dependencies:
    - {{name: a, eventSourceName: pairsrc, eventName: a}}
    - {{name: b, eventSourceName: pairsrc, eventName: b}}
  triggers:{triggers}
"""
_PAIR_TRIGGER = """
    - atLeastOnce: {sure}
      template:
        name: {name}
        conditions: "a && b"
        http:
          url: {sink}/{name}
          method: POST
          payload:
            - {{src: {{dependencyName: a, dataKey: body.n}}, dest: a}}
            - {{src: {{dependencyName: b, dataKey: body.n}}, dest: b}}"""


def pair_manifests(port: int, sink: str) -> str:
    """Webhooks ``/a`` and ``/b`` on ``port`` and sensor ``pairs`` (namespace chaos) with two ``a && b`` triggers
    posting ``{a, b}`` to ``<sink>/<trigger>``: ``once`` (Argo's at-most-once default) and ``sure`` (atLeastOnce)."""
    triggers = "".join(_PAIR_TRIGGER.format(sure=sure, name=name, sink=sink)
                       for name, sure in (("once", "false"), ("sure", "true")))
    return PAIRS_YAML.format(port=port, triggers=triggers)


def pair_keys(record: Record) -> set[int]:
    """The ``n`` of the a and b events a pair firing carries."""
    body = record.body
    assert isinstance(body, dict), body
    return {int(v) for k, v in body.items() if k in ("a", "b")}


# --- the sink -----------------------------------------------------------------------------------


@dataclass
class Record:
    """One request the sink received."""

    event_ids: tuple[str, ...]
    body: object
    path: str = "/sink"


@dataclass
class Sink:
    """A sink process and an incremental reader of what it recorded."""

    port: int
    path: Path
    proc: subprocess.Popen[bytes] | None = None
    records: list[Record] = field(default_factory=list)
    _offset: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/sink"

    def poll(self) -> list[Record]:
        """Read the records appended since the last call (whole lines only); all records so far."""
        with self.path.open("rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._offset += len(complete)
        for line in complete.splitlines():
            rec = json.loads(line)
            ids = tuple(sorted(filter(None, rec["ids"].split(","))))
            self.records.append(Record(ids, json.loads(rec["body"] or "null"), rec.get("path", "/sink")))
        return self.records


@contextmanager
def sink_server(directory: Path) -> Iterator[Sink]:
    """A running sink process on a free port, terminated afterwards."""
    sink = Sink(free_port(), directory / "sink.jsonl")
    sink.path.touch()
    sink.proc = subprocess.Popen(
        [sys.executable, "-m", "tests.chaos.chaos_support", "sink", str(sink.port), str(sink.path)],
        cwd=str(ROOT),
    )
    try:
        ports.wait_for_port(sink.port, sink.proc, "the sink")
        yield sink
    finally:
        sink.proc.terminate()
        sink.proc.wait()


async def _serve_sink(port: int, path: str) -> None:
    out = open(path, "a", buffering=1)  # noqa: SIM115 (lives as long as the process)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                target = request_line.split(" ")[1] if request_line.count(" ") >= 2 else "/"
                headers = {}
                for line in header_lines:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length") or 0))
                ids = headers.get("knevents-event-ids", "")
                out.write(json.dumps({"ids": ids, "body": body.decode(), "path": target}) + "\n")
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if sys.argv[1:2] == ["sink"]:
        asyncio.run(_serve_sink(int(sys.argv[2]), sys.argv[3]))
