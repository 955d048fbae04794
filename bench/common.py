"""Shared pieces of the benchmarks: processes, a keep-alive HTTP load generator, percentiles.

Benchmarks print absolute figures *and* ratios against a baseline measured in the
same run, because these machines are shared and noisy.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.01)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def children(pid: int) -> list[int]:
    """The pids of ``pid``'s child processes (Linux)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        out += [int(c) for c in task.read_text().split()]
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its descendants (gunicorn's workers), from /proc (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            todo += children(current)
        except OSError:
            continue
    return total


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants, MiB (Linux).

    functions-framework serves through gunicorn, whose worker is a child process: the
    parent alone would hide the memory that grows.
    """
    total = 0
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            todo += children(current)
        except OSError:
            continue
    return total / 1024 if total else float("nan")


@dataclass
class Proc:
    popen: subprocess.Popen[bytes]
    port: int

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def start_function(source: Path, target: str, env: Mapping[str, str] | None = None, *,
                   asgi: bool = False, signature: str = "http", port: int | None = None) -> Proc:
    """Start ``functions-framework`` on a free port, the way Knative would (only env and a port)."""
    port = port or free_port()
    args = [str(BIN / "functions-framework"), "--source", str(source), "--target", target,
            "--signature-type", signature, "--host", "127.0.0.1", "--port", str(port)]
    if asgi:
        args.append("--asgi")
    full_env = {**os.environ, **(env or {})}
    popen = subprocess.Popen(args, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             cwd=str(ROOT))
    return Proc(popen, port)


def start_entry(function: str, env: Mapping[str, str], server: str = "knevents", *,
                port: int | None = None) -> Proc:
    """Start a function the way the image does (``python -m knevents.deploy.entrypoint``) with ``server``.

    ``server`` is ``KNEVENTS_SERVER``: ``knevents`` (the thin entry) or ``functions-framework``.
    """
    port = port or free_port()
    full_env = {**os.environ, **env, "KNEVENTS_FUNCTION": function, "KNEVENTS_SERVER": server,
                "KNEVENTS_FUNCTIONS_DIR": str(ROOT / "functions"), "HOST": "127.0.0.1", "PORT": str(port)}
    popen = subprocess.Popen([sys.executable, "-m", "knevents.deploy.entrypoint"], env=full_env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(ROOT))
    return Proc(popen, port)


async def _client(host: str, port: int, requests: Sequence[bytes], latencies: list[float],
                  errors: list[int], rate: float | None, start: float, index: int, concurrency: int) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for i, request in enumerate(requests):
            if rate:
                # Open loop: request k of connection c is due at (k * concurrency + c) / rate.
                delay = start + (i * concurrency + index) / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            t0 = time.perf_counter()
            writer.write(request)
            await writer.drain()
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - t0)
            status = int(status_line.split()[1]) if status_line else 0
            if status >= 300:
                errors.append(status)
    finally:
        writer.close()


@dataclass
class LoadResult:
    sent: int
    seconds: float
    latencies: list[float]
    errors: list[int]

    @property
    def rps(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0

    def p(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000


def http_request(path: str, body: bytes, headers: Mapping[str, str], port: int) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def load_many(port: int, requests: Sequence[bytes], concurrency: int = 16,
              rate: float | None = None) -> LoadResult:
    """Send each request once over ``concurrency`` keep-alive connections; open loop when ``rate`` is set."""
    latencies: list[float] = []
    errors: list[int] = []
    shares = [requests[i::concurrency] for i in range(concurrency)]

    async def main() -> float:
        start = time.perf_counter()
        await asyncio.gather(*(
            _client("127.0.0.1", port, share, latencies, errors, rate, start, i, concurrency)
            for i, share in enumerate(shares) if share
        ))
        return time.perf_counter() - start

    seconds = asyncio.run(main())
    return LoadResult(len(latencies), seconds, latencies, errors)


def load(port: int, request: bytes, total: int, concurrency: int = 16, rate: float | None = None) -> LoadResult:
    """Send the same request ``total`` times (see :func:`load_many`)."""
    return load_many(port, [request] * total, concurrency, rate)
