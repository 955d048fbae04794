"""One checking path: every command and function loads manifests through here.

``knevents validate``, ``knevents test``, ``knevents run``, ``knevents render``
and both functions (event source and sensor) load Argo manifests with these
functions, so they accept and refuse exactly the same things. They are
:mod:`knevents.spec`'s loaders with :data:`RULES`: Argo's generic structure
rules (in ``spec``, which knows no type) plus each event source type's and
trigger kind's own rules (declared in its module, found by the registries of
:mod:`knevents.sources` and :mod:`knevents.triggers`) and the "not supported"
notes for everything no module declares.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from knevents import errors
from knevents.spec import loading, models

__all__ = [
    "RULES",
    "collect",
    "load_one",
    "load_paths",
    "load_text",
    "parse_event_bus",
    "parse_event_source",
    "parse_sensor",
    "supported_source_types",
    "supported_trigger_kinds",
]

# The checks of each side are imported on first use: the event source function never loads the
# trigger modules, the sensor function never loads the source modules (cold start).


def _source_rules(source: models.EventSource) -> Iterator[tuple[str, str]]:
    from knevents.validation import sources

    return sources.check_event_source(source)


def _source_parts(obj: Any) -> Iterator[tuple[str, str]]:
    from knevents.validation import sources

    return sources.check_event_source_parts(obj)


def _source_notes(source: models.EventSource) -> Iterator[errors.Problem]:
    from knevents.validation import sources

    return sources.notes(source)


def _sensor_rules(sensor: models.Sensor) -> Iterator[tuple[str, str]]:
    from knevents.validation import sensors

    return sensors.check_sensor(sensor)


def _sensor_parts(obj: Any) -> Iterator[tuple[str, str]]:
    from knevents.validation import sensors

    return sensors.check_sensor_parts(obj)


def _sensor_notes(sensor: models.Sensor) -> Iterator[errors.Problem]:
    from knevents.validation import sensors

    return sensors.notes(sensor)


RULES = loading.Rules(
    event_source=_source_rules,
    event_source_parts=_source_parts,
    sensor=_sensor_rules,
    sensor_parts=_sensor_parts,
    event_source_notes=_source_notes,
    sensor_notes=_sensor_notes,
)
"""Everything knevents checks beyond Argo's structure."""


def supported_source_types() -> frozenset[str]:
    """The EventSource spec keys knevents runs: every module that declares a ``SOURCE``."""
    from knevents import sources

    return frozenset(sources.all_types())


def supported_trigger_kinds() -> frozenset[str]:
    """The trigger template keys knevents runs: every module that declares a ``TRIGGER``."""
    from knevents import triggers

    return frozenset(triggers.all_kinds())


def collect(paths: Iterable[str | Path]) -> loading.Manifests:
    """Files and folders, every problem in the result (``knevents validate``)."""
    return loading.collect(paths, rules=RULES)


def load_paths(paths: Iterable[str | Path] | str | Path) -> loading.Manifests:
    """Files and folders; SpecError listing every problem of every file."""
    return loading.load_paths(paths, rules=RULES)


def load_text(text: str, *, file: str | None = None) -> loading.Manifests:
    """Every manifest of a YAML stream; problems collected in the result."""
    return loading.load_text(text, file=file, rules=RULES)


def load_one(path_or_text: str | Path, kind: str | None = None) -> Any:
    """The single manifest of a file or text (optionally of ``kind``); SpecError otherwise."""
    return loading.load_one(path_or_text, kind, rules=RULES)


def parse_sensor(
    obj: dict[str, Any],
    *,
    file: str | None = None,
    document: int | None = None,
    warnings: loading.Warnings = None,
) -> models.Sensor:
    """A fully checked Sensor from a decoded manifest."""
    return loading.parse_sensor(obj, file=file, document=document, warnings=warnings, rules=RULES)


def parse_event_source(
    obj: dict[str, Any],
    *,
    file: str | None = None,
    document: int | None = None,
    warnings: loading.Warnings = None,
) -> models.EventSource:
    """A fully checked EventSource from a decoded manifest."""
    return loading.parse_event_source(obj, file=file, document=document, warnings=warnings, rules=RULES)


def parse_event_bus(
    obj: dict[str, Any],
    *,
    file: str | None = None,
    document: int | None = None,
    warnings: loading.Warnings = None,
) -> models.EventBus:
    """A checked EventBus (its rules are generic: no type module is involved)."""
    return loading.parse_event_bus(obj, file=file, document=document, warnings=warnings)
