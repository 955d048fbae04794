"""``knevents run``'s console: library log lines keep their reasons, in text and in JSON."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from knevents.local import console as console_mod
from knevents.local import dispatcher
from knevents.runtime import sensor_obs, source_obs


@pytest.fixture(autouse=True)
def _restore_loggers() -> Iterator[None]:
    """install_logging rewires the knevents/uvicorn/nats loggers: put them back for the other tests."""
    saved = {
        n: (lg.handlers[:], lg.level, lg.propagate)
        for n in ("knevents", "uvicorn", "nats")
        for lg in [logging.getLogger(n)]
    }
    yield
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:], logger.level, logger.propagate = handlers, level, propagate


def _console(fmt: str) -> tuple[console_mod.Console, io.StringIO]:
    out = io.StringIO()
    console = console_mod.Console(fmt, out)
    console_mod.install_logging(console, "info")
    return console, out


def test_text_lines_show_who_and_why() -> None:
    _, out = _console("text")
    sensor_obs.log_event(
        logging.INFO,
        "event filtered out",
        sensor="s1",
        event_id="e1",
        dependency="d1",
        reason="body.n is 3, not > 5",
    )
    source_obs.log_event(
        logging.WARNING, "pull source stopped with an error; restarting", eventsource="q", error="boom"
    )
    first, second = out.getvalue().splitlines()
    assert first.endswith("event filtered out [sensor=s1 dependency=d1] reason=body.n is 3, not > 5")
    assert "e1" not in first  # ids are in the JSON records, not in the text line
    assert second.endswith("pull source stopped with an error; restarting [eventsource=q] error=boom")


def test_json_records_carry_every_field() -> None:
    _, out = _console("json")
    sensor_obs.log_event(
        logging.INFO, "event filtered out", sensor="s1", event_id="e1", dependency="d1", reason="r"
    )
    record = json.loads(out.getvalue())
    assert record["msg"] == "event filtered out" and record["tag"] == "info"
    assert {k: record[k] for k in ("sensor", "event_id", "dependency", "reason", "logger")} == {
        "sensor": "s1",
        "event_id": "e1",
        "dependency": "d1",
        "reason": "r",
        "logger": "knevents.sensor",
    }


def test_the_runner_s_own_lines_are_not_repeated_by_the_sensor_log() -> None:
    _, out = _console("text")
    sensor_obs.log_event(logging.ERROR, "trigger failed", sensor="s", trigger="t", error="boom")
    sensor_obs.log_event(logging.ERROR, "state contention; asking for a redelivery", sensor="s", error="x")
    [line] = out.getvalue().splitlines()
    assert "state contention" in line


def test_a_retry_reason_is_the_sensor_s_reason_never_a_cut_off_body() -> None:
    answer = json.dumps({"event_id": "e" * 32, "matched": ["p"] * 40, "retry": "trigger t failed: HTTP 500"})
    assert dispatcher._reason(answer.encode()) == "trigger t failed: HTTP 500"
    assert dispatcher._reason(b'{"error": "NATS unreachable"}') == "NATS unreachable"
    long = dispatcher._reason(b"x" * 1000)
    assert len(long) == 300 and long.endswith("...")


def test_routine_lines_to_a_file_are_written_together_and_other_lines_at_once(tmp_path: Path) -> None:
    path = tmp_path / "out.log"

    async def main() -> list[str]:
        seen = []
        with path.open("w") as out:
            console = console_mod.Console("text", out, linger=0.2)
            console.emit("event", "hooks/one id=1")
            console.emit("fired", "s/t http: POST ... -> 200")
            seen.append(path.read_text())  # both wait for the flush
            await asyncio.sleep(0.5)
            seen.append(path.read_text())  # flushed by the loop, without another line
            console.emit("event", "hooks/one id=2")
            console.emit("warning", "something")  # written at once, and the routine line before it too
            seen.append(path.read_text())
        return seen

    waiting, flushed, after_warning = asyncio.run(main())
    assert waiting == ""
    assert [(line.split()[1], line.endswith(said)) for line, said in zip(
        flushed.splitlines(), ("hooks/one id=1", "s/t http: POST ... -> 200"), strict=True)] == [
        ("event", True), ("fired", True)]
    assert [line.split()[1] for line in after_warning.splitlines()] == ["event", "fired", "event", "warning"]


def test_routine_lines_are_flushed_at_once_on_a_terminal_or_off_a_loop(tmp_path: Path) -> None:
    leader, follower = os.openpty()
    with os.fdopen(follower, "w") as terminal:
        console_mod.Console("text", terminal).emit("event", "hooks/one id=1")  # a person is watching
        assert b"hooks/one id=1" in os.read(leader, 4096)
    os.close(leader)
    path = tmp_path / "out.log"
    with path.open("w") as out:
        console_mod.Console("text", out).emit("fired", "s/t")  # no loop: no one would flush it later
        assert "s/t" in path.read_text()
