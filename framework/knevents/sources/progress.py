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

import asyncio
import contextlib
import re
from typing import TYPE_CHECKING, Any, Protocol

from knevents import errors
from knevents.settings import NatsSettings
from knevents.sources import calendar_store

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient
    from nats.js.kv import KeyValue

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
        self._settings = settings
        self.bucket = bucket
        self._client: NatsClient | None = None
        self._kv: KeyValue | None = None
        self._lock = asyncio.Lock()

    async def _bucket(self) -> KeyValue:
        import nats
        import nats.js.errors

        async with self._lock:
            if self._client is not None and self._client.is_closed:
                self._client, self._kv = None, None
            if self._kv is None:
                servers = [u.strip() for u in self._settings.url.split(",") if u.strip()]
                try:
                    self._client = await nats.connect(servers=servers, max_reconnect_attempts=1,
                                                      connect_timeout=self._settings.connect_timeout)
                    js = self._client.jetstream(timeout=self._settings.request_timeout)
                    try:
                        self._kv = await js.key_value(self.bucket)
                    except nats.js.errors.BucketNotFoundError:
                        self._kv = await js.create_key_value(bucket=self.bucket, history=1)
                except (TimeoutError, nats.errors.Error, OSError) as exc:
                    await self.close()
                    raise errors.StateUnavailableError(f"progress store {self.bucket}: {exc!r}") from exc
            return self._kv

    async def load(self, event_name: str) -> bytes | None:
        import nats.errors
        import nats.js.errors

        kv = await self._bucket()
        try:
            entry = await kv.get(calendar_store.key_name(event_name))
        except nats.js.errors.KeyNotFoundError:
            return None
        except (TimeoutError, nats.errors.Error, OSError) as exc:
            raise errors.StateUnavailableError(f"progress store {self.bucket}: {exc!r}") from exc
        return entry.value or None

    async def save(self, event_name: str, value: bytes) -> None:
        import nats.errors

        kv = await self._bucket()
        try:
            await kv.put(calendar_store.key_name(event_name), value)
        except (TimeoutError, nats.errors.Error, OSError) as exc:
            raise errors.StateUnavailableError(f"progress store {self.bucket}: {exc!r}") from exc

    async def close(self) -> None:
        client, self._client, self._kv = self._client, None, None
        if client is not None and not client.is_closed:
            with contextlib.suppress(Exception):  # closing must not fail a shutdown
                await client.close()


def for_source(ctx: Any) -> Progress:
    """The JetStream progress store of the EventSource a :class:`base.SourceContext` describes."""
    return JetStreamProgress(ctx.settings.nats, bucket_name(ctx.namespace, ctx.event_source_name))
