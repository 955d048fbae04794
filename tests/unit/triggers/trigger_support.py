"""Helpers for trigger tests: build a spec ``Trigger`` and a ``Resolved`` by hand.

The engine's ``Resolved`` is used when ``knevents.sensors.engine`` exists; until it lands, a frozen
dataclass with the documented fields stands in (the executors only read those fields).
"""

from __future__ import annotations

import asyncio
import warnings
import weakref
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from knevents import events, triggers
from knevents.secrets import SecretResolver
from knevents.settings import SecretSettings, Settings
from knevents.spec import models
from knevents.triggers import base

try:
    from knevents.sensors.engine import Resolved
except ImportError:  # the engine is written in parallel; same fields as its contract

    @dataclass(frozen=True)
    class Resolved:  # type: ignore[no-redef]
        trigger: str
        kind: str
        spec: Any
        resource: dict[str, Any] | None
        payload: bytes | None
        events: Mapping[str, events.Event]
        error: str | None


_NOT_KINDS = {"name", "conditions", "conditionsReset"}


def event(
    data: Any = None, *, id: str = "e1", source: str = "webhook", subject: str = "build"
) -> events.Event:
    """An Argo-shaped webhook event."""
    return events.new_event(
        source=source,
        subject=subject,
        type="webhook",
        data=data if data is not None else {"header": {}, "body": {}},
        id=id,
        time=datetime(2026, 1, 1, tzinfo=UTC),
    )


def trigger(template: dict[str, Any], **fields: Any) -> models.Trigger:
    """A spec Trigger from its YAML shape (camelCase keys)."""
    return models.Trigger.model_validate({"template": template, **fields})


def resolved(
    template: dict[str, Any],
    *,
    resource: dict[str, Any] | None = None,
    payload: bytes | None = None,
    fired: Mapping[str, events.Event] | None = None,
    error: str | None = None,
    **fields: Any,
) -> Resolved:
    """A Resolved for ``template`` (kind = the template key that is set)."""
    spec = trigger(template, **fields)
    kind = next(k for k in template if k not in _NOT_KINDS)
    return Resolved(
        trigger=spec.template.name,
        kind=kind,
        spec=spec,
        resource=resource,
        payload=payload,
        events=dict(fired) if fired is not None else {"dep": event()},
        error=error,
    )


def context(
    *,
    secrets: Mapping[str, str] | None = None,
    settings: Settings | None = None,
    traceparent: str | None = None,
    dry_run: bool = False,
    namespace: str = "argo-events",
) -> base.TriggerContext:
    """A TriggerContext whose secrets come from ``KNEVENTS_SECRET_*`` style variables in ``secrets``."""
    resolver = SecretResolver(
        SecretSettings(secrets_dir="/nonexistent/knevents-secrets"), env=dict(secrets or {})
    )
    return base.TriggerContext(
        sensor_name="build-sensor",
        namespace=namespace,
        secrets=resolver,
        settings=settings or Settings(),
        traceparent=traceparent,
        dry_run=dry_run,
    )


def fire_on_a_loop_of_its_own(resolved: Any, ctx: base.TriggerContext,
                              loop: str) -> tuple[base.TriggerResult, Any, list[str]]:
    """Fire on a new loop in a worker thread (as knevents.testing does under a running loop), without aclose:
    the result, a weak reference to the loop, and the ResourceWarnings raised while the loop closed."""
    import uvloop

    factory = uvloop.new_event_loop if loop == "uvloop" else asyncio.new_event_loop

    def run() -> tuple[base.TriggerResult, Any, list[str]]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            with asyncio.Runner(loop_factory=factory) as runner:
                result = runner.run(triggers.fire(resolved, ctx))
                ref = weakref.ref(runner.get_loop())
        return result, ref, [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]

    with ThreadPoolExecutor(1) as worker:
        return worker.submit(run).result()
