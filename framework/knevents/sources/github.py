"""The ``github`` event source: GitHub webhook deliveries, checked and shaped as Argo does.

* ``webhookSecret`` set: the body must carry a valid HMAC in ``X-Hub-Signature-256``
  (``sha256=…``), or in ``X-Hub-Signature`` (``sha1=…``) when the former is absent;
  missing or wrong → 400 and nothing is published (go-github's ``ValidatePayload``). The
  algorithm is the header's: ``sha1=`` or ``sha512=`` in ``X-Hub-Signature-256`` is refused.
* ``application/json`` bodies are the payload; ``application/x-www-form-urlencoded``
  bodies carry it in the ``payload`` field (the signature covers the raw body).
* The payload must be a JSON object; ``X-GitHub-Event`` and ``X-GitHub-Delivery``
  are added to it as keys, as Argo does.
* Only the configured ``events`` pass (``*`` = all); others are answered 200 and dropped.
* Event data: ``{"headers": {...}, "body": {...}, "metadata"?: {...}}`` (``headers`` plural).
* The event id derives from ``X-GitHub-Delivery``: GitHub's redeliveries dedupe.

Creating the hook on GitHub (``apiToken``/``githubApp``) is a deployment step in
knevents (a function that scales to zero cannot own it); see docs/event-sources.md.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

from knevents import errors, events, web
from knevents.sources import base, common, webhook
from knevents.spec import models

__all__ = ["SOURCE", "GithubSource", "create", "signature_ok"]

log = logging.getLogger(__name__)
EVENT_HEADER = "X-GitHub-Event"
DELIVERY_HEADER = "X-GitHub-Delivery"
_HEADER_DIGESTS = {"x-hub-signature-256": ("sha256", hashlib.sha256), "x-hub-signature": ("sha1", hashlib.sha1)}
"""The algorithm is fixed by the header GitHub sent, never read from the value: ``sha1=`` inside
``X-Hub-Signature-256`` (a downgrade) or any other prefix is refused."""


def signature_ok(signature: str | None, body: bytes, secret: str, header: str = "x-hub-signature-256") -> bool:
    """Whether ``signature`` from ``header`` is ``<its algorithm>=<hex HMAC of body under secret>``."""
    if not signature or "=" not in signature:
        return False
    algorithm, _, given = signature.partition("=")
    expected_algorithm, digest = _HEADER_DIGESTS[header.lower()]
    if algorithm.strip().lower() != expected_algorithm:
        return False
    expected = hmac.new(secret.encode(), body, digest).hexdigest()
    return hmac.compare_digest(expected.encode(), given.strip().lower().encode("ascii", "replace"))


def _payload(request: web.Request) -> bytes | str:
    """The JSON payload bytes, or why there is none."""
    if request.content_type == "application/json":
        return request.body
    if request.content_type == "application/x-www-form-urlencoded":
        try:
            form = parse_qs(request.body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            return "form body is not UTF-8"
        return form.get("payload", [""])[0].encode()
    return f"webhook request has unsupported Content-Type {request.content_type or '(none)'!r}"


class GithubSource:
    """One ``github`` entry."""

    def __init__(self, event_name: str, config: Any, ctx: base.SourceContext) -> None:
        where = f"github.{event_name}"
        self.event_name = event_name
        self.hook = webhook.HookConfig.from_spec(config.webhook, f"{where}.webhook")
        self._secret = config.webhook_secret
        self._events = frozenset(config.events or ["*"])
        self._metadata = dict(config.metadata) if config.metadata else None
        self._ctx = ctx

    def routes(self) -> list[base.Route]:
        """The webhook's method, endpoint and port."""
        return [self.hook.route]

    def ssl_context(self) -> Any:
        """TLS for a standalone port, as for webhook."""
        if self.hook.server_cert_secret is None:
            return None
        return webhook.ssl_context(self._ctx.secrets, self.hook.server_cert_secret, self.hook.server_key_secret)

    def _bad(self, reason: str) -> base.PushResult:
        log.warning("github %s/%s: request refused: %s", self._ctx.event_source_name, self.event_name, reason)
        return base.PushResult(response=web.text_response(400, reason + "\n"))

    async def handle(self, request: web.Request) -> base.PushResult:
        """Verify the signature, filter by event type, and build one event."""
        refused = common.too_large(request, self.hook.max_payload) or self.hook.authorize(request, self._ctx)
        if refused is not None:
            return base.PushResult(response=refused)
        payload = _payload(request)
        if isinstance(payload, str):
            return self._bad(payload)
        if self._secret is not None:
            try:
                secret = common.read_secret(self._ctx.secrets, self._secret, "webhookSecret")
            except errors.SecretError as exc:
                log.error("%s", exc)
                return base.PushResult(response=web.text_response(500, "error loading the webhook secret\n"))
            header = "x-hub-signature-256" if "x-hub-signature-256" in request.headers else "x-hub-signature"
            signature = request.headers.get(header)
            if not signature:
                return self._bad("missing signature")
            if not signature_ok(signature, request.body, secret, header):
                return self._bad("payload signature check failed")
        try:
            body = json.loads(payload)
        except (ValueError, RecursionError):
            return self._bad("payload is not valid JSON (or nests too deeply)")
        if not isinstance(body, dict):
            return self._bad("payload is not a JSON object")
        kind = request.headers.get(EVENT_HEADER, "")
        if "*" not in self._events and kind not in self._events:
            log.info("github %s/%s: event %r is not configured; dropped", self._ctx.event_source_name,
                     self.event_name, kind)
            return base.PushResult(response=web.text_response(200, f"event {kind!r} is not configured; ignored\n"))
        delivery = request.headers.get(DELIVERY_HEADER, "")
        body[EVENT_HEADER] = kind
        body[DELIVERY_HEADER] = delivery
        data: dict[str, Any] = {
            "headers": common.header_lists(request.headers.items_all()),
            "body": body,
        }
        if self._metadata:
            data["metadata"] = self._metadata
        source = self._ctx.event_source_name
        event_id = webhook.derived_id(source, self.event_name, "github", delivery) if delivery else None
        event = events.new_event(id=event_id, source=source, subject=self.event_name, type="github", data=data)
        return base.PushResult(events=(event,))


def create(event_name: str, config: models.GithubEventSource, ctx: base.SourceContext) -> base.Source:
    """Factory for the ``github`` spec key."""
    return GithubSource(event_name, config, ctx)


def _check(config: models.GithubEventSource, path: str) -> Iterator[tuple[str, str]]:
    owned = bool(config.repositories or (config.owner and config.repository))
    if not owned and config.organizations is None:
        yield path, "a github event source needs `repositories` or `organizations`"
    if owned and config.organizations is not None:
        yield path, "set either `repositories` or `organizations`, not both"
    creates_hooks = config.api_token is not None or config.github_app is not None
    if creates_hooks and not config.events:
        yield f"{path}.events", "list the GitHub events the webhook is created for (or `*`)"
    if config.content_type and config.content_type not in ("json", "form"):
        yield f"{path}.contentType", f"contentType `{config.content_type}` is not supported (json or form)"
    if bool(config.github_base_url) != bool(config.github_upload_url):
        yield path, "set both `githubBaseURL` and `githubUploadURL` (GitHub Enterprise), or neither"
    yield from webhook.check_context(config.webhook, f"{path}.webhook")


SOURCE = base.SourceType(
    key="github",
    model=models.GithubEventSource,
    factory=create,
    knative=base.always(base.Knative.SERVICE),
    check=_check,
    endpoints=lambda _name, config: webhook.context_endpoints(config.webhook),
    data='{"headers": {<Canonical-Name>: [values]}, "body": <the delivery, plus X-GitHub-Event and '
    'X-GitHub-Delivery keys>, "metadata"?: {...}}',
    wraps_request=True,
    manages_hooks=True,
)
