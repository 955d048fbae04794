"""Argo Events' generic admission rules for an EventSource and an EventBus, reporting every violation.

Follows argo-events' ``pkg/reconciler/eventsource/validate.go``: event names
unique across all types, at least one event. The rules of each type (Argo's
per-type ``validate.go``) live in the type's module (``SourceType.check``) and
run through :mod:`knevents.validation`, as do the route-conflict checks.
"""

from __future__ import annotations

from collections.abc import Iterator

from knevents.spec import models, support

__all__ = ["check_event_bus", "check_event_source"]

Found = Iterator[tuple[str, str]]


def check_event_source(source: models.EventSource) -> Found:
    """Every admission problem of ``source``."""
    seen: dict[str, str] = {}
    any_event = False
    for key, entries in support.source_types(source.spec):
        for name, _config in entries.items():
            any_event = True
            path = f"spec.{key}.{name}"
            if name in seen:
                yield path, f"event name `{name}` is used more than once (also under `{seen[name]}`)"
            seen.setdefault(name, key)
    if not any_event:
        yield "spec", "no event source: set at least one type (webhook, calendar, sqs …) with an event"


def check_event_bus(bus: models.EventBus) -> Found:
    """An EventBus sets exactly one bus type."""
    spec = bus.spec
    kinds = [k for k, v in (("nats", spec.nats), ("jetstream", spec.jetstream), ("kafka", spec.kafka)) if v]
    if spec.jetstream_exotic is not None:
        kinds.append("jetstreamExotic")
    if not kinds:
        yield "spec", "an EventBus needs a bus type (jetstream, nats or kafka)"
    elif len(kinds) > 1:
        yield "spec", f"an EventBus sets exactly one bus type, found {', '.join(kinds)}"
