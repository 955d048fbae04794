"""The ``webhook`` event source, with Argo Events' request handling.

Per event: one ``(method, endpoint, port)`` route; several events may share a
port. What a request becomes (Argo's ``WebhookEventData``)::

    {"header": {<Go-canonical name>: [values]}, "body": <JSON>, "metadata": {...}?}

* ``GET``: the query string is the body, as a map of value lists.
* ``application/x-www-form-urlencoded``: the form fields are the body, the same way.
* anything else: the body must be JSON and is carried as sent; otherwise 400
  (Argo answers 400 too: it cannot marshal a non-JSON ``json.RawMessage``).
* ``authSecret``: ``Authorization: Bearer <token>`` compared in constant time, 401
  otherwise; the header is masked in the event data either way, as in Argo.
* ``maxPayloadSize`` (default 1 MiB): a larger body is answered **413** (Argo: 400).
* An incoming CloudEvent (``ce-id``/``ce-source`` headers) gets a deterministic
  event id, so redeliveries of it dedupe downstream.

:class:`HookConfig` is reused by the github and gitlab sources, whose ``webhook``
field is the same ``WebhookContext``. TLS (``serverCertSecret`` /
``serverKeySecret``) applies where the port is served standalone: the local
runner asks :meth:`WebhookSource.ssl_context`. On Knative TLS ends at the ingress.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from knevents import errors, events, web
from knevents.sources import base, common
from knevents.spec import checks, models

__all__ = [
    "SOURCE",
    "HookConfig",
    "WebhookSource",
    "check_context",
    "check_route",
    "context_endpoints",
    "create",
    "derived_id",
    "ssl_context",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HookConfig:
    """The HTTP side of a webhook-like source (Argo's ``WebhookContext``)."""

    route: base.Route
    max_payload: int
    auth_secret: Any = None
    server_cert_secret: Any = None
    server_key_secret: Any = None
    metadata: dict[str, str] | None = None

    @classmethod
    def from_spec(cls, hook: Any, where: str) -> HookConfig:
        """Read a ``WebhookContext``-shaped model; SpecError names the field."""
        if hook is None:
            raise errors.SpecError(f"{where} is required")
        max_payload = (
            hook.max_payload_size if hook.max_payload_size is not None else common.DEFAULT_MAX_PAYLOAD
        )
        if max_payload <= 0:
            raise errors.SpecError(f"{where}.maxPayloadSize must be positive, got {max_payload}")
        if (hook.server_cert_secret is None) != (hook.server_key_secret is None):
            raise errors.SpecError(f"{where}: serverCertSecret and serverKeySecret go together")
        return cls(
            route=base.Route(
                endpoint=common.endpoint_path(hook.endpoint, where),
                method=(hook.method or "POST").upper(),
                port=common.port_number(hook.port, where),
            ),
            max_payload=max_payload,
            auth_secret=hook.auth_secret,
            server_cert_secret=hook.server_cert_secret,
            server_key_secret=hook.server_key_secret,
            metadata=dict(hook.metadata) if getattr(hook, "metadata", None) else None,
        )

    def authorize(self, request: web.Request, ctx: base.SourceContext) -> web.Response | None:
        """401 when ``authSecret`` is set and the bearer token is wrong; 500 when the secret is missing."""
        if self.auth_secret is None:
            return None
        try:
            token = common.read_secret(ctx.secrets, self.auth_secret, "authSecret")
        except errors.SecretError as exc:
            log.error("%s", exc)
            return web.text_response(500, "error loading auth token\n")
        if not common.bearer_ok(request.headers.get("authorization"), token):
            return web.text_response(401, "invalid or missing bearer token\n")
        return None


def derived_id(*parts: str) -> str:
    """A deterministic 32-hex event id from upstream identifiers (redeliveries dedupe)."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
    return digest[:32]


def _values_json(values: dict[str, list[str]]) -> str:
    return json.dumps(dict(sorted(values.items())), separators=(",", ":"), ensure_ascii=False)


def request_body(request: web.Request) -> str | web.Response:
    """The event ``body`` as JSON text (Argo's rules above), or a 400 answer."""
    if request.method.upper() == "GET":
        return _values_json(parse_qs(request.query_string, keep_blank_values=True))
    if request.content_type == "application/x-www-form-urlencoded":
        try:
            form = request.body.decode("utf-8")
        except UnicodeDecodeError:
            return web.text_response(400, "form body is not UTF-8\n")
        return _values_json(parse_qs(form, keep_blank_values=True))
    text = common.json_text(request.body)
    if text is None:
        what = "empty" if not request.body.strip() else "not valid JSON"
        return web.text_response(
            400, f"request body is {what}; send JSON or a form (application/x-www-form-urlencoded)\n"
        )
    return text


def event_data(
    header: dict[str, list[str]], body: str, metadata: dict[str, str] | None, *, plural: bool
) -> bytes:
    """``{"header"|"headers": …, "body": …, "metadata"?: …}`` with the body spliced in as sent."""
    key = "headers" if plural else "header"
    parts = [f'{{"{key}":', json.dumps(header, separators=(",", ":"), ensure_ascii=False), ',"body":', body]
    if metadata:
        parts += [',"metadata":', json.dumps(metadata, separators=(",", ":"), ensure_ascii=False)]
    parts.append("}")
    return "".join(parts).encode("utf-8")


def ssl_context(secrets: Any, cert: Any, key: Any) -> ssl.SSLContext:
    """A server TLS context from a cert and key held in Secrets (mounted files or env values)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert_pem = common.read_secret(secrets, cert, "serverCertSecret")
    key_pem = common.read_secret(secrets, key, "serverKeySecret")
    with tempfile.TemporaryDirectory(prefix="knevents-tls-") as tmp:
        cert_path, key_path = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        with open(cert_path, "w") as out:
            out.write(cert_pem)
        with os.fdopen(os.open(key_path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as out:
            out.write(key_pem)
        try:
            context.load_cert_chain(cert_path, key_path)
        except ssl.SSLError as exc:
            raise errors.SecretError(
                f"serverCertSecret/serverKeySecret are not a usable PEM pair: {exc.reason}"
            ) from None
    return context


class WebhookSource:
    """One ``webhook`` entry."""

    def __init__(self, event_name: str, config: Any, ctx: base.SourceContext) -> None:
        self.event_name = event_name
        self.hook = HookConfig.from_spec(config, f"webhook.{event_name}")
        self._ctx = ctx

    def routes(self) -> list[base.Route]:
        """The configured method, endpoint and port."""
        return [self.hook.route]

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context to serve this event's port with, or ``None`` for plain HTTP."""
        if self.hook.server_cert_secret is None:
            return None
        return ssl_context(self._ctx.secrets, self.hook.server_cert_secret, self.hook.server_key_secret)

    async def handle(self, request: web.Request) -> base.PushResult:
        """Check, then turn the request into one event."""
        refused = common.too_large(request, self.hook.max_payload) or self.hook.authorize(request, self._ctx)
        if refused is not None:
            return base.PushResult(response=refused)
        body = request_body(request)
        if isinstance(body, web.Response):
            return base.PushResult(response=body)
        header = common.header_lists(request.headers.items_all())
        data = event_data(header, body, self.hook.metadata, plural=False)
        return base.PushResult(events=(self._event(request, data),))

    def _event(self, request: web.Request, data: bytes) -> events.Event:
        source = self._ctx.event_source_name
        ce_id, ce_source = request.headers.get("ce-id"), request.headers.get("ce-source")
        event_id = derived_id(source, self.event_name, ce_source, ce_id) if ce_id and ce_source else None
        return events.new_event(
            id=event_id, source=source, subject=self.event_name, type="webhook", data=data
        )


def create(event_name: str, config: models.WebhookEventSource, ctx: base.SourceContext) -> base.Source:
    """Factory for the ``webhook`` spec key."""
    return WebhookSource(event_name, config, ctx)


Found = Iterator[tuple[str, str]]


def check_route(
    endpoint: str | None, port: str | None, method: str | None, path: str, *, required: bool
) -> Found:
    """An endpoint starting with ``/``, a port number and an HTTP method (endpoint and port needed if ``required``)."""
    if not endpoint:
        if required:
            yield f"{path}.endpoint", "an endpoint is needed"
    elif not endpoint.startswith("/"):
        yield f"{path}.endpoint", f"endpoint `{endpoint}` must start with `/`"
    if not port:
        if required:
            yield f"{path}.port", "a port is needed"
    elif (msg := checks.port(port)) is not None:
        yield f"{path}.port", msg
    if method and method.upper() not in checks.HTTP_METHODS:
        yield f"{path}.method", f"`{method}` is not an HTTP method"


def check_context(ctx: models.WebhookContext | None, path: str) -> Found:
    """The ``webhook`` of a github/gitlab/sns entry: required, with endpoint, port and method."""
    if ctx is None:
        yield path, "a `webhook` (endpoint, port, method) is needed"
        return
    yield from check_route(ctx.endpoint, ctx.port, ctx.method, path, required=True)


def context_endpoints(ctx: models.WebhookContext | None) -> Iterator[base.Endpoint]:
    """The route of a ``WebhookContext`` (github, gitlab, sns)."""
    if ctx is not None:
        yield base.Endpoint("webhook", ctx.endpoint or "", ctx.port or "", ctx.method)


def _check(config: models.WebhookEventSource, path: str) -> Found:
    yield from check_route(config.endpoint, config.port, config.method, path, required=True)


def _endpoints(_event_name: str, config: models.WebhookEventSource) -> Iterator[base.Endpoint]:
    yield base.Endpoint("", config.endpoint or "", config.port or "", config.method)


SOURCE = base.SourceType(
    key="webhook",
    model=models.WebhookEventSource,
    factory=create,
    knative=base.always(base.Knative.SERVICE),
    check=_check,
    endpoints=_endpoints,
    data='{"header": {<Canonical-Name>: [values]}, "body": <the JSON body, or the form/query as value lists>, '
    '"metadata"?: {...}}',
    wraps_request=True,
)
