"""An in-process state store: the twin of the JetStream one, for tests and single replicas.

Same contract and the same compare-and-set semantics as NATS KV (revisions are
one counter per store, as a stream's sequence is per bucket), but nothing is
shared between processes and nothing survives a restart. ``knevents`` uses it
when no NATS URL is configured, with a warning.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from knevents import errors
from knevents.state import base

__all__ = ["MemoryBucket", "MemoryStore"]


@dataclass
class _Item:
    value: bytes
    revision: int
    stored_at: float


@dataclass
class MemoryBucket:
    """One bucket held in a dict."""

    name: str
    ttl: float | None = None
    max_value_size: int | None = None
    clock: Callable[[], float] = time.monotonic
    _items: dict[str, _Item] = field(default_factory=dict)
    _revision: int = 0

    def _live(self, key: str) -> _Item | None:
        item = self._items.get(key)
        if item is not None and self.ttl is not None and self.clock() - item.stored_at >= self.ttl:
            del self._items[key]
            return None
        return item

    def _store(self, key: str, value: bytes) -> int:
        if self.max_value_size is not None and len(value) > self.max_value_size:
            raise base.StateValueTooLargeError(
                f"state value for {key!r} in bucket {self.name!r} is {len(value)} bytes; "
                f"the bucket allows at most {self.max_value_size}"
            )
        self._revision += 1
        self._items[key] = _Item(value, self._revision, self.clock())
        return self._revision

    async def get(self, key: str) -> base.Entry | None:
        item = self._live(key)
        return None if item is None else base.Entry(item.value, item.revision)

    async def create(self, key: str, value: bytes) -> int:
        if self._live(key) is not None:
            raise errors.StateConflictError(f"key {key!r} already exists in bucket {self.name!r}")
        return self._store(key, value)

    async def update(self, key: str, value: bytes, *, last: int) -> int:
        item = self._live(key)
        current = 0 if item is None else item.revision
        if current != last:
            raise errors.StateConflictError(
                f"key {key!r} in bucket {self.name!r} changed (revision {current}, expected {last})"
            )
        return self._store(key, value)

    async def put(self, key: str, value: bytes) -> int:
        return self._store(key, value)

    async def put_nowait(self, key: str, value: bytes) -> None:
        self._store(key, value)

    async def delete(self, key: str, *, last: int | None = None) -> None:
        item = self._live(key)
        if last is not None and (item is None or item.revision != last):
            raise errors.StateConflictError(f"key {key!r} in bucket {self.name!r} changed before delete")
        self._items.pop(key, None)
        self._revision += 1

    async def purge(self, key: str) -> None:
        self._items.pop(key, None)

    async def keys(self) -> list[str]:
        return [key for key in list(self._items) if self._live(key) is not None]


class MemoryStore:
    """A :class:`base.StateStore` in memory."""

    def __init__(
        self, *, max_value_size: int | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._buckets: dict[str, MemoryBucket] = {}
        self._max_value_size = max_value_size
        self._clock = clock

    async def bucket(self, name: str, *, ttl: float | None = None) -> MemoryBucket:
        """The bucket ``name``, created on first use."""
        found = self._buckets.get(name)
        if found is None:
            found = MemoryBucket(name, ttl=ttl, max_value_size=self._max_value_size, clock=self._clock)
            self._buckets[name] = found
        return found

    async def close(self) -> None:
        """Nothing to release."""
