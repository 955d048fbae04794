"""Where a pull source remembers how far it got, so a restarted function resumes instead of losing events.

The ``file`` and ``sftp`` sources keep the directory listing they last
published, the ``resource`` source the last ``resourceVersion``. One small
value per event name, in a JetStream KV bucket
``knevents-progress-<namespace>-<eventsource>`` next to the rest of the state
(Argo keeps nothing and loses what happens while its pod is down).
:class:`MemoryProgress` is the in-memory twin for tests. ``nats`` is imported
only when the JetStream store is used.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Protocol

from knevents import natskv
from knevents.settings import NatsSettings
from knevents.sources import calendar_store

if TYPE_CHECKING:
    pass

__all__ = ["JetStreamProgress", "MemoryProgress", "Progress", "bucket_name", "for_source"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def bucket_name(namespace: str, event_source: str) -> str:
    """The KV bucket of one EventSource's pull progress."""
    return f"knevents-progress-{_UNSAFE.sub('_', namespace)}-{_UNSAFE.sub('_', event_source)}"


class Progress(Protocol):
    """One opaque value per event name."""

    async def load(self, event_name: str) -> bytes | None: ...

    async def save(self, event_name: str, value: bytes) -> None: ...

    async def close(self) -> None: ...


class MemoryProgress:
    """Values in a dict."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}

    async def load(self, event_name: str) -> bytes | None:
        return self.values.get(event_name)

    async def save(self, event_name: str, value: bytes) -> None:
        self.values[event_name] = value

    async def close(self) -> None:
        return None


class JetStreamProgress:
    """Values in a JetStream KV bucket (created on first use); StateUnavailableError when NATS is not there."""

    def __init__(self, settings: NatsSettings, bucket: str) -> None:
        self.bucket = bucket
        self._kv = natskv.KvBucket(settings, bucket, "progress store")

    async def load(self, event_name: str) -> bytes | None:
        return await self._kv.get(calendar_store.key_name(event_name))

    async def save(self, event_name: str, value: bytes) -> None:
        await self._kv.put(calendar_store.key_name(event_name), value)

    async def close(self) -> None:
        """Close the connection."""
        await self._kv.close()


def for_source(ctx: Any) -> Progress:
    """The JetStream progress store of the EventSource a :class:`base.SourceContext` describes."""
    return JetStreamProgress(ctx.settings.nats, bucket_name(ctx.namespace, ctx.event_source_name))
