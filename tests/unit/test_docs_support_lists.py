"""docs/spec.md and README.md name the source types and trigger kinds that run, and those that do not: in step with the code."""

from __future__ import annotations

import re
from pathlib import Path

from knevents import sources, triggers
from knevents.spec import support

SPEC_DOC = Path(__file__).resolve().parents[2] / "docs" / "spec.md"


def _bullet(title: str) -> tuple[set[str], set[str]]:
    """The names in the "Valid, but not run" bullet ``title``: (those that run, those that do not)."""
    text = SPEC_DOC.read_text()
    section = text[text.index("## Valid, but not run by knevents"):]
    bullet = section[section.index(f"* **{title}**"):]
    bullet = bullet[:bullet.index("\n* ")]
    running, rest = bullet.split("):", 1)
    names = re.compile(r"\b([a-z][A-Za-z0-9]+)\b")
    listed = running[running.index("(") + 1:]
    return set(names.findall(listed)), set(names.findall(rest.split(".")[0]))


def test_the_source_types_in_the_docs_are_the_ones_that_run_and_the_ones_refused_with_a_reason() -> None:
    running, refused = _bullet("Event source types")
    assert running == set(sources.all_types())
    assert refused == {k for k in support.UNSUPPORTED_REASONS if k not in ("azureEventHubs",)}


def test_the_trigger_kinds_in_the_docs_are_the_ones_that_run_and_the_ones_refused_with_a_reason() -> None:
    running, refused = _bullet("Trigger kinds")
    assert running == set(triggers.all_kinds())
    assert refused == {"azureEventHubs", "azureServiceBus", "pulsar"}
    assert refused <= set(support.UNSUPPORTED_REASONS)


README = SPEC_DOC.parents[1] / "README.md"


def _readme_lists() -> tuple[set[str], set[str], str]:
    """README's "Event sources: …" and "Triggers: …" sentences (names in backticks), and the "other Argo types" aside."""
    text = " ".join(README.read_text().split())  # sentences wrap anywhere
    section = text[text.index("Event sources: `"):]
    ticked = re.compile(r"`([A-Za-z0-9]+)`")
    source_part = section[:section.index("([docs/event-sources.md]")]
    trigger_part = section[section.index("Triggers: `"):section.index("([docs/triggers.md]")]
    other = section[section.index("The other Argo types (") + len("The other Argo types ("):]
    return set(ticked.findall(source_part)), set(ticked.findall(trigger_part)), other[:other.index(")")]


def test_the_readme_names_every_source_type_and_trigger_kind_that_runs() -> None:
    source_types, trigger_kinds, _ = _readme_lists()
    assert source_types == set(sources.all_types())
    assert trigger_kinds == set(triggers.all_kinds())


def test_the_readme_names_the_argo_types_refused_with_a_reason() -> None:
    *_, other = _readme_lists()
    names = re.compile(r"\b([a-z][A-Za-z0-9]+)\b")
    refused_sources, refused_triggers = other.split("sources;")
    assert set(names.findall(refused_sources)) == {k for k in support.UNSUPPORTED_REASONS if k != "azureEventHubs"}
    assert set(names.findall(refused_triggers)) - {"triggers"} == {"azureEventHubs", "azureServiceBus", "pulsar"}
