"""Helpers shared by the sensor-runtime tests: sensors as YAML, events, a recording ``fire``."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from knevents import errors, events, triggers, validation
from knevents.sensors import engine
from knevents.spec import models

AND_SENSOR = """
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {name: pair, namespace: test}
spec:
  dependencies:
    - {name: a, eventSourceName: hooks, eventName: a}
    - {name: b, eventSourceName: hooks, eventName: b}
  triggers:
    - template:
        name: both
        conditions: "a && b"
        http:
          url: {url}
          method: POST
          payload:
            - {src: {dependencyName: a, dataKey: body.n}, dest: a}
            - {src: {dependencyName: b, dataKey: body.n}, dest: b}
      {extra}
"""

SINGLE_SENSOR = """
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {name: single, namespace: test}
spec:
  dependencies:
    - name: a
      eventSourceName: hooks
      eventName: a
      filters:
        data:
          - {path: body.n, type: number, comparator: ">=", value: ["0"]}
  triggers:
    - template:
        name: one
        http:
          url: {url}
          method: POST
          payload:
            - {src: {dependencyName: a, dataKey: body.n}, dest: a}
      {extra}
"""


def sensor(template: str, *, url: str = "http://127.0.0.1:9/sink", extra: str = "") -> models.Sensor:
    """Parse a sensor template (``{url}``, ``{extra}`` filled in)."""
    text = template.replace("{url}", url).replace("{extra}", extra)
    parsed: models.Sensor = validation.load_one(text, kind="Sensor")
    return parsed


def event(name: str, n: int, *, id: str | None = None, **extensions: str) -> events.Event:
    """A webhook-shaped event from EventSource ``hooks``, event ``name``, body ``{"n": n}``."""
    return events.new_event(
        source="hooks",
        subject=name,
        type="webhook",
        data={"header": {}, "body": {"n": n}},
        id=id,
        extensions=extensions,
    )


@dataclass
class Recorder:
    """An injected ``fire``: records what would have been fired; fails on demand."""

    calls: list[tuple[engine.Resolved, triggers.TriggerContext]] = field(default_factory=list)
    fail_with: Callable[[engine.Resolved], errors.KneventsError | None] = lambda _: None

    async def __call__(
        self, resolved: engine.Resolved, ctx: triggers.TriggerContext
    ) -> triggers.TriggerResult:
        self.calls.append((resolved, ctx))
        failure = self.fail_with(resolved)
        if failure is not None:
            raise failure
        return triggers.TriggerResult(resolved.trigger, resolved.kind, "recorded", status=200)

    def fired(self, trigger: str | None = None) -> list[dict[str, Any]]:
        """Payloads of recorded firings (of one trigger)."""
        return [
            json.loads(r.payload or b"null") for r, _ in self.calls if trigger is None or r.trigger == trigger
        ]
