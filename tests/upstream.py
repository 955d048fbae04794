"""Where Argo Events' upstream corpus is, for the tests that read it.

Only ``$KNEVENTS_ARGO_EXAMPLES`` (a checkout of argo-events: ``examples/``, ``schema.json``) counts: a
user's clone has nothing beside it, so no path outside the repository is guessed. ``.ci/run`` sets the
variable when the corpus is there; without it the tests that need it are skipped with ``REASON``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REASON = "set KNEVENTS_ARGO_EXAMPLES to a checkout of argo-events (.ci/run does) to run the upstream-corpus tests"


def root() -> Path | None:
    """The argo-events checkout, or None when the variable is unset or points nowhere."""
    value = os.environ.get("KNEVENTS_ARGO_EXAMPLES")
    if not value or not Path(value).is_dir():
        return None
    return Path(value)


def examples_dir() -> Path | None:
    """``<checkout>/examples``, or None without a corpus."""
    base = root()
    return base / "examples" if base is not None and (base / "examples").is_dir() else None


def example(*parts: str) -> Path:
    """One upstream example file; skips the calling test (with ``REASON``) when the corpus is absent."""
    base = examples_dir()
    if base is None:
        pytest.skip(REASON)
    return base.joinpath(*parts)
