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


def test_limiter_is_kept_per_trigger_and_a_rate_change_counts_from_the_latest_slot() -> None:
    ratelimit.reset()
    slow = models.RateLimit.model_validate({"unit": "Second", "requestsPerUnit": 1})
    first = ratelimit.limiter_for(("s", "t"), slow)
    assert first is not None and ratelimit.limiter_for(("s", "t"), slow) is first
    assert ratelimit.limiter_for(("s", "other"), slow) is not first
    fast = models.RateLimit.model_validate({"unit": "Second", "requestsPerUnit": 10})
    assert ratelimit.limiter_for(("s", "t"), fast) is first and first.interval == pytest.approx(0.1)


def test_a_rate_change_applies_to_the_next_slot() -> None:
    clock = FakeClock()
    limiter = ratelimit.Limiter(60.0, clock)
    assert limiter.reserve() == 0.0
    limiter.interval = 0.5  # what limiter_for does when the spec's rate changed
    assert limiter.reserve() == 0.5


def test_next_slot_is_uber_go_ratelimits_rule_with_its_slack() -> None:
    assert ratelimit.next_slot(None, 10.0, 2.0) == 10.0  # the first passes at once
    assert ratelimit.next_slot(9.0, 10.0, 2.0) == 11.0
    assert ratelimit.next_slot(5.0, 10.0, 2.0) == 7.0  # unused time is kept: a past slot passes at once
    assert ratelimit.next_slot(0.0, 100.0, 2.0) == 80.0  # ... but no more than SLACK (10) intervals of it


def test_after_a_quiet_spell_eleven_pass_at_once_then_the_spacing_resumes() -> None:
    clock = FakeClock()
    limiter = ratelimit.Limiter(1.0, clock)
    limiter.reserve()
    clock.now += 1000
    assert [limiter.reserve() for _ in range(13)] == [0.0] * 11 + [1.0, 2.0]


def test_no_rate_means_no_limit() -> None:
    assert ratelimit.limiter_for(("s", "t"), None) is None
    assert ratelimit.limiter_for(("s", "t"), models.RateLimit.model_validate({"unit": "Second"})) is None
    zero = models.RateLimit.model_validate({"unit": "Second", "requestsPerUnit": 0})
    assert ratelimit.limiter_for(("s", "t"), zero) is None


def test_unknown_unit_names_the_trigger() -> None:
    spec = models.RateLimit.model_validate({"unit": "Fortnight", "requestsPerUnit": 1})
    with pytest.raises(errors.TriggerError, match=r"trigger t: rate limit unit `Fortnight` is not supported"):
        ratelimit.limiter_for(("s", "t"), spec)


async def test_acquire_waits_for_the_next_slot() -> None:
    ratelimit.reset()
    spec = models.RateLimit.model_validate({"unit": "Second", "requestsPerUnit": 10})
    waits = [await ratelimit.acquire(("s", "burst"), spec) for _ in range(2)]
    assert waits[0] == 0.0
    assert waits[1] > 0.0  # the second call, right after the first, waits for its slot


class Shared:
    """A SlotFn as the sensor runtime gives one: answers ``waits`` in turn, or raises ``failure``."""

    def __init__(self, *waits: float) -> None:
        self.waits = list(waits)
        self.calls: list[tuple[str, float]] = []
        self.failure: Exception | None = None

    async def __call__(self, trigger: str, interval: float) -> float:
        self.calls.append((trigger, interval))
        if self.failure is not None:
            raise self.failure
        return self.waits.pop(0)


async def test_acquire_takes_the_shared_slot_when_given_one() -> None:
    ratelimit.reset()
    spec = models.RateLimit.model_validate({"unit": "Minute", "requestsPerUnit": 120})
    shared = Shared(0.0, 0.0)
    assert [await ratelimit.acquire(("s", "t"), spec, shared) for _ in range(2)] == [0.0, 0.0]
    assert shared.calls == [("t", 0.5), ("t", 0.5)]  # the shared store decides: no local spacing added


async def test_acquire_does_not_ask_the_shared_store_without_a_rate() -> None:
    shared = Shared()
    for spec in (None, models.RateLimit.model_validate({"unit": "Second", "requestsPerUnit": 0})):
        assert await ratelimit.acquire(("s", "t"), spec, shared) == 0.0
    assert shared.calls == []


async def test_a_shared_store_that_fails_is_asked_again_only_after_a_pause() -> None:
    ratelimit.reset()
    spec = models.RateLimit.model_validate({"unit": "Second", "requestsPerUnit": 10})
    shared = Shared()
    shared.failure = errors.StateUnavailableError("down")
    for _ in range(3):
        await ratelimit.acquire(("s", "t"), spec, shared)
    assert len(shared.calls) == 1  # no connect timeout paid per firing while the store is down


async def test_a_shared_store_that_fails_falls_back_to_the_process_limiter_and_says_so_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    ratelimit.reset()
    monkeypatch.setattr(ratelimit, "RETRY_SHARED", 0.0)
    spec = models.RateLimit.model_validate({"unit": "Second", "requestsPerUnit": 10})
    shared = Shared(0.0)
    shared.failure = errors.StateUnavailableError("NATS at nats://x:4222 is unreachable")
    with caplog.at_level("INFO", logger=ratelimit.logger.name):
        waits = [await ratelimit.acquire(("s", "t"), spec, shared) for _ in range(2)]
        warned = [r for r in caplog.records if r.levelname == "WARNING"]
        assert waits[0] == 0.0 and waits[1] > 0.0  # the local limiter spaced them
        assert len(warned) == 1 and "trigger t of sensor s" in warned[0].getMessage()
        assert "unreachable" in warned[0].getMessage()
        shared.failure = None
        assert await ratelimit.acquire(("s", "t"), spec, shared) == 0.0
        assert any("shared by the sensor's processes again" in r.getMessage() for r in caplog.records)
        shared.failure = errors.StateConflictError("lost")
        await ratelimit.acquire(("s", "t"), spec, shared)
    assert len([r for r in caplog.records if r.levelname == "WARNING"]) == 2  # a new outage is reported again


@pytest.mark.parametrize("unit", ["Second", "Minute", "Hour", "", None, "minute", " Hour", "Day"])
def test_validate_refuses_exactly_the_units_the_runtime_refuses(unit: str | None) -> None:
    spec = models.RateLimit.model_validate({"unit": unit, "requestsPerUnit": 2})
    refused = [path for path, _ in ratelimit.check(spec, "spec.triggers[0].rateLimit")]
    try:
        ratelimit.interval(spec, "t")
    except errors.TriggerError:
        assert refused == ["spec.triggers[0].rateLimit.unit"]
    else:
        assert refused == []
        assert unit in ("Second", "Minute", "Hour", "", None)
