"""Throughput of the pure sensor engine (no I/O), one core.

    python bench/sensor_engine.py [--quick]

(a) single: one dependency with a data filter and an HTTP trigger with a
payload parameter; per event: match (filter) + advance + resolve (payload).
(b) and: a 2-dependency AND; events alternate between the two dependencies;
per event: match + advance on state read from / written to bytes (as the
runtime stores it) + resolve when it fires.

Baseline, measured in the same run: ``json.loads`` of the same event data (the
least any sensor must do per event). Ratios are engine events/s over baseline
events/s. The last line is JSON:
``{"bench": "sensor_engine", "single_events_per_s": N, "and_events_per_s": N, ...}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "framework"))

from knevents import events, validation
from knevents.sensors import engine

SINGLE = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Sensor",
    "metadata": {"name": "bench-single"},
    "spec": {
        "dependencies": [
            {
                "name": "push",
                "eventSourceName": "webhook",
                "eventName": "push",
                "filters": {"data": [{"path": "body.ref", "type": "string", "value": ["^refs/heads/main$"]}]},
            }
        ],
        "triggers": [
            {
                "template": {
                    "name": "notify",
                    "http": {
                        "url": "http://127.0.0.1:9/hook",
                        "method": "POST",
                        "payload": [
                            {"src": {"dependencyName": "push", "dataKey": "body.project"}, "dest": "project"}
                        ],
                    },
                }
            }
        ],
    },
}
AND = json.loads(json.dumps(SINGLE))
AND["metadata"]["name"] = "bench-and"
AND["spec"]["dependencies"].append({"name": "scan", "eventSourceName": "scanner", "eventName": "done"})
AND["spec"]["triggers"][0]["template"]["conditions"] = "push && scan"

DATA = {
    "header": {"Content-Type": ["application/json"], "X-Request-Id": ["abc"]},
    "body": {"ref": "refs/heads/main", "project": "kubedojo", "commit": "abc123", "files": ["a.go", "b.go"]},
}
NOW = datetime(2024, 1, 1, tzinfo=UTC)


def _event(i: int, source: str, subject: str) -> events.Event:
    return events.new_event(
        id=f"{i:032x}", source=source, subject=subject, type="webhook", data=DATA, time=NOW
    )


def _rate(fn: Callable[[int], None], seconds: float) -> float:
    count = 0
    start = time.process_time()
    deadline = start + seconds
    while True:
        for _ in range(200):
            fn(count)
            count += 1
        if time.process_time() >= deadline:
            break
    return count / (time.process_time() - start)


def bench_single(seconds: float) -> float:
    eng = engine.SensorEngine(validation.parse_sensor(SINGLE))
    evs = [_event(i, "webhook", "push") for i in range(1000)]

    def step(i: int) -> None:
        for result in eng.match(evs[i % 1000]):
            if not result.passed:
                continue
            for trigger in eng.triggers_for(result.name):
                adv = eng.advance(trigger, engine.TriggerState.EMPTY, result.name, result.event, NOW)
                if adv.fired is not None:
                    resolved = eng.resolve(trigger, adv.fired)
                    assert resolved.payload == b'{"project":"kubedojo"}', resolved

    return _rate(step, seconds)


def bench_and(seconds: float) -> float:
    eng = engine.SensorEngine(validation.parse_sensor(AND))
    evs = [_event(i, "webhook", "push") if i % 2 == 0 else _event(i, "scanner", "done") for i in range(1000)]
    stored = {"notify": engine.TriggerState.EMPTY.to_bytes()}
    fired = [0]

    def step(i: int) -> None:
        for result in eng.match(evs[i % 1000]):
            if not result.passed:
                continue
            for trigger in eng.triggers_for(result.name):
                state = engine.TriggerState.from_bytes(stored[trigger])
                adv = eng.advance(trigger, state, result.name, result.event, NOW)
                stored[trigger] = adv.state.to_bytes()
                if adv.fired is not None:
                    fired[0] += 1
                    eng.resolve(trigger, adv.fired)

    rate = _rate(step, seconds)
    assert fired[0] > 0
    return rate


def bench_baseline(seconds: float) -> float:
    payloads = [_event(i, "webhook", "push").data or b"" for i in range(1000)]
    return _rate(lambda i: json.loads(payloads[i % 1000]), seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about 10 s instead of about 40 s")
    args = parser.parse_args()
    seconds = 3.0 if args.quick else 12.0
    baseline = bench_baseline(seconds)
    single = bench_single(seconds)
    both = bench_and(seconds)
    print(f"baseline json.loads of the event data: {baseline:,.0f} events/s")
    print(f"single dependency, data filter + http payload parameter: {single:,.0f} events/s "
          f"({single / baseline:.3f} x baseline)")  # fmt: skip
    print(f"2-dependency AND (state to/from bytes): {both:,.0f} events/s ({both / baseline:.3f} x baseline)")
    print(
        json.dumps(
            {
                "bench": "sensor_engine",
                "single_events_per_s": round(single),
                "and_events_per_s": round(both),
                "baseline_json_loads_per_s": round(baseline),
                "single_ratio": round(single / baseline, 4),
                "and_ratio": round(both / baseline, 4),
            }
        )
    )


if __name__ == "__main__":
    main()
