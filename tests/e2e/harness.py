"""Drive ``knevents run`` as a subprocess: copy an example with ports/URLs substituted, read its JSON lines.

Also a tiny HTTP sink that records what the triggers send. Tests wait on
output records instead of sleeping, so they do not depend on timing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from knevents.local import natsd

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
WAIT = 60.0  # bounds waits for something that must happen: generous, it costs nothing when all is well
"""Seconds to wait for an expected line; generous for loaded CI machines, never reached when things work."""

Record = dict[str, Any]


def prepare(example: str, dest: Path, replacements: Mapping[str, str] | None = None) -> Path:
    """Copy ``examples/<example>``'s YAML files to ``dest`` with every ``old`` -> ``new`` replaced."""
    dest.mkdir(parents=True, exist_ok=True)
    for source in sorted((EXAMPLES / example).glob("*.yaml")):
        text = source.read_text()
        for old, new in (replacements or {}).items():
            text = text.replace(old, new)
        (dest / source.name).write_text(text)
    return dest


def knevents_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a knevents subprocess: no kubeconfig unless given, HOME in the test's tmp dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBECONFIG", "KNEVENTS_"))}
    # /metrics on Argo's 7777 would collide between runners of parallel tests; a test that wants it asks
    # one process per runner whatever the machine's cores (the default is one worker per core beyond the first):
    # a test that wants workers says --workers
    env.update({"HOME": str(home), "PYTHONUNBUFFERED": "1", "KNEVENTS_METRICS_PORT": "0", "KNEVENTS_WORKERS": "1"})
    env.update(extra or {})
    return env


def cli(args: list[str], env: Mapping[str, str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run one short ``knevents`` command."""
    return subprocess.run([sys.executable, "-m", "knevents", *args], env=dict(env), cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, check=False)


@dataclass
class RunnerProcess:
    """A ``knevents run --log-format json`` subprocess and the records it printed."""

    paths: list[Path]
    state_dir: Path
    env: dict[str, str]
    args: list[str] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    proc: subprocess.Popen[str] | None = None
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _reader: threading.Thread = field(default_factory=threading.Thread)

    def start(self) -> RunnerProcess:
        """Start and wait for the banner (everything is listening then)."""
        # The web UI only where a test asks for it (--ui-port): parallel runners would compete for its port.
        ui = [] if any(a in ("--ui-port", "--no-ui") for a in self.args) else ["--no-ui"]
        command = [sys.executable, "-m", "knevents", "run", *map(str, self.paths),
                   "--state-dir", str(self.state_dir), "--log-format", "json", *ui, *self.args]
        self.records.clear()
        self.proc = subprocess.Popen(command, env=self.env, cwd=self.state_dir.parent, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self._reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        self._reader.start()
        self.wait_for(lambda r: r.get("tag") == "info" and "sensors" in r, what="the startup banner")
        return self

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                try:
                    record = json.loads(line)
                except ValueError:
                    record = {"tag": "raw", "msg": line.rstrip("\n")}
                self.records.append(record)
                self._cond.notify_all()
        proc.stdout.close()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, match: Callable[[Record], bool], what: str = "a record", count: int = 1,
                 timeout: float = WAIT) -> list[Record]:
        """The first ``count`` records matching; fails with the output when they do not come."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [r for r in self.records if match(r)]
                if len(found) >= count:
                    return found[:count]
                exited = self.proc is not None and self.proc.poll() is not None
                left = deadline - time.monotonic()
                if left <= 0 or exited:
                    raise AssertionError(f"no {what} ({len(found)}/{count}); runner output:\n" + self.output())
                self._cond.wait(min(left, 0.2))

    def matching(self, match: Callable[[Record], bool]) -> list[Record]:
        """Records printed so far that match."""
        with self._cond:
            return [r for r in self.records if match(r)]

    def output(self) -> str:
        """Everything printed so far."""
        with self._cond:
            return "\n".join(self.lines[-200:])

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30) -> int:
        """Send ``sig`` and wait for a clean exit; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                raise AssertionError("the runner did not stop on " + signal.Signals(sig).name) from None
        self._reader.join(10)
        return int(self.proc.returncode)

    def kill(self) -> None:
        """Kill the runner and its nats-server (test cleanup)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if self.proc is not None:
            self._reader.join(10)
        _kill_leftover_nats(self.state_dir)


def _kill_leftover_nats(state_dir: Path) -> None:
    """A nats-server started by a runner that was SIGKILLed runs in its own session: stop it as the next runner
    on ``state_dir`` would (SIGTERM, so that its store is written out; SIGKILL after 10 s).

    It used to be found in ``ps -eo pid,args``, whose lines are cut at 80 columns when ps has no terminal (as
    under pytest): the store path never matched, and every SIGKILLed runner's nats-server ran on until the end
    of the session (two dozen JetStream servers on one worker of a full run, load for every later test).
    """
    natsd.stop_stale(state_dir / "jetstream")


@dataclass
class Received:
    """One request the sink got."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Sink:
    """A threaded HTTP server that records requests; ``status(request) -> int`` decides the answer."""

    def __init__(self, status: Callable[[Received], int] = lambda r: 200, port: int = 0) -> None:
        self.received: list[Received] = []
        self.status = status
        self._cond = threading.Condition()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                got = Received(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with sink._cond:
                    sink.received.append(got)
                    sink._cond.notify_all()
                self.send_response(sink.status(got))
                self.send_header("content-length", "0")
                self.end_headers()

            do_PUT = do_POST
            do_GET = do_POST

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int, match: Callable[[Received], bool] = lambda r: True,
             timeout: float = WAIT) -> list[Received]:
        """The first ``count`` matching requests; fails when they do not come."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [r for r in self.received if match(r)]
                if len(found) >= count:
                    return found[:count]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"sink got {len(found)}/{count} matching requests: {self.received}")
                self._cond.wait(min(left, 0.2))

    def wait_all(self, keys: Iterable[Hashable], key: Callable[[Received], Hashable],
                 match: Callable[[Received], bool] = lambda r: True, timeout: float = WAIT) -> list[Received]:
        """Every matching request so far, once each of ``keys`` has come at least once.

        For at-least-once delivery: a redelivered copy may arrive before another event's first copy, so
        counting requests is not enough to know that every event came.
        """
        wanted = set(keys)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [r for r in self.received if match(r)]
                missing = wanted - {key(r) for r in found}
                if not missing:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"sink never got {sorted(missing, key=repr)[:20]}: {self.received}")
                self._cond.wait(min(left, 0.2))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def copy_tree(src: Path, dest: Path) -> None:
    """Copy a folder (used to keep a runner's state for inspection)."""
    shutil.copytree(src, dest, dirs_exist_ok=True)


def poll(check: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Call ``check`` until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
