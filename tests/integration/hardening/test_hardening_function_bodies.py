"""Issue 12 §5: both functions read a request body only up to their limit (thin entry, WSGI, ASGI), before buffering it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from knevents.local.natsd import free_port

REPO = Path(__file__).resolve().parents[3]
MIB = 1024 * 1024
BIG = 100 * MIB


def _rss(pid: int) -> int:
    """Resident bytes of ``pid`` and its children (gunicorn serves from a forked worker)."""
    total = 0
    children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True,
                              check=False).stdout.split()
    for one in [pid, *map(int, children)]:
        try:
            for line in Path(f"/proc/{one}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


FUNCTIONS = {  # function, its spec, its synchronous (WSGI) target, the path events are posted to
    "sensor": ("examples/http-trigger/sensor.yaml", "sensor", "/"),
    "eventsource": ("examples/http-trigger/eventsource.yaml", "handle", "/push"),
}


@pytest.fixture(params=[(f, s) for f in FUNCTIONS for s in ("thin", "asgi", "wsgi")], ids=lambda p: "-".join(p))
def function(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, int]]:
    name, server = request.param
    spec_file, wsgi_target, path = FUNCTIONS[name]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KNEVENTS_")}
    env.update({"KNEVENTS_FUNCTION": name, "KNEVENTS_SPEC": str(REPO / spec_file),
                "KNEVENTS_FUNCTIONS_DIR": str(REPO / "functions"), "PORT": str(port),
                "K_SINK": f"http://127.0.0.1:{free_port()}/"})  # the event source's broker: nobody listens
    # thin: the entry point's own server (the default); asgi/wsgi: functions-framework's two targets
    env["KNEVENTS_SERVER"] = "knevents" if server == "thin" else "functions-framework"
    if server == "wsgi":
        env.update({"FUNCTION_TARGET": wsgi_target, "FUNCTION_USE_ASGI": "false"})
    log = (tmp_path / "function.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "knevents.deploy.entrypoint"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "function.log").read_text()
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield url + path, proc.pid
    os.killpg(proc.pid, 15)
    proc.wait(20)
    log.close()


def _chunks(total: int) -> Iterator[bytes]:
    block = b"x" * MIB
    for _ in range(total // MIB):
        yield block


def _post(url: str, declared: bool) -> int | None:
    """POST 100 MiB (with or without Content-Length); the status, or None when the server cut us off first."""
    headers = {"ce-id": "1", "ce-source": "github-events", "ce-subject": "code-push", "ce-type": "webhook",
               "ce-specversion": "1.0", "content-type": "application/json"}
    if declared:
        headers["content-length"] = str(BIG)
    try:
        return httpx.post(url, content=_chunks(BIG), headers=headers, timeout=60).status_code
    except httpx.HTTPError:
        return None


def test_100_mib_bodies_are_refused_without_growing_memory(function: tuple[str, int]) -> None:
    url, pid = function
    before = _rss(pid)
    statuses = [_post(url, declared=n % 2 == 0) for n in range(6)]
    grown = _rss(pid) - before
    assert set(statuses) <= {413, None} and 413 in statuses, statuses
    assert grown < 64 * MIB, f"RSS grew {grown / MIB:.1f} MiB"
    ok = httpx.post(url, json={"body": {"head_commit": {"message": "hi"}}}, headers={
        "ce-id": "2", "ce-source": "github-events", "ce-subject": "code-push", "ce-type": "webhook",
        "ce-specversion": "1.0"}, timeout=30)
    assert ok.status_code in (200, 503), ok.text  # taken (503: the trigger target or broker is not running here)
    print(f"RSS growth after 6 x 100 MiB: {grown / MIB:.1f} MiB")
