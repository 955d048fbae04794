"""Backoff (retryStrategy) parsing and schedules, as Argo's wait.Backoff computes them."""

from __future__ import annotations

import random

import pytest
from knevents import errors
from knevents.spec import models
from knevents.triggers import backoff


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (1_000_000_000, 1.0),
        ("1s", 1.0),
        ("500ms", 0.5),
        ("1m30s", 90.0),
        ("1.5h", 5400.0),
        ("250us", 0.00025),
        ("10", 1e-8),
        ("0", 0.0),
    ],
)
def test_parse_duration_accepts_nanoseconds_and_go_durations(value: int | str, seconds: float) -> None:
    assert backoff.parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["1 second", "s", "1x", "", "1s2", True])
def test_parse_duration_rejects_garbage_with_the_field_name(value: object) -> None:
    with pytest.raises(errors.TriggerError, match=r"retryStrategy\.duration"):
        backoff.parse_duration(value, field="retryStrategy.duration")  # type: ignore[arg-type]


def test_missing_fields_take_argo_defaults() -> None:
    schedule = backoff.from_spec(models.Backoff.model_validate({"steps": 3}))
    assert schedule == backoff.Schedule(steps=3, duration=1.0, factor=1.0, jitter=1.0)
    assert backoff.from_spec(None) == backoff.DEFAULT


def test_delays_grow_by_factor_and_count_steps_minus_one() -> None:
    spec = models.Backoff.model_validate({"steps": 4, "duration": "100ms", "factor": 2, "jitter": 0})
    assert list(backoff.from_spec(spec).delays()) == pytest.approx([0.1, 0.2, 0.4])


def test_jitter_adds_at_most_jitter_times_the_delay() -> None:
    schedule = backoff.Schedule(steps=50, duration=1.0, factor=1.0, jitter=0.5)
    delays = list(schedule.delays(random.Random(7)))
    assert len(delays) == 49
    assert all(1.0 <= d <= 1.5 for d in delays)
    assert len(set(delays)) > 1


def test_bad_factor_is_a_clear_error() -> None:
    with pytest.raises(errors.TriggerError, match="factor"):
        backoff.from_spec({"factor": "fast"})
