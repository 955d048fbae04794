"""``knevents test`` (``testing.Simulation``) and the sensor function fire the same triggers for the same events.

Both run the same compiled engine; this feeds one event sequence through the simulation and through
``SensorRuntime`` with the in-memory store (the function's pipeline: dedupe, compare-and-set state, outbox)
and compares the firings, in order, with the events each one carried.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from knevents import events, testing, triggers, validation
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
