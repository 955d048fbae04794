"""What every provider-webhook source shares: the ``webhook`` context, refusals, secrets, events.

Argo's slack, stripe, bitbucket, bitbucketserver, gerrit and storageGrid
sources each embed a ``WebhookContext`` (endpoint, port, method, TLS,
``authSecret``, ``maxPayloadSize``) and differ only in how a request is
checked and what the event data is. :class:`HookedSource` holds the common
part so each type module is its provider's rules and nothing else:

* ``handle`` runs ``precheck`` then the type's ``receive``;
* ``precheck`` — body size (413) and the optional bearer ``authSecret`` (401);
* ``refuse`` — a 4xx answer plus one warning line naming the EventSource, the
  event and the reason (never a secret);
* ``secret`` — a secret value, or a 500 answer when it cannot be read;
* ``event`` — one CloudEvent of the type's Argo name, with a deterministic id
  when the provider gives a delivery id (its retries then dedupe).
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import pydantic

from knevents import errors, events, web
from knevents.sources import base, common, webhook

__all__ = ["HookedSource", "declare", "headers_body"]

M = TypeVar("M", bound=pydantic.BaseModel)


def declare(
    key: str,
    model: type[M],
    factory: Callable[[str, M, base.SourceContext], base.Source],
    data: str,
    rules: Callable[[M, str], Iterable[tuple[str, str]]] | None = None,
    *,
    wraps_request: bool = False,
    manages_hooks: bool = False,
) -> base.SourceType[M]:
    """The descriptor of a provider-webhook type: a scale-to-zero Service on its ``webhook`` route.

    ``rules`` are the provider's own; the ``webhook`` context (endpoint, port, method) is always checked.
    """

    def check(config: M, path: str) -> Iterator[tuple[str, str]]:
        if rules is not None:
            yield from rules(config, path)
        yield from webhook.check_context(getattr(config, "webhook", None), f"{path}.webhook")

    return base.SourceType(
        key=key,
        model=model,
        factory=factory,
        knative=base.always(base.Knative.SERVICE),
        check=check,
        endpoints=lambda _name, config: webhook.context_endpoints(getattr(config, "webhook", None)),
        data=data,
        wraps_request=wraps_request,
        manages_hooks=manages_hooks,
    )

log = logging.getLogger(__name__)


def headers_body(request: web.Request, body: str, metadata: dict[str, str] | None) -> bytes:
    """Argo's ``{"headers": <Go http.Header>, "body": <raw JSON>, "metadata"?}`` (bitbucket, gerrit …)."""
    header = common.header_lists(request.headers.items_all())
    return webhook.event_data(header, body, metadata, plural=True)


class HookedSource:
    """Base of a push source configured by a ``webhook`` (WebhookContext) field."""

    type_key = ""
    """The Argo spec key; also the CloudEvent type (lower-cased as Argo names it)."""

    def __init__(self, event_name: str, config: Any, ctx: base.SourceContext) -> None:
        self.event_name = event_name
        self.config = config
        self.hook = webhook.HookConfig.from_spec(config.webhook, f"{self.type_key}.{event_name}.webhook")
        metadata = getattr(config, "metadata", None)
        self.metadata: dict[str, str] | None = dict(metadata) if metadata else None
        self.ctx = ctx

    def routes(self) -> list[base.Route]:
        """The webhook's method, endpoint and port."""
        return [self.hook.route]

    def ssl_context(self) -> ssl.SSLContext | None:
        """TLS for a standalone port (``serverCertSecret``/``serverKeySecret``), as for webhook."""
        if self.hook.server_cert_secret is None:
            return None
        return webhook.ssl_context(self.ctx.secrets, self.hook.server_cert_secret, self.hook.server_key_secret)

    def precheck(self, request: web.Request) -> base.PushResult | None:
        """Size limit and bearer ``authSecret``; an answer when the request stops here."""
        refused = common.too_large(request, self.hook.max_payload) or self.hook.authorize(request, self.ctx)
        if refused is not None:
            self._log(f"request refused with {refused.status}")
            return base.PushResult(response=refused)
        return None

    async def handle(self, request: web.Request) -> base.PushResult:
        """The common checks, then the type's own :meth:`receive`."""
        return self.precheck(request) or self.receive(request)

    def receive(self, request: web.Request) -> base.PushResult:
        """The provider's rules for one request that passed the common checks."""
        raise NotImplementedError

    def _log(self, reason: str) -> None:
        log.warning("%s %s/%s: %s", self.type_key, self.ctx.event_source_name, self.event_name, reason)

    def refuse(self, status: int, reason: str) -> base.PushResult:
        """Answer ``status`` with ``reason`` and log it (the reason never holds a secret)."""
        self._log(f"request refused: {reason}")
        return base.PushResult(response=web.text_response(status, reason + "\n"))

    def ignore(self, reason: str) -> base.PushResult:
        """Answer 200 without an event (filtered out: the provider must not retry)."""
        log.info("%s %s/%s: %s", self.type_key, self.ctx.event_source_name, self.event_name, reason)
        return base.PushResult(response=web.text_response(200, reason + "\n"))

    def json_object(self, raw: bytes, what: str) -> dict[str, Any] | base.PushResult:
        """``raw`` parsed as a JSON object, or a 400 answer naming ``what``."""
        try:
            value = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return self.refuse(400, f"{what} is not JSON")
        return value if isinstance(value, dict) else self.refuse(400, f"{what} is not a JSON object")

    def secret(self, selector: Any, what: str) -> str | base.PushResult:
        """The secret's value, or a 500 answer when it cannot be read (logged without the value)."""
        try:
            return common.read_secret(self.ctx.secrets, selector, what)
        except errors.SecretError as exc:
            log.error("%s %s/%s: %s", self.type_key, self.ctx.event_source_name, self.event_name, exc)
            return base.PushResult(response=web.text_response(500, f"error loading {what}\n"))

    def event(self, data: bytes | dict[str, Any], upstream_id: str | None = None) -> events.Event:
        """One event of this type; ``upstream_id`` (a provider delivery id) makes the id deterministic."""
        source = self.ctx.event_source_name
        event_id = webhook.derived_id(source, self.event_name, self.type_key, upstream_id) if upstream_id else None
        return events.new_event(id=event_id, source=source, subject=self.event_name,
                                type=self.type_key.lower(), data=data)

    def emit(self, data: bytes | dict[str, Any], upstream_id: str | None = None) -> base.PushResult:
        """A result publishing one event."""
        return base.PushResult(events=(self.event(data, upstream_id),))
