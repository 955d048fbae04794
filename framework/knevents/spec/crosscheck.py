"""Cross-check a folder: does every Sensor dependency name an EventSource event defined beside it?

A typo in ``eventSourceName`` or ``eventName`` is valid YAML and valid Argo; the
sensor just never fires. ``knevents validate`` reports such a dependency as a
warning, with a "did you mean …?" when a defined name is close. Sensors are
checked against the EventSources of the same folder (a folder is a deployable
set); a folder with sensors and no EventSource at all gets one note
(:func:`no_sources`) instead of a warning per dependency: its sources may be
deployed from elsewhere. Pure: no I/O.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from typing import Any

from knevents import errors

__all__ = ["check_folder", "event_names", "no_sources"]

_NOT_TYPES = frozenset({"template", "service"})


def event_names(source: Any) -> set[str]:
    """Every event name an EventSource defines (the keys under each of its type maps)."""
    spec = source.spec.model_dump(by_alias=True, exclude_none=True) if source.spec is not None else {}
    names: set[str] = set()
    for key, value in spec.items():
        if key not in _NOT_TYPES and isinstance(value, dict) and all(isinstance(v, dict) for v in value.values()):
            names.update(value)
    return names


def _hint(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f"; did you mean `{close[0]}`?" if close else ""


def no_sources(folder: str) -> errors.Problem:
    """The note for a folder of sensors without any EventSource (their sources may be deployed elsewhere)."""
    return errors.Problem(f"no EventSource in {folder}: the sensors' dependencies were not cross-checked")


def check_folder(
    folder: str, sources: list[Any], sensors: list[tuple[Any, str | None]]
) -> Iterator[errors.Problem]:
    """Warnings for the dependencies of ``sensors`` (model, file) that no EventSource of ``sources`` defines."""
    if not sensors or not sources:
        return
    defined = {s.metadata.name: event_names(s) for s in sources if s.metadata is not None and s.metadata.name}
    for sensor, file in sensors:
        for index, dep in enumerate(sensor.spec.dependencies or []):
            path = f"spec.dependencies[{index}]"
            if dep.event_source_name not in defined:
                yield errors.Problem(
                    f"no EventSource `{dep.event_source_name}` in {folder}"
                    + _hint(dep.event_source_name, defined)
                    + f" (defined: {', '.join(sorted(defined))})",
                    path=f"{path}.eventSourceName",
                    file=file,
                )
            elif dep.event_name not in defined[dep.event_source_name]:
                events = defined[dep.event_source_name]
                yield errors.Problem(
                    f"EventSource `{dep.event_source_name}` has no event `{dep.event_name}`"
                    + _hint(dep.event_name, events)
                    + f" (it has: {', '.join(sorted(events)) or 'none'})",
                    path=f"{path}.eventName",
                    file=file,
                )
