"""``knevents validate``: what it prints and its exit codes (0 valid, 1 invalid, 2 usage)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from knevents import cli

from tests.unit.spec.helpers import event_source, patch, sensor


def _write(path: Path, *docs: dict[str, object]) -> Path:
    path.write_text("\n---\n".join(json.dumps(d) for d in docs))
    return path


def test_valid_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path / "s.yaml", sensor(), event_source())
    assert cli.main(["validate", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines() == [
        # the cross-check: the helper sensor's second dependency names an event the EventSource lacks
        f"warning: {tmp_path / 's.yaml'}, spec.dependencies[1].eventName: EventSource `hooks` has no event `b` "
        "(it has: a, tick)",
        "valid: 1 file, 2 manifests, 0 problems, 1 warning, 0 not supported",
    ]


def test_crosscheck_suggests_the_name_meant(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    typo = patch(sensor(), "spec.dependencies.0.eventSourceName", "hoks")
    _write(tmp_path / "s.yaml", typo, event_source())
    assert cli.main(["validate", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert (
        f"warning: {tmp_path / 's.yaml'}, spec.dependencies[0].eventSourceName: no EventSource `hoks` in "
        f"{tmp_path}; did you mean `hooks`? (defined: hooks)" in out
    )


def test_sensors_without_eventsources_get_a_note_not_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(tmp_path / "s.yaml", sensor())
    assert cli.main(["validate", "--strict", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"note: no EventSource in {tmp_path}: the sensors' dependencies were not cross-checked" in out
    assert "warning:" not in out


def test_unknown_field_is_a_warning_and_strict_makes_it_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = _write(tmp_path / "s.yaml", patch(sensor(), "spec.triggers.0.template.atLeastOnce", True))
    assert cli.main(["validate", str(file)]) == 0
    out = capsys.readouterr().out
    assert (
        f"warning: {file}, document 1, spec.triggers[0].template.atLeastOnce: unknown field `atLeastOnce` ignored "
        "(as in Argo); `atLeastOnce` belongs one level up, beside `template`" in out
    )
    assert cli.main(["validate", "--strict", str(file)]) == 1
    out = capsys.readouterr().out
    assert f"error: {file}, document 1, spec.triggers[0].template.atLeastOnce: unknown field" in out
    assert out.strip().splitlines()[-1].startswith("invalid: 1 file, 1 manifest, 1 problem, 0 warnings")


def test_an_empty_folder_is_reported_as_such(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "README.md").write_text("no manifests here")
    assert cli.main(["validate", str(tmp_path)]) == 1
    assert capsys.readouterr().out == (
        "no manifest: 0 files, 0 manifests (no EventSource, Sensor or EventBus found)\n"
    )


def test_invalid_lists_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = patch(sensor(), "spec.triggers.0.template.http.method", "FETCH")
    bad = patch(bad, "spec.triggers.1.template.k8s.operation", "apply")
    file = _write(tmp_path / "bad.yaml", bad)
    assert cli.main(["validate", str(file)]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith(
        f"error: {file}, document 1, spec.triggers[0].template.http.method: method `FETCH`"
    )
    assert "spec.triggers[1].template.k8s.operation" in lines[1]
    assert lines[-1] == "invalid: 1 file, 1 manifest, 2 problems, 0 warnings, 0 not supported"


def test_not_supported_alone_does_not_fail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    obj = patch(event_source(), "spec.nsq", {"n": {"hostAddress": "nsq:4150", "topic": "t", "channel": "c"}})
    file = _write(tmp_path / "nsq.yaml", obj)
    assert cli.main(["validate", str(file)]) == 0
    out = capsys.readouterr().out
    assert f"not supported: {file}, document 1, spec.nsq: event source type `nsq` is not supported" in out


def test_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = patch(event_source(), "spec.webhook.a.endpoint", "a")
    file = _write(
        tmp_path / "e.yaml", bad, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    )
    assert cli.main(["validate", "--output", "json", str(file)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False
    assert report["problems"] == [
        {
            "file": str(file),
            "document": 1,
            "line": 1,
            "path": "spec.webhook.a.endpoint",
            "message": "endpoint `a` must start with `/`",
        }
    ]
    assert report["skipped"][0]["document"] == 2


def test_missing_path_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["validate", str(tmp_path / "nope")]) == 2
    assert "no such file or directory" in capsys.readouterr().err


def test_no_path_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["validate"])
    assert info.value.code == 2


def test_console_script_never_shows_a_traceback(tmp_path: Path) -> None:
    file = tmp_path / "broken.yaml"
    file.write_text("apiVersion: argoproj.io/v1alpha1\nkind: Sensor\nspec: {dependencies: [\n")
    done = subprocess.run(
        [sys.executable, "-m", "knevents", "validate", str(file)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    assert "malformed YAML" in done.stdout and "line 4" in done.stdout
