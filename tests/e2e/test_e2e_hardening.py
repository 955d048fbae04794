"""Issue 12 on a real ``knevents run``: oversized input never cuts the bus, slow clients are cut, nats-server is watched."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from knevents.local.natsd import free_port

from tests.e2e import harness

NEAR_LIMIT = 1_048_176
"""Bytes of body: under the webhook's 1 MiB maxPayloadSize, but over NATS' max_payload once headers are added."""


@pytest.fixture
def runner(tmp_path: Path, sink: harness.Sink) -> Iterator[tuple[harness.RunnerProcess, str]]:
    port = free_port()
    manifests = harness.prepare("http-trigger", tmp_path / "m", {'"12000"': f'"{port}"',
                                                                 "http://localhost:8080": sink.url})
    env = harness.knevents_env(tmp_path, {"KNEVENTS_HEADER_TIMEOUT": "2", "KNEVENTS_BODY_TIMEOUT": "2"})
    process = harness.RunnerProcess([manifests], tmp_path / "state", env).start()
    yield process, f"http://127.0.0.1:{port}"
    process.kill()


def _body(size: int, text: str) -> bytes:
    head = json.dumps({"head_commit": {"message": text}, "pad": ""}).encode()
    return head[:-2] + b"x" * (size - len(head)) + b'"}'


def test_near_limit_body_is_refused_and_the_bus_keeps_working(
        runner: tuple[harness.RunnerProcess, str], sink: harness.Sink) -> None:
    _, base = runner
    big = _body(NEAR_LIMIT, "big")
    assert len(big) == NEAR_LIMIT
    headers = {"content-type": "application/json", "x-padding": "p" * 4000}
    answer = httpx.post(base + "/push", content=big, headers=headers, timeout=30)
    assert answer.status_code == 413, answer.text
    assert "at most" in answer.text and "bytes" in answer.text
    for n in range(3):
        ok = httpx.post(base + "/push", json={"head_commit": {"message": f"small-{n}"}}, timeout=30)
        assert ok.status_code == 200, ok.text
    sink.wait(3, lambda r: r.json()["text"].startswith("small-"))
    assert httpx.get(base + "/health", timeout=10).status_code == 200


def test_body_over_the_port_limit_is_413_before_it_is_read(runner: tuple[harness.RunnerProcess, str]) -> None:
    _, base = runner
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /push HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 104857600\r\n\r\n{")
        answer = b""
        while chunk := sock.recv(4096):  # the server answers and closes without reading the rest
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413") and b"1048576 bytes" in answer


def test_oversized_headers_are_431(runner: tuple[harness.RunnerProcess, str]) -> None:
    _, base = runner
    many = {f"x-h{i}": "v" for i in range(200)}
    assert httpx.post(base + "/push", json={}, headers=many, timeout=10).status_code == 431
    huge = {"x-big": "v" * 70_000}
    assert httpx.post(base + "/push", json={}, headers=huge, timeout=10).status_code == 431
    assert httpx.post(base + "/push", json={"head_commit": {"message": "m"}}, timeout=10).status_code == 200


@pytest.mark.parametrize("partial", [b"POST /push HTTP/1.1\r\nHost: x\r\n",
                                     b"POST /push HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"])
def test_slow_client_is_disconnected(runner: tuple[harness.RunnerProcess, str], partial: bytes) -> None:
    _, base = runner
    port = int(base.rsplit(":", 1)[1])
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(partial)
        answer = b""
        while chunk := sock.recv(4096):  # one byte a while would not help either: the timer is not reset
            answer += chunk
    assert time.monotonic() - started < 60
    assert answer.startswith(b"HTTP/1.1 408")


def _gone(pid: int) -> bool:
    """Whether process ``pid`` has exited (a zombie holds no sockets any more)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True


def _nats_pid(state_dir: Path) -> int:
    return int((state_dir / "jetstream" / "nats-server.pid").read_text().strip())


def test_killed_nats_server_is_restarted_and_no_acknowledged_event_is_lost(
        runner: tuple[harness.RunnerProcess, str], sink: harness.Sink) -> None:
    process, base = runner
    old = _nats_pid(process.state_dir)
    os.kill(old, signal.SIGKILL)
    killed = time.monotonic()
    # the kill takes effect when the process next runs: a request the runner published before the server's
    # sockets closed would wait for an ack that never comes (the publish timeout), not fail fast
    harness.poll(lambda: _gone(old), "the killed nats-server to exit")
    accepted, slowest, recovered = [], 0.0, None
    with httpx.Client(timeout=30) as client:
        for n in range(400):
            started = time.monotonic()
            try:
                status = client.post(base + "/push", json={"head_commit": {"message": f"m-{n}"}}).status_code
            except httpx.HTTPError:
                status = 0
            slowest = max(slowest, time.monotonic() - started)
            if status == 200:
                accepted.append(f"m-{n}")
                recovered = recovered or time.monotonic() - killed
                if len(accepted) >= 20:
                    break
            else:
                assert status == 503, status
                time.sleep(0.05)
    assert recovered is not None and recovered < 20, f"no 2xx within 20 s of the kill ({recovered})"
    assert slowest < 5, f"a request during the gap took {slowest:.1f} s (should fail fast with 503)"
    assert _nats_pid(process.state_dir) != old
    sink.wait(len(accepted), lambda r: r.json()["text"] in accepted)
    restarts = process.matching(lambda r: "restarting it on port" in str(r.get("msg", "")))
    assert len(restarts) == 1, restarts
    print(f"recovered {recovered:.2f} s after SIGKILL; slowest request in the gap {slowest:.2f} s")


def _status(process: harness.RunnerProcess) -> dict[str, object]:
    result = harness.cli(["status", "--state-dir", str(process.state_dir), "--output", "json"], process.env,
                         process.state_dir.parent)
    assert result.returncode == 0, result.stderr
    status: dict[str, object] = json.loads(result.stdout)
    return status


def test_bus_stream_has_default_limits_and_status_shows_its_size(runner: tuple[harness.RunnerProcess, str]) -> None:
    process, base = runner
    assert httpx.post(base + "/push", json={"head_commit": {"message": "m"}}, timeout=10).status_code == 200
    banner = process.wait_for(lambda r: "bus stream limits" in str(r.get("msg", "")), "the limits line")
    assert "maxAge 72h" in banner[0]["msg"]
    stream = _status(process)["bus_stream"]
    assert isinstance(stream, dict)
    assert stream["max_age_seconds"] == 72 * 3600 and stream["max_bytes"] == 1024**3 and stream["max_msgs"] == 1_000_000
    assert stream["messages"] >= 1 and stream["bytes"] > 0


def test_event_bus_stream_config_sets_the_limits(tmp_path: Path, sink: harness.Sink) -> None:
    port = free_port()
    manifests = harness.prepare("http-trigger", tmp_path / "m", {'"12000"': f'"{port}"'})
    (manifests / "eventbus.yaml").write_text(
        "apiVersion: argoproj.io/v1alpha1\nkind: EventBus\nmetadata: {name: default}\nspec:\n  jetstream:\n"
        "    version: latest\n    streamConfig: |\n      maxAge: 90m\n      maxBytes: 64Mi\n      maxMsgs: 5000\n")
    process = harness.RunnerProcess([manifests], tmp_path / "state", harness.knevents_env(tmp_path)).start()
    try:
        stream = _status(process)["bus_stream"]
        assert isinstance(stream, dict)
        assert (stream["max_age_seconds"], stream["max_bytes"], stream["max_msgs"]) == (5400, 64 * 1024**2, 5000)
    finally:
        process.kill()
