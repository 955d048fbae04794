"""Sensor state: the key-value store behind AND-conditions, the outbox and event-id dedupe.

``base`` holds the contract (:class:`base.StateStore`, :class:`base.Bucket`) and
the naming rules; ``memory`` is the in-process twin used by tests and by a
single replica without NATS; ``jetstream`` is the NATS JetStream KV adapter and
is imported only by whoever builds it (it pulls in ``nats``). This package must
not import sources, triggers or the bus.
"""

from __future__ import annotations

from knevents.state.base import (
    Bucket,
    Entry,
    StateStore,
    StateValueTooLargeError,
    bucket_name,
    dedupe_bucket_name,
    kv_key,
)

__all__ = [
    "Bucket",
    "Entry",
    "StateStore",
    "StateValueTooLargeError",
    "bucket_name",
    "dedupe_bucket_name",
    "kv_key",
]
