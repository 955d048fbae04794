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

Each kind module declares everything about its kind in one
:class:`TriggerKind` (``TRIGGER = base.TriggerKind(...)``): the template key,
the model, its extra validation rules, the Kubernetes permissions its config
needs, and the executor. :mod:`knevents.discovery` finds the modules;
docs/extending.md is the checklist.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Set
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

import pydantic

from knevents import access, events
from knevents.secrets import SecretResolver
from knevents.settings import Settings

if TYPE_CHECKING:
    from knevents.sensors import engine
    from knevents.spec import models
    from knevents.triggers import ratelimit

__all__ = [
    "CLUSTER",
    "EVENT_IDS_ANNOTATION",
    "EVENT_IDS_HEADER",
    "TRACEPARENT_ANNOTATION",
    "CheckContext",
    "Grant",
    "TriggerContext",
    "TriggerExecutor",
    "TriggerKind",
    "TriggerResult",
    "event_ids",
    "no_permissions",
    "no_rules",
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
    rate_slots: ratelimit.SlotFn | None = None
    """Reserves a ``rateLimit`` slot shared by every process of the sensor (given by the sensor runtime);
    without it ``fire`` paces the trigger in this process only."""


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


M = TypeVar("M", bound=pydantic.BaseModel)

CLUSTER = access.CLUSTER
Grant = access.Grant


@dataclass(frozen=True)
class CheckContext:
    """Where a trigger kind's rules run: the kind's path, the whole trigger, and the names a parameter may use."""

    path: str
    """Path of the kind's object (``spec.triggers[0].template.http``)."""
    trigger_path: str
    """Path of the trigger (``spec.triggers[0]``)."""
    trigger: models.Trigger
    dependencies: Set[str]
    """Normalised dependency names a parameter of this kind may name (every name when parameters rewrite them)."""


def no_rules(_model: Any, _ctx: CheckContext) -> Iterable[tuple[str, str]]:
    """A ``check`` for a kind whose model says it all."""
    return ()


def no_permissions(_model: Any, _trigger: models.Trigger, _namespace: str) -> Iterable[Grant | str]:
    """A ``permissions`` for a kind that never calls the Kubernetes API."""
    return ()


@dataclass(frozen=True)
class TriggerKind(Generic[M]):
    """Everything about one trigger kind; a kind module declares one as ``TRIGGER``."""

    key: str
    """The trigger template key, as Argo spells it (``http``, ``argoWorkflow``)."""
    model: type[M]
    """The pydantic model of the template's kind object (``models.HTTPTrigger``)."""
    executor: TriggerExecutor
    """Performs one attempt; ``triggers.fire`` adds retries and the rate limit."""
    summary: str
    """One line for the docs: what a firing does."""
    check: Callable[[M, CheckContext], Iterable[tuple[str, str]]] = no_rules
    """Rules beyond the model's shape (parameters, policy): ``(model, ctx) -> (path, message)…``."""
    permissions: Callable[[M, models.Trigger, str], Iterable[Grant | str]] = no_permissions
    """The Kubernetes API calls the executor makes for this config, as grants in the sensor's namespace
    (the third argument); a ``str`` is a warning for what cannot be derived from the manifest."""
    fetches_resource: bool = False
    """The kind's own ``parameters`` apply to a resource its executor fetches at run time (Argo's custom trigger:
    what FetchResource answered), so the sensor engine leaves them to the executor."""

    def parse(self, raw: Any) -> M:
        """The kind's object as its model (raises pydantic.ValidationError)."""
        return self.model.model_validate(raw, by_alias=True, by_name=False)


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
