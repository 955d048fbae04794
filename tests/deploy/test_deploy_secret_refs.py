"""The manifest walk that finds Secrets to mount agrees with the typed spec models on every example."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from knevents import validation
from knevents.deploy import refs
from knevents.spec import models

from tests import upstream
from tests.deploy import corpus

FILES = [p for p in corpus.manifest_files() if not validation.collect([p]).problems]


def _model_refs(model: Any) -> tuple[set[str], set[str]]:
    """Secret and ConfigMap names found by walking the pydantic models (free-form dicts are not models)."""
    secrets: set[str] = set()
    configmaps: set[str] = set()

    def walk(value: Any, top: bool) -> None:
        if isinstance(value, models.SecretKeySelector) and value.name:
            secrets.add(value.name)
        elif isinstance(value, models.ConfigMapKeySelector) and value.name:
            configmaps.add(value.name)
        elif hasattr(type(value), "model_fields"):
            for field in type(value).model_fields:
                if top and field == "template":
                    continue  # the pod template is carried over as it is, not mounted
                walk(getattr(value, field), False)
        elif isinstance(value, dict):
            for child in value.values():
                walk(child, False)
        elif isinstance(value, list):
            for child in value:
                walk(child, False)

    walk(model.spec, True)
    return secrets, configmaps


@pytest.mark.parametrize("path", FILES, ids=[corpus.ident(p) for p in FILES])
def test_dict_walk_matches_model_walk(path: Path) -> None:
    loaded = validation.collect([path])
    for model in [*loaded.event_sources, *loaded.sensors]:
        found = refs.find(model.model_dump(mode="json", by_alias=True, exclude_none=True)["spec"])
        secrets, configmaps = _model_refs(model)
        assert (set(found.secrets), set(found.configmaps)) == (secrets, configmaps)


def test_the_corpus_has_secrets_to_find() -> None:
    if corpus.UPSTREAM is None:
        pytest.skip(upstream.REASON)
    total = set()
    for path in FILES:
        for model in [*validation.collect([path]).event_sources, *validation.collect([path]).sensors]:
            total |= _model_refs(model)[0]
    assert len(total) > 10
