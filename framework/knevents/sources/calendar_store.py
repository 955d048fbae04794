"""Where a calendar source remembers its last tick, for ``persistence.catchup``.

Argo keeps the last event in a ConfigMap; knevents keeps the last tick time in
a JetStream KV bucket ``knevents-calendar-<namespace>-<eventsource>`` (one key
per event name), next to the rest of its state, so a restarted or rescheduled
function can fire the ticks it missed. :class:`MemoryTickStore` is the
in-memory twin for tests. ``nats`` is imported only when the JetStream store
is used.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from knevents import errors, events
from knevents.settings import NatsSettings

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient
    from nats.js.kv import KeyValue

__all__ = ["JetStreamTickStore", "MemoryTickStore", "TickStore", "bucket_name", "key_name"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_KEY_SAFE = re.compile(r"^[A-Za-z0-9_=-]+$")


def bucket_name(namespace: str, event_source: str) -> str:
    """The KV bucket of one EventSource's calendars."""
    return f"knevents-calendar-{_UNSAFE.sub('_', namespace)}-{_UNSAFE.sub('_', event_source)}"


def key_name(event_name: str) -> str:
    """A KV key for an event name (names outside the key alphabet are base64url-encoded)."""
    if _KEY_SAFE.match(event_name):
        return event_name
    return "b64_" + base64.urlsafe_b64encode(event_name.encode()).decode().rstrip("=")


class TickStore(Protocol):
    """Last tick time per event name."""

    async def last(self, event_name: str) -> datetime | None: ...

    async def save(self, event_name: str, when: datetime) -> None: ...


class MemoryTickStore:
    """Ticks in a dict."""

    def __init__(self) -> None:
        self.ticks: dict[str, datetime] = {}

    async def last(self, event_name: str) -> datetime | None:
        return self.ticks.get(event_name)

    async def save(self, event_name: str, when: datetime) -> None:
        self.ticks[event_name] = when


class JetStreamTickStore:
    """Ticks in a JetStream KV bucket (created on first use)."""

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
                options: dict[str, Any] = {"connect_timeout": self._settings.connect_timeout,
                                           **self._settings.auth_options()}
                try:
                    self._client = await nats.connect(servers=servers, max_reconnect_attempts=1, **options)
                    js = self._client.jetstream(timeout=self._settings.request_timeout)
                    try:
                        self._kv = await js.key_value(self.bucket)
                    except nats.js.errors.BucketNotFoundError:
                        self._kv = await js.create_key_value(bucket=self.bucket, history=1)
                except (TimeoutError, nats.errors.Error, OSError) as exc:
                    await self.close()
                    raise errors.StateUnavailableError(f"calendar store {self.bucket}: {exc!r}") from exc
            return self._kv

    async def last(self, event_name: str) -> datetime | None:
        import nats.js.errors

        kv = await self._bucket()
        try:
            entry = await kv.get(key_name(event_name))
        except nats.js.errors.KeyNotFoundError:
            return None
        except (TimeoutError, nats.errors.Error, OSError) as exc:
            raise errors.StateUnavailableError(f"calendar store {self.bucket}: {exc!r}") from exc
        if not entry.value:
            return None
        try:
            return events.parse_time(entry.value.decode())
        except (errors.EventError, UnicodeDecodeError):
            return None

    async def save(self, event_name: str, when: datetime) -> None:
        import nats.errors

        kv = await self._bucket()
        try:
            await kv.put(key_name(event_name), events.format_time(when).encode())
        except (TimeoutError, nats.errors.Error, OSError) as exc:
            raise errors.StateUnavailableError(f"calendar store {self.bucket}: {exc!r}") from exc

    async def close(self) -> None:
        client, self._client, self._kv = self._client, None, None
        if client is not None and not client.is_closed:
            with contextlib.suppress(Exception):  # closing must not fail a shutdown
                await client.close()
