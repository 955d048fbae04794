"""`knevents replay` end to end: archived events re-delivered to one sensor, and the dry run that explains them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from knevents.local.natsd import free_port

from tests.e2e import harness

SOURCE = """
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata: {{name: hooks}}
spec:
  webhook:
    push: {{port: "{port}", endpoint: /push, method: POST}}
    other: {{port: "{port}", endpoint: /other, method: POST}}
"""
SENSORS = """
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {{name: notify}}
spec:
  dependencies:
    - {{name: p, eventSourceName: hooks, eventName: push,
       filters: {{data: [{{path: body.kind, type: string, value: [build]}}]}}}}
    - {{name: o, eventSourceName: hooks, eventName: other}}
  triggers:
    - template:
        name: to-sink
        conditions: p
        http:
          url: {sink}/notify
          method: POST
          payload: [{{src: {{dependencyName: p, dataKey: body.n}}, dest: n}}]
    - template:
        name: other-sink
        conditions: o
        http:
          url: {sink}/other
          method: POST
          payload: [{{src: {{dependencyName: o, dataKey: body.n}}, dest: n}}]
---
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {{name: bystander}}
spec:
  dependencies: [{{name: p, eventSourceName: hooks, eventName: push}}]
  triggers:
    - template:
        name: side
        http: {{url: {sink}/side, method: POST}}
"""


@pytest.fixture
def runner(tmp_path: Path, sink: harness.Sink) -> Iterator[tuple[harness.RunnerProcess, int]]:
    port = free_port()
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "all.yaml").write_text(SOURCE.format(port=port) + "---\n" + SENSORS.format(sink=sink.url))
    process = harness.RunnerProcess([folder], tmp_path / "state", harness.knevents_env(tmp_path)).start()
    yield process, port
    process.kill()


def _post(runner: harness.RunnerProcess, tmp_path: Path, url: str, body: object) -> None:
    sent = harness.cli(["send", "--url", url, "--data", json.dumps(body)], runner.env, tmp_path)
    assert sent.returncode == 0, sent.stdout + sent.stderr


def _replay(runner: harness.RunnerProcess, tmp_path: Path, *args: str) -> dict[str, object]:
    done = harness.cli(["replay", "--state-dir", str(runner.state_dir), "-o", "json", *args], runner.env, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_replay_fires_again_for_one_sensor_only_keeping_event_ids(
    tmp_path: Path, runner: tuple[harness.RunnerProcess, int], sink: harness.Sink
) -> None:
    process, port = runner
    for n in (1, 2):
        _post(process, tmp_path, f"http://127.0.0.1:{port}/push", {"kind": "build", "n": n})
    _post(process, tmp_path, f"http://127.0.0.1:{port}/push", {"kind": "skip", "n": 3})
    first = sink.wait(2, lambda r: r.path == "/notify")
    sink.wait(3, lambda r: r.path == "/side")
    ids = {r.headers["knevents-event-ids"] for r in first}

    result = _replay(process, tmp_path, "--sensor", "notify", "--since", "10m")
    assert result["events"] == 3  # every archived push, the filtered one included: the sensor filters again
    again = sink.wait(4, lambda r: r.path == "/notify")[2:]
    assert {r.headers["knevents-event-ids"] for r in again} == ids  # same ids, fired again because asked
    assert sorted(r.json()["n"] for r in again) == ["1", "2"]  # Argo payload values are strings unless useRawData
    process.wait_for(lambda r: r.get("tag") == "fired" and r.get("trigger") == "to-sink", count=4)
    assert len([r for r in sink.received if r.path == "/side"]) == 3  # the other sensor got nothing


def test_replay_of_one_trigger_and_one_event_name(
    tmp_path: Path, runner: tuple[harness.RunnerProcess, int], sink: harness.Sink
) -> None:
    process, port = runner
    _post(process, tmp_path, f"http://127.0.0.1:{port}/push", {"kind": "build", "n": 1})
    _post(process, tmp_path, f"http://127.0.0.1:{port}/other", {"n": 7})
    sink.wait(1, lambda r: r.path == "/notify")
    sink.wait(1, lambda r: r.path == "/other")

    result = _replay(process, tmp_path, "--sensor", "notify", "--since", "10m", "--trigger", "other-sink")
    assert result["events"] == 2
    [again] = sink.wait(2, lambda r: r.path == "/other")[1:]
    assert again.json() == {"n": "7"}
    only_other = _replay(process, tmp_path, "--sensor", "notify", "--since", "10m", "--event-name", "other")
    assert only_other["events"] == 1
    sink.wait(3, lambda r: r.path == "/other")
    process.wait_for(lambda r: r.get("tag") == "fired" and r.get("trigger") == "other-sink", count=3)
    assert len([r for r in sink.received if r.path == "/notify"]) == 1


def test_dry_run_explains_what_would_fire_and_why_without_firing(
    tmp_path: Path, runner: tuple[harness.RunnerProcess, int], sink: harness.Sink
) -> None:
    process, port = runner
    _post(process, tmp_path, f"http://127.0.0.1:{port}/push", {"kind": "build", "n": 1})
    _post(process, tmp_path, f"http://127.0.0.1:{port}/push", {"kind": "skip", "n": 2})
    sink.wait(1, lambda r: r.path == "/notify")
    sink.wait(2, lambda r: r.path == "/side")

    result = _replay(process, tmp_path, "--sensor", "notify", "--since", "10m", "--dry-run")
    steps = result["report"]["steps"]  # type: ignore[index]
    assert result["events"] == 2
    assert [s["fired"][0]["trigger"] if s["fired"] else None for s in steps] == ["to-sink", None]
    assert steps[0]["fired"][0]["payload"] == {"n": "1"}
    [failed] = steps[1]["dependencies"]
    assert failed["passed"] is False and "body.kind" in failed["error"]

    text = harness.cli(["replay", "--state-dir", str(process.state_dir), "--sensor", "notify", "--since", "10m",
                        "--dry-run"], process.env, tmp_path)
    assert "2 archived event(s)" in text.stdout and "FIRED trigger to-sink" in text.stdout
    assert len([r for r in sink.received if r.path == "/notify"]) == 1  # nothing was delivered


def test_bad_window_and_unknown_sensor_are_clear_errors(
    tmp_path: Path, runner: tuple[harness.RunnerProcess, int]
) -> None:
    process, _ = runner
    bad = harness.cli(["replay", "--state-dir", str(process.state_dir), "--sensor", "notify", "--since", "yesterday"],
                      process.env, tmp_path)
    assert bad.returncode == 1 and "neither a duration" in bad.stderr
    unknown = harness.cli(["replay", "--state-dir", str(process.state_dir), "--sensor", "nope", "--since", "1h"],
                          process.env, tmp_path)
    assert unknown.returncode == 1 and "no sensor 'nope'" in unknown.stderr and "notify" in unknown.stderr
    no_trigger = harness.cli(["replay", "--state-dir", str(process.state_dir), "--sensor", "notify", "--since", "1h",
                              "--trigger", "zzz"], process.env, tmp_path)
    assert no_trigger.returncode == 1 and "no trigger 'zzz'" in no_trigger.stderr


def test_standalone_ui_follows_an_existing_nats_read_only(
    tmp_path: Path, sink: harness.Sink, nats_url: str
) -> None:
    import subprocess
    import sys
    import urllib.error
    import urllib.request

    port, ui_port = free_port(), free_port()
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "all.yaml").write_text(SOURCE.format(port=port) + "---\n" + SENSORS.format(sink=sink.url))
    env = harness.knevents_env(tmp_path)
    runner = harness.RunnerProcess([folder], tmp_path / "state", env, ["--nats-url", nats_url]).start()
    ui = subprocess.Popen([sys.executable, "-m", "knevents", "ui", str(folder), "--nats-url", nats_url,
                           "--port", str(ui_port)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert ui.stdout is not None and "read-only" in ui.stdout.readline()
        _post(runner, tmp_path, f"http://127.0.0.1:{port}/push", {"kind": "build", "n": 5})
        sink.wait(1, lambda r: r.path == "/notify")

        def events() -> list[dict[str, object]]:
            with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/api/events", timeout=10) as answer:
                found: list[dict[str, object]] = json.loads(answer.read())
            return found

        harness.poll(lambda: any(e["source"] == "hooks" and e["event"] == "push" for e in events()),
                     "the event in the standalone UI")
        action = urllib.request.Request(f"http://127.0.0.1:{ui_port}/api/replay", data=b"{}", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(action, timeout=10)
        refused.value.close()
        assert refused.value.code == 403  # read-only unless --allow-actions (and no page token either)
    finally:
        ui.terminate()
        ui.wait(20)
        if ui.stdout is not None:
            ui.stdout.close()
        runner.kill()
