"""The ``bitbucket`` (Cloud) event source: repository webhooks (also the base of ``bitbucketserver``).

Both types carry Argo's ``{"headers": <Go http.Header>, "body": <payload>,
"metadata"?: {...}}`` and are fed by the hooks ``knevents hooks apply``
creates on the repositories the spec lists (``repositories`` plus the
deprecated single ``owner``/``projectKey`` + ``repositorySlug`` fields, and
for Bitbucket Server every repository of ``projects``).

* **Signature.** Bitbucket Server signs with the hook's secret
  (``webhookSecret``): ``X-Hub-Signature: sha256=<hex HMAC-SHA256 of the
  body>``. Bitbucket Cloud does the same when its hook has a secret; Argo's
  ``BitbucketEventSource`` has no secret field, so knevents adds
  ``webhookSecret`` (extension). Missing or wrong → **400** and a warning
  line without the secret. SHA-256 is fixed by the provider, not read from
  the value.
* **Event keys.** ``X-Event-Key`` (``repo:push``, ``repo:refs_changed`` …)
  must be one of ``events`` when the list is set; other deliveries (the
  ``diagnostics:ping`` of "Test connection", a hook edited by hand) are
  answered 200 and dropped. Argo relies on the hook's own event list only.
* Bitbucket Server's ``oneEventPerChange`` is in :mod:`bitbucketserver`.
* The event id derives from ``X-Request-UUID`` (Cloud) / ``X-Request-Id``
  (Server) and the change index, so redeliveries dedupe.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from knevents import web
from knevents.sources import base, common, hooked, signing
from knevents.spec import models

__all__ = ["SOURCE", "BitbucketSource", "create"]


class BitbucketSource(hooked.HookedSource):
    """One ``bitbucket`` (Cloud) entry."""

    type_key = "bitbucket"
    delivery_header = "x-request-uuid"

    def _secret_selector(self) -> Any:
        return getattr(self.config, "webhook_secret", None)

    def _verify(self, request: web.Request) -> base.PushResult | None:
        selector = self._secret_selector()
        if selector is None:
            return None
        secret = self.secret(selector, "webhookSecret")
        if isinstance(secret, base.PushResult):
            return secret
        wrong = signing.hex_hmac(request.headers.get("x-hub-signature"), request.body, secret)
        return None if wrong is None else self.refuse(400, f"hmac verification failed: {wrong}")

    def receive(self, request: web.Request) -> base.PushResult:
        """Verify, filter by ``X-Event-Key``, and build the event(s)."""
        stop = self._verify(request)
        if stop is not None:
            return stop
        key = request.headers.get("x-event-key", "")
        wanted = self.config.events
        if wanted and key not in wanted:
            return self.ignore(f"event key {key!r} is not in events; dropped")
        body = common.json_text(request.body)
        if body is None:
            return self.refuse(400, "invalid event: body is not JSON")
        return self.publish_bodies(request, self.split(key, body))

    def publish_bodies(self, request: web.Request, bodies: list[str]) -> base.PushResult:
        """One event per body, ids derived from the delivery header and the index."""
        delivery = request.headers.get(self.delivery_header) or None
        out = tuple(
            self.event(hooked.headers_body(request, text, self.metadata),
                       f"{delivery}/{index}" if delivery else None)
            for index, text in enumerate(bodies)
        )
        return base.PushResult(events=out) if out else self.ignore("no changes left; nothing published")

    def split(self, key: str, body: str) -> list[str]:
        """The event bodies of one delivery (one, unless a subclass splits it)."""
        return [body]


def create(event_name: str, config: models.BitbucketEventSource, ctx: base.SourceContext) -> base.Source:
    """Factory for the ``bitbucket`` spec key."""
    return BitbucketSource(event_name, config, ctx)


def _rules(config: models.BitbucketEventSource, path: str) -> Iterator[tuple[str, str]]:
    repos = config.repositories or []
    if not repos and not (config.owner and config.repository_slug):
        yield f"{path}.repositories", "a bitbucket event source needs `repositories` (owner, repositorySlug)"
    for index, repo in enumerate(repos):
        if not repo.owner or not repo.repository_slug:
            yield f"{path}.repositories[{index}]", "each repository needs `owner` and `repositorySlug`"
    if not config.events:
        yield f"{path}.events", "list at least one Bitbucket event key (e.g. repo:push)"
    auth = config.auth
    if auth is not None and auth.basic is None and auth.oauth_token is None:
        yield f"{path}.auth", "set `basic` (username, password) or `oauthToken`"


SOURCE = hooked.declare(
    "bitbucket",
    models.BitbucketEventSource,
    create,
    '{"headers": {<Canonical-Name>: [values]}, "body": <the payload>, "metadata"?: {...}}',
    _rules,
    wraps_request=True,
    manages_hooks=True,
)
