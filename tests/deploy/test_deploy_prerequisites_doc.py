"""docs/deploy.md lists, for every event source type and trigger kind knevents runs, the Secrets it may reference.

The Secret fields come from the type's model (every ``SecretKeySelector`` in it, with its path), the types from
the registry: a new type, or a new credential field, fails this test until the docs say what a user must create.
"""

from __future__ import annotations

import re
import typing
from typing import Any

from knevents import sources, triggers
from knevents.spec import models
from pydantic import BaseModel

from tests.deploy import corpus

DOC = corpus.REPO / "docs" / "deploy.md"


def _leaf_types(annotation: Any) -> list[Any]:
    args = typing.get_args(annotation)
    return [t for a in args for t in _leaf_types(a)] if args else [annotation]


def secret_fields(model: type[BaseModel], prefix: str = "", seen: tuple[type, ...] = ()) -> set[str]:
    """Paths (YAML names) of every SecretKeySelector in ``model``."""
    out: set[str] = set()
    if model in seen:
        return out
    for name, field in model.model_fields.items():
        alias = field.alias or name
        for leaf in _leaf_types(field.annotation):
            if leaf is models.SecretKeySelector:
                out.add(prefix + alias)
            elif isinstance(leaf, type) and issubclass(leaf, BaseModel):
                out |= secret_fields(leaf, f"{prefix}{alias}.", (*seen, model))
    return out


def _rows(section: str) -> dict[str, set[str]]:
    text = DOC.read_text()
    body = text[text.index(section) :]
    body = body[: body.index("\n\n", body.index("|---"))]
    rows = {}
    for line in body.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0].strip("`")] = set(re.findall(r"`([^`]+)`", cells[1]))
    return rows


def test_every_source_type_has_its_secrets_listed() -> None:
    rows = _rows("| event source type | Secrets")
    expected = {key: secret_fields(t.model) for key, t in sources.all_types().items()}
    assert rows == expected


def test_every_trigger_kind_has_its_secrets_listed() -> None:
    rows = _rows("| trigger kind | Secrets")
    expected = {key: secret_fields(k.model) for key, k in triggers.all_kinds().items()}
    assert rows == expected
