"""Manifests the deploy tests render: the upstream Argo examples and the project's examples/."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from knevents.deploy import eventsource

from tests import upstream

REPO = Path(__file__).resolve().parents[2]
# KNEVENTS_ARGO_EXAMPLES points at the argo-events data folder (as for the conformance tests); its
# manifests are under examples/. Without it only the repo's examples/ are rendered and the tests that
# name an upstream file are skipped (tests.upstream.example).
UPSTREAM = upstream.examples_dir()
KINDS = ("EventSource", "Sensor", "EventBus")


def manifest_files() -> list[Path]:
    """Every YAML file (upstream examples, then the repo's examples/) that holds an Argo manifest knevents runs.

    A file with an event source type knevents does not run is refused by render (see refused_files).
    """
    return [p for p in _all_files() if not unsupported_types(p)]


def refused_files() -> list[Path]:
    """The example files holding an event source type knevents does not run."""
    return [p for p in _all_files() if unsupported_types(p)]


def _all_files() -> list[Path]:
    files = sorted(p for p in UPSTREAM.rglob("*") if p.suffix in (".yaml", ".yml")) if UPSTREAM else []
    files += sorted(p for p in (REPO / "examples").rglob("*") if p.suffix in (".yaml", ".yml"))
    return [p for p in files if documents(p)]


_NOT_TYPES = frozenset({"eventBusName", "replicas", "service", "template"})


def unsupported_types(path: Path) -> set[str]:
    """The EventSource spec keys of a file (event entries: mappings) that no knevents source module runs."""
    specs = [doc.get("spec") or {} for doc in documents(path).get("EventSource", [])]
    keys = {k for spec in specs for k, v in spec.items() if k not in _NOT_TYPES and isinstance(v, dict)}
    return {k for k in keys if not eventsource.supported(k)}


def documents(path: Path) -> dict[str, list[dict[str, Any]]]:
    """The Argo documents of a file, by kind (empty when it has none)."""
    return from_text(path.read_text())


def from_text(text: str) -> dict[str, list[dict[str, Any]]]:
    """The Argo documents of a YAML stream, by kind (empty when it has none or is not YAML)."""
    out: dict[str, list[dict[str, Any]]] = {}
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError:
        return {}
    for doc in docs:
        if (
            isinstance(doc, dict)
            and doc.get("kind") in KINDS
            and str(doc.get("apiVersion", "")).startswith("argoproj.io/")
        ):
            out.setdefault(doc["kind"], []).append(doc)
    return out


def ident(path: Path) -> str:
    """A short test id for a file."""
    for root in (UPSTREAM, REPO):
        if root is not None and path.is_relative_to(root):
            return str(path.relative_to(root))
    return path.name


SEEDS = os.environ.get("KNEVENTS_SEEDS")
_FENCE = re.compile(r"```ya?ml\n(.*?)```", re.S)


def seed_blocks() -> list[tuple[str, dict[str, list[dict[str, Any]]]]]:
    """(id, Argo documents by kind) of every fenced YAML block of the seed documents holding whole manifests.

    Empty without ``KNEVENTS_SEEDS``. Blocks that are not YAML (module-1.2 lost its indentation; its
    manifests are rebuilt under examples/seeds) or hold only fragments are left out.
    """
    if not SEEDS:
        return []
    out = []
    for path in sorted(Path(SEEDS).glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            found = from_text(match.group(1))
            if found:
                line = text.count("\n", 0, match.start()) + 1
                out.append((f"{path.stem}:L{line}", found))
    return out
