"""Render a set of Argo manifests into the Knative objects that run them.

Input is manifest dictionaries in Argo's format (what ``knevents.spec``
loaded and validated, dumped back with camelCase keys); output is a
:class:`Rendering`: groups of objects (one group per Broker / EventSource /
Sensor, the unit written to one file by ``-o DIR``) and warnings about what
could not be carried over. Brokers come first so that ``kubectl apply -f``
on the whole stream creates them before the Triggers that point at them.

A Broker is rendered for every EventBus manifest, and a plain ``default``-style
Broker for every other bus name an EventSource or Sensor uses in a namespace.
Two objects of the same kind, namespace and name are an error, not a silent
overwrite.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from knevents import errors
from knevents.deploy import eventbus, eventsource, names, objects, prereqs, sensor, ui
from knevents.deploy.options import RenderOptions

__all__ = ["Group", "Rendering", "dump_yaml", "render", "render_paths", "write_dir"]


@dataclass(frozen=True)
class Group:
    """The objects rendered for one manifest (or one implicit Broker)."""

    kind: str
    """``eventbus``, ``eventsource``, ``sensor`` or ``ui`` (``--ui``)."""
    name: str
    namespace: str
    objects: tuple[objects.Obj, ...]


@dataclass(frozen=True)
class Rendering:
    """Everything ``knevents render`` prints."""

    groups: tuple[Group, ...]
    warnings: tuple[str, ...] = ()

    @property
    def prerequisites(self) -> list[prereqs.Prerequisite]:
        """Secrets, ConfigMaps and ServiceAccounts the objects reference but the user must create."""
        return prereqs.find(self.objects)

    @property
    def objects(self) -> list[objects.Obj]:
        """Every object, in apply order."""
        return [obj for group in self.groups for obj in group.objects]


def _namespace(doc: Mapping[str, Any], options: RenderOptions) -> str:
    return options.namespace or str((doc.get("metadata") or {}).get("namespace") or "default")


def render(
    event_sources: Sequence[Mapping[str, Any]],
    sensors: Sequence[Mapping[str, Any]],
    event_buses: Sequence[Mapping[str, Any]] = (),
    options: RenderOptions | None = None,
) -> Rendering:
    """Render manifest dictionaries; raises :class:`errors.SpecError` for clashes or bad annotations."""
    options = options or RenderOptions()
    duplicates = _duplicate_manifests(
        [("EventSource", event_sources), ("Sensor", sensors), ("EventBus", event_buses)], options
    )
    if duplicates:
        raise errors.SpecError(duplicates)
    groups: list[Group] = []
    warnings: list[str] = []
    buses = {(_namespace(d, options), str(d["metadata"]["name"])) for d in event_buses}
    for doc in event_buses:
        ns = _namespace(doc, options)
        done = eventbus.render(doc, ns)
        groups.append(Group("eventbus", str(doc["metadata"]["name"]), ns, done.objects))
        warnings.extend(done.warnings)
    used = sorted(
        {
            (_namespace(d, options), str((d.get("spec") or {}).get("eventBusName") or "default"))
            for d in [*event_sources, *sensors]
        }
    )
    for ns, bus in used:
        if (ns, bus) not in buses:
            groups.append(Group("eventbus", bus, ns, eventbus.default_broker(bus, ns)))
    problems: list[errors.Problem] = []
    for kind, docs, renderer in (
        ("eventsource", event_sources, eventsource.render),
        ("sensor", sensors, sensor.render),
    ):
        for doc in docs:
            ns = _namespace(doc, options)
            try:
                done = renderer(doc, ns, options)
            except errors.SpecError as exc:
                problems.extend(exc.problems)
                continue
            groups.append(Group(kind, str(doc["metadata"]["name"]), ns, done.objects))
            warnings.extend(done.warnings)
    if options.ui and not problems:
        problems.extend(_ui(groups, [*event_sources, *sensors], options))
    problems.extend(_clashes(groups))
    if problems:
        raise errors.SpecError(problems)
    needed = prereqs.find(obj for group in groups for obj in group.objects)
    warnings.extend(f"not rendered, create it before applying: {p}" for p in needed)
    return Rendering(tuple(groups), tuple(warnings))


def _ui(groups: list[Group], docs: Sequence[Mapping[str, Any]], options: RenderOptions) -> list[errors.Problem]:
    """``--ui``: append the UI's groups (:mod:`knevents.deploy.ui`); the problems found instead, if any."""
    try:
        rendered = ui.render([(_namespace(d, options), d) for d in docs], options)
    except errors.SpecError as exc:
        return list(exc.problems)
    groups.extend(Group("ui", r.name, r.namespace, r.objects) for r in rendered)
    return []


def _duplicate_manifests(
    kinds: Sequence[tuple[str, Sequence[Mapping[str, Any]]]], options: RenderOptions
) -> list[errors.Problem]:
    problems: list[errors.Problem] = []
    for kind, docs in kinds:
        counts: dict[tuple[str, str], int] = {}
        for doc in docs:
            key = (_namespace(doc, options), str(doc["metadata"]["name"]))
            counts[key] = counts.get(key, 0) + 1
        problems.extend(
            errors.Problem(
                f"{kind} {ns}/{name} is given {count} times; names are unique per namespace "
                "(render separate examples separately)"
            )
            for (ns, name), count in counts.items()
            if count > 1
        )
    return problems


def _clashes(groups: Iterable[Group]) -> list[errors.Problem]:
    seen: dict[tuple[str, str, str], tuple[int, str]] = {}
    problems = []
    for index, group in enumerate(groups):
        owner = f"{group.kind} {group.namespace}/{group.name}"
        for obj in group.objects:
            key = (obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
            first = seen.setdefault(key, (index, owner))
            if first[0] != index:
                problems.append(
                    errors.Problem(
                        f"{key[0]} {key[1]}/{key[2]} would be rendered for both {first[1]} and {owner}"
                    )
                )
    return problems


def render_paths(paths: Sequence[str | Path], options: RenderOptions | None = None) -> Rendering:
    """Load, validate and render manifest files/directories (``knevents.validation.load_paths``).

    Invalid manifests raise :class:`errors.SpecError` listing every problem; valid
    ones that knevents does not run are rendered with a warning each.
    """
    from knevents import validation

    manifests = validation.load_paths(paths)
    if not manifests.count:
        where = " ".join(map(str, paths))
        raise errors.KneventsError(f"no EventSource, Sensor or EventBus manifest in {where}: nothing to render")
    rendering = render(
        [_dump(m) for m in manifests.event_sources],
        [_dump(m) for m in manifests.sensors],
        [_dump(m) for m in manifests.event_buses],
        options,
    )
    # valid Argo that knevents does not run is rendered anyway (the rest of the set is usable),
    # but said loudly: that part will not work once deployed
    notes = tuple(f"not supported, will not run: {p}" for p in manifests.unsupported)
    unknown = tuple(str(p) for p in manifests.warnings)  # rendered without the field, as Argo ignores it
    return Rendering(rendering.groups, unknown + notes + rendering.warnings)


def _dump(model: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped


class _Dumper(yaml.SafeDumper):
    """Writes multi-line strings (embedded manifests) as literal blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_yaml(objs: Iterable[objects.Obj]) -> str:
    """A multi-document YAML stream."""
    return str(yaml.dump_all(list(objs), Dumper=_Dumper, sort_keys=False, explicit_start=True))


def write_dir(rendering: Rendering, directory: Path) -> list[Path]:
    """One file per group plus a ``kustomization.yaml`` listing them; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for group in rendering.groups:
        path = directory / f"{group.kind}-{names.dns_label(group.namespace, group.name)}.yaml"
        path.write_text(dump_yaml(group.objects))
        written.append(path)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [p.name for p in written],
    }
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization, sort_keys=False))
    return [*written, directory / "kustomization.yaml"]
