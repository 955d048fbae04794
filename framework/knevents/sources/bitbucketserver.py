"""The ``bitbucketserver`` event source: Bitbucket Server / Data Center repository webhooks.

Signature (``webhookSecret`` → ``X-Hub-Signature: sha256=…``), ``events``
filter on ``X-Event-Key`` and the ``{"headers", "body", "metadata"?}`` data are
those of :mod:`knevents.sources.bitbucket`. What differs:

* ``oneEventPerChange``: a ``repo:refs_changed`` body becomes one event per
  entry of ``changes``, each the body with that single change, as Argo does
  (Argo re-marshals a subset of the fields; knevents keeps every field).
* ``skipBranchRefsChangedOnOpenPR``: as Argo, each changed branch (not a
  deletion) of a ``repo:refs_changed`` is looked up with
  ``GET {bitbucketserverBaseURL}/api/1.0/projects/{key}/repos/{slug}/commits/{toHash}/pull-requests``
  (``accessToken``, paged); a change whose commit has an OPEN pull request is
  dropped, and a delivery left with no change publishes nothing. When that call
  fails the answer is 503 (the server retries the delivery; Argo answers 400).
* The event id derives from ``X-Request-Id`` and the change index.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from knevents import errors, web
from knevents.sources import base, bitbucket, common, hooked
from knevents.spec import checks, models

__all__ = ["SOURCE", "BitbucketServerSource", "create"]

log = logging.getLogger(__name__)


class BitbucketServerSource(bitbucket.BitbucketSource):
    """One ``bitbucketserver`` entry."""

    type_key = "bitbucketserver"
    delivery_header = "x-request-id"

    async def handle(self, request: web.Request) -> base.PushResult:
        """As bitbucket's, plus ``skipBranchRefsChangedOnOpenPR`` (which needs calls back to the server)."""
        key = request.headers.get("x-event-key", "")
        if not self.config.skip_branch_refs_changed_on_open_pr or key != "repo:refs_changed":
            return await super().handle(request)
        stop = self.precheck(request) or self._verify(request)
        if stop is not None:
            return stop
        if self.config.events and key not in self.config.events:
            return self.ignore(f"event key {key!r} is not in events; dropped")
        document = self.json_object(request.body, "the repo:refs_changed body")
        if isinstance(document, base.PushResult):
            return document
        kept = [c for c in document.get("changes") or [] if not await self._open_pr(document, c)]
        if not kept:
            return self.ignore("every changed branch has an open pull request; nothing published")
        body = json.dumps({**document, "changes": kept}, separators=(",", ":"))
        return self.publish_bodies(request, self.split(key, body))

    async def _open_pr(self, document: dict[str, Any], change: Any) -> bool:
        """Whether a changed branch's new commit belongs to an OPEN pull request (Argo's rule)."""
        if not isinstance(change, dict) or (change.get("ref") or {}).get("type") != "BRANCH" \
                or change.get("type") == "DELETE":
            return False
        repo = document.get("repository") or {}
        path = (f"api/1.0/projects/{quote((repo.get('project') or {}).get('key', ''))}/repos/"
                f"{quote(str(repo.get('slug', '')))}/commits/{quote(str(change.get('toHash', '')))}/pull-requests")
        return any(str(pr.get("state", "")).upper() == "OPEN" for pr in await self._paged(path))

    async def _paged(self, path: str) -> list[dict[str, Any]]:
        import httpx  # lazily: only this option calls the server back

        if self.config.access_token is None or not self.config.bitbucketserver_base_url:
            raise errors.SpecError("skipBranchRefsChangedOnOpenPR needs accessToken and bitbucketserverBaseURL")
        token = common.read_secret(self.ctx.secrets, self.config.access_token, "accessToken")
        url = self.config.bitbucketserver_base_url.rstrip("/") + "/" + path
        out: list[dict[str, Any]] = []
        start = 0
        async with httpx.AsyncClient(timeout=10.0, headers={"Authorization": f"Bearer {token}"}) as client:
            while True:
                try:
                    answer = await client.get(url, params={"limit": "500", "start": str(start)})
                except httpx.HTTPError as exc:
                    raise errors.TemporaryError(f"Bitbucket Server pull-request lookup failed: {exc}") from None
                if answer.status_code != 200:
                    raise errors.TemporaryError(
                        f"Bitbucket Server pull-request lookup answered {answer.status_code}")
                page = answer.json()
                out += list(page.get("values") or [])
                if page.get("isLastPage", True) or int(page.get("nextPageStart") or 0) <= start:
                    return out
                start = int(page["nextPageStart"])

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
    if config.skip_branch_refs_changed_on_open_pr and (config.access_token is None
                                                       or not config.bitbucketserver_base_url):
        yield f"{path}.skipBranchRefsChangedOnOpenPR", "needs `accessToken` and `bitbucketserverBaseURL`"
    if config.check_interval and (msg := checks.duration(config.check_interval)) is not None:
        yield f"{path}.checkInterval", msg


SOURCE = hooked.declare(
    "bitbucketserver",
    models.BitbucketServerEventSource,
    create,
    '{"headers": {<Canonical-Name>: [values]}, "body": <the payload>, "metadata"?: {...}}',
    _rules,
    wraps_request=True,
    manages_hooks=True,
)
