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
  A source that fetches batches (kafka, redisStream) hands a whole batch to
  :func:`publish_batch`: the runtime sends it pipelined, in order, and raises
  :class:`errors.BatchRefusedError` naming how many leading items were
  accepted, so the source commits exactly those and reads the rest again.

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

Each type module declares everything about its type in one
:class:`SourceType` (``SOURCE = base.SourceType(...)``): the spec key, the
model of one entry, how it is deployed on Knative (which also says push or
pull), its extra validation rules, the HTTP endpoints its config sets, the
CloudEvent type and data shape, and the factory. :mod:`knevents.discovery`
finds the modules; docs/extending.md is the checklist.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

import pydantic

from knevents import access, errors, events, web
from knevents.secrets import SecretResolver
from knevents.settings import Settings

__all__ = [
    "BatchPublish",
    "Check",
    "Endpoint",
    "Knative",
    "Ping",
    "Publish",
    "PullSource",
    "PushResult",
    "PushSource",
    "Route",
    "Source",
    "SourceContext",
    "SourceFactory",
    "SourceType",
    "always",
    "never",
    "no_endpoints",
    "no_notes",
    "no_permissions",
    "no_rules",
    "publish_batch",
]

Publish = Callable[[events.Event], Awaitable[None]]
"""Publish one event to the bus; returns when accepted, raises BusUnavailableError otherwise."""


@runtime_checkable
class BatchPublish(Protocol):
    """What the runtime passes to :meth:`PullSource.run`: ``publish(event)``, plus ``many`` for a batch."""

    def __call__(self, event: events.Event) -> Awaitable[None]:
        """As :data:`Publish`."""
        ...

    def many(self, batch: Sequence[events.Event]) -> Awaitable[None]:
        """Publish ``batch`` pipelined and in order; BatchRefusedError(done=k) when only the first k were accepted."""
        ...


async def publish_batch(publish: Publish, batch: Sequence[events.Event | None]) -> None:
    """Publish the events of ``batch`` (one slot per upstream item; ``None``: nothing to publish) in order.

    Returns when every event was accepted (or dropped by the filter / as too large, as ``publish`` does).
    Raises :class:`errors.BatchRefusedError` whose ``done`` counts the leading *slots* to acknowledge
    upstream: everything before the first event the bus refused. Pipelined when ``publish`` is the
    runtime's (it has ``many``), one at a time otherwise.
    """
    slots = [i for i, event in enumerate(batch) if event is not None]
    present = [event for event in batch if event is not None]
    try:
        if isinstance(publish, BatchPublish):
            await publish.many(present)
        else:
            for k, event in enumerate(present):
                try:
                    await publish(event)
                except errors.BusUnavailableError as exc:
                    raise errors.BatchRefusedError(str(exc), done=k) from exc
    except errors.BatchRefusedError as exc:
        done = slots[exc.done] if exc.done < len(slots) else len(batch)
        raise errors.BatchRefusedError(str(exc), done=done) from exc.__cause__ or exc


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

C = TypeVar("C", bound=pydantic.BaseModel)

SourceFactory = Callable[[str, Any, SourceContext], Source]
"""``factory(event_name, config_model, context)`` builds one source from one spec entry."""

Check = Callable[[C, str], Iterable[tuple[str, str]]]
"""``check(config, path)`` yields ``(path, message)`` for every rule one entry breaks (no I/O)."""


class Knative(enum.Enum):
    """How an entry runs on Knative; the first two are *push* (HTTP requests in), the last two *pull*."""

    SERVICE = "scale-to-zero Service"
    """Requests from outside (a webhook, an SNS push): the Service scales to zero and gets a public route."""
    PING = "PingSource"
    """Ticks from a Knative PingSource inside the cluster: scales to zero, no public route."""
    ONE_REPLICA = "one replica"
    """A loop that polls or subscribes; two copies would emit every event twice, so exactly one."""
    CONSUMER_GROUP = "consumer-group replicas"
    """A loop whose upstream shares the work among consumers (a Kafka group): at least one replica, more allowed."""

    @property
    def push(self) -> bool:
        """Whether entries deployed this way receive their events as HTTP requests."""
        return self in (Knative.SERVICE, Knative.PING)


@dataclass(frozen=True)
class Endpoint:
    """An HTTP route one entry's config sets, for route-conflict checks, the runner and the renderer."""

    field: str
    """Where in the entry it is set (``webhook``, ``sns``; ```` for the entry itself)."""
    endpoint: str
    """The path; ```` when unset (the source then listens on ``/<event name>``)."""
    port: str = ""
    """The standalone port as the spec writes it (```` when unset: the function's ``$PORT``)."""
    method: str | None = "POST"
    """The HTTP method (``None``: any)."""

    def path(self, event_name: str) -> str:
        """The path the entry really listens on."""
        return self.endpoint or f"/{event_name}"


def always(way: Knative) -> Callable[[Any], Knative]:
    """A ``knative`` for a type deployed the same way whatever its config."""
    return lambda _config: way


def no_rules(_config: Any, _path: str) -> Iterable[tuple[str, str]]:
    """A ``check`` for a type whose model says it all."""
    return ()


def no_endpoints(_event_name: str, _config: Any) -> Iterable[Endpoint]:
    """An ``endpoints`` for a type that receives no HTTP requests."""
    return ()


def no_permissions(_event_name: str, _config: Any) -> Iterable[access.Grant | str]:
    """A ``permissions`` for a type that never calls the Kubernetes API."""
    return ()


def no_notes(_event_name: str, _config: Any) -> Iterable[str]:
    """A ``notes`` for a type that renders without anything to point out."""
    return ()


def never(_config: Any) -> bool:
    """A ``keeps_state`` for a type that keeps nothing between runs."""
    return False


@dataclass(frozen=True)
class Ping:
    """The Knative PingSource of a ``Knative.PING`` entry: when it ticks."""

    schedule: str
    """A cron schedule as PingSource takes it."""
    timezone: str | None = None


@dataclass(frozen=True)
class SourceType(Generic[C]):
    """Everything about one event source type; a type module declares one as ``SOURCE``."""

    key: str
    """The EventSource spec key, as Argo spells it (``webhook``, ``pubSub``)."""
    model: type[C]
    """The pydantic model of one entry (``models.WebhookEventSource``)."""
    factory: Callable[[str, C, SourceContext], Source]
    """Builds the source of one entry; heavy clients are imported inside it, not at module level."""
    knative: Callable[[C], Knative]
    """How an entry is deployed; :attr:`Knative.push` says push or pull (``always(Knative.SERVICE)``)."""
    data: str
    """The event data shape, for the docs (one line or a small JSON sketch)."""
    check: Callable[[C, str], Iterable[tuple[str, str]]] = no_rules
    """Rules beyond the model's shape: ``(config, path) -> (path, message)…``."""
    endpoints: Callable[[str, C], Iterable[Endpoint]] = no_endpoints
    """The HTTP endpoints an entry's config sets: ``(event_name, config) -> Endpoint…``."""
    event_type: str = ""
    """The CloudEvent ``type``; ```` means the key lower-cased, which is what Argo uses."""
    ping: Callable[[C], Ping | None] | None = None
    """For ``Knative.PING`` entries: the PingSource schedule (it posts to the entry's endpoint)."""
    keeps_state: Callable[[C], bool] = never
    """Whether an entry keeps state in JetStream KV (the renderer then passes the NATS settings)."""
    permissions: Callable[[str, C], Iterable[access.Grant | str]] = no_permissions
    """Kubernetes API calls an entry makes, in ``access.CLUSTER`` or the namespace it names; a ``str`` is a
    warning for what the manifest cannot tell. The renderer binds them to the EventSource's account."""
    notes: Callable[[str, C], Iterable[str]] = no_notes
    """What ``knevents render`` must point out about an entry (a directory to mount …)."""
    wraps_request: bool = False
    """The event data is Argo's ``{header(s), body}`` of the HTTP request, so ``knevents test`` may wrap a
    plain body that way."""
    manages_hooks: bool = False
    """Argo registers this type's webhook on the provider: ``knevents hooks`` (module ``knevents.hooks.<key>``)
    creates, updates and deletes it."""

    @property
    def cloudevent_type(self) -> str:
        """The CloudEvent ``type`` of this type's events."""
        return self.event_type or self.key.lower()

    def is_push(self, config: C) -> bool:
        """Whether this entry receives its events as HTTP requests."""
        return self.knative(config).push

    def parse(self, raw: Any) -> C:
        """One entry's config as its model (raises pydantic.ValidationError)."""
        return self.model.model_validate(raw, by_alias=True, by_name=False)
