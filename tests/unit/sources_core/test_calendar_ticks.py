"""The calendar source with an injected clock: schedules, intervals, exclusions, PingSource ticks, catch-up."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from knevents import errors, events
from knevents.sources import base, calendar, calendar_store

from tests.unit.sources_core.helpers import event_source, request, runtime


class FakeTime:
    """A clock that only moves when the source sleeps."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds)
        await asyncio.sleep(0)


def _source(config: dict[str, Any], time: FakeTime, store: Any = None, name: str = "cal") -> calendar.CalendarSource:
    model = event_source({"calendar": {name: config}}, name="calendar-es").spec.calendar[name]
    return calendar.CalendarSource(name, model, base.SourceContext("calendar-es"), clock=time.clock,
                                   sleep=time.sleep, store=store)


async def _collect(source: calendar.CalendarSource, count: int) -> list[events.Event]:
    got: list[events.Event] = []
    stop = asyncio.Event()

    async def publish(event: events.Event) -> None:
        got.append(event)
        if len(got) >= count:
            stop.set()

    await asyncio.wait_for(source.run(publish, stop), 5)
    return got


def test_event_time_is_go_time_string() -> None:
    assert calendar.event_time(datetime(2024, 5, 1, 10, 30, tzinfo=UTC)) == "2024-05-01 10:30:00 +0000 UTC"
    assert calendar.event_time(datetime(2024, 5, 1, 10, 30, 0, 250000, tzinfo=UTC)) == \
        "2024-05-01 10:30:00.25 +0000 UTC"
    from zoneinfo import ZoneInfo

    ny = datetime(2024, 1, 1, 5, 0, tzinfo=ZoneInfo("America/New_York"))
    assert calendar.event_time(ny) == "2024-01-01 05:00:00 -0500 EST"


async def test_interval_ticks_every_period_with_argo_payload() -> None:
    time = FakeTime(datetime(2024, 5, 1, 10, 0, 0, 400000, tzinfo=UTC))
    source = _source({"interval": "10s", "metadata": {"hello": "world"}}, time)
    got = await _collect(source, 3)
    assert time.sleeps[0] == pytest.approx(9.6)  # Go rounds the start down to the second
    datas = [events.data_json(e) for e in got]
    assert [d["eventTime"] for d in datas] == [
        "2024-05-01 10:00:10 +0000 UTC", "2024-05-01 10:00:20 +0000 UTC", "2024-05-01 10:00:30 +0000 UTC"]
    assert datas[0]["metadata"] == {"hello": "world"}
    assert {e.type for e in got} == {"calendar"}
    assert {e.subject for e in got} == {"cal"}
    assert len({e.id for e in got}) == 3
    assert source.schedule_driven is False


async def test_schedule_in_timezone_skips_excluded_days() -> None:
    time = FakeTime(datetime(2024, 1, 1, 14, 0, tzinfo=UTC))
    source = _source({"schedule": "30 9 * * *", "timezone": "America/New_York",
                      "exclusionDates": ["EXDATE:20240102T150405Z,20240103T000000Z", "ignored"]}, time)
    assert source.schedule_driven is True
    got = await _collect(source, 2)
    assert [events.data_json(e)["eventTime"] for e in got] == [
        "2024-01-01 09:30:00 -0500 EST", "2024-01-04 09:30:00 -0500 EST"]


async def test_catchup_fires_missed_ticks_bounded_by_max_duration() -> None:
    time = FakeTime(datetime(2024, 5, 1, 12, 0, tzinfo=UTC))
    store = calendar_store.MemoryTickStore()
    store.ticks["cal"] = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)  # 3 h ago
    config = {"schedule": "0 * * * *", "persistence": {"catchup": {"enabled": True, "maxDuration": "90m"}}}
    source = _source(config, time, store)
    got = await _collect(source, 2)
    # only ticks inside the last 90 minutes are caught up: 11:00, then 12:00 (now)
    assert [events.data_json(e)["eventTime"] for e in got] == [
        "2024-05-01 11:00:00 +0000 UTC", "2024-05-01 12:00:00 +0000 UTC"]
    assert time.sleeps == []  # caught up at once
    assert store.ticks["cal"] == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


async def test_catchup_retries_a_tick_the_bus_refused() -> None:
    time = FakeTime(datetime(2024, 5, 1, 12, 0, 30, tzinfo=UTC))
    store = calendar_store.MemoryTickStore()
    source = _source({"interval": "1m", "persistence": {"catchup": {"enabled": True}}}, time, store)
    attempts: list[str] = []
    stop = asyncio.Event()

    async def publish(event: events.Event) -> None:
        attempts.append(events.data_json(event)["eventTime"])
        if len(attempts) < 3:
            raise errors.BusUnavailableError("down")
        stop.set()

    await asyncio.wait_for(source.run(publish, stop), 5)
    assert attempts == ["2024-05-01 12:01:30 +0000 UTC"] * 3


async def test_pingsource_tick_via_runtime() -> None:
    rt, bus = runtime({"calendar": {"nightly": {"schedule": "0 2 * * *", "exclusionDates": ["EXDATE:20240102T000000Z"]}}})
    assert rt.routes() == [(None, "/calendar/nightly", "POST")]
    headers = {"ce-specversion": "1.0", "ce-id": "ping-1", "ce-source": "/pings", "ce-type": "dev.knative.sources.ping",
               "ce-time": "2024-05-01T02:00:00Z"}
    assert (await rt.handle(request("POST", "/calendar/nightly", b"", headers))).status == 200
    assert (await rt.handle(request("POST", "/calendar/nightly", b"", headers))).status == 200  # redelivery
    excluded = {**headers, "ce-id": "ping-2", "ce-time": "2024-01-02T02:00:00Z"}
    assert (await rt.handle(request("POST", "/calendar/nightly", b"", excluded))).status == 200
    assert (await rt.handle(request("POST", "/calendar/nightly", b"", {"ce-time": "yesterday"}))).status == 400
    assert len(bus.events) == 2
    assert bus.events[0].id == bus.events[1].id  # the same ping dedupes downstream
    assert events.data_json(bus.events[0]) == {"eventTime": "2024-05-01 02:00:00 +0000 UTC"}


async def test_runtime_runs_interval_but_not_schedule_when_pings_drive_it() -> None:
    spec = {"calendar": {"every": {"interval": "1h"}, "cron": {"schedule": "* * * * *"}}}
    rt, _ = runtime(spec)
    assert sorted(rt.pull_entries()) == ["cron", "every"]
    rt.schedules_in_process = False
    assert rt.pull_entries() == ["every"]


@pytest.mark.parametrize("config, message", [
    ({"schedule": "61 * * * *"}, "cron"),
    ({"schedule": "* * * * * *"}, "cron"),
    ({"interval": "10 parsecs"}, "not a duration"),
    ({"interval": "0s"}, "positive"),
    ({"interval": "1s", "timezone": "Mars/Olympus"}, "unknown time zone"),
    ({"interval": "1s", "exclusionDates": ["EXDATE:2024-01-02"]}, "exclusionDates"),
])
def test_bad_calendar_specs(config: dict[str, Any], message: str) -> None:
    with pytest.raises(errors.SpecError, match=message):
        runtime({"calendar": {"c": config}})


def test_go_durations() -> None:
    from knevents.sources import common

    assert common.parse_go_duration("1m30s", "x") == 90
    assert common.parse_go_duration("1.5h", "x") == 5400
    assert common.parse_go_duration("300ms", "x") == pytest.approx(0.3)
    for bad in ["", "10", "s", "1x", "1m 2s"]:
        with pytest.raises(errors.SpecError):
            common.parse_go_duration(bad, "x")


def test_only_schedules_have_a_ping_route() -> None:
    rt, _ = runtime({"calendar": {"every": {"interval": "1h"}, "cron": {"schedule": "0 * * * *"}}})
    assert rt.routes() == [(None, "/calendar/cron", "POST")]
