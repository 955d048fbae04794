"""The ``gitlab`` event source: GitLab webhook deliveries, checked as Argo does.

* ``secretToken`` set: ``X-Gitlab-Token`` must equal it (constant-time), else 400
  ("token mismatch", Argo's answer) and nothing is published.
* The body must be JSON; event data is ``{"headers", "body", "metadata"?}``, with
  ``X-Gitlab-Token`` masked (Argo puts the shared secret on the bus as is).
* Only the configured ``events`` pass: the ``X-Gitlab-Event`` header is mapped to
  Argo's event names (``Push Hook`` → ``PushEvents`` …); other deliveries are
  answered 200 and dropped. With no ``events`` configured everything passes.
* The event id derives from ``Idempotency-Key`` (kept by GitLab across retries)
  or ``X-Gitlab-Event-UUID``, so retries dedupe.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator
from typing import Any

from knevents import errors, events, web
from knevents.sources import base, common, webhook
from knevents.spec import models

__all__ = ["HOOK_EVENTS", "MASKED_TOKEN", "SOURCE", "GitlabSource", "create"]

log = logging.getLogger(__name__)
MASKED_TOKEN = "*** Masked Secret Token ***"

HOOK_EVENTS: dict[str, str] = {
    "Push Hook": "PushEvents",
    "Tag Push Hook": "TagPushEvents",
    "Issue Hook": "IssuesEvents",
    "Confidential Issue Hook": "ConfidentialIssuesEvents",
    "Merge Request Hook": "MergeRequestsEvents",
    "Note Hook": "NoteEvents",
    "Confidential Note Hook": "ConfidentialNoteEvents",
    "Job Hook": "JobEvents",
    "Pipeline Hook": "PipelineEvents",
    "Wiki Page Hook": "WikiPageEvents",
    "Emoji Hook": "EmojiEvents",
    "Release Hook": "ReleasesEvents",
    "Deployment Hook": "DeploymentEvents",
    "Feature Flag Hook": "FeatureFlagEvents",
    "Member Hook": "MemberEvents",
    "Subgroup Hook": "SubGroupEvents",
}
"""``X-Gitlab-Event`` header value → the hook option name Argo's ``events`` list uses."""


class GitlabSource:
    """One ``gitlab`` entry."""

    def __init__(self, event_name: str, config: Any, ctx: base.SourceContext) -> None:
        self.event_name = event_name
        self.hook = webhook.HookConfig.from_spec(config.webhook, f"gitlab.{event_name}.webhook")
        self._secret = config.secret_token
        self._events = frozenset(config.events or [])
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

    async def handle(self, request: web.Request) -> base.PushResult:
        """Check the token, filter by event type, and build one event."""
        refused = common.too_large(request, self.hook.max_payload) or self.hook.authorize(request, self._ctx)
        if refused is not None:
            return base.PushResult(response=refused)
        if self._secret is not None:
            try:
                token = common.read_secret(self._ctx.secrets, self._secret, "secretToken")
            except errors.SecretError as exc:
                log.error("%s", exc)
                return base.PushResult(response=web.text_response(500, "error loading the secret token\n"))
            given = request.headers.get("x-gitlab-token", "")
            if not hmac.compare_digest(given.encode("utf-8", "replace"), token.encode()):
                log.warning("gitlab %s/%s: token mismatch", self._ctx.event_source_name, self.event_name)
                return base.PushResult(response=web.text_response(400, "token mismatch\n"))
        kind = request.headers.get("x-gitlab-event", "")
        if self._events and HOOK_EVENTS.get(kind) not in self._events:
            return base.PushResult(response=web.text_response(200, f"event {kind!r} is not configured; ignored\n"))
        body = common.json_text(request.body)
        if body is None:
            return base.PushResult(response=web.text_response(400, "request body is not valid JSON\n"))
        header = common.header_lists(request.headers.items_all())
        if "X-Gitlab-Token" in header:  # Argo carries the shared secret onto the bus; knevents masks it
            header["X-Gitlab-Token"] = [MASKED_TOKEN]
        data = webhook.event_data(header, body, self._metadata, plural=True)
        source = self._ctx.event_source_name
        upstream = request.headers.get("idempotency-key") or request.headers.get("x-gitlab-event-uuid")
        event_id = webhook.derived_id(source, self.event_name, "gitlab", upstream) if upstream else None
        event = events.new_event(id=event_id, source=source, subject=self.event_name, type="gitlab", data=data)
        return base.PushResult(events=(event,))


def create(event_name: str, config: models.GitlabEventSource, ctx: base.SourceContext) -> base.Source:
    """Factory for the ``gitlab`` spec key."""
    return GitlabSource(event_name, config, ctx)


def _check(config: models.GitlabEventSource, path: str) -> Iterator[tuple[str, str]]:
    if not config.events:
        yield f"{path}.events", "list at least one GitLab event"
    if not config.gitlab_base_url:
        yield f"{path}.gitlabBaseURL", "a gitlab event source needs `gitlabBaseURL`"
    if config.access_token is None:
        yield f"{path}.accessToken", "a gitlab event source needs `accessToken` (a secret key selector)"
    yield from webhook.check_context(config.webhook, f"{path}.webhook")


SOURCE = base.SourceType(
    key="gitlab",
    model=models.GitlabEventSource,
    factory=create,
    knative=base.always(base.Knative.SERVICE),
    check=_check,
    endpoints=lambda _name, config: webhook.context_endpoints(config.webhook),
    data='{"headers": {<Canonical-Name>: [values], X-Gitlab-Token masked}, "body": <the hook payload>, '
    '"metadata"?: {...}}',
    wraps_request=True,
    manages_hooks=True,
)
