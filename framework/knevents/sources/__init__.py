"""Event source types, one module per EventSource spec key, found by what the module declares.

A type module declares ``SOURCE = base.SourceType(...)`` (see docs/extending.md);
:data:`TYPES` finds it. :func:`find` imports only the module a spec needs
(``webhook`` never pays for ``boto3``); :func:`all_types` imports them all,
for validation, rendering and the docs. Modules of this package never import
the bus, triggers or state; the runtime (:mod:`knevents.runtime.source`) wires them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from knevents import discovery, errors
from knevents.sources import base

__all__ = ["TYPES", "all_types", "find", "load"]

TYPES: discovery.Registry[base.SourceType[Any]] = discovery.Registry(
    "knevents.sources", "SOURCE", lambda d: d.key
)
"""Every module of this package that declares ``SOURCE``, keyed by its spec key."""


def find(key: str) -> base.SourceType[Any]:
    """The descriptor of spec key ``key``; NotSupportedError when no module declares it."""
    found = TYPES.get(key)
    if found is None:
        known = ", ".join(sorted(all_types()))
        raise errors.NotSupportedError(f"event source type {key!r} is not supported by knevents (supported: {known})")
    return found


def all_types() -> Mapping[str, base.SourceType[Any]]:
    """Every event source type knevents runs, by spec key."""
    return TYPES.all()


def load(key: str) -> base.SourceFactory:
    """The factory of spec key ``key`` (``find(key).factory``); NotSupportedError when no module declares it."""
    return find(key).factory
