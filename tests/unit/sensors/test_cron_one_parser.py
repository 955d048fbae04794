"""One cron parser: what ``validate`` accepts in ``conditionsReset`` and calendars, the engine, the sensor
function and the calendar source run, with robfig/cron v3's syntax (the drift bug of issue 11)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from knevents import errors, events, testing, triggers, validation
from knevents.runtime.sensor import SensorRuntime
from knevents.secrets import SecretResolver
from knevents.sensors import cron, engine
from knevents.settings import Settings
from knevents.sources import base
from knevents.sources import calendar as calendar_source
from knevents.spec import loading as spec_loading
from knevents.state.memory import MemoryStore


def _sensor(cron_spec: str, timezone: str | None = None) -> dict[str, Any]:
    by_time: dict[str, Any] = {"cron": cron_spec}
    if timezone:
        by_time["timezone"] = timezone
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Sensor",
        "metadata": {"name": "reset"},
        "spec": {
            "dependencies": [
                {"name": "a", "eventSourceName": "hooks", "eventName": "a"},
                {"name": "b", "eventSourceName": "hooks", "eventName": "b"},
            ],
            "triggers": [
                {"template": {"name": "both", "conditions": "a && b", "conditionsReset": [{"byTime": by_time}],
                              "log": {}}}
            ],
        },
    }


def _event(name: str, when: str) -> dict[str, Any]:
    return {"specversion": "1.0", "id": f"{name}-{when}", "source": "hooks", "subject": name, "type": "webhook",
            "time": when, "data": {"header": {}, "body": {}}}


# (schedule, timezone, a at, b before the reset, b after the reset)
RESETS = [
    ("@daily", None, "2024-01-15T22:00:00Z", "2024-01-15T23:30:00Z", "2024-01-16T00:30:00Z"),
    ("@every 1h30m", None, "2024-01-15T12:10:00Z", "2024-01-15T13:20:00Z", "2024-01-15T13:40:00Z"),
    ("0 9 * * *", "Europe/Paris", "2024-01-15T07:30:00Z", "2024-01-15T07:50:00Z", "2024-01-15T08:30:00Z"),
    ("CRON_TZ=Asia/Tokyo 0 0 * * ?", None, "2024-01-15T14:00:00Z", "2024-01-15T14:50:00Z", "2024-01-15T15:10:00Z"),
]


@pytest.mark.parametrize(("spec", "zone", "a", "before", "after"), RESETS, ids=[r[0] for r in RESETS])
def test_validate_accepts_and_knevents_test_resets(spec: str, zone: str | None, a: str, before: str,
                                                   after: str) -> None:
    validation.parse_sensor(_sensor(spec, zone))
    kept = testing.simulate(_sensor(spec, zone), [_event("a", a), _event("b", before)])
    assert [f["trigger"] for f in kept["steps"][1]["fired"]] == ["both"]
    reset = testing.simulate(_sensor(spec, zone), [_event("a", a), _event("b", after)])
    assert reset["steps"][1]["fired"] == [] and reset["pending"] == {"both": {"b": f"b-{after}"}}


@pytest.mark.parametrize(("spec", "zone", "a", "before", "after"), RESETS, ids=[r[0] for r in RESETS])
def test_the_sensor_function_resets_alike(spec: str, zone: str | None, a: str, before: str, after: str) -> None:
    fired: list[str] = []

    async def fire(resolved: engine.Resolved, ctx: triggers.TriggerContext) -> triggers.TriggerResult:
        fired.append(resolved.trigger)
        return triggers.TriggerResult(resolved.trigger, resolved.kind, "recorded")

    async def run(b_time: str) -> None:
        clock = {"now": 0.0}
        runtime = SensorRuntime(validation.parse_sensor(_sensor(spec, zone)), MemoryStore(), settings=Settings(),
                                secrets=SecretResolver(), fire=fire, clock=lambda: clock["now"])
        for name, when in (("a", a), ("b", b_time)):
            clock["now"] = datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp()
            await runtime.process(events.from_json(_event(name, when)))

    asyncio.run(run(before))
    assert fired == ["both"]
    asyncio.run(run(after))
    assert fired == ["both"]  # the reset between a and b cleared a


ACCEPTED = ["* * * * *", "0 0 ? * SUN", "3/15 * * * *", "0 9-17/2 * JAN-mar 1-5", "@hourly", "@every 90s",
            "TZ=UTC 0 0 1 * *", "@annually", "@midnight", "0,30 * * * 0"]
REFUSED = ["0 0 * * 7", "* * * *", "0 * * * * *", "@often", "@every soon", "61 * * * *", "*/0 * * * *",
           "TZ=Nowhere/Land 0 0 * * *", "0 0 30-2 * *", "", "L * * * *"]


@pytest.mark.parametrize("spec", ACCEPTED)
def test_robfig_syntax_is_accepted_everywhere(spec: str) -> None:
    validation.parse_sensor(_sensor(spec))
    engine.SensorEngine(validation.parse_sensor(_sensor(spec)))
    calendar = {"apiVersion": "argoproj.io/v1alpha1", "kind": "EventSource", "metadata": {"name": "cal"},
                "spec": {"calendar": {"tick": {"schedule": spec}}}}
    source = validation.parse_event_source(calendar)
    assert source.spec.calendar is not None
    calendar_source.create("tick", source.spec.calendar["tick"], base.SourceContext(event_source_name="cal"))


@pytest.mark.parametrize("spec", REFUSED)
def test_what_robfig_refuses_is_refused_by_validate(spec: str) -> None:
    with pytest.raises(errors.SpecError, match=r"cron|time zone|byTime"):
        validation.parse_sensor(_sensor(spec))
    with pytest.raises(cron.CronError):
        cron.parse(spec)


FIELD = st.one_of(
    st.sampled_from(["*", "?", "*/5", "0", "7", "59", "60", "1-5", "5-1", "MON", "jan", "1,2", "a", "-1", "3/0"]),
    st.integers(min_value=-2, max_value=70).map(str),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(FIELD, min_size=3, max_size=6).map(" ".join))
def test_validate_accepts_exactly_what_the_engine_builds(spec: str) -> None:
    """Generated schedules: validate's verdict is the engine's (the same compile function)."""
    structure = spec_loading.parse_sensor(_sensor(spec))  # Argo's structure only: the engine decides the rest
    try:
        validation.parse_sensor(_sensor(spec))
    except errors.SpecError:
        with pytest.raises(errors.SpecError):
            engine.SensorEngine(structure)
        with pytest.raises(cron.CronError):
            cron.parse(spec)
        return
    machine = engine.SensorEngine(structure)
    assert machine.last_reset("both", datetime(2024, 1, 15, tzinfo=UTC)) is not None
