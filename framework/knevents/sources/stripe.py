"""The ``stripe`` event source: Stripe webhook events, signature-checked and filtered.

* ``signingSecret`` (knevents extension: the endpoint's ``whsec_…`` secret;
  Argo has no such field and checks nothing) set: ``Stripe-Signature`` must
  hold ``t=<unix time>`` and at least one ``v1=`` that is the hex
  HMAC-SHA256 of ``{t}.{raw body}``, with ``t`` at most five minutes from now
  (Stripe's documented default tolerance); otherwise **400** and a warning
  line without the secret. Only the ``v1`` scheme counts (the scheme comes
  from the header's own key, never from a value).
* The body must be a JSON object (a Stripe ``Event``); ``eventFilter``, when
  set, keeps only those ``type`` values. A filtered-out event is answered
  **200** and dropped (Argo answers 400, which makes Stripe retry it for
  three days and warn the account owner).
* Event data, as Argo's ``StripeEventData``: ``{"event": <Stripe Event>,
  "metadata"?: {...}}``; the event id derives from the Stripe event ``id``,
  so Stripe's retries dedupe.

Creating the endpoint (``createWebhook`` + ``apiKey``) is done by
``knevents hooks apply`` (:mod:`knevents.hooks`), not here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from knevents import web
from knevents.sources import base, hooked, signing
from knevents.spec import models

__all__ = ["SOURCE", "StripeSource", "create"]


class StripeSource(hooked.HookedSource):
    """One ``stripe`` entry."""

    type_key = "stripe"

    def receive(self, request: web.Request) -> base.PushResult:
        """Verify the signature, parse, filter by ``eventFilter``, and build one event."""
        selector = getattr(self.config, "signing_secret", None)
        if selector is not None:
            secret = self.secret(selector, "signingSecret")
            if isinstance(secret, base.PushResult):
                return secret
            wrong = signing.stripe_v1(request.headers.get("stripe-signature"), request.body, secret)
            if wrong is not None:
                return self.refuse(400, f"signature validation failed: {wrong}")
        event = self.json_object(request.body, "the Stripe event")
        if isinstance(event, base.PushResult):
            return event
        kind = str(event.get("type", ""))
        wanted = self.config.event_filter
        if wanted is not None and kind not in wanted:
            return self.ignore(f"event type {kind!r} is not in eventFilter; dropped")
        data: dict[str, Any] = {"event": event}
        if self.metadata:
            data["metadata"] = self.metadata
        return self.emit(data, str(event.get("id") or "") or None)


def create(event_name: str, config: models.StripeEventSource, ctx: base.SourceContext) -> base.Source:
    """Factory for the ``stripe`` spec key."""
    return StripeSource(event_name, config, ctx)


def _rules(config: models.StripeEventSource, path: str) -> Iterator[tuple[str, str]]:
    if config.create_webhook and config.api_key is None:
        yield f"{path}.apiKey", "createWebhook needs `apiKey` (a secret key selector)"
    if config.create_webhook and (config.webhook is None or not config.webhook.url):
        yield f"{path}.webhook.url", "createWebhook needs `webhook.url`, the public URL Stripe posts to"


SOURCE = hooked.declare(
    "stripe",
    models.StripeEventSource,
    create,
    '{"event": <the Stripe Event>, "metadata"?: {...}}',
    _rules,
    manages_hooks=True,
)
