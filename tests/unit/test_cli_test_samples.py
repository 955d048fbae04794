"""``knevents test`` on the examples' sample events, plain bodies wrapped or explained, and a folder given."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from knevents.cli import main as cli_main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FOLDERS = sorted(d for d in EXAMPLES.iterdir() if d.is_dir() and d.name != "seeds")


def test_every_example_folder_ships_sample_events() -> None:
    assert FOLDERS and all(sorted((d / "events").glob("*.json")) for d in FOLDERS), [
        d.name for d in FOLDERS if not (d / "events").is_dir()
    ]


@pytest.mark.parametrize("folder", FOLDERS, ids=[d.name for d in FOLDERS])
def test_the_sample_events_fire_the_example_sensor(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        cli_main(["test", str(folder / "sensor.yaml"), "--event", str(folder / "events"), "-o", "json"]) == 0
    )
    report = json.loads(capsys.readouterr().out)
    fired = [f["trigger"] for step in report["steps"] for f in step["fired"]]
    assert fired, report
    assert all(not f["error"] for step in report["steps"] for f in step["fired"])


def test_a_plain_body_gets_the_expected_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = tmp_path / "body.json"
    body.write_text('{"project": "p", "branch": "main", "commit": "c1"}')
    sensor = str(EXAMPLES / "quickstart" / "sensor.yaml")
    assert cli_main(["test", sensor, "--event", str(body)]) == 2
    err = capsys.readouterr().err
    assert f"{body} is not a CloudEvent (no `specversion`)" in err
    assert '"data": {"header": {"Content-Type": ["application/json"]}, "body": <the request body>}' in err
    assert "--source <EventSource> --event-name <event>" in err


def test_a_plain_body_is_wrapped_as_the_source_would(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = tmp_path / "body.json"
    body.write_text('{"project": "p", "branch": "main", "commit": "c1"}')
    sensor = str(EXAMPLES / "quickstart" / "sensor.yaml")
    argv = [
        "test",
        sensor,
        "--event",
        str(body),
        "--source",
        "webhook",
        "--event-name",
        "build",
        "-o",
        "json",
    ]
    assert cli_main(argv) == 0
    [step] = json.loads(capsys.readouterr().out)["steps"]
    assert step["dependencies"][0]["data"] == {
        "header": {"Content-Type": ["application/json"]},
        "body": {"project": "p", "branch": "main", "commit": "c1"},
    }
    assert step["fired"][0]["resource"]["spec"]["arguments"]["parameters"][0]["value"] == "p"


def test_a_body_for_a_source_without_request_bodies_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = tmp_path / "body.json"
    body.write_text("{}")
    sensor = str(EXAMPLES / "calendar-cleanup" / "sensor.yaml")
    argv = ["test", sensor, "--event", str(body), "--source", "calendar-events", "--event-name", "demo"]
    assert cli_main(argv) == 2
    assert "EventSource calendar-events is of type calendar" in capsys.readouterr().err


def test_a_folder_instead_of_the_sensor_file_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    folder = EXAMPLES / "quickstart"
    assert cli_main(["test", str(folder), "--event", str(folder / "events")]) == 2
    err = capsys.readouterr().err
    assert f"{folder} is a folder: give the Sensor's YAML file (e.g. {folder / 'sensor.yaml'})" in err
    assert "no such sensor file" not in err
