"""One state dir, one runner: a second ``knevents run`` on it is refused and the first keeps working."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from knevents.local.natsd import free_port

from tests.e2e import harness


@pytest.fixture
def runners() -> Iterator[list[harness.RunnerProcess]]:
    started: list[harness.RunnerProcess] = []
    yield started
    for runner in started:
        runner.kill()


def test_a_second_runner_on_the_same_state_dir_is_refused_naming_the_first(
    tmp_path: Path, runners: list[harness.RunnerProcess]
) -> None:
    port = free_port()
    manifests = harness.prepare("quickstart", tmp_path / "m", {'"12000"': f'"{port}"'})
    env = harness.knevents_env(tmp_path)
    first = harness.RunnerProcess([manifests], tmp_path / "state", env).start()
    runners.append(first)
    assert first.proc is not None

    second = harness.cli(["run", str(manifests), "--state-dir", str(tmp_path / "state")], env, tmp_path)
    out = second.stdout + second.stderr
    assert second.returncode == 1, out
    assert f"another `knevents run` (pid {first.proc.pid}) is running on state dir" in out
    assert "Traceback" not in out
    assert "stopping" not in out and "stopped" not in out  # it started nothing, so it says only why

    # The first runner was left alone: still marked running, its nats-server still answers.
    status = harness.cli(
        ["status", "--state-dir", str(tmp_path / "state"), "--output", "json"], env, tmp_path
    )
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["runner"]["running"] is True
    sent = harness.cli(
        [
            "send",
            "--url",
            f"http://127.0.0.1:{port}/build",
            "--data",
            json.dumps({"project": "p", "branch": "main", "commit": "c1"}),
        ],
        env,
        tmp_path,
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr
    first.wait_for(lambda r: r.get("tag") == "fired", "a firing after the refused second runner")
    assert first.stop() == 0

    # Once the first stopped, the state dir is free again.
    third = harness.RunnerProcess([manifests], tmp_path / "state", env).start()
    runners.append(third)
    assert third.stop() == 0
