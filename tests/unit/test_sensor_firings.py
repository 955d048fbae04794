"""The sensor function's firing recorder: the outcome in the runner's format, and a record never fails a firing."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import pytest
from knevents import errors, events, triggers
from knevents.bus import firings
from knevents.local.natsd import NatsServer
from knevents.runtime import sensor_firings


@dataclass
class _Resolved:
    trigger: str = "t1"
    kind: str = "http"
    events: dict[str, events.Event] = field(default_factory=lambda: {
        "dep": events.Event(id="e-1", source="s", type="t")})


@dataclass
class _Ctx:
    dry_run: bool = False


async def _unreachable() -> Any:
    raise OSError("NATS is gone")


def test_only_an_explicit_yes_turns_it_on() -> None:
    assert [sensor_firings.wanted(v) for v in ("1", "true", "YES", "0", "", None, "no")] == [
        True, True, True, False, False, False, False]


async def test_a_record_that_cannot_be_written_never_fails_the_firing(caplog: pytest.LogCaptureFixture) -> None:
    async def fire(resolved: Any, ctx: Any) -> triggers.TriggerResult:
        return triggers.TriggerResult(trigger="t1", kind="http", detail="posted", status=200)

    recorder = sensor_firings.FiringRecorder(fire, "s1", _unreachable)
    with caplog.at_level(logging.WARNING, logger="knevents.sensor"):
        result = await recorder(_Resolved(), _Ctx())
        await recorder(_Resolved(), _Ctx())
    assert result.detail == "posted"
    assert [r.getMessage() for r in caplog.records] == ["firing of s1/t1 not recorded: OSError"]  # once, not per firing


async def test_a_failed_firing_is_recorded_and_still_raised(nats_server: NatsServer) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        seen = await nc.subscribe(firings.firings_subject("s1"))

        async def connect() -> Any:
            return nc

        async def fire(resolved: Any, ctx: Any) -> Any:
            raise errors.TriggerError("target said 500")

        with pytest.raises(errors.TriggerError):
            await sensor_firings.FiringRecorder(fire, "s1", connect)(_Resolved(), _Ctx(dry_run=True))
        got = firings.Firing.from_bytes((await seen.next_msg(timeout=10)).data)
        assert (got.sensor, got.trigger, got.kind, got.ok, got.detail, dict(got.events), got.dry_run) == (
            "s1", "t1", "http", False, "target said 500", {"dep": "e-1"}, True)
        info = await nc.jetstream().stream_info(firings.FIRINGS_STREAM)  # made by the first record
        assert info.config.max_msgs_per_subject == firings.FIRINGS_KEPT
    finally:
        await nc.close()


async def test_firings_do_not_wait_for_nats_to_answer_about_the_stream(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # credentials that may write records but not manage streams: NATS drops the stream request and the client
    # waits for its timeout (5 s). The firings must not wait for it, nor ask again each time.
    config = tmp_path / "auth.conf"
    config.write_text('authorization { users: [ {user: "fn", password: "pw", permissions: '
                      '{publish: ["knevents.firings.>"], subscribe: ["_INBOX.>"]}} ] }\n')

    async def quiet(exc: Exception) -> None:
        pass

    async def fire(resolved: Any, ctx: Any) -> triggers.TriggerResult:
        return triggers.TriggerResult(trigger="t1", kind="http", detail="posted", status=200)

    with NatsServer(store_dir=tmp_path / "js", config_file=config) as server:
        nc = await nats.connect(server.url, user="fn", password="pw", error_cb=quiet)
        try:
            async def connect() -> Any:
                return nc

            recorder = sensor_firings.FiringRecorder(fire, "s1", connect)
            with caplog.at_level(logging.WARNING, logger="knevents.sensor"):
                for _ in range(3):
                    assert (await recorder(_Resolved(), _Ctx())).detail == "posted"
                assert caplog.records == []  # NATS has not answered yet: the firings went on without it
                assert recorder._first is not None
                await recorder._first
            assert [r.getMessage() for r in caplog.records] == ["firing of s1/t1 not recorded: TimeoutError"]
        finally:
            await nc.close()
