"""``<state-dir>/runner.json``: how ``knevents send`` and ``knevents status`` find a running (or stopped) runner.

The runner writes it at start and marks it stopped at exit. It holds no
secrets: the NATS URL (loopback), the bus name, the source URLs, the sensors
and their triggers. The NATS port is kept across restarts when it is free, so
a client holding the URL keeps working.

``runner.lock`` beside it is held (``flock``) by the running runner for its whole life and names
its pid: a second ``knevents run`` on the same state dir is refused before it touches the
nats-server or the JetStream store of the first.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from knevents import errors

__all__ = ["FILE_NAME", "LOCK_NAME", "RunnerInfo", "SensorInfo", "SourceInfo", "lock", "pid_alive", "read", "worker_list",
           "write"]

FILE_NAME = "runner.json"
LOCK_NAME = "runner.lock"


@dataclass(frozen=True)
class SourceInfo:
    """One event of an EventSource: push URL (or ``None`` for pull sources)."""

    eventsource: str
    event: str
    type: str
    url: str | None = None
    method: str | None = None


@dataclass(frozen=True)
class SensorInfo:
    """One sensor: its namespace, triggers and dependency subjects."""

    name: str
    namespace: str
    triggers: list[str] = field(default_factory=list)
    dependencies: list[dict[str, str]] = field(default_factory=list)
    """``{"name", "eventSourceName", "eventName"}`` per dependency."""


@dataclass(frozen=True)
class RunnerInfo:
    """What a client needs to talk to the runner."""

    nats_url: str
    bus: str
    pid: int
    running: bool
    managed_nats: bool
    state_dir: str
    max_deliveries: int
    sources: list[SourceInfo] = field(default_factory=list)
    sensors: list[SensorInfo] = field(default_factory=list)
    started: str = ""
    paths: list[str] = field(default_factory=list)
    """The manifests the runner was started with (``knevents replay`` reads the sensors from them)."""
    workers: dict[int, int] = field(default_factory=dict)
    """Worker index -> pid of the processes worker 0 started (``run --workers``); empty once it stopped."""

    def nats_port(self) -> int | None:
        """The port of a runner-managed nats-server (to reuse it on restart)."""
        if not self.managed_nats:
            return None
        try:
            return int(self.nats_url.rsplit(":", 1)[1])
        except (IndexError, ValueError):
            return None

    def source_url(self, eventsource: str, event: str) -> str:
        """The push URL of one event; a clear error when unknown or pull-only."""
        for source in self.sources:
            if source.eventsource == eventsource and source.event == event:
                if source.url is None:
                    raise errors.KneventsError(
                        f"event {eventsource}/{event} is a {source.type} source without an HTTP endpoint"
                    )
                return source.url
        known = ", ".join(f"{s.eventsource}/{s.event}" for s in self.sources) or "none"
        raise errors.KneventsError(f"no event {eventsource}/{event} in the runner (known: {known})")


def worker_list(pids: Mapping[int, int]) -> list[dict[str, Any]]:
    """``[{index, pid, alive}]`` of the processes serving a runner, by index (0: the runner itself)."""
    return [{"index": index, "pid": pid, "alive": pid_alive(pid)} for index, pid in sorted(pids.items())]


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lock(state_dir: Path) -> int:
    """Take the state dir for this process (a file descriptor to keep open); refuses when a runner holds it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise errors.KneventsError(
            f"another `knevents run` (pid {holder}) is running on state dir {state_dir}; "
            "stop it first (Ctrl-C or `kill " + holder + "`) or pass another --state-dir"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def write(state_dir: Path, info: RunnerInfo) -> None:
    """Write atomically (a reader never sees half a file)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = state_dir / f".{FILE_NAME}.{os.getpid()}"
    tmp.write_text(json.dumps(asdict(info), indent=2) + "\n")
    tmp.replace(state_dir / FILE_NAME)


def read(state_dir: Path) -> RunnerInfo:
    """Read ``runner.json``; :class:`errors.KneventsError` saying what to do when absent or damaged."""
    path = state_dir / FILE_NAME
    try:
        obj: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise errors.KneventsError(
            f"no runner state in {state_dir}: start one with `knevents run PATH` (or pass --state-dir)"
        ) from None
    except (OSError, ValueError) as exc:
        raise errors.KneventsError(f"{path} is unreadable: {exc}") from None
    try:
        sources = [SourceInfo(**s) for s in obj.pop("sources", [])]
        sensors = [SensorInfo(**s) for s in obj.pop("sensors", [])]
        workers = {int(index): int(pid) for index, pid in (obj.pop("workers", None) or {}).items()}
        return RunnerInfo(sources=sources, sensors=sensors, workers=workers, **obj)
    except TypeError as exc:
        raise errors.KneventsError(f"{path} is not a knevents runner file: {exc}") from None
