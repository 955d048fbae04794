"""Triggers: one module per kind, found by what it declares, and ``fire``.

A kind module declares ``TRIGGER = base.TriggerKind(...)`` (see
docs/extending.md); :data:`KINDS` finds it by the template key, and its
executor performs one attempt. :func:`fire` is what the sensor runtime calls: it checks the resolved
trigger, waits for the trigger's ``rateLimit``, runs the executor under its
``retryStrategy`` (only :class:`errors.TriggerRetryableError` is retried) and
counts the attempts. Policies are applied by the executors, which know the
answer they got.

Importing this package is cheap: every third-party client (kubernetes, boto3,
nats, httpx) is imported by its executor on first use.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from knevents import discovery, errors
from knevents.triggers import backoff, base, fetch, http, kube, ratelimit
from knevents.triggers.base import TriggerContext, TriggerExecutor, TriggerResult

if TYPE_CHECKING:
    from knevents.sensors import engine

__all__ = [
    "ARTIFACT_LOCATIONS",
    "KINDS",
    "TriggerContext",
    "TriggerExecutor",
    "TriggerResult",
    "aclose",
    "all_kinds",
    "fetch_resource",
    "fetches_resource",
    "find",
    "fire",
    "reads_resource",
]

ARTIFACT_LOCATIONS = fetch.LOCATIONS
"""The ``source:`` keys of k8s/argoWorkflow triggers that have a reader (what ``knevents validate`` accepts)."""
fetch_resource = fetch.fetch_resource
"""``await fetch_resource(trigger_spec, ctx)``: a non-inline k8s/argoWorkflow resource (configmap, file, url,
s3, git)."""
reads_resource = fetch.reads_resource
"""``reads_resource(trigger_spec)``: whether ``fetch_resource`` has anything to read (asked once per trigger)."""

logger = logging.getLogger(__name__)

KINDS: discovery.Registry[base.TriggerKind[Any]] = discovery.Registry(
    "knevents.triggers", "TRIGGER", lambda d: d.key
)
"""Every module of this package that declares ``TRIGGER``, keyed by its template key."""


def find(key: str) -> base.TriggerKind[Any] | None:
    """The kind of template key ``key``, or None when knevents does not run it."""
    return KINDS.get(key)


def fetches_resource(key: str) -> bool:
    """Whether kind ``key`` applies its own parameters to a resource it fetches (the engine leaves them alone)."""
    kind = find(key)
    return kind is not None and kind.fetches_resource


def all_kinds() -> Mapping[str, base.TriggerKind[Any]]:
    """Every trigger kind knevents runs, by template key."""
    return KINDS.all()


def _executor(resolved: engine.Resolved) -> TriggerExecutor:
    if resolved.error:
        raise errors.TriggerError(f"trigger {resolved.trigger}: {resolved.error}")
    kind = find(resolved.kind)
    if kind is None:
        raise errors.TriggerError(
            f"trigger {resolved.trigger}: trigger type {resolved.kind!r} is not supported by knevents "
            f"(supported: {', '.join(sorted(all_kinds()))})"
        )
    return kind.executor


def _schedule(spec: object) -> backoff.Schedule:
    retry_strategy = getattr(spec, "retry_strategy", None)
    # No retryStrategy: one attempt. The broker redelivers the event when the sensor answers 5xx,
    # so an in-process retry loop by default would only stretch the request (Argo defaults to 5 steps).
    return backoff.from_spec(retry_strategy) if retry_strategy is not None else backoff.Schedule(steps=1)


async def _attempt(
    executor: TriggerExecutor, resolved: engine.Resolved, ctx: TriggerContext
) -> TriggerResult:
    """One execution; every failure leaves as TriggerError or TriggerRetryableError."""
    name = resolved.trigger
    try:
        return await executor.execute(resolved, ctx)
    except (errors.TriggerError, errors.TriggerRetryableError):
        raise
    except errors.KneventsError as exc:  # SecretError, ParameterError …: permanent
        raise errors.TriggerError(str(exc)) from exc
    except Exception as exc:  # a bug in an executor must not take the sensor down
        logger.exception("trigger %s: unexpected error in the %s executor", name, resolved.kind)
        raise errors.TriggerError(
            f"unexpected {exc.__class__.__name__} in the {resolved.kind} trigger"
        ) from exc


async def fire(
    resolved: engine.Resolved,
    ctx: TriggerContext,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> TriggerResult:
    """Run one resolved trigger with its rateLimit and retryStrategy; the result of the last attempt.

    Raises :class:`errors.TriggerError` when it failed for good and
    :class:`errors.TriggerRetryableError` when every attempt failed in a way a
    later delivery may fix. Messages say which trigger and how many attempts.
    """
    name = resolved.trigger
    executor = _executor(resolved)
    schedule = _schedule(resolved.spec)
    rate_limit = resolved.spec.rate_limit
    if rate_limit is not None:  # a trigger without one pays nothing here
        await ratelimit.acquire((ctx.sensor_name, name), rate_limit, ctx.rate_slots)
    delays = schedule.delays()
    for attempt in range(1, schedule.steps + 1):
        try:
            result = await _attempt(executor, resolved, ctx)
        except errors.TriggerRetryableError as exc:
            if attempt >= schedule.steps:
                raise errors.TriggerRetryableError(
                    f"trigger {name}: {exc} (gave up after {attempt} attempt(s))", delay=exc.delay
                ) from exc
            delay = next(delays)
            logger.warning("trigger %s: attempt %d failed, retrying in %.3fs: %s", name, attempt, delay, exc)
            await sleep(delay)
        except errors.TriggerError as exc:
            raise errors.TriggerError(f"trigger {name}: {exc} (attempt {attempt})") from exc
        else:
            return result if result.attempts == attempt else dataclasses.replace(result, attempts=attempt)
    raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover


async def aclose() -> None:
    """Close pooled connections of the running loop (call on shutdown): HTTP clients, Kubernetes clients,
    and whatever a kind module that was used pools (its module-level ``aclose``, e.g. the kafka producers)."""
    await http.aclose()
    kube.forget_clients()
    for name, module in list(sys.modules.items()):  # only kinds already imported: closing costs no import
        closer = getattr(module, "aclose", None) if name.startswith(__name__ + ".") else None
        if closer is not None and module is not http:
            await closer()
