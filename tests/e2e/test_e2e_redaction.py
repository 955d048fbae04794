"""Issue 12 §6: known secrets injected through every path never appear in any output, in any encoding."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, quote_plus

import httpx
import pytest
from knevents import redact, web
from knevents.local.natsd import free_port
from knevents.runtime import sensor_app

from tests.e2e import harness

USER, PASSWORD, API_KEY, TOKEN = "svc-user-7781", "pa55-W0rd/with+chars=", "api-key-0f3a9c2e71", "hook-token-55aa"
URL_PASSWORD = "url-pa55-99x"
SECRET_ENV = {"KNEVENTS_SECRET_HTTP_CREDS_USER": USER, "KNEVENTS_SECRET_HTTP_CREDS_PASSWORD": PASSWORD,
              "KNEVENTS_SECRET_HTTP_CREDS_APIKEY": API_KEY, "KNEVENTS_SECRET_HOOK_TOKEN": TOKEN}

EVENTSOURCE = """apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata: {name: hooks}
spec:
  webhook:
    push:
      port: "PORT"
      endpoint: /push
      method: POST
      authSecret: {name: hook, key: token}
"""
SENSOR = """apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {name: leaky}
spec:
  dependencies:
    - {name: dep, eventSourceName: hooks, eventName: push}
  triggers:
    - template:
        name: echo
        http:
          url: http://urluser:URL_PASSWORD@127.0.0.1:ECHO/echo?key=API_KEY
          method: POST
          basicAuth:
            username: {name: http-creds, key: user}
            password: {name: http-creds, key: password}
          secureHeaders:
            - name: X-Api-Key
              valueFrom: {secretKeyRef: {name: http-creds, key: apikey}}
          payload:
            - src: {dependencyName: dep, dataKey: body.text}
              dest: text
      atLeastOnce: true
"""


def _forms(value: str) -> set[str]:
    raw = value.encode()
    out = {value, quote(value, safe=""), quote_plus(value)}
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        out |= {encode(raw).decode(), encode(raw).decode().rstrip("=")}
    return out


FORBIDDEN = set().union(*(_forms(v) for v in (PASSWORD, API_KEY, TOKEN, URL_PASSWORD, f"{USER}:{PASSWORD}")))


def _assert_clean(where: str, text: str) -> None:
    leaked = sorted(f for f in FORBIDDEN if f in text)
    assert not leaked, f"{where} leaks {leaked}"


class _Echo(BaseHTTPRequestHandler):
    """A target that puts everything it was sent into a 500 answer (a careless error page)."""

    def do_POST(self) -> None:
        body = json.dumps({"path": self.path, "headers": dict(self.headers.items()),
                           "body": self.rfile.read(int(self.headers.get("content-length") or 0)).decode()}).encode()
        self.send_response(500)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echo() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def _manifests(tmp_path: Path, port: int, echo: int) -> Path:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "eventsource.yaml").write_text(EVENTSOURCE.replace("PORT", str(port)))
    (folder / "sensor.yaml").write_text(SENSOR.replace("ECHO", str(echo)).replace("URL_PASSWORD", URL_PASSWORD)
                                        .replace("API_KEY", API_KEY))
    return folder


def test_secrets_never_reach_any_runner_output(tmp_path: Path, echo: int) -> None:
    port = free_port()
    env = harness.knevents_env(tmp_path, SECRET_ENV)
    process = harness.RunnerProcess([_manifests(tmp_path, port, echo)], tmp_path / "state", env,
                                    ["--max-deliveries", "2", "--retry-backoff", "0.05"]).start()
    try:
        url = f"http://127.0.0.1:{port}/push"
        bad = httpx.post(url, json={"text": "x"}, headers={"authorization": f"Bearer {TOKEN}x"}, timeout=10)
        _assert_clean("a refused webhook answer", bad.text)
        ok = httpx.post(url, json={"text": "hello"}, headers={"authorization": f"Bearer {TOKEN}"}, timeout=10)
        assert ok.status_code == 200, ok.text
        _assert_clean("the webhook answer", ok.text)
        process.wait_for(lambda r: r.get("tag") == "dlq", "the dead-letter line")
        for output in ("text", "json"):
            result = harness.cli(["status", "--state-dir", str(process.state_dir), "--output", output], env, tmp_path)
            assert result.returncode == 0, result.stderr
            assert "echo" in result.stdout
            _assert_clean(f"status --output {output}", result.stdout + result.stderr)
        assert process.stop() == 0
        _assert_clean("the runner's output", process.output())
        for path in process.state_dir.glob("*.json"):
            if path.name != "nats-credentials.json":
                _assert_clean(str(path), path.read_text())
        assert any("500" in line for line in process.lines), "the failing trigger was not reported at all"
    finally:
        process.kill()


async def test_secrets_never_reach_the_sensor_functions_answer_or_log(
        tmp_path: Path, echo: int, capsys: pytest.CaptureFixture[str]) -> None:
    redact.clear()  # nothing registered by an earlier test: the function registers what it reads
    folder = _manifests(tmp_path, free_port(), echo)
    app = sensor_app.SensorApp.from_env({"KNEVENTS_SPEC": str(folder / "sensor.yaml"), **SECRET_ENV})
    event = web.Request("POST", "/", web.Headers({
        "ce-id": "e1", "ce-source": "hooks", "ce-subject": "push", "ce-type": "webhook", "ce-specversion": "1.0",
        "content-type": "application/json"}), json.dumps({"body": {"text": "hi"}}).encode())
    answer = await app.handle(event)
    assert answer.status >= 500  # the target failed under atLeastOnce: retry
    _assert_clean("the sensor function's answer", answer.body.decode())
    captured = capsys.readouterr()
    _assert_clean("the sensor function's log", captured.out + captured.err)
