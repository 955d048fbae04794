"""The state store on NATS JetStream key-value buckets: what lets N sensor replicas share state.

This is one of the few modules allowed to import ``nats`` (with ``bus/`` and
``local/``); every ``nats`` error is translated here into
:class:`errors.StateUnavailableError` or :class:`errors.StateConflictError`
(chained with ``from exc``), so the runtime never sees a ``nats`` type.

It connects lazily (a function's cold start must not wait for NATS), fails
fast when NATS is unreachable (``NatsSettings.connect_timeout``) so the caller
can answer 5xx and let the broker retry, reconnects by itself after a NATS
restart, and tries again on the next call when the first connect failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import nats.aio.client
import nats.errors
import nats.js.api
import nats.js.errors

from knevents import errors, natsclient, natskv
from knevents.settings import Settings
from knevents.state import base

if TYPE_CHECKING:
    from nats.js.client import JetStreamContext
    from nats.js.kv import KeyValue

__all__ = ["JetStreamBucket", "JetStreamStore"]

log = logging.getLogger(__name__)
T = TypeVar("T")
_WRONG_LAST_SEQUENCE = (10071, 10164)
_MAX_PAYLOAD_EXCEEDED = (10054,)
_RECONNECT_WAIT = 0.5
"""Seconds between reconnect attempts; short so a restarted NATS is used again quickly."""


def _redact(url: str) -> str:
    """A server URL without credentials, for messages."""
    parts = []
    for one in url.split(","):
        scheme, sep, rest = one.strip().partition("://")
        if sep and "@" in rest:
            rest = "***@" + rest.split("@", 1)[1]
        parts.append(f"{scheme}{sep}{rest}")
    return ",".join(parts)


class JetStreamBucket:
    """One KV bucket; every call goes through the store's error translation.

    When the bucket's stream is gone (a NATS without persistent storage was
    restarted, or someone deleted it), the bucket is created again and the call
    retried once: the state is lost then, but the sensor keeps working.
    """

    def __init__(
        self, store: JetStreamStore, name: str, kv: KeyValue, max_value_size: int, ttl: float | None
    ) -> None:
        self.name = name
        self._store = store
        self._kv = kv
        self._max_value_size = max_value_size
        self._ttl = ttl

    def _check_size(self, key: str, value: bytes) -> None:
        if len(value) > self._max_value_size:
            raise base.StateValueTooLargeError(
                f"state value for {key!r} in bucket {self.name!r} is {len(value)} bytes; "
                f"the bucket allows at most {self._max_value_size} (KNEVENTS_STATE_MAX_VALUE)"
            )

    async def _call(self, what: str, op: Callable[[KeyValue], Awaitable[T]]) -> T:
        async def attempt() -> T:
            try:
                return await op(self._kv)
            except (nats.errors.NoRespondersError, nats.js.errors.NoStreamResponseError):
                log.warning("KV bucket %s is gone; creating it again (its state is lost)", self.name)
                self._kv = await self._store.open_kv(self.name, self._ttl)
                return await op(self._kv)

        return await self._store.call(f"{what} in bucket {self.name!r}", attempt)

    async def get(self, key: str) -> base.Entry | None:
        async def op(kv: KeyValue) -> base.Entry | None:
            try:
                entry = await kv.get(key)
            except nats.js.errors.KeyNotFoundError:
                return None
            return base.Entry(entry.value or b"", entry.revision or 0)

        return await self._call(f"get {key!r}", op)

    async def create(self, key: str, value: bytes) -> int:
        self._check_size(key, value)
        return await self._call(f"create {key!r}", lambda kv: kv.create(key, value))

    async def update(self, key: str, value: bytes, *, last: int) -> int:
        self._check_size(key, value)
        if last == 0:
            return await self.create(key, value)
        return await self._call(f"update {key!r}", lambda kv: kv.update(key, value, last=last))

    async def put(self, key: str, value: bytes) -> int:
        self._check_size(key, value)
        return await self._call(f"put {key!r}", lambda kv: kv.put(key, value))

    async def put_nowait(self, key: str, value: bytes) -> None:
        self._check_size(key, value)
        # A plain publish on the bucket's subject: the stream stores it, nobody waits for the ack.
        subject = f"$KV.{self.name}.{key}"
        await self._store.call(f"put {key!r} in {self.name!r}", lambda: self._store.publish(subject, value))

    async def delete(self, key: str, *, last: int | None = None) -> None:
        await self._call(f"delete {key!r}", lambda kv: kv.delete(key, last=last))

    async def purge(self, key: str) -> None:
        await self._call(f"purge {key!r}", lambda kv: kv.purge(key))

    async def keys(self) -> list[str]:
        async def op(kv: KeyValue) -> list[str]:
            try:
                return list(await kv.keys())
            except nats.js.errors.NoKeysError:
                return []

        return await self._call("list keys", op)


class JetStreamStore:
    """A :class:`base.StateStore` on a NATS server (or cluster) with JetStream."""

    def __init__(self, url: str | None = None, *, settings: Settings | None = None) -> None:
        self._settings = settings or Settings()
        self.url = url or self._settings.nats.url
        self._nc: nats.aio.client.Client | None = None
        self._js: JetStreamContext | None = None
        self._buckets: dict[str, JetStreamBucket] = {}
        self._lock: asyncio.Lock | None = None
        self._last_error_log = 0.0

    @classmethod
    async def connect(cls, url: str | None = None, *, settings: Settings | None = None) -> JetStreamStore:
        """A store already connected (raises StateUnavailableError when NATS is unreachable)."""
        store = cls(url, settings=settings)
        await store.ensure_connected()
        return store

    # --- connection -------------------------------------------------------

    async def _on_error(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._last_error_log > 10:  # one line per 10 s, not one traceback per attempt
            self._last_error_log = now
            log.warning("NATS %s: %s", _redact(self.url), exc or type(exc).__name__)

    async def _on_disconnected(self) -> None:
        log.warning("disconnected from NATS %s; reconnecting", _redact(self.url))

    async def _on_reconnected(self) -> None:
        log.info("reconnected to NATS %s", _redact(self.url))

    async def ensure_connected(self) -> JetStreamContext:
        """The JetStream context, connecting first when needed."""
        if self._js is not None and self._nc is not None and not self._nc.is_closed:
            await self._wait_reconnected(self._nc)
            return self._js
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._js is not None and self._nc is not None and not self._nc.is_closed:
                return self._js
            self._buckets.clear()
            timeout = self._settings.nats.connect_timeout
            nc = natsclient.LeanClient()
            try:
                # nats-py retries the initial connect forever when reconnects are allowed;
                # the deadline keeps a cold function from hanging on a dead NATS.
                await asyncio.wait_for(
                    nc.connect(
                        servers=natskv.servers(self.url),
                        connect_timeout=timeout,  # type: ignore[arg-type]  # floats work; the stub says int
                        allow_reconnect=True,
                        max_reconnect_attempts=-1,
                        reconnect_time_wait=_RECONNECT_WAIT,  # type: ignore[arg-type]
                        error_cb=self._on_error,
                        disconnected_cb=self._on_disconnected,
                        reconnected_cb=self._on_reconnected,
                        **self._settings.nats.auth_options(),  # type: ignore[arg-type]  # str options
                    ),
                    timeout=timeout,
                )
            except (TimeoutError, OSError, nats.errors.Error) as exc:
                await _close_quietly(nc)
                raise errors.StateUnavailableError(
                    f"NATS at {_redact(self.url)} is unreachable (no connection within {timeout:g}s)"
                ) from exc
            self._nc = nc
            self._js = nc.jetstream(timeout=self._settings.nats.request_timeout)
            return self._js

    async def client(self) -> nats.aio.client.Client:
        """The NATS connection under the store (connecting first), for a writer that shares it (the firing log)."""
        await self.ensure_connected()
        if self._nc is None:  # ensure_connected sets it or raises; this only satisfies the type
            raise errors.StateUnavailableError(f"NATS at {_redact(self.url)} is not connected")
        return self._nc

    async def _wait_reconnected(self, nc: nats.aio.client.Client) -> None:
        if nc.is_connected:
            return
        deadline = time.monotonic() + self._settings.nats.connect_timeout
        while not nc.is_connected and time.monotonic() < deadline and not nc.is_closed:
            await asyncio.sleep(0.05)
        if not nc.is_connected:
            raise errors.StateUnavailableError(f"NATS at {_redact(self.url)} is unreachable (reconnecting)")

    async def call(self, what: str, op: Callable[[], Awaitable[T]]) -> T:
        """Run one KV operation, translating ``nats`` errors."""
        await self.ensure_connected()
        try:
            return await op()
        except nats.js.errors.KeyWrongLastSequenceError as exc:
            raise errors.StateConflictError(
                f"{what}: the key changed meanwhile (compare-and-set lost)"
            ) from exc
        except nats.js.errors.APIError as exc:
            if exc.err_code in _WRONG_LAST_SEQUENCE:
                raise errors.StateConflictError(f"{what}: the key changed meanwhile") from exc
            if exc.err_code in _MAX_PAYLOAD_EXCEEDED:
                raise base.StateValueTooLargeError(f"{what}: value too large for the bucket") from exc
            raise errors.StateUnavailableError(f"{what}: JetStream error {exc.description or exc}") from exc
        except nats.errors.MaxPayloadError as exc:
            raise base.StateValueTooLargeError(f"{what}: value exceeds NATS' max payload") from exc
        except (TimeoutError, nats.errors.Error, OSError) as exc:
            raise errors.StateUnavailableError(
                f"{what}: NATS at {_redact(self.url)} did not answer ({type(exc).__name__})"
            ) from exc

    async def publish(self, subject: str, value: bytes) -> None:
        """A core NATS publish (no JetStream acknowledgement)."""
        if self._nc is None:
            raise errors.StateUnavailableError(f"not connected to NATS at {_redact(self.url)}")
        await self._nc.publish(subject, value)
        await asyncio.sleep(0)  # let the client's flusher write it out before the caller answers

    # --- buckets ----------------------------------------------------------

    async def bucket(self, name: str, *, ttl: float | None = None) -> JetStreamBucket:
        """Bind to bucket ``name``, creating it when missing."""
        found = self._buckets.get(name)
        if found is not None:
            return found
        kv = await self.call(f"open bucket {name!r}", lambda: self.open_kv(name, ttl))
        found = JetStreamBucket(self, name, kv, self._settings.state.max_value_size, ttl)
        self._buckets[name] = found
        return found

    async def open_kv(self, name: str, ttl: float | None) -> KeyValue:
        """The nats-py handle of bucket ``name``, created when missing (untranslated errors)."""
        js = await self.ensure_connected()
        try:
            return await js.key_value(name)
        except nats.js.errors.BucketNotFoundError:
            pass
        config = nats.js.api.KeyValueConfig(
            bucket=name,
            history=1,
            ttl=ttl,
            max_value_size=self._settings.state.max_value_size,
            replicas=self._settings.state.replicas,
            direct=True,
        )
        try:
            return await js.create_key_value(config)
        except nats.js.errors.BadRequestError:
            # another replica created it first (with the same config)
            return await js.key_value(name)

    async def close(self) -> None:
        """Close the connection (pending writes are flushed)."""
        nc, self._nc, self._js = self._nc, None, None
        self._buckets.clear()
        if nc is not None:
            await _close_quietly(nc)


async def _close_quietly(nc: nats.aio.client.Client) -> None:
    with contextlib.suppress(nats.errors.Error, OSError, TimeoutError):
        await nc.close()
