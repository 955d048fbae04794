"""The contract every trigger type implements, and the values that cross it.

A trigger executor gets a :class:`~knevents.sensors.engine.Resolved` (the
trigger after parameters, built by the pure sensor engine) and a
:class:`TriggerContext` (where it runs, how to read secrets), performs exactly
one attempt, and returns a :class:`TriggerResult` or raises
:class:`errors.TriggerError` (permanent) / :class:`errors.TriggerRetryableError`
(a later attempt may help). Retries, rate limiting and the dispatch by template
key live in :mod:`knevents.triggers` (``fire``), not in the executors.

Nothing here does I/O. Secret values never go into a result or an error
message: :func:`scrub` removes them from any text built from a remote answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from knevents import events
from knevents.secrets import SecretResolver
from knevents.settings import Settings

if TYPE_CHECKING:
    from knevents.sensors import engine

__all__ = [
    "EVENT_IDS_ANNOTATION",
    "EVENT_IDS_HEADER",
    "TRACEPARENT_ANNOTATION",
    "TriggerContext",
    "TriggerExecutor",
    "TriggerResult",
    "event_ids",
    "redact_url",
    "scrub",
]

EVENT_IDS_HEADER = "Knevents-Event-Ids"
"""HTTP header carrying the comma-separated, sorted ids of the events of a firing (idempotency key)."""
EVENT_IDS_ANNOTATION = "events.knevents.io/event-ids"
"""Annotation on created Kubernetes resources with the same value as :data:`EVENT_IDS_HEADER`."""
TRACEPARENT_ANNOTATION = "events.knevents.io/traceparent"
"""Annotation carrying the W3C ``traceparent`` of the firing, when one is set."""


@dataclass(frozen=True)
class TriggerContext:
    """Where a trigger runs: the sensor, its namespace, secrets and settings."""

    sensor_name: str
    namespace: str
    secrets: SecretResolver = field(default_factory=SecretResolver)
    settings: Settings = field(default_factory=Settings)
    traceparent: str | None = None
    dry_run: bool = False


@dataclass(frozen=True)
class TriggerResult:
    """What one trigger did: a one-line ``detail``, and the HTTP status or the resource it touched."""

    trigger: str
    kind: str
    detail: str
    status: int | None = None
    resource: dict[str, Any] | None = None
    attempts: int = 1


class TriggerExecutor(Protocol):
    """One trigger type: performs a single attempt; ``fire`` adds retries and the rate limit."""

    async def execute(self, resolved: engine.Resolved, ctx: TriggerContext) -> TriggerResult: ...


def event_ids(fired: Mapping[str, events.Event]) -> str:
    """The idempotency key of a firing: the sorted, comma-separated ids of its events."""
    return ",".join(sorted({event.id for event in fired.values()}))


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every (non-trivial) secret value replaced by ``***``."""
    for value in sorted((s for s in secrets if s and len(s) >= 3), key=len, reverse=True):
        text = text.replace(value, "***")
    return text


def redact_url(url: str) -> str:
    """``url`` without a password in its user-info part, fit for logs and errors."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, parts.fragment))
