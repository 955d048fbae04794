"""Watch every trigger a sensor fires: one console line per outcome, a record for ``knevents status``.

The runner passes :class:`FiringObserver` to the SensorRuntime as its ``fire``
function, so it sees exactly what the sensor function did (the trigger, its
kind, the events of the firing, the result or the error) without parsing logs.
It also decides the local dry run of Kubernetes triggers: with no cluster
configured they print the resolved resource instead of failing.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from knevents import errors
from knevents.bus import firings
from knevents.local import console as console_mod
from knevents.local import streams

__all__ = ["FiringObserver", "needs_cluster", "now"]


@functools.lru_cache(maxsize=256)
def needs_cluster(kind: str) -> bool:
    """Whether a trigger kind calls the Kubernetes API (it declares permissions); without a cluster the
    runner prints the resolved resource instead."""
    from knevents import triggers
    from knevents.triggers import base

    found = triggers.find(kind)
    return found is not None and found.permissions is not base.no_permissions


class FiringObserver:
    """A ``fire`` function: calls the real one, prints and records the outcome, re-raises failures."""

    def __init__(self, fire: Callable[..., Awaitable[Any]], sensor: str, console: console_mod.Console,
                 record: Callable[[streams.Firing], Awaitable[None]], *, cluster: bool, forced_dry_run: bool) -> None:
        self.fire = fire
        self.sensor = sensor
        self.console = console
        self.record = record
        self.cluster = cluster
        self.forced_dry_run = forced_dry_run

    async def __call__(self, resolved: Any, ctx: Any) -> Any:
        if needs_cluster(resolved.kind) and not ctx.dry_run and not self.cluster:
            ctx = dataclasses.replace(ctx, dry_run=True)
        ids = {dep: ev.id for dep, ev in resolved.events.items()}
        where = f"{self.sensor}/{resolved.trigger} {resolved.kind}"
        fields = {"sensor": self.sensor, "trigger": resolved.trigger, "kind": resolved.kind, "events": ids}
        try:
            result = await self.fire(resolved, ctx)
        except errors.KneventsError as exc:
            if not _redelivered(resolved.spec, exc):  # else the dispatcher's `retry` line says it, once
                self.console.emit("failed", f"{where}: {exc}", **fields)
            await self.record(self._firing(resolved, ok=False, detail=str(exc), dry_run=ctx.dry_run))
            raise
        self.console.emit("fired", f"{where}: {self._detail(result, ctx.dry_run)}", **fields,
                          status=result.status, dry_run=ctx.dry_run)
        if ctx.dry_run and result.resource is not None:
            self.console.block(_indent(_yaml(result.resource)), resource=result.resource)
        await self.record(self._firing(resolved, ok=True, detail=result.detail, dry_run=ctx.dry_run,
                                       status=result.status))
        return result

    def _detail(self, result: Any, dry_run: bool) -> str:
        if not dry_run:
            return str(result.detail)
        what = describe_resource(result.resource)
        why = "--dry-run" if self.forced_dry_run else "no cluster configured"
        detail = f"{what + ' ' if what else ''}not executed (dry run: {why}"
        return detail + (", printed below)" if result.resource is not None else f"; {result.detail})")

    def _firing(self, resolved: Any, *, ok: bool, detail: str, dry_run: bool,
                status: int | None = None) -> streams.Firing:
        return firings.outcome(self.sensor, resolved, ok=ok, detail=detail, dry_run=dry_run, status=status)


def _redelivered(spec: Any, exc: errors.KneventsError) -> bool:
    """Whether the sensor answers 503 for this failure (atLeastOnce, retryable, no dlqTrigger to take it)."""
    return bool(getattr(spec, "at_least_once", False)) and isinstance(exc, errors.TemporaryError) \
        and getattr(spec, "dlq_trigger", None) is None


def describe_resource(resource: Any) -> str:
    """``Workflow event-build-*``: kind and name (or generateName) of a resource."""
    if not isinstance(resource, dict):
        return ""
    meta = resource.get("metadata") or {}
    name = meta.get("name") or (f"{meta['generateName']}*" if meta.get("generateName") else "")
    return f"{resource.get('kind', 'resource')} {name}".strip()


now = firings.now


def _yaml(value: Any) -> str:
    import yaml

    return str(yaml.safe_dump(value, sort_keys=False, default_flow_style=False, width=110))


def _indent(text: str) -> list[str]:
    return ["    " + line for line in text.splitlines()]
