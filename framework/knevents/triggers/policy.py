"""Trigger policies, with Argo's meanings.

* ``policy.status.allow``: the HTTP (or Lambda) status codes that count as
  success. Without a status policy knevents counts 2xx as success (Argo counts
  any answer as success, which hides failed calls; see docs/triggers.md).
  A status outside the allow-list is retryable when it is 5xx, 408 or 429 and
  permanent otherwise.
* ``policy.k8s``: after creating a resource, poll it with ``backoff`` until its
  labels contain every ``labels`` pair. When the backoff runs out, the trigger
  fails only if ``errorOnBackoffTimeout`` is set.

The polling takes a ``get`` callable so this module stays free of any client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from knevents import errors
from knevents.triggers import backoff

if TYPE_CHECKING:
    from knevents.spec import models

__all__ = [
    "RETRYABLE_STATUS",
    "check_k8s_policy",
    "check_status",
    "check_status_policy",
    "labels_match",
    "wait_for_labels",
]

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def check_k8s_policy(trigger: models.Trigger, path: str) -> Iterator[tuple[str, str]]:
    """A ``policy.k8s`` (k8s, argoWorkflow triggers) names the labels to wait for."""
    policy = trigger.policy
    if policy is not None and policy.k8s is not None and policy.k8s.labels is None:
        yield f"{path}.policy.k8s.labels", "a k8s policy needs the resource `labels` to watch"


def check_status_policy(trigger: models.Trigger, path: str) -> Iterator[tuple[str, str]]:
    """A ``policy.status`` (http, awsLambda triggers) lists the allowed response codes."""
    policy = trigger.policy
    if policy is not None and policy.status is not None and not policy.status.allow:
        yield f"{path}.policy.status.allow", "a status policy needs the list of allowed response codes"


def _allow_list(policy: Any) -> list[int] | None:
    status = getattr(policy, "status", None) if policy is not None else None
    allow = getattr(status, "allow", None) if status is not None else None
    return [int(code) for code in allow] if allow is not None else None


def check_status(status: int, policy: Any, what: str) -> None:
    """Raise unless ``status`` counts as success under the trigger's ``policy``."""
    allow = _allow_list(policy)
    ok = status in allow if allow is not None else 200 <= status < 300
    if ok:
        return
    rule = f"not in policy.status.allow {allow}" if allow is not None else "not a 2xx status"
    message = f"{what} answered {status}, {rule}"
    if status in RETRYABLE_STATUS or status >= 500:
        raise errors.TriggerRetryableError(message)
    raise errors.TriggerError(message)


def labels_match(obj: Mapping[str, Any] | None, wanted: Mapping[str, str]) -> bool:
    """True when ``obj``'s labels hold every wanted ``key: value``."""
    labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
    return all(labels.get(key) == str(value) for key, value in wanted.items())


async def wait_for_labels(
    get: Callable[[], Awaitable[Mapping[str, Any] | None]],
    k8s_policy: Any,
    what: str,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> str | None:
    """Apply ``policy.k8s``: poll ``get()`` until the labels match.

    Returns ``None`` when the labels matched (or no labels are asked for), a
    note when the backoff ran out and ``errorOnBackoffTimeout`` is off; raises
    :class:`errors.TriggerError` when it ran out and the flag is on.
    """
    wanted = getattr(k8s_policy, "labels", None) if k8s_policy is not None else None
    if not wanted:
        return None
    schedule = backoff.from_spec(getattr(k8s_policy, "backoff", None), where="policy.k8s.backoff")
    delays = schedule.delays()
    for attempt in range(schedule.steps):
        if labels_match(await get(), wanted):
            return None
        if attempt + 1 < schedule.steps:
            await sleep(next(delays))
    if getattr(k8s_policy, "error_on_backoff_timeout", False):
        raise errors.TriggerError(
            f"{what}: labels {dict(wanted)} did not appear within {schedule.steps} checks "
            "(policy.k8s.errorOnBackoffTimeout is set)"
        )
    return f"labels {dict(wanted)} not seen after {schedule.steps} checks; not an error (errorOnBackoffTimeout off)"
