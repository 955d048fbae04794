"""Publish to an HTTP sink: the Knative broker ingress at ``$K_SINK``.

One pooled keep-alive ``httpx.AsyncClient`` per publisher (a new connection per
event would cost more than the event). A 2xx answer means the broker accepted
the event; anything else is retried with exponential backoff
(``BusSettings.publish_retries`` / ``publish_backoff``) except 4xx answers other
than 408 and 429, which a retry will not change. When every attempt failed the
publisher raises :class:`errors.BusUnavailableError`, and the event source
answers its own caller 5xx. ``httpx`` is imported on first use, not at import.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from knevents import errors, events
from knevents.bus import codec
from knevents.settings import BusSettings, HttpSettings

if TYPE_CHECKING:
    import httpx

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
        transport: Any = None,
    ) -> None:
        self.url = url
        self._settings = settings or BusSettings()
        self._http = http or HttpSettings()
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    def _get_client(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx

            limits = httpx.Limits(
                max_connections=self._http.max_connections,
                max_keepalive_connections=self._http.max_connections,
            )
            self._client = httpx.AsyncClient(
                timeout=self._settings.publish_timeout, limits=limits, transport=self._transport
            )
        return self._client

    async def publish(self, event: events.Event) -> None:
        """POST ``event``; return on 2xx, retry with backoff, raise BusUnavailableError at the end."""
        import httpx

        client = self._get_client()
        headers = codec.binary_headers(event)
        body = event.data or b""
        delay = self._settings.publish_backoff
        attempts = self._settings.publish_retries + 1
        reason = "no attempt made"
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(delay)
                delay *= 2
            try:
                response = await client.post(self.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                if attempt == attempts - 1:
                    raise errors.BusUnavailableError(
                        f"sink {self.url} did not accept event {event.id}: {reason}"
                    ) from exc
                continue
            if 200 <= response.status_code < 300:
                return
            reason = f"HTTP {response.status_code}"
            if 400 <= response.status_code < 500 and response.status_code not in _RETRYABLE_4XX:
                break
        raise errors.BusUnavailableError(f"sink {self.url} did not accept event {event.id}: {reason}")

    async def close(self) -> None:
        """Close pooled connections."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
