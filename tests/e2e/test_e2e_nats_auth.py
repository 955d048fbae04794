"""Issue 12 §3: the runner's NATS accepts only the state dir's credentials; no printed or stored URL carries them."""

from __future__ import annotations

import json
import socket
import stat
from pathlib import Path

from knevents.local import natsd
from knevents.local.natsd import free_port

from tests.e2e import harness

PASSWORD = "s3cr3t-Pa55word-for-nats"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _handshake(url: str, user: str | None = None, password: str | None = None) -> bytes:
    """Speak the NATS client protocol by hand: what the server answers a CONNECT (+PING) with."""
    port = int(url.rsplit(":", 1)[1])
    connect: dict[str, object] = {"verbose": False, "pedantic": False, "protocol": 1}
    if user is not None:
        connect.update({"user": user, "pass": password})
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        info = sock.recv(65536)
        assert info.startswith(b"INFO ") and json.loads(info[5:])["auth_required"] is True
        sock.sendall(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
        return sock.recv(4096)


def _send_bus(process: harness.RunnerProcess, text: str) -> None:
    sent = harness.cli(["send", "--bus", "--source", "github-events", "--subject", "code-push", "--state-dir",
                        str(process.state_dir), "--data", json.dumps({"body": {"head_commit": {"message": text}}})],
                       process.env, process.state_dir.parent)
    assert sent.returncode == 0, sent.stdout + sent.stderr


def _status_text(process: harness.RunnerProcess) -> str:
    out = harness.cli(["status", "--state-dir", str(process.state_dir)], process.env, process.state_dir.parent)
    assert out.returncode == 0, out.stderr
    return out.stdout + out.stderr


def test_embedded_nats_refuses_clients_without_the_credentials(tmp_path: Path, sink: harness.Sink) -> None:
    manifests = harness.prepare("http-trigger", tmp_path / "m", {'"12000"': f'"{free_port()}"',
                                                                 "http://localhost:8080": sink.url})
    process = harness.RunnerProcess([manifests], tmp_path / "state", harness.knevents_env(tmp_path)).start()
    try:
        state = process.state_dir
        creds = json.loads((state / "nats-credentials.json").read_text())
        assert _mode(state / "nats-credentials.json") == 0o600 and _mode(state / "nats-server.conf") == 0o600
        info = json.loads((state / "runner.json").read_text())
        assert "@" not in info["nats_url"] and creds["password"] not in (state / "runner.json").read_text()
        assert b"Authorization Violation" in _handshake(info["nats_url"])
        assert b"Authorization Violation" in _handshake(info["nats_url"], "knevents", "guess")
        assert _handshake(info["nats_url"], creds["user"], creds["password"]).startswith(b"PONG")
        _send_bus(process, "over the bus")
        sink.wait(1, lambda r: r.json() == {"text": "over the bus"})
        assert creds["password"] not in _status_text(process) + process.output()
    finally:
        process.kill()


def test_nats_url_credentials_are_never_printed_or_stored_openly(tmp_path: Path, sink: harness.Sink) -> None:
    config = tmp_path / "auth.conf"
    config.write_text('authorization { users: [ {user: "app", password: "' + PASSWORD + '"} ] }\n')
    with natsd.NatsServer(store_dir=tmp_path / "js", config_file=config) as server:
        url = server.url.replace("nats://", f"nats://app:{PASSWORD}@")
        manifests = harness.prepare("http-trigger", tmp_path / "m", {'"12000"': f'"{free_port()}"',
                                                                     "http://localhost:8080": sink.url})
        process = harness.RunnerProcess([manifests], tmp_path / "state", harness.knevents_env(tmp_path),
                                        ["--nats-url", url]).start()
        try:
            _send_bus(process, "external")
            sink.wait(1, lambda r: r.json() == {"text": "external"})
            state = process.state_dir
            assert PASSWORD not in (state / "runner.json").read_text()
            assert PASSWORD not in _status_text(process) + process.output()
            assert _mode(state / "nats-credentials.json") == 0o600
        finally:
            process.kill()
