"""More examples through `knevents run`: a signed GitHub source with an expression filter, two triggers per event."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from knevents.local.natsd import free_port

from tests.e2e import harness

SECRET = "mysecretvalue"


@pytest.fixture
def runners() -> Iterator[list[harness.RunnerProcess]]:
    started: list[harness.RunnerProcess] = []
    yield started
    for runner in started:
        runner.kill()


def _github(url: str, payload: dict[str, object], secret: str = SECRET) -> httpx.Response:
    body = json.dumps(payload).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return httpx.post(url, content=body, timeout=30, headers={
        "Content-Type": "application/json", "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": str(uuid.uuid4()), "X-Hub-Signature-256": f"sha256={signature}"})


def test_only_opened_pull_requests_create_a_namespace(tmp_path: Path, runners: list[harness.RunnerProcess]) -> None:
    port = free_port()
    manifests = harness.prepare("github-pr-filtered", tmp_path / "m", {'"13000"': f'"{port}"'})
    env = harness.knevents_env(tmp_path, {"KNEVENTS_SECRET_GITHUB_ACCESS_WEBHOOK_SECRET": SECRET})
    runner = harness.RunnerProcess([manifests], tmp_path / "state", env).start()
    runners.append(runner)
    url = f"http://127.0.0.1:{port}/pull-request"
    assert _github(url, {"action": "opened", "number": 42}, secret="wrong").status_code == 400
    assert _github(url, {"action": "closed", "number": 41}).status_code == 200
    assert _github(url, {"action": "opened", "number": 42}).status_code == 200
    [fired] = runner.wait_for(lambda r: r.get("tag") == "fired", "the namespace firing")
    [printed] = runner.wait_for(lambda r: "resource" in r, "the printed Namespace")
    assert printed["resource"]["kind"] == "Namespace"
    assert printed["resource"]["metadata"]["labels"]["pr-number"] == "42"
    assert len(runner.matching(lambda r: r.get("tag") == "event")) == 2  # the forged one never got in
    assert len(runner.matching(lambda r: r.get("tag") == "fired")) == 1  # "closed" was filtered out
    assert fired["trigger"] == "create-namespace"
    assert runner.stop() == 0


def test_one_event_fires_both_triggers(tmp_path: Path, runners: list[harness.RunnerProcess]) -> None:
    port = free_port()
    manifests = harness.prepare("multiple-triggers", tmp_path / "m", {'"12000"': f'"{port}"'})
    runner = harness.RunnerProcess([manifests], tmp_path / "state", harness.knevents_env(tmp_path)).start()
    runners.append(runner)
    answer = httpx.post(f"http://127.0.0.1:{port}/deploy", json={"service": "api"}, timeout=30)
    assert answer.status_code == 200
    fired = runner.wait_for(lambda r: r.get("tag") == "fired", "two firings", count=2)
    assert {f["trigger"] for f in fired} == {"build-trigger", "test-trigger"}
    assert fired[0]["events"] == fired[1]["events"]
    printed = runner.wait_for(lambda r: "resource" in r, "two printed Workflows", count=2)
    names = sorted(r["resource"]["metadata"]["generateName"] for r in printed)
    assert names == ["build-", "test-"]
    assert runner.stop() == 0
