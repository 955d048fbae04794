"""The ``bitbucketserver`` event source: Bitbucket Server / Data Center repository webhooks.

Signature (``webhookSecret`` → ``X-Hub-Signature: sha256=…``), ``events``
filter on ``X-Event-Key`` and the ``{"headers", "body", "metadata"?}`` data are
those of :mod:`knevents.sources.bitbucket`. What differs:

* ``oneEventPerChange``: a ``repo:refs_changed`` body becomes one event per
  entry of ``changes``, each the body with that single change, as Argo does
  (Argo re-marshals a subset of the fields; knevents keeps every field).
* ``skipBranchRefsChangedOnOpenPR`` needs a call back to the server per change
  and is not supported: a warning at start, and every change is published.
* The event id derives from ``X-Request-Id`` and the change index.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

from knevents.sources import base, bitbucket, hooked
from knevents.spec import checks, models

__all__ = ["SOURCE", "BitbucketServerSource", "create"]

log = logging.getLogger(__name__)


class BitbucketServerSource(bitbucket.BitbucketSource):
    """One ``bitbucketserver`` entry."""

    type_key = "bitbucketserver"
    delivery_header = "x-request-id"

    def __init__(self, event_name: str, config: Any, ctx: base.SourceContext) -> None:
        super().__init__(event_name, config, ctx)
        if config.skip_branch_refs_changed_on_open_pr:
            log.warning("bitbucketserver %s/%s: skipBranchRefsChangedOnOpenPR is not supported by knevents; "
                        "every repo:refs_changed change is published", ctx.event_source_name, event_name)

    def split(self, key: str, body: str) -> list[str]:
        """``oneEventPerChange``: a ``repo:refs_changed`` body per change."""
        if key != "repo:refs_changed" or not self.config.one_event_per_change:
            return [body]
        document = json.loads(body)
        changes = document.get("changes") if isinstance(document, dict) else None
        if not isinstance(changes, list):
            return [body]
        return [json.dumps({**document, "changes": [change]}, separators=(",", ":")) for change in changes]


def create(event_name: str, config: models.BitbucketServerEventSource, ctx: base.SourceContext) -> base.Source:
    """Factory for the ``bitbucketserver`` spec key."""
    return BitbucketServerSource(event_name, config, ctx)


def _rules(config: models.BitbucketServerEventSource, path: str) -> Iterator[tuple[str, str]]:
    repos = config.repositories or []
    if not repos and not config.projects and not (config.project_key and config.repository_slug):
        yield f"{path}.repositories", "a bitbucketserver event source needs `repositories` or `projects`"
    for index, repo in enumerate(repos):
        if not repo.project_key or not repo.repository_slug:
            yield f"{path}.repositories[{index}]", "each repository needs `projectKey` and `repositorySlug`"
    if not config.events:
        yield f"{path}.events", "list at least one Bitbucket Server event key (e.g. repo:refs_changed)"
    if config.access_token is not None and not config.bitbucketserver_base_url:
        yield f"{path}.bitbucketserverBaseURL", "the REST base URL is needed with `accessToken`"
    if config.check_interval and (msg := checks.duration(config.check_interval)) is not None:
        yield f"{path}.checkInterval", msg


SOURCE = hooked.declare(
    "bitbucketserver",
    models.BitbucketServerEventSource,
    create,
    '{"headers": {<Canonical-Name>: [values]}, "body": <the payload>, "metadata"?: {...}}',
    _rules,
)
