"""Argo Events manifests (EventSource, Sensor, EventBus) as typed models, loaded and validated.

The public face of the spec layer: :func:`load_paths` / :func:`load_one` read
YAML, :func:`parse_sensor` and friends validate decoded objects, and every one
of them raises :class:`knevents.errors.SpecError` listing *every* problem with
its file, document and path. The models live in :mod:`knevents.spec.models`
(generated from Argo's schema). These functions check Argo's structure only;
:mod:`knevents.validation` offers the same ones with the rules of every type
knevents runs, and is what commands and functions use.
"""

from __future__ import annotations

from knevents.spec import models
from knevents.spec.loading import (
    API_VERSION,
    STRUCTURE,
    Manifests,
    Rules,
    collect,
    load_one,
    load_paths,
    load_text,
    parse_event_bus,
    parse_event_source,
    parse_sensor,
)
from knevents.spec.support import SUPPORTED_BUS_TYPES, source_types, trigger_kinds

__all__ = [
    "API_VERSION",
    "STRUCTURE",
    "SUPPORTED_BUS_TYPES",
    "Manifests",
    "Rules",
    "collect",
    "load_one",
    "load_paths",
    "load_text",
    "models",
    "parse_event_bus",
    "parse_event_source",
    "parse_sensor",
    "source_types",
    "trigger_kinds",
]
