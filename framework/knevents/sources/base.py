"""The contract every event source type implements, and the registry keyed by spec field.

An EventSource spec holds, per type key (``webhook``, ``github``, ``sqs`` …), a
map of *event name* → config. For each entry the runtime builds one
:class:`Source` through the factory registered under that key.

Two shapes exist:

* **push** sources answer HTTP requests routed to them by ``(method, endpoint)``
  (webhook, github, gitlab, sns, s3/minio via SNS, pubSub push, calendar ticks
  from a PingSource). :meth:`PushSource.handle` turns one request into zero or
  more events, or answers by itself (e.g. an SNS subscription confirmation).
  The runtime publishes the events and answers 2xx only after the bus accepted
  them.
* **pull** sources run a loop (sqs, pubSub pull, nats, calendar ``interval``).
  :meth:`PullSource.run` calls ``publish`` for every message and acks/deletes
  upstream only after ``publish`` returned (it raises when the bus refused).

Optional members the runtime (:mod:`knevents.runtime.source`) honours when a
source has them: ``ssl_context() -> ssl.SSLContext | None`` (a push source
whose standalone port serves TLS), ``schedule_driven: bool`` (a pull source
that a PingSource replaces on Knative, e.g. a calendar ``schedule``),
``not_ready() -> str | None`` (a pull source that is not consuming yet, e.g. its
broker is unreachable: the reason, which ``/health`` answers with 503) and
``async close()`` (connections to release at shutdown).

Sources never publish by themselves, never import the bus, and import their
third-party client (boto3, google-cloud-pubsub, nats) lazily, inside the
adapter, because functions scale from zero.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from knevents import events, web
from knevents.secrets import SecretResolver
from knevents.settings import Settings

__all__ = [
    "REGISTRY",
    "Publish",
    "PullSource",
    "PushResult",
    "PushSource",
    "Route",
    "Source",
    "SourceContext",
    "SourceFactory",
    "register",
]

Publish = Callable[[events.Event], Awaitable[None]]
"""Publish one event to the bus; returns when accepted, raises BusUnavailableError otherwise."""


@dataclass(frozen=True)
class SourceContext:
    """What a source needs to know about where it runs."""

    event_source_name: str
    """``metadata.name`` of the EventSource: the CloudEvent ``source``."""
    namespace: str = "default"
    secrets: SecretResolver = field(default_factory=SecretResolver)
    settings: Settings = field(default_factory=Settings)


@dataclass(frozen=True)
class Route:
    """Where a push source listens: HTTP method (``None`` = any) and path on a port."""

    endpoint: str
    method: str | None = "POST"
    port: int | None = None


@dataclass(frozen=True)
class PushResult:
    """The outcome of one request: events to publish, and/or an answer of the source's own.

    When ``response`` is ``None`` the runtime answers 200 after publishing every
    event (or 5xx when the bus refused).
    """

    events: tuple[events.Event, ...] = ()
    response: web.Response | None = None


@runtime_checkable
class PushSource(Protocol):
    """A source fed by HTTP requests."""

    event_name: str

    def routes(self) -> list[Route]:
        """The method(s) and endpoint(s) this event listens on."""
        ...

    async def handle(self, request: web.Request) -> PushResult:
        """Authenticate, validate and convert one request. Raise nothing for bad input: answer 4xx."""
        ...


@runtime_checkable
class PullSource(Protocol):
    """A source that polls or subscribes."""

    event_name: str

    async def run(self, publish: Publish, stop: asyncio.Event) -> None:
        """Loop until ``stop`` is set; ack upstream only after ``publish`` returned."""
        ...


Source = PushSource | PullSource

SourceFactory = Callable[[str, Any, SourceContext], Source]
"""``factory(event_name, config_model, context)`` builds one source from one spec entry."""

REGISTRY: dict[str, SourceFactory] = {}
"""Spec field name (``"webhook"``, ``"sqs"`` …) → factory. Filled by :func:`register`."""


def register(key: str) -> Callable[[SourceFactory], SourceFactory]:
    """Class/function decorator that registers a factory under the spec field ``key``."""

    def decorate(factory: SourceFactory) -> SourceFactory:
        REGISTRY[key] = factory
        return factory

    return decorate


def event_type(key: str) -> str:
    """The CloudEvent ``type`` for a spec key, as Argo names it (``pubSub`` → ``pubsub``)."""
    return _TYPES.get(key, key.lower())


_TYPES: Mapping[str, str] = {"pubSub": "pubsub", "s3": "s3", "minio": "minio", "sns": "sns", "sqs": "sqs"}
