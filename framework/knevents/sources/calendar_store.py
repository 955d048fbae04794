"""Where a calendar source remembers its last tick, for ``persistence.catchup``.

Argo keeps the last event in a ConfigMap; knevents keeps the last tick time in
a JetStream KV bucket ``knevents-calendar-<namespace>-<eventsource>`` (one key
per event name), next to the rest of its state, so a restarted or rescheduled
function can fire the ticks it missed. :class:`MemoryTickStore` is the
in-memory twin for tests. ``nats`` is imported only when the JetStream store
is used.
"""

from __future__ import annotations

import base64
import re
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from knevents import errors, events, natskv
from knevents.settings import NatsSettings

if TYPE_CHECKING:
    pass

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
    """Ticks in a JetStream KV bucket (created on first use), through the one NATS adapter."""

    def __init__(self, settings: NatsSettings, bucket: str) -> None:
        self.bucket = bucket
        self._kv = natskv.KvBucket(settings, bucket, "calendar store")

    async def last(self, event_name: str) -> datetime | None:
        value = await self._kv.get(key_name(event_name))
        if not value:
            return None
        try:
            return events.parse_time(value.decode())
        except (errors.EventError, UnicodeDecodeError):
            return None

    async def save(self, event_name: str, when: datetime) -> None:
        await self._kv.put(key_name(event_name), events.format_time(when).encode())

    async def close(self) -> None:
        """Close the connection."""
        await self._kv.close()
