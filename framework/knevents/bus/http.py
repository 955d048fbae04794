"""Publish to an HTTP sink: the Knative broker ingress at ``$K_SINK``.

One pool of keep-alive connections per publisher (:mod:`knevents.http11`;
a new connection per event would cost more than the event). A 2xx answer
means the broker accepted the event; anything else is retried with
exponential backoff (``BusSettings.publish_retries`` / ``publish_backoff``)
except 4xx answers other than 408 and 429, which a retry will not change.
When every attempt failed the publisher raises
:class:`errors.BusUnavailableError`, and the event source answers its own
caller 5xx.
"""

from __future__ import annotations

import asyncio

from knevents import errors, events, http11
from knevents.bus import codec
from knevents.settings import BusSettings, HttpSettings

__all__ = ["HttpSinkPublisher"]

_RETRYABLE_4XX = frozenset({408, 429})


class HttpSinkPublisher:
    """Posts each event as a binary-mode CloudEvent to one URL."""

    def __init__(
        self,
        url: str,
        *,
        settings: BusSettings | None = None,
        http: HttpSettings | None = None,
    ) -> None:
        self.url = url
        self._settings = settings or BusSettings()
        self._http = http or HttpSettings()
        self._pool: http11.Http11Pool | None = None

    def _get_pool(self) -> http11.Http11Pool:
        if self._pool is None:  # created inside the running loop: its semaphore belongs to that loop
            self._pool = http11.Http11Pool(
                self.url, timeout=self._settings.publish_timeout, max_connections=self._http.max_connections
            )
        return self._pool

    async def publish(self, event: events.Event) -> None:
        """POST ``event``; return on 2xx, retry with backoff, raise BusUnavailableError at the end."""
        try:
            pool = self._get_pool()
        except ValueError as exc:
            raise errors.BusUnavailableError(str(exc)) from exc
        headers = codec.binary_headers(event)
        body = event.data or b""
        delay = self._settings.publish_backoff
        attempts = self._settings.publish_retries + 1
        reason = "no attempt made"
        failure: BaseException | None = None
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(delay)
                delay *= 2
            try:
                response = await pool.post(headers, body)
            except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
                failure = exc
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                continue
            if 200 <= response.status < 300:
                return
            failure = None
            reason = f"HTTP {response.status}"
            if 400 <= response.status < 500 and response.status not in _RETRYABLE_4XX:
                break
        raise errors.BusUnavailableError(f"sink {self.url} did not accept event {event.id}: {reason}") from failure

    async def close(self) -> None:
        """Close pooled connections."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
