"""Bitbucket Server / Data Center repository webhooks (REST 1.0), as Argo's bitbucketserver source creates them.

``GET/POST {bitbucketserverBaseURL}/api/1.0/projects/{key}/repos/{slug}/webhooks``,
``PUT/DELETE …/webhooks/{id}``, ``Authorization: Bearer <accessToken>``. The body
is ``{"name", "url", "active": true, "events", "configuration": {"secret"}}``
(``configuration`` left out without a ``webhookSecret``: the server answers 500
to an empty secret, as Argo notes). ``projects`` adds every repository of each
project (``GET …/projects/{key}/repos``). A hook is ours when its ``url`` is the
source's; it is updated when its events or ``active`` differ (the server does
not return the secret).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from knevents.hooks import base, bitbucket

__all__ = ["apply", "credentials", "delete", "wants"]

PROVIDER = "bitbucketserver"


def credentials(config: Any) -> list[Any]:
    """The Secret selectors the hook calls of one entry need (``knevents run`` skips the hook when one is unreadable)."""
    return [config.access_token, config.webhook_secret]


def wants(config: Any) -> bool:
    """Argo manages hooks when an ``accessToken`` is given."""
    return config.access_token is not None


def _next_page(answer: Any, headers: Mapping[str, str], query: Mapping[str, str]) -> dict[str, str] | None:
    """Bitbucket Server's next page: ``start=nextPageStart`` until the envelope says ``isLastPage``."""
    if not isinstance(answer, dict) or answer.get("isLastPage", True) or answer.get("nextPageStart") is None:
        return None
    return {**query, "start": str(answer["nextPageStart"])}


def _repos(config: Any, api: base.Api) -> list[tuple[str, str]]:
    repos = [(r.project_key, r.repository_slug) for r in config.repositories or []]
    if config.project_key and config.repository_slug:
        repos.append((config.project_key, config.repository_slug))
    for key in config.projects or []:
        api.scope = f"project {key}"
        listed = api.list_all(f"projects/{key}/repos", {"limit": "1000"}, base.envelope, _next_page)
        repos += [(key, str(r["slug"])) for r in listed or []]
    return repos


def _apis(target: base.Target, ctx: base.Context) -> tuple[list[base.Api], dict[str, Any]]:
    config = target.config
    if not config.bitbucketserver_base_url:
        raise base.HookError(f"{PROVIDER} {target.event_source}/{target.event_name}: bitbucketserverBaseURL is needed")
    token = ctx.secret(config.access_token, PROVIDER, "accessToken")
    secret = ctx.secret(config.webhook_secret, PROVIDER, "webhookSecret") if config.webhook_secret else ""
    desired: dict[str, Any] = {"name": "knevents", "url": target.url, "active": True,
                               "events": list(config.events or [])}
    if secret:
        desired["configuration"] = {"secret": secret}
    root = config.bitbucketserver_base_url.rstrip("/") + "/api/1.0"
    headers = {"Authorization": f"Bearer {token}"}
    lister = ctx.api(PROVIDER, root, headers, [token, secret], "")
    return [ctx.api(PROVIDER, root, headers, [token, secret], f"projects/{key}/repos/{slug}")
            for key, slug in _repos(config, lister)], desired


_HOOKS = base.Listed("webhooks", values=base.envelope, next_page=_next_page)


def apply(target: base.Target, ctx: base.Context) -> list[base.Outcome]:
    """Create or update the hook on every repository."""
    apis, desired = _apis(target, ctx)
    return bitbucket.apply_all(_HOOKS, apis, desired, target.url)


def delete(target: base.Target, ctx: base.Context) -> list[base.Outcome]:
    """Delete the hooks pointing at this source's URL."""
    return bitbucket.delete_all(_HOOKS, _apis(target, ctx)[0], target.url)
