"""fire(): dispatch by template key, retryStrategy around the executor, attempts counted."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from knevents import errors, triggers
from knevents.triggers import base, log, ratelimit

from tests.unit.triggers import trigger_support as support


class Scripted:
    """An executor that fails as scripted, then succeeds."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.calls = 0

    async def execute(self, resolved: Any, ctx: base.TriggerContext) -> base.TriggerResult:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return base.TriggerResult(resolved.trigger, resolved.kind, "done")


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> Scripted:
    executor = Scripted()
    kind = dataclasses.replace(log.TRIGGER, executor=executor)
    monkeypatch.setattr(triggers, "find", lambda key: kind if key == "log" else None)
    return executor


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


RETRY = {"steps": 3, "duration": "10ms", "factor": 2, "jitter": 0}


async def test_retryable_failures_are_retried_with_backoff_and_counted(scripted: Scripted) -> None:
    scripted.failures = [errors.TriggerRetryableError("503"), errors.TriggerRetryableError("503")]
    sleeps = Sleeps()
    resolved = support.resolved({"name": "t", "log": {}}, retryStrategy=RETRY)
    result = await triggers.fire(resolved, support.context(), sleep=sleeps)
    assert result.attempts == 3
    assert scripted.calls == 3
    assert sleeps.delays == pytest.approx([0.01, 0.02])


async def test_giving_up_raises_retryable_with_the_attempt_count(scripted: Scripted) -> None:
    scripted.failures = [errors.TriggerRetryableError("boom")] * 5
    resolved = support.resolved({"name": "t", "log": {}}, retryStrategy=RETRY)
    with pytest.raises(
        errors.TriggerRetryableError, match=r"trigger t: boom \(gave up after 3 attempt\(s\)\)"
    ):
        await triggers.fire(resolved, support.context(), sleep=Sleeps())
    assert scripted.calls == 3


async def test_permanent_failures_are_not_retried(scripted: Scripted) -> None:
    scripted.failures = [errors.TriggerError("403 forbidden")]
    resolved = support.resolved({"name": "t", "log": {}}, retryStrategy=RETRY)
    with pytest.raises(errors.TriggerError, match=r"trigger t: 403 forbidden \(attempt 1\)"):
        await triggers.fire(resolved, support.context(), sleep=Sleeps())
    assert scripted.calls == 1


async def test_without_retry_strategy_one_attempt(scripted: Scripted) -> None:
    scripted.failures = [errors.TriggerRetryableError("down")]
    with pytest.raises(errors.TriggerRetryableError, match="gave up after 1 attempt"):
        await triggers.fire(support.resolved({"name": "t", "log": {}}), support.context(), sleep=Sleeps())
    assert scripted.calls == 1


async def test_secret_errors_become_trigger_errors_naming_the_trigger(scripted: Scripted) -> None:
    scripted.failures = [errors.SecretError("secret tok/key not found")]
    with pytest.raises(errors.TriggerError, match="trigger t: secret tok/key not found"):
        await triggers.fire(support.resolved({"name": "t", "log": {}}), support.context())


async def test_resolve_error_is_reported_without_executing(scripted: Scripted) -> None:
    resolved = support.resolved({"name": "t", "log": {}}, error="parameter body.x not found")
    with pytest.raises(errors.TriggerError, match=r"trigger t: parameter body\.x not found"):
        await triggers.fire(resolved, support.context())
    assert scripted.calls == 0


async def test_unsupported_kind_is_a_clear_error() -> None:
    resolved = support.resolved({"name": "t", "pulsar": {"url": "pulsar://x:6650", "topic": "t"}})
    with pytest.raises(errors.TriggerError, match="trigger type 'pulsar' is not supported by knevents"):
        await triggers.fire(resolved, support.context())


async def test_rate_limit_is_applied_per_trigger(scripted: Scripted, monkeypatch: pytest.MonkeyPatch) -> None:
    ratelimit.reset()
    waited: list[float] = []
    real = ratelimit.Limiter.reserve

    def spy(self: ratelimit.Limiter) -> float:
        waited.append(real(self))
        return waited[-1]

    monkeypatch.setattr(ratelimit.Limiter, "reserve", spy)
    resolved = support.resolved({"name": "t", "log": {}}, rateLimit={"unit": "Second", "requestsPerUnit": 10})
    for _ in range(2):
        await triggers.fire(resolved, support.context())
    assert waited[0] == 0.0 and waited[1] > 0


async def test_fire_reserves_the_sensor_wide_slot_through_the_context(scripted: Scripted) -> None:
    asked: list[tuple[str, float]] = []

    async def shared(trigger: str, interval: float) -> float:
        asked.append((trigger, interval))
        return 0.0

    ctx = dataclasses.replace(support.context(), rate_slots=shared)
    limited = support.resolved({"name": "t", "log": {}}, rateLimit={"unit": "Second", "requestsPerUnit": 4})
    await triggers.fire(limited, ctx)
    await triggers.fire(support.resolved({"name": "free", "log": {}}), ctx)
    assert asked == [("t", 0.25)] and scripted.calls == 2


def test_registry_covers_the_supported_template_keys() -> None:
    assert set(triggers.all_kinds()) >= {
        "k8s", "argoWorkflow", "http", "log", "awsLambda", "nats", "slack", "email", "amqp", "kafka"
    }


def test_importing_triggers_loads_no_heavy_client() -> None:
    import subprocess
    import sys

    code = "import sys, knevents.triggers; print([m for m in ('kubernetes', 'boto3', 'nats', 'httpx', 'slack_sdk', 'aiokafka') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


async def test_unexpected_executor_bugs_become_trigger_errors(scripted: Scripted) -> None:
    scripted.failures = [KeyError("metadata")]
    with pytest.raises(errors.TriggerError, match="unexpected KeyError in the log trigger"):
        await triggers.fire(support.resolved({"name": "t", "log": {}}), support.context())


def test_a_dry_run_k8s_trigger_does_not_import_the_kubernetes_client() -> None:
    import subprocess
    import sys

    code = """
import asyncio, sys
from tests.unit.triggers import trigger_support as support
from knevents import triggers
resolved = support.resolved({"name": "t", "k8s": {"source": {"resource": {}}}},
                            resource={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
result = asyncio.run(triggers.fire(resolved, support.context()))
print(result.detail, "kubernetes" in sys.modules)
"""
    env = {
        k: v
        for k, v in __import__("os").environ.items()
        if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")
    }
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout
    assert out.strip() == "dry run (no Kubernetes cluster configured) False"
