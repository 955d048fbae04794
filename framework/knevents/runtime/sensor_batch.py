"""One writer per trigger key in a process, folding every queued change into one compare-and-set.

Every event that touches an ``&&`` trigger changes the same KV entry. Within a
replica, concurrent requests would otherwise race each other's
compare-and-set; here they queue, and whoever holds the key's lock applies
*all* changes queued so far, in arrival order, to one read of the record and
writes the result with a single compare-and-set. Replicas still race each
other, and the revision check decides. A change is a pure function of the
record (``Change``), so a lost race is handled by re-reading and re-applying
the whole batch.

The writer also remembers the entry it last stored or read: the next batch
starts from it without a read round trip; if another replica wrote since, the
compare-and-set fails and the batch is re-applied to a fresh read.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from knevents import errors, state
from knevents.runtime import sensor_record

__all__ = ["MAX_CAS_ATTEMPTS", "Change", "KeyWriter"]

R = TypeVar("R")
Change = Callable[[sensor_record.Record, float], tuple[sensor_record.Record, Any]]
"""``(record, now) -> (new record, result)``; returning the same record object means no change."""
MAX_CAS_ATTEMPTS = 200
"""Compare-and-set attempts per batch before giving up (answered 429: many replicas racing on one key)."""


async def backoff(attempt: int) -> None:
    """A short, jittered pause after a lost compare-and-set, growing with the attempts (max 50 ms)."""
    await asyncio.sleep(random.uniform(0, min(0.05, 0.0005 * 2**attempt)))


@dataclass
class _Queued(Generic[R]):
    change: Change
    future: asyncio.Future[tuple[state.Entry | None, Any]]


@dataclass
class KeyWriter:
    """Serialises and batches the read-modify-writes of one key of one bucket."""

    bucket: state.Bucket
    key: str
    load: Callable[[state.Entry | None], sensor_record.Record]
    """Decode an entry (``None``: absent) into a record, purging state of another fingerprint."""
    clock: Callable[[], float]
    _queue: list[_Queued[Any]] = field(default_factory=list)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _known: tuple[state.Entry, sensor_record.Record] | None = None

    async def apply(self, change: Change) -> tuple[state.Entry | None, Any]:
        """Apply ``change`` (batched with others); returns the entry now stored and the change's result."""
        queued: _Queued[Any] = _Queued(change, asyncio.get_running_loop().create_future())
        self._queue.append(queued)
        async with self._lock:
            if not queued.future.done():
                batch, self._queue = self._queue, []
                # shielded: if this request is cancelled, the batch still completes for the others
                await asyncio.shield(asyncio.ensure_future(self._run(batch)))
        return queued.future.result()

    def forget(self) -> None:
        """Drop the remembered entry (the next batch reads afresh)."""
        self._known = None

    async def _run(self, batch: list[_Queued[Any]]) -> None:
        """Commit a batch and settle every future in it; never raises."""
        try:
            stored, results = await self._commit([q.change for q in batch])
        except errors.PermanentError as exc:
            if len(batch) == 1:
                batch[0].future.set_exception(exc)
                return
            for queued in batch:  # e.g. a value too large: only the change that causes it fails
                await self._run([queued])
            return
        except Exception as exc:
            for queued in batch:
                queued.future.set_exception(exc)
            return
        for queued, result in zip(batch, results, strict=True):
            if isinstance(result, _Failed):
                queued.future.set_exception(result.error)
            else:
                queued.future.set_result((stored, result))

    async def _commit(self, changes: list[Change]) -> tuple[state.Entry | None, list[Any]]:
        for attempt in range(MAX_CAS_ATTEMPTS):
            cached = self._known if attempt == 0 else None
            entry: state.Entry | None
            if cached is not None:
                entry, record = cached
            else:
                entry = await self.bucket.get(self.key)
                record = self.load(entry)
            new, results = _apply_all(changes, record, self.clock())
            if new is record:
                self._known = (entry, record) if entry is not None else None
                return entry, results
            value = sensor_record.encode(new)
            try:
                revision = await self.bucket.update(self.key, value, last=entry.revision if entry else 0)
            except errors.StateConflictError:
                self._known = None
                if cached is None:
                    await backoff(attempt)
                continue
            stored = state.Entry(value, revision)
            self._known = (stored, new)
            return stored, results
        raise errors.StateConflictError(
            f"key {self.key!r}: lost {MAX_CAS_ATTEMPTS} compare-and-set races in a row"
        )


@dataclass(frozen=True)
class _Failed:
    error: Exception


def _apply_all(
    changes: list[Change], record: sensor_record.Record, now: float
) -> tuple[sensor_record.Record, list[Any]]:
    """Apply every change in order; a change that raises is skipped and reported as failed."""
    results: list[Any] = []
    current = record
    for change in changes:
        try:
            current, result = change(current, now)
        except Exception as exc:  # one event's bad change must not sink the batch
            results.append(_Failed(exc))
            continue
        results.append(result)
    return current, results
