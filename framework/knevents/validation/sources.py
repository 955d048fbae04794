"""Every rule of an EventSource: Argo's generic ones, each type's own, and route conflicts.

The generic rules (event names unique, at least one event) are in
:mod:`knevents.spec.source_rules`; this module adds what only the type modules
know: each entry's ``SourceType.check``, the endpoints entries set (two
events may not listen on the same port, endpoint and method), and the
"not supported" notes for the types no module declares.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pydantic

from knevents import errors, sources
from knevents.sources import base
from knevents.spec import models, support

__all__ = ["check_event_source", "check_event_source_parts", "endpoints", "notes"]

Found = Iterator[tuple[str, str]]


def _typed(spec: models.EventSourceSpec) -> Iterator[tuple[base.SourceType[Any], str, Any]]:
    """(type, event name, config) for every entry of a type knevents runs."""
    for key, entries in support.source_types(spec):
        source_type = sources.TYPES.get(key)
        if source_type is not None:
            for name, config in entries.items():
                yield source_type, name, config


def check_event_source(source: models.EventSource) -> Found:
    """The rules of every entry's type, and the route conflicts between entries."""
    for source_type, name, config in _typed(source.spec):
        yield from source_type.check(config, f"spec.{source_type.key}.{name}")
    yield from _route_conflicts(source.spec)


def check_event_source_parts(obj: Any) -> Found:
    """The rules of the entries that parse, when the whole EventSource does not."""
    spec = obj.get("spec") if isinstance(obj, dict) else None
    if not isinstance(spec, dict):
        return
    for key, entries in spec.items():
        source_type = sources.TYPES.get(key) if isinstance(entries, dict) else None
        if source_type is None:
            continue
        for name, raw in entries.items():
            try:
                config = source_type.parse(raw)
            except pydantic.ValidationError:
                continue
            yield from source_type.check(config, f"spec.{key}.{name}")


def endpoints(spec: models.EventSourceSpec) -> Iterator[tuple[str, str, base.Endpoint]]:
    """``(spec path of the entry, event name, endpoint)`` of every HTTP endpoint the entries set."""
    for source_type, name, config in _typed(spec):
        for endpoint in source_type.endpoints(name, config):
            yield f"spec.{source_type.key}.{name}", name, endpoint


def _route_conflicts(spec: models.EventSourceSpec) -> Found:
    """Two events may not listen on the same port, endpoint and method: a request could not be routed."""
    seen: dict[tuple[str, str, str], str] = {}
    for path, _name, found in endpoints(spec):
        if not found.endpoint:
            continue  # the default /<event name> is unique: event names are
        where = f"{path}.{found.field}" if found.field else path
        key = (found.port, found.endpoint, (found.method or "*").upper())
        if key in seen:
            port = f"port {found.port}" if found.port else "the default port"
            yield f"{where}.endpoint", f"endpoint `{found.endpoint}` on {port} is also used by {seen[key]}"
        else:
            seen[key] = where


def notes(source: models.EventSource) -> Iterator[errors.Problem]:
    """Notes for the event source types of ``source`` that knevents does not run."""
    for key, _ in support.source_types(source.spec):
        if sources.TYPES.get(key) is None:
            yield support.note(f"event source type `{key}` is not supported by knevents{support.reason(key)}",
                               f"spec.{key}")
