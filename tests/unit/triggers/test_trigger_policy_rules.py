"""policy.status (allow-list) and policy.k8s (label polling) with Argo's meanings."""

from __future__ import annotations

from typing import Any

import pytest
from knevents import errors
from knevents.spec import models
from knevents.triggers import policy


def status_policy(allow: list[int]) -> models.TriggerPolicy:
    return models.TriggerPolicy.model_validate({"status": {"allow": allow}})


@pytest.mark.parametrize("status", [200, 201, 204, 299])
def test_default_counts_2xx_as_success(status: int) -> None:
    policy.check_status(status, None, "POST x")


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, errors.TriggerRetryableError),
        (503, errors.TriggerRetryableError),
        (429, errors.TriggerRetryableError),
        (404, errors.TriggerError),
        (301, errors.TriggerError),
    ],
)
def test_default_failures_are_retryable_only_when_a_retry_can_help(
    status: int, error: type[Exception]
) -> None:
    with pytest.raises(error, match=f"POST x answered {status}, not a 2xx status"):
        policy.check_status(status, None, "POST x")


def test_allow_list_replaces_the_default() -> None:
    allow = status_policy([200, 404])
    policy.check_status(404, allow, "GET y")
    with pytest.raises(errors.TriggerError, match=r"201, not in policy.status.allow \[200, 404\]"):
        policy.check_status(201, allow, "GET y")


def test_labels_match_needs_every_pair() -> None:
    obj = {"metadata": {"labels": {"a": "1", "b": "2"}}}
    assert policy.labels_match(obj, {"a": "1"})
    assert not policy.labels_match(obj, {"a": "1", "c": "3"})
    assert not policy.labels_match(obj, {"a": "2"})
    assert not policy.labels_match(None, {"a": "1"})


def k8s_policy(**fields: Any) -> models.K8SResourcePolicy:
    base = {
        "backoff": {"steps": 4, "duration": "1s", "factor": 2, "jitter": 0},
        "errorOnBackoffTimeout": False,
    }
    return models.K8SResourcePolicy.model_validate({**base, **fields})


async def test_wait_for_labels_polls_until_the_labels_appear() -> None:
    answers = [{}, {"metadata": {"labels": {"done": "false"}}}, {"metadata": {"labels": {"done": "true"}}}]
    slept: list[float] = []

    async def get() -> dict[str, Any]:
        return answers.pop(0)

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    assert await policy.wait_for_labels(get, k8s_policy(labels={"done": "true"}), "Job j", sleep) is None
    assert slept == [1.0, 2.0]


async def test_wait_for_labels_timeout_is_an_error_only_when_asked() -> None:
    calls = 0

    async def get() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        return {}

    async def sleep(seconds: float) -> None:
        return None

    note = await policy.wait_for_labels(get, k8s_policy(labels={"x": "y"}), "Job j", sleep)
    assert note is not None and "not seen after 4 checks" in note
    assert calls == 4
    with pytest.raises(errors.TriggerError, match="errorOnBackoffTimeout"):
        await policy.wait_for_labels(
            get, k8s_policy(labels={"x": "y"}, errorOnBackoffTimeout=True), "Job j", sleep
        )


async def test_no_labels_means_no_polling() -> None:
    async def get() -> dict[str, Any]:
        raise AssertionError("must not poll")

    assert await policy.wait_for_labels(get, k8s_policy(), "Job j") is None
