"""The state-store contract and the naming rules for buckets and keys.

A sensor keeps its trigger state in one key-value *bucket* (one key per
trigger), and remembers processed event ids in a second bucket whose entries
expire after the dedupe TTL. Every write that matters is a compare-and-set on
the key's revision, so N replicas sharing a bucket never both win the same
transition. Implementations translate their backend's errors into
:class:`errors.StateUnavailableError` (retry later) and
:class:`errors.StateConflictError` (lost a race, re-read and retry now).
"""

from __future__ import annotations

import hashlib
import re
from typing import NamedTuple, Protocol

from knevents import errors

__all__ = [
    "Bucket",
    "Entry",
    "StateStore",
    "StateValueTooLargeError",
    "bucket_name",
    "dedupe_bucket_name",
    "kv_key",
]

_NOT_BUCKET_SAFE = re.compile(r"[^A-Za-z0-9_-]")
_NOT_KEY_SAFE = re.compile(r"[^A-Za-z0-9_=-]")
_MAX_BUCKET = 60
"""Stream names (``KV_<bucket>``) stay well under JetStream's 255-char limit and readable."""
_MAX_KEY = 120


class Entry(NamedTuple):
    """A stored value and the revision to pass to ``update(last=…)``."""

    value: bytes
    revision: int


StateValueTooLargeError = errors.StateValueTooLargeError


class Bucket(Protocol):
    """One key-value bucket. Keys must be KV-safe (see :func:`kv_key`)."""

    name: str

    async def get(self, key: str) -> Entry | None:
        """The current value and revision, or ``None`` when absent or deleted."""
        ...

    async def create(self, key: str, value: bytes) -> int:
        """Store ``value`` only if ``key`` is absent; StateConflictError otherwise. Returns the revision."""
        ...

    async def update(self, key: str, value: bytes, *, last: int) -> int:
        """Compare-and-set: store only if the revision is still ``last``; StateConflictError otherwise."""
        ...

    async def put(self, key: str, value: bytes) -> int:
        """Store unconditionally; returns the revision."""
        ...

    async def put_nowait(self, key: str, value: bytes) -> None:
        """Store unconditionally without waiting for the server's acknowledgement.

        For marks whose loss is harmless (the dedupe entry of an event already
        answered 2xx): saves a round trip on the hot path.
        """
        ...

    async def delete(self, key: str, *, last: int | None = None) -> None:
        """Delete ``key`` (compare-and-set when ``last`` is given)."""
        ...

    async def purge(self, key: str) -> None:
        """Remove ``key`` and its history."""
        ...

    async def keys(self) -> list[str]:
        """Every live key (for status views and tests)."""
        ...


class StateStore(Protocol):
    """Opens buckets; one store is shared by every sensor of a process."""

    async def bucket(self, name: str, *, ttl: float | None = None) -> Bucket:
        """The bucket ``name``, created when missing; entries expire after ``ttl`` seconds if given."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _safe(text: str, pattern: re.Pattern[str], limit: int) -> str:
    cleaned = pattern.sub("_", text)
    if cleaned != text or len(cleaned) > limit:
        # Sanitising may map two names onto one; the hash of the original keeps them apart.
        cleaned = f"{cleaned[: limit - 9]}_{_short_hash(text)}"
    return cleaned


def bucket_name(namespace: str, sensor: str, *, prefix: str = "knevents") -> str:
    """The trigger-state bucket of a sensor: ``<prefix>_<namespace>_<sensor>``, KV-safe."""
    return _safe(f"{prefix}_{namespace}_{sensor}", _NOT_BUCKET_SAFE, _MAX_BUCKET)


def dedupe_bucket_name(namespace: str, sensor: str, *, prefix: str = "knevents") -> str:
    """The event-id dedupe bucket of a sensor (entries expire after the dedupe TTL)."""
    return _safe(f"{prefix}-dedupe_{namespace}_{sensor}", _NOT_BUCKET_SAFE, _MAX_BUCKET)


def kv_key(name: str) -> str:
    """A KV-safe key for a trigger name or an event id (hashed suffix when sanitising changed it)."""
    if not name:
        return "_empty"
    return _safe(name, _NOT_KEY_SAFE, _MAX_KEY)
