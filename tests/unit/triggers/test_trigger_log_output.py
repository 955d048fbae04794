"""The log trigger writes every event of a firing; intervalSeconds throttles it."""

from __future__ import annotations

import logging

import pytest
from knevents.triggers import log

from tests.unit.triggers import trigger_support as support


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_logs_each_event_with_its_data(caplog: pytest.LogCaptureFixture) -> None:
    fired = {
        "a": support.event({"body": {"x": 1}}, id="id-a"),
        "b": support.event({"body": {"y": 2}}, id="id-b"),
    }
    resolved = support.resolved({"name": "logit", "log": {}}, fired=fired)
    with caplog.at_level(logging.INFO, logger="knevents.triggers.log"):
        result = await log.LogTrigger().execute(resolved, support.context())
    assert result.detail == "logged 2 event(s)"
    text = caplog.text
    assert "dependency a" in text and '"id": "id-a"' in text and '{"body":{"x":1}}' in text
    assert "dependency b" in text and "trigger logit" in text


async def test_interval_seconds_skips_firings_inside_the_interval(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    trigger = log.LogTrigger(clock)
    resolved = support.resolved({"name": "logit", "log": {"intervalSeconds": 10}})
    ctx = support.context()
    assert (await trigger.execute(resolved, ctx)).detail.startswith("logged")
    clock.now = 5
    assert (await trigger.execute(resolved, ctx)).detail.startswith("skipped")
    clock.now = 10.5
    assert (await trigger.execute(resolved, ctx)).detail.startswith("logged")
