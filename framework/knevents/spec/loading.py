"""Load EventSource, Sensor and EventBus manifests from files, folders or text, collecting every problem.

A manifest goes through three stages, and every stage reports all it finds
before anything is raised: YAML (line and column), shape (pydantic, translated
by :mod:`knevents.spec.problems`), and Argo's admission rules
(:mod:`knevents.spec.sensor_rules`, :mod:`knevents.spec.source_rules`).
Documents of other kinds (a ServiceAccount, RBAC, a Workflow) are skipped
with a note; valid Argo that knevents does not run is reported as
``unsupported``, never as an error.

This layer knows Argo's structure, not the types knevents runs: the rules of
each event source type and trigger kind come in as :class:`Rules` from
:mod:`knevents.validation`, which is what every command and function loads
manifests through. Called without ``rules``, these functions check structure only.

Unknown fields are warnings, not errors: Argo's CRDs keep and ignore them, so
YAML with a stray or misplaced field runs in Argo and must run here. The field
is dropped and validation runs again; the warning names the field with a
"did you mean …?" or where it belongs. When what is left is invalid at or
above the unknown field (``openwhisk`` lower-case leaves a template with no
trigger kind), the warning is reported as an error beside it.
"""

from __future__ import annotations

import copy
import difflib
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pydantic

from knevents import errors
from knevents.spec import crosscheck, models, problems, sensor_rules, source_rules, support, tree, yamlio

__all__ = [
    "API_VERSION",
    "STRUCTURE",
    "Manifests",
    "Rules",
    "collect",
    "lenient",
    "load_one",
    "load_paths",
    "load_text",
    "parse_event_bus",
    "parse_event_source",
    "parse_sensor",
]

API_VERSION = "argoproj.io/v1alpha1"
YAML_SUFFIXES = (".yaml", ".yml")

Model = TypeVar("Model", bound=pydantic.BaseModel)
log = logging.getLogger("knevents.spec")
_MAX_STRIP_ROUNDS = 5
"""Validation passes dropping unknown fields (a dropped field can reveal another only inside a union)."""

Found = Iterable[tuple[str, str]]


def _nothing(_obj: Any) -> Iterator[Any]:
    return iter(())


@dataclass(frozen=True)
class Rules:
    """The checks beyond Argo's structure, given by the layer that knows the types (``knevents.validation``)."""

    event_source: Callable[[models.EventSource], Found] = _nothing
    """Every problem of a parsed EventSource beyond the generic rules."""
    event_source_parts: Callable[[Any], Found] = _nothing
    """The rules of the entries that parse, when the whole EventSource does not (raw dict in)."""
    sensor: Callable[[models.Sensor], Found] = _nothing
    sensor_parts: Callable[[Any], Found] = _nothing
    event_source_notes: Callable[[models.EventSource], Iterable[errors.Problem]] = _nothing
    """``unsupported`` notes: the types knevents does not run."""
    sensor_notes: Callable[[models.Sensor], Iterable[errors.Problem]] = _nothing


STRUCTURE = Rules()
"""Argo's generic structure rules only."""


@dataclass
class Manifests:
    """What a set of files holds, and what was wrong or not supported in them."""

    event_sources: list[models.EventSource] = field(default_factory=list)
    sensors: list[models.Sensor] = field(default_factory=list)
    event_buses: list[models.EventBus] = field(default_factory=list)
    unsupported: list[errors.Problem] = field(default_factory=list)
    """Valid Argo that knevents does not run (``Problem.unsupported`` is true)."""
    problems: list[errors.Problem] = field(default_factory=list)
    """Errors; :func:`load_paths` raises when there is any, :func:`collect` does not."""
    warnings: list[errors.Problem] = field(default_factory=list)
    """Unknown fields that were ignored (as Argo ignores them); errors only for ``validate --strict``."""
    crosscheck: list[errors.Problem] = field(default_factory=list)
    """Dependencies naming no EventSource event of their folder (:mod:`.crosscheck`); shown by ``validate``."""
    notes: list[errors.Problem] = field(default_factory=list)
    """Things worth knowing that are not warnings (a folder of sensors without EventSources)."""
    skipped: list[errors.Problem] = field(default_factory=list)
    """Documents that are not Argo Events manifests (another kind or apiVersion)."""
    files: list[str] = field(default_factory=list)
    """Every file read."""
    checked: int = 0
    """How many Argo Events manifests were checked, valid or not."""

    def extend(self, other: Manifests) -> None:
        """Add everything of ``other`` to this one."""
        self.event_sources.extend(other.event_sources)
        self.sensors.extend(other.sensors)
        self.event_buses.extend(other.event_buses)
        self.unsupported.extend(other.unsupported)
        self.problems.extend(other.problems)
        self.warnings.extend(other.warnings)
        self.crosscheck.extend(other.crosscheck)
        self.notes.extend(other.notes)
        self.skipped.extend(other.skipped)
        self.files.extend(other.files)
        self.checked += other.checked

    @property
    def count(self) -> int:
        """How many manifests loaded."""
        return len(self.event_sources) + len(self.sensors) + len(self.event_buses)


def _problem(message: str, path: str, file: str | None, document: int | None) -> errors.Problem:
    return errors.Problem(message=message, path=path, file=file, document=document)


def _delete(obj: Any, path: Sequence[str | int]) -> bool:
    """Remove the key at ``path`` from decoded YAML; False when the path does not lead there."""
    node = obj
    for part in path[:-1]:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if not (in_dict or in_list):
            return False
        node = node[part]
    if isinstance(node, dict) and path and path[-1] in node:
        del node[path[-1]]
        return True
    return False


def _without_unknown(
    cls: type[Model], obj: dict[str, Any]
) -> tuple[Model | None, list[tuple[str, str]], pydantic.ValidationError | None]:
    """Validate, dropping unknown fields; the model (or the remaining error) and ``(path, warning)`` pairs."""
    current: dict[str, Any] = obj
    dropped: list[tuple[str, str]] = []
    for _ in range(_MAX_STRIP_ROUNDS):
        try:
            return cls.model_validate(current, by_alias=True, by_name=False), dropped, None
        except pydantic.ValidationError as exc:
            unknown = problems.unknown_fields(cls, exc)
            if current is obj and unknown:
                current = copy.deepcopy(obj)
            removed = [(p, m) for p, m in unknown if _delete(current, p)]
            if not removed:
                return None, dropped, exc
            dropped.extend((problems.format_path(p), m) for p, m in removed)
    try:
        return cls.model_validate(current, by_alias=True, by_name=False), dropped, None
    except pydantic.ValidationError as exc:
        return None, dropped, exc


def lenient(cls: type[Model], obj: dict[str, Any]) -> Model | None:
    """``obj`` as ``cls`` with unknown fields dropped, as Argo reads it; None when it is invalid otherwise."""
    return _without_unknown(cls, obj)[0]


def _ignored(message: str, path: str) -> str:
    """``unknown field `x`; hint`` → ``unknown field `x` ignored (as in Argo); hint``."""
    key = problems.format_path(_split(path)[-1:]) if path else ""
    return message.replace(f"unknown field `{key}`", f"unknown field `{key}` ignored (as in Argo)", 1)


def _validate(
    cls: type[Model],
    obj: Any,
    rules: Callable[[Model], Iterable[tuple[str, str]]],
    kind: str,
    file: str | None,
    document: int | None,
    parts: Callable[[Any], Iterable[tuple[str, str]]] = lambda _: (),
    warnings: list[errors.Problem] | None = None,
) -> Model:
    found: list[errors.Problem] = []
    if not isinstance(obj, dict):
        raise errors.SpecError(
            [_problem(f"a {kind} must be a mapping, got {problems.type_name(obj)}", "", file, document)]
        )
    actual = obj.get("kind")
    if actual is not None and actual != kind:
        found.append(_problem(f"expected kind {kind}, got {actual!r}", "kind", file, document))
    version = obj.get("apiVersion")
    if version is not None and version != API_VERSION:
        found.append(
            _problem(f"expected apiVersion {API_VERSION}, got {version!r}", "apiVersion", file, document)
        )
    model, dropped, exc = _without_unknown(cls, obj)
    if exc is not None or model is None:
        assert exc is not None
        found.extend(_problem(m, p, file, document) for p, m in problems.from_validation_error(cls, exc))
        shaped = {p.path for p in found}
        found.extend(_problem(m, p, file, document) for p, m in parts(obj) if p not in shaped)
    else:
        found.extend(_problem(m, p, file, document) for p, m in rules(model))
    # An unknown field in (or beside the field of) something that is wrong anyway is part of the
    # explanation (`openwhisk` leaves a template with no kind; `serverURL` beside a missing `url`): an error.
    wrong = [_split(p.path) for p in found if p.path]
    for path, message in dropped:
        problem = _problem(message, path, file, document)
        parent = _split(path)[:-1]
        if any(w[: len(parent)] == parent and len(w) <= len(parent) + 1 for w in wrong):
            found.append(problem)
        elif warnings is not None:
            warnings.append(_problem(_ignored(message, path), path, file, document))
        else:
            log.warning("%s", _problem(_ignored(message, path), path, file, document))
    if found:
        raise errors.SpecError(found)
    assert model is not None
    return model


_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _metadata_rules(obj: Any) -> Iterator[tuple[str, str]]:
    yield from tree.check_references(obj)
    meta = obj.metadata
    if not (meta.name or meta.generate_name):
        yield "metadata.name", "a name is needed"
    elif meta.name and (len(meta.name) > 253 or not _DNS_SUBDOMAIN.match(meta.name)):
        yield (
            "metadata.name",
            (
                f"`{meta.name}` is not a valid Kubernetes name "
                "(lowercase letters, digits, '-' and '.', starting and ending with a letter or digit)"
            ),
        )


def _sensor_rules(rules: Rules) -> Callable[[models.Sensor], Iterator[tuple[str, str]]]:
    def check(sensor: models.Sensor) -> Iterator[tuple[str, str]]:
        yield from _metadata_rules(sensor)
        yield from sensor_rules.check_sensor(sensor)
        yield from rules.sensor(sensor)

    return check


def _sensor_parts(rules: Rules) -> Callable[[Any], Iterator[tuple[str, str]]]:
    def check(obj: Any) -> Iterator[tuple[str, str]]:
        yield from sensor_rules.check_sensor_parts(obj)
        yield from rules.sensor_parts(obj)

    return check


def _source_rules(rules: Rules) -> Callable[[models.EventSource], Iterator[tuple[str, str]]]:
    def check(source: models.EventSource) -> Iterator[tuple[str, str]]:
        yield from _metadata_rules(source)
        yield from source_rules.check_event_source(source)
        yield from rules.event_source(source)

    return check


def _bus_rules(bus: models.EventBus) -> Iterator[tuple[str, str]]:
    yield from _metadata_rules(bus)
    yield from source_rules.check_event_bus(bus)


Warnings = list[errors.Problem] | None
"""Where ignored unknown fields are reported; ``None`` logs them (``knevents.spec``, level warning)."""


def parse_sensor(
    obj: dict[str, Any],
    *,
    file: str | None = None,
    document: int | None = None,
    warnings: Warnings = None,
    rules: Rules = STRUCTURE,
) -> models.Sensor:
    """A validated Sensor from a decoded manifest; raises SpecError listing every problem."""
    return _validate(
        models.Sensor, obj, _sensor_rules(rules), "Sensor", file, document, _sensor_parts(rules), warnings
    )


def parse_event_source(
    obj: dict[str, Any],
    *,
    file: str | None = None,
    document: int | None = None,
    warnings: Warnings = None,
    rules: Rules = STRUCTURE,
) -> models.EventSource:
    """A validated EventSource from a decoded manifest; raises SpecError listing every problem."""
    return _validate(
        models.EventSource,
        obj,
        _source_rules(rules),
        "EventSource",
        file,
        document,
        rules.event_source_parts,
        warnings,
    )


def parse_event_bus(
    obj: dict[str, Any], *, file: str | None = None, document: int | None = None, warnings: Warnings = None
) -> models.EventBus:
    """A validated EventBus from a decoded manifest; raises SpecError listing every problem."""
    return _validate(models.EventBus, obj, _bus_rules, "EventBus", file, document, warnings=warnings)


def _where(problem: errors.Problem, file: str | None, document: int) -> errors.Problem:
    return errors.Problem(
        message=problem.message,
        path=problem.path,
        file=file,
        document=document,
        unsupported=problem.unsupported,
    )


def load_text(text: str, *, file: str | None = None, rules: Rules = STRUCTURE) -> Manifests:
    """Every Argo manifest of a YAML stream; problems are collected in the result, not raised."""
    out = Manifests(files=[file] if file else [])
    for doc in yamlio.documents(text):
        if isinstance(doc, yamlio.YamlProblem):
            where = f"line {doc.line}, column {doc.column}: " if doc.line and doc.column else ""
            where = where or (f"line {doc.line}: " if doc.line else "")
            out.problems.append(_problem(where + doc.message, "", file, doc.index))
            break
        _load_document(doc, file, out, rules)
    return out


KINDS = ("EventSource", "Sensor", "EventBus")


def _kind_mistake(kind: Any, version: Any) -> tuple[str, str] | None:
    """``(path, message)`` when a document looks like a mistyped Argo Events manifest, else None (skip it)."""
    if kind is None and version is None:
        return "", "not a Kubernetes manifest: `apiVersion` and `kind` are missing"
    if kind in KINDS and (version is None or str(version).startswith("argoproj.io")):
        return "apiVersion", f"expected apiVersion {API_VERSION}, got {version!r}"
    if version == API_VERSION and isinstance(kind, str):
        close = difflib.get_close_matches(kind, KINDS, n=1, cutoff=0.75)
        close = close or [k for k in KINDS if k.lower() == kind.lower()]
        if close:
            return "kind", f"unknown kind {kind!r}; did you mean `{close[0]}`?"
    return None


def _load_document(doc: yamlio.Document, file: str | None, out: Manifests, rules: Rules) -> None:
    obj = doc.content
    if obj is None:
        return
    if not isinstance(obj, dict):
        out.problems.append(
            _problem(f"a manifest must be a mapping, got {problems.type_name(obj)}", "", file, doc.index)
        )
        return
    kind, version = obj.get("kind"), obj.get("apiVersion")
    if version != API_VERSION or kind not in KINDS:
        mistake = _kind_mistake(kind, version)
        if mistake is not None:
            out.problems.append(_problem(mistake[1], mistake[0], file, doc.index))
        else:
            out.skipped.append(
                _problem(f"skipped {kind} ({version}): not an Argo Events manifest", "", file, doc.index)
            )
        return
    out.checked += 1
    try:
        warned: list[errors.Problem] = []
        if kind == "Sensor":
            sensor = parse_sensor(obj, file=file, document=doc.index, warnings=warned, rules=rules)
            out.sensors.append(sensor)
            notes = list(rules.sensor_notes(sensor))
        elif kind == "EventSource":
            source = parse_event_source(obj, file=file, document=doc.index, warnings=warned, rules=rules)
            out.event_sources.append(source)
            notes = list(rules.event_source_notes(source))
        else:
            bus = parse_event_bus(obj, file=file, document=doc.index, warnings=warned)
            out.event_buses.append(bus)
            notes = list(support.unsupported_in_bus(bus))
    except errors.SpecError as exc:
        out.problems.extend(_with_lines(exc.problems, doc))
        out.warnings.extend(_with_lines(warned, doc))
        return
    out.unsupported.extend(_where(n, file, doc.index) for n in notes)
    out.warnings.extend(_with_lines(warned, doc))


_SEGMENT = re.compile(r"\[(\d+)\]|\['((?:[^'\\]|\\.)*)'\]|\.?([^.\[]+)")


def _split(path: str) -> tuple[str | int, ...]:
    """The inverse of :func:`problems.format_path`."""
    parts: list[str | int] = []
    for index, quoted, plain in _SEGMENT.findall(path):
        parts.append(int(index) if index else (quoted or plain))
    return tuple(parts)


def _with_lines(found: Iterable[errors.Problem], doc: yamlio.Document) -> Iterator[errors.Problem]:
    """Add the YAML line of each problem's path (or of its nearest present parent) to its message."""
    positions: dict[tuple[str | int, ...], int] | None = None
    for problem in found:
        if not problem.path:
            yield problem
            continue
        if positions is None:
            positions = yamlio.lines(doc.node)
        parts = _split(problem.path)
        while parts and parts not in positions:
            parts = parts[:-1]
        line = positions.get(parts) if parts else None
        if line is None:
            yield problem
            continue
        yield errors.Problem(
            message=f"{problem.message} (line {line})",
            path=problem.path,
            file=problem.file,
            document=problem.document,
            unsupported=problem.unsupported,
        )


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        # hidden entries are skipped: a mounted ConfigMap keeps a second copy of each file under ..<timestamp>/
        return sorted(
            p
            for p in path.rglob("*")
            if p.suffix in YAML_SUFFIXES and p.is_file() and not _hidden(p.relative_to(path))
        )
    return [path]


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def collect(paths: Iterable[str | Path], *, rules: Rules = STRUCTURE) -> Manifests:
    """Load files and folders (recursively, ``*.yaml``/``*.yml``); every problem is in the result."""
    out = Manifests()
    folders: dict[Path, tuple[list[Any], list[tuple[Any, str | None]]]] = {}
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            out.problems.append(_problem("no such file or directory", "", str(path), None))
            continue
        for file in _files(path):
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
                out.problems.append(_problem(f"cannot read: {reason}", "", str(file), None))
                continue
            found = load_text(text, file=str(file), rules=rules)
            sources, sensors = folders.setdefault(file.parent, ([], []))
            sources.extend(found.event_sources)
            sensors.extend((s, str(file)) for s in found.sensors)
            out.extend(found)
    for folder, (sources, sensors) in folders.items():
        if sensors and not sources:
            out.notes.append(crosscheck.no_sources(str(folder)))
        out.crosscheck.extend(crosscheck.check_folder(str(folder), sources, sensors))
    return out


def load_paths(paths: Iterable[str | Path] | str | Path, *, rules: Rules = STRUCTURE) -> Manifests:
    """Load files and folders; raises SpecError listing every problem of every file."""
    if isinstance(paths, str | Path):
        paths = [paths]
    manifests = collect(paths, rules=rules)
    if manifests.problems:
        raise errors.SpecError(manifests.problems)
    return manifests


def load_one(path_or_text: str | Path, kind: str | None = None, *, rules: Rules = STRUCTURE) -> Any:
    """The single manifest in a file or YAML/JSON text (optionally of the given kind); SpecError otherwise."""
    text, file = _text_of(path_or_text)
    manifests = load_text(text, file=file, rules=rules)
    if manifests.problems:
        raise errors.SpecError(manifests.problems)
    for warning in manifests.warnings:  # a function's one load at start: warned once, in its log
        log.warning("%s", warning)
    found: Sequence[Any] = [*manifests.event_sources, *manifests.sensors, *manifests.event_buses]
    if kind is not None:
        found = [m for m in found if type(m).__name__ == kind]
    if len(found) != 1:
        what = kind or "EventSource, Sensor or EventBus"
        raise errors.SpecError(
            [errors.Problem(f"expected exactly one {what} manifest, found {len(found)}", file=file)]
        )
    return found[0]


def _text_of(path_or_text: str | Path) -> tuple[str, str | None]:
    if isinstance(path_or_text, Path):
        return path_or_text.read_text(encoding="utf-8"), str(path_or_text)
    if "\n" not in path_or_text and not path_or_text.lstrip().startswith("{"):
        candidate = Path(path_or_text)
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8"), str(candidate)
        raise errors.SpecError([errors.Problem("no such file", file=path_or_text)])
    return path_or_text, None
