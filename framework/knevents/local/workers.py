"""``knevents run --workers N``: more processes for the same runner, so a busy machine's cores all work.

One Python process tops out at one core. With ``--workers N`` the runner (worker
0) starts N-1 copies of itself after its nats-server and streams are up. Every
worker:

- listens on the same webhook ports (``SO_REUSEPORT``: the kernel spreads the
  connections);
- pulls from the same durable consumer of each sensor (JetStream hands each
  message to one of them; ``max_ack_pending`` covers every worker's slots);
- keeps sensor state in the same KV buckets, where every change is a
  compare-and-set, so an ``&&`` set fires once however the events were spread.

Only worker 0 runs pull sources (a NATS subscription or a calendar in two
processes would publish twice), the UI, ``/metrics``, provider hooks and
``runner.json``. Workers connect with the state dir's NATS credentials, exit
when worker 0 goes away, and are restarted by it when one dies (what a dead
worker held is redelivered after the consumer's ack wait).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = ["WorkerPool", "default_count", "watch_parent"]

_RESTART_DELAY = 1.0
"""Seconds before a worker that died is started again."""
_PARENT_CHECK = 1.0
"""Seconds between a worker's checks that worker 0 is still there."""


def default_count(cores: int | None = None) -> int:
    """Workers when ``--workers`` is not given: one per core beyond the first, which nats-server needs, up to 8.

    On 2 cores that is 1: nats-server, the load and the runner already share them.
    """
    found = cores if cores is not None else (os.cpu_count() or 1)
    return max(1, min(found - 1, 8)) if found > 2 else 1


@dataclass
class WorkerPool:
    """Workers 1..N-1 of a runner, started, watched and stopped by worker 0."""

    command: Callable[[int], Sequence[str]]
    """The command line of worker ``i``."""
    count: int
    report: Callable[[str], None]
    started: Callable[[], None] = lambda: None
    """Called after workers were started or restarted (worker 0 then lists their pids in ``runner.json``)."""
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    _stopping: bool = False

    def start(self) -> None:
        """Start every worker (they print their own lines on the runner's output)."""
        for index in range(1, self.count):
            self.procs[index] = subprocess.Popen(list(self.command(index)))
        self.started()

    async def supervise(self, stop: asyncio.Event) -> None:
        """Restart a worker that exited while the runner runs; one line per restart."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), _RESTART_DELAY)
            if stop.is_set() or self._stopping:
                return
            for index, proc in list(self.procs.items()):
                code = proc.poll()
                if code is not None:
                    self.report(f"worker {index} exited ({code}); starting it again")
                    self.procs[index] = subprocess.Popen(list(self.command(index)))
                    self.started()

    async def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM every worker, wait for them to finish their deliveries, SIGKILL what is left."""
        self._stopping = True
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                await asyncio.to_thread(proc.wait, timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait)

    def kill(self) -> None:
        """Forced stop."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()


async def watch_parent(stop: asyncio.Event, parent: int) -> None:
    """In a worker: set ``stop`` when worker 0 (``parent``) is gone, so no orphan keeps consuming."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), _PARENT_CHECK)
        if os.getppid() != parent:
            stop.set()


def worker_command(index: int, paths: Sequence[str], flags: Sequence[str]) -> list[str]:
    """``knevents run PATHS... FLAGS... --worker-index i`` with this interpreter."""
    return [sys.executable, "-m", "knevents", "run", *paths, *flags, "--worker-index", str(index)]
