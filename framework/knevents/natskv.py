"""One NATS adapter: how knevents connects to NATS and opens a JetStream KV bucket.

The bus (:mod:`knevents.bus.jetstream`), the sensor state store
(:mod:`knevents.state.jetstream`), the calendar catch-up store and the
progress store of the ``file`` and ``resource`` sources all talk to the same
NATS; they take the server list, the credentials and the timeouts from
:class:`~knevents.settings.NatsSettings` through :func:`servers` and
:func:`options`, and the sources' small KV stores share :class:`KvBucket`
(created on first use, reopened after the connection closed, every NATS error
translated to :class:`errors.StateUnavailableError`).

It lives below sources, bus and state (which may not import one another).
``nats`` is imported lazily: an event source that never keeps state must not
pay for it at cold start.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from knevents import errors
from knevents.settings import NatsSettings

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient
    from nats.js.kv import KeyValue

__all__ = ["KvBucket", "nats_errors", "options", "servers"]


def servers(url: str) -> list[str]:
    """The server URLs of a comma-separated NATS URL."""
    return [part.strip() for part in url.split(",") if part.strip()]


def options(settings: NatsSettings) -> dict[str, Any]:
    """The connect options every knevents client uses: timeout and credentials (nats-py takes floats)."""
    return {"connect_timeout": settings.connect_timeout, **settings.auth_options()}


def nats_errors() -> tuple[type[BaseException], ...]:
    """What a NATS call may raise that means "NATS is not there" (imported lazily)."""
    import nats.errors
    import nats.js.errors

    return (nats.errors.Error, nats.js.errors.Error, asyncio.TimeoutError, OSError)


class KvBucket:
    """A JetStream KV bucket on its own connection, created on first use; ``what`` names it in errors."""

    def __init__(self, settings: NatsSettings, bucket: str, what: str) -> None:
        self._settings = settings
        self.bucket = bucket
        self._what = what
        self._client: NatsClient | None = None
        self._kv: KeyValue | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> KeyValue:
        """The bucket, connecting (once, then after the connection closed) and creating it when needed."""
        import nats
        import nats.js.errors

        async with self._lock:
            if self._client is not None and self._client.is_closed:
                self._client, self._kv = None, None
            if self._kv is None:
                try:
                    self._client = await nats.connect(
                        servers=servers(self._settings.url), max_reconnect_attempts=1, **options(self._settings)
                    )
                    js = self._client.jetstream(timeout=self._settings.request_timeout)
                    try:
                        self._kv = await js.key_value(self.bucket)
                    except nats.js.errors.BucketNotFoundError:
                        self._kv = await js.create_key_value(bucket=self.bucket, history=1)
                except nats_errors() as exc:
                    await self.close()
                    raise self._unavailable(exc) from exc
            return self._kv

    async def get(self, key: str) -> bytes | None:
        """The value of ``key``, or None when it is absent or empty."""
        import nats.js.errors

        kv = await self.open()
        try:
            entry = await kv.get(key)
        except nats.js.errors.KeyNotFoundError:
            return None
        except nats_errors() as exc:
            raise self._unavailable(exc) from exc
        return entry.value or None

    async def put(self, key: str, value: bytes) -> None:
        """Store ``value`` under ``key``."""
        kv = await self.open()
        try:
            await kv.put(key, value)
        except nats_errors() as exc:
            raise self._unavailable(exc) from exc

    async def close(self) -> None:
        """Close the connection; closing never fails a shutdown."""
        client, self._client, self._kv = self._client, None, None
        if client is not None and not client.is_closed:
            with contextlib.suppress(Exception):
                await client.close()

    def _unavailable(self, exc: BaseException) -> errors.StateUnavailableError:
        return errors.StateUnavailableError(f"{self._what} {self.bucket}: {exc!r}")
