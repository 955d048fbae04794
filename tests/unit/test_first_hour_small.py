"""Small first-hour fixes: tab-indented YAML, refused webhook requests logged, a closed pipe, the JSON hint."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from knevents.cli import main as cli_main
from knevents.spec import loading

from tests.unit.sources_core.helpers import request, runtime

REPO = Path(__file__).resolve().parents[2]


def test_tab_indentation_is_named() -> None:
    [problem] = loading.load_text(
        "apiVersion: argoproj.io/v1alpha1\nkind: Sensor\nspec:\n\tdependencies: []\n"
    ).problems
    assert problem.message == (
        "line 4, column 1: malformed YAML: a tab character; YAML indents with spaces only (replace the tabs)"
    )


def test_a_file_that_is_not_yaml_is_invalid_not_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "s.yaml").write_text("a:\n\tb: 1\n")
    assert cli_main(["validate", str(tmp_path)]) == 1
    assert capsys.readouterr().out.splitlines()[-1].startswith("invalid: 1 file, 0 manifests, 1 problem")


async def test_refused_requests_are_logged_with_why(caplog: pytest.LogCaptureFixture) -> None:
    rt, _ = runtime({"webhook": {"push": {"port": "12000", "endpoint": "/push", "method": "POST"}}})
    with caplog.at_level(logging.WARNING, logger="knevents"):
        bad = await rt.handle(request("POST", "/push", b"{not json", {"content-type": "application/json"}))
        wrong = await rt.handle(request("GET", "/push"))
        missing = await rt.handle(request("POST", "/nowhere", b"{}"))
    assert (bad.status, wrong.status, missing.status) == (400, 405, 404)
    assert b"GET" not in bad.body  # the endpoint takes POST only: no "or use GET"
    lines = [(r.getMessage(), getattr(r, "status", None), getattr(r, "reason", None)) for r in caplog.records]
    assert lines == [
        (
            "request rejected: POST /push -> 400",
            400,
            "request body is not valid JSON; send JSON or a form (application/x-www-form-urlencoded)",
        ),
        ("request rejected: GET /push -> 405", 405, "method not allowed"),
        ("request rejected: POST /nowhere -> 404", 404, "no event listens on /nowhere"),
    ]


def test_a_reader_that_leaves_early_is_not_a_traceback() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "knevents", "validate", str(REPO / "examples")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # as `| head` does once it has its lines
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(60) == 0, err
    assert "Traceback" not in err and "BrokenPipeError" not in err


async def test_an_unreachable_queue_is_reported_naming_the_source_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import asyncio

    from knevents.local.natsd import free_port

    endpoint = f"http://127.0.0.1:{free_port()}"
    spec = {
        "sqs": {"jobs": {"region": "us-east-1", "queue": "jobs", "endpoint": endpoint, "waitTimeSeconds": 1}}
    }
    rt, _ = runtime(spec, secrets={})
    stop = asyncio.Event()
    with caplog.at_level(logging.ERROR, logger="knevents"):
        task = asyncio.create_task(rt.run_pull(stop))
        for _ in range(600):  # botocore gives up on a closed port within seconds
            if any("retrying in" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, 30)
    [line, *_] = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert line.startswith("sqs es/jobs: ") and line.count("es/jobs") == 1, line
