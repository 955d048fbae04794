"""``knevents test`` (``testing.Simulation``) and the sensor function fire the same triggers for the same events.

The simulation *is* the function's pipeline (``SensorRuntime`` on the in-memory store, with a recording
``fire``), so this holds by construction; the test keeps it so. It feeds one event sequence through the
simulation and through a ``SensorRuntime`` built the way the function builds it, and compares the firings in
order with the events each one carried, which dependencies passed or were filtered, and the AND-state held
after every step — over ``&&`` triggers, filter failures, ``conditionsReset`` by cron and ``{"reset": true}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml
from knevents import events, metrics, testing, triggers, validation
from knevents.runtime.sensor import SensorRuntime
from knevents.secrets import SecretResolver
from knevents.sensors import engine
from knevents.settings import Settings
from knevents.state.memory import MemoryStore

DATA = Path(__file__).parent / "sensors" / "data"


def _sensor(conditions: str | None, *, filtered: bool = False) -> dict[str, Any]:
    deps: list[dict[str, Any]] = [
        {"name": "a", "eventSourceName": "hooks", "eventName": "a"},
        {"name": "b", "eventSourceName": "hooks", "eventName": "b"},
    ]
    if filtered:
        deps[0]["filters"] = {"data": [{"path": "body.n", "type": "number", "comparator": ">", "value": ["1"]}]}
    template: dict[str, Any] = {"name": "t", "log": {}}
    if conditions is not None:
        template["conditions"] = conditions
    other = {"name": "only-b", "conditions": "b", "log": {}}
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Sensor", "metadata": {"name": "parity"},
            "spec": {"dependencies": deps, "triggers": [{"template": template}, {"template": other}]}}


def _event(name: str, n: int, minute: int) -> dict[str, Any]:
    return {"specversion": "1.0", "id": f"{name}-{n}-{minute}", "source": "hooks", "subject": name,
            "type": "webhook", "time": f"2024-01-15T12:{minute:02d}:00Z", "datacontenttype": "application/json",
            "data": {"header": {}, "body": {"n": n}}}


Trace = list[tuple[list[str], list[str], list[tuple[str, dict[str, str]]], dict[str, dict[str, str]]]]
"""Per step: passed dependencies, filtered ones, firings (trigger, dep -> event id), AND-state held after."""


SEQUENCE = [_event("a", 1, 0), _event("b", 1, 1), _event("a", 2, 2), _event("a", 3, 3), _event("b", 2, 4),
            _event("b", 3, 5), _event("a", 2, 2), _event("a", 5, 6)]  # includes a redelivered event


def _simulated(sensor: dict[str, Any], sequence: list[dict[str, Any]]) -> list[tuple[str, dict[str, str]]]:
    report = testing.simulate(sensor, sequence)
    return [(f["trigger"], f["events"]) for step in report["steps"] for f in step["fired"]]


def _function(sensor: dict[str, Any], sequence: list[dict[str, Any]]) -> list[tuple[str, dict[str, str]]]:
    fired: list[tuple[str, dict[str, str]]] = []

    async def fire(resolved: engine.Resolved, ctx: triggers.TriggerContext) -> triggers.TriggerResult:
        fired.append((resolved.trigger, {dep: event.id for dep, event in resolved.events.items()}))
        return triggers.TriggerResult(resolved.trigger, resolved.kind, "recorded")

    async def run() -> None:
        clock = {"now": 0.0}
        runtime = SensorRuntime(validation.parse_sensor(sensor), MemoryStore(), settings=Settings(),
                                secrets=SecretResolver(), fire=fire, clock=lambda: clock["now"])
        for item in sequence:
            event = events.from_json(item)
            assert event.time is not None
            clock["now"] = event.time.timestamp()
            await runtime.process(event)

    asyncio.run(run())
    return fired


def _simulated_trace(sensor: dict[str, Any], sequence: list[dict[str, Any]]) -> Trace:
    run = testing.Simulation(sensor)
    trace: Trace = []
    for index, item in enumerate(sequence):
        step = run.feed(item, index)
        trace.append((
            [d["name"] for d in step["dependencies"] if d["passed"]],
            [d["name"] for d in step["dependencies"] if not d["passed"]],
            [(f["trigger"], f["events"]) for f in step["fired"]],
            run.notes[-1].stored,
        ))
    return trace


def _function_trace(sensor: dict[str, Any], sequence: list[dict[str, Any]]) -> Trace:
    fired: list[tuple[str, dict[str, str]]] = []

    async def fire(resolved: engine.Resolved, ctx: triggers.TriggerContext) -> triggers.TriggerResult:
        fired.append((resolved.trigger, {dep: event.id for dep, event in resolved.events.items()}))
        return triggers.TriggerResult(resolved.trigger, resolved.kind, "recorded")

    async def run() -> Trace:
        clock = {"now": 0.0}
        parsed = validation.parse_sensor(sensor)
        runtime = SensorRuntime(parsed, MemoryStore(), settings=Settings(), secrets=SecretResolver(), fire=fire,
                                clock=lambda: clock["now"])
        trace: Trace = []
        for item in sequence:
            fired.clear()
            passed: list[str] = []
            dropped: list[str] = []
            if item.get("reset") is True:
                await runtime.reset_conditions()
            else:
                event = events.from_json(item)
                assert event.time is not None
                clock["now"] = event.time.timestamp()
                outcome = await runtime.process(event)
                if not outcome.duplicate:  # a duplicate's step lists no dependencies in the report
                    passed, dropped = list(outcome.matched), list(outcome.filtered)
            held = {}
            for t in parsed.spec.triggers:
                state = await runtime.saved_state(t.template.name)
                if state.events:
                    held[t.template.name] = {dep: e.id for dep, e in state.events.items()}
            trace.append((passed, dropped, list(fired), held))
        return trace

    return asyncio.run(run())


def _reset_sensor() -> dict[str, Any]:
    sensor = _sensor("a && b", filtered=True)
    sensor["spec"]["triggers"][0]["template"]["conditionsReset"] = [{"byTime": {"cron": "30 12 * * *"}}]
    return sensor


RESET_SEQUENCE = [
    _event("a", 2, 0),  # saved
    {"reset": True},  # a conditionsReset tick: a is forgotten
    _event("b", 1, 5),  # only-b fires; t holds b
    _event("a", 0, 10),  # filtered out (body.n > 1 fails)
    _event("a", 3, 20),  # t fires with a-3 and b-1
    _event("b", 2, 25),  # saved
    _event("a", 4, 35),  # the 12:30 cron reset forgot b-2: a-4 waits alone
    _event("b", 3, 40),  # t fires with a-4 and b-3
    _event("a", 4, 35),  # redelivered: nothing
]


def test_and_filter_and_resets_step_by_step_alike() -> None:
    sensor = _reset_sensor()
    simulated = _simulated_trace(sensor, RESET_SEQUENCE)
    assert simulated == _function_trace(sensor, RESET_SEQUENCE)
    # what the sequence is meant to exercise, so the comparison cannot pass vacuously
    assert simulated[0][3] == {"t": {"a": "a-2-0"}}
    assert simulated[1][3] == {}
    assert simulated[3][1] == ["a"]
    assert simulated[4][2] == [("t", {"a": "a-3-20", "b": "b-1-5"})]
    assert simulated[6][3] == {"t": {"a": "a-4-35"}}
    assert simulated[7][2] == [("t", {"a": "a-4-35", "b": "b-3-40"}), ("only-b", {"b": "b-3-40"})]
    assert simulated[8] == ([], [], [], {})


@pytest.mark.parametrize(
    ("conditions", "filtered"),
    [(None, False), ("a && b", False), ("a || b", False), ("a && b", True), ("(a || b) && b", False)],
)
def test_the_same_events_fire_the_same_triggers(conditions: str | None, filtered: bool) -> None:
    sensor = _sensor(conditions, filtered=filtered)
    simulated = _simulated(sensor, SEQUENCE)
    assert simulated  # every variant fires something
    assert simulated == _function(sensor, SEQUENCE)


def test_the_seed_build_sensor_fires_alike() -> None:
    sensor = yaml.safe_load((DATA / "build-sensor.yaml").read_text())
    event = json.loads((DATA / "build-event.json").read_text())
    assert _simulated(sensor, [event]) == _function(sensor, [event]) != []


def _filtered_total() -> float:
    return sum(
        sample.value
        for family in metrics.REGISTRY.collect()
        if family.name == "knevents_sensor_events_filtered"
        for sample in family.samples
        if sample.name.endswith("_total")
    )


def test_a_simulation_runs_under_a_running_loop_and_is_no_delivery(caplog: pytest.LogCaptureFixture) -> None:
    """The UI explains events from inside its event loop; a simulation must not count or log as a delivery."""

    async def inside_a_loop() -> dict[str, Any]:
        return testing.simulate(_reset_sensor(), RESET_SEQUENCE)

    before = _filtered_total()
    with caplog.at_level(logging.INFO, logger="knevents.sensor"):
        report = asyncio.run(inside_a_loop())
    assert report == testing.simulate(_reset_sensor(), RESET_SEQUENCE)
    assert [f["trigger"] for step in report["steps"] for f in step["fired"]] == ["only-b", "t", "only-b", "t", "only-b"]
    assert _filtered_total() == before
    assert not [r for r in caplog.records if r.name == "knevents.sensor"]
