"""rateLimit: the per-trigger limiter spaces executions by unit / requestsPerUnit."""

from __future__ import annotations

import pytest
from knevents import errors
from knevents.spec import models
from knevents.triggers import ratelimit


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_limiter_hands_out_evenly_spaced_slots() -> None:
    clock = FakeClock()
    limiter = ratelimit.Limiter(0.5, clock)
    assert [limiter.reserve() for _ in range(3)] == [0.0, 0.5, 1.0]
    clock.now += 10
    assert limiter.reserve() == 0.0


@pytest.mark.parametrize(
    ("unit", "per", "interval"), [("Second", 4, 0.25), ("Minute", 2, 30.0), ("Hour", 1, 3600.0)]
)
def test_interval_from_unit_and_rate(unit: str, per: int, interval: float) -> None:
    ratelimit.reset()
    spec = models.RateLimit.model_validate({"unit": unit, "requestsPerUnit": per})
    limiter = ratelimit.limiter_for(("s", "t"), spec)
    assert limiter is not None and limiter.interval == pytest.approx(interval)


def test_limiter_is_kept_per_trigger_and_rebuilt_when_the_rate_changes() -> None:
    ratelimit.reset()
    slow = models.RateLimit.model_validate({"unit": "Second", "requestsPerUnit": 1})
    first = ratelimit.limiter_for(("s", "t"), slow)
    assert ratelimit.limiter_for(("s", "t"), slow) is first
    assert ratelimit.limiter_for(("s", "other"), slow) is not first
    fast = models.RateLimit.model_validate({"unit": "Second", "requestsPerUnit": 10})
    assert ratelimit.limiter_for(("s", "t"), fast) is not first


def test_no_rate_means_no_limit() -> None:
    assert ratelimit.limiter_for(("s", "t"), None) is None
    assert ratelimit.limiter_for(("s", "t"), models.RateLimit.model_validate({"unit": "Second"})) is None


def test_unknown_unit_names_the_trigger() -> None:
    spec = models.RateLimit.model_validate({"unit": "Fortnight", "requestsPerUnit": 1})
    with pytest.raises(errors.TriggerError, match=r"trigger t: rateLimit\.unit 'fortnight'"):
        ratelimit.limiter_for(("s", "t"), spec)


async def test_acquire_waits_for_the_next_slot() -> None:
    ratelimit.reset()
    spec = models.RateLimit.model_validate({"unit": "Second", "requestsPerUnit": 10})
    waits = [await ratelimit.acquire(("s", "burst"), spec) for _ in range(2)]
    assert waits[0] == 0.0
    assert waits[1] > 0.0  # the second call, right after the first, waits for its slot
