"""Walk a parsed manifest: every nested model with its YAML path.

Some rules are about a *type* wherever it appears (every Secret or ConfigMap
reference needs a name and a key), not about one field; walking the tree once
keeps them to a few lines.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pydantic

from knevents.spec import models, problems

__all__ = ["check_references", "walk"]


def walk(
    node: Any, path: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], pydantic.BaseModel]]:
    """``(path, model)`` for ``node`` and every model under it, depth first, in field order."""
    if isinstance(node, pydantic.BaseModel):
        yield path, node
        for name, field in type(node).model_fields.items():
            value = getattr(node, name)
            if value is not None:
                yield from walk(value, (*path, field.alias or name))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from walk(item, (*path, index))
    elif isinstance(node, dict):
        for key, item in node.items():
            yield from walk(item, (*path, str(key)))


def check_references(root: pydantic.BaseModel) -> Iterator[tuple[str, str]]:
    """Every Secret / ConfigMap key reference names both the object and the key."""
    for path, node in walk(root):
        if isinstance(node, models.SecretKeySelector | models.ConfigMapKeySelector):
            what = "secret" if isinstance(node, models.SecretKeySelector) else "ConfigMap"
            if not node.name:
                yield problems.format_path(path), f"a {what} reference needs the {what}'s `name`"
            if not node.key:
                yield problems.format_path(path), f"a {what} reference needs a `key`"
