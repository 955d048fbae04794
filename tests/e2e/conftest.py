"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e import harness


@pytest.fixture
def sink() -> Iterator[harness.Sink]:
    """A recording HTTP server for trigger targets, closed after the test."""
    server = harness.Sink()
    yield server
    server.close()
