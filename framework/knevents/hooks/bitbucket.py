"""Bitbucket Cloud repository webhooks (REST 2.0), as Argo's bitbucket source creates them.

``GET/POST /2.0/repositories/{owner}/{slug}/hooks``, ``PUT/DELETE …/hooks/{uuid}``
with HTTP basic auth (``auth.basic``: username + app password) or a bearer
token (``auth.oauthToken``). The body is ``{"description", "url", "active": true,
"events", "secret"?}`` (the secret from the knevents ``webhookSecret``
extension). Argo deletes and re-creates a hook with the same URL on every
start; knevents updates it only when its events differ, so a second apply
makes no call that changes anything. The API base is ``https://api.bitbucket.org``
(``KNEVENTS_BITBUCKET_API_URL`` overrides it).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from knevents.hooks import base

__all__ = ["API_URL_ENV", "apply", "credentials", "delete", "wants"]

PROVIDER = "bitbucket"
API_URL_ENV = "KNEVENTS_BITBUCKET_API_URL"
"""Environment variable that overrides the provider's API base (tests, proxies): the spec has no field."""


def credentials(config: Any) -> list[Any]:
    """The Secret selectors the hook calls of one entry need (``knevents run`` skips the hook when one is unreadable)."""
    if config.auth is None:
        return []
    basic = config.auth.basic
    return [basic.username, basic.password] if basic is not None else [config.auth.oauth_token]


def wants(config: Any) -> bool:
    """Argo creates hooks when ``auth`` and ``webhook.url`` are given."""
    return config.auth is not None


def _headers(config: Any, ctx: base.Context) -> tuple[dict[str, str], list[str]]:
    auth = config.auth
    if auth.basic is not None:
        user = ctx.secret(auth.basic.username, PROVIDER, "auth.basic.username")
        password = ctx.secret(auth.basic.password, PROVIDER, "auth.basic.password")
        encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {encoded}"}, [password, encoded]
    if auth.oauth_token is not None:
        token = ctx.secret(auth.oauth_token, PROVIDER, "auth.oauthToken")
        return {"Authorization": f"Bearer {token}"}, [token]
    raise base.HookError(f"{PROVIDER}: none of the supported auth options (basic, oauthToken) is set")


def _scopes(config: Any) -> list[str]:
    repos = [(r.owner, r.repository_slug) for r in config.repositories or []]
    if config.owner and config.repository_slug:
        repos.append((config.owner, config.repository_slug))
    return [f"repositories/{owner}/{slug}" for owner, slug in repos]


def _apis(target: base.Target, ctx: base.Context) -> tuple[list[base.Api], dict[str, Any]]:
    config = target.config
    headers, masked = _headers(config, ctx)
    secret = ctx.secret(config.webhook_secret, PROVIDER, "webhookSecret") if config.webhook_secret else ""
    desired: dict[str, Any] = {"description": "webhook managed by knevents", "url": target.url, "active": True,
                               "events": list(config.events or [])}
    if secret:
        desired["secret"] = secret
    root = (ctx.api_bases.get(PROVIDER) or "https://api.bitbucket.org").rstrip("/") + "/2.0"
    return [ctx.api(PROVIDER, root, headers, [*masked, secret], scope) for scope in _scopes(config)], desired


def _next_page(answer: Any, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """Bitbucket Cloud's next page: the absolute URL in the envelope's ``next`` (absent on the last page)."""
    following = answer.get("next") if isinstance(answer, dict) else None
    return str(following) if following else None


_HOOKS = base.Listed("hooks", key="uuid", values=base.envelope, params={"pagelen": "100"}, next_page=_next_page)
"""Asked for 100 hooks a page (the documented maximum; 10 by default)."""


def apply_all(listed: base.Listed, apis: list[base.Api], desired: dict[str, Any], url: str) -> list[base.Outcome]:
    """Create, or update when its events or ``active`` differ, the hook on every repository (also Server's)."""
    def differs(hook: dict[str, Any]) -> bool:
        return not base.same_set(hook.get("events"), desired["events"]) or not hook.get("active")

    return [listed.apply(api, desired, url, differs) for api in apis]


def delete_all(listed: base.Listed, apis: list[base.Api], url: str) -> list[base.Outcome]:
    """Delete the hooks pointing at ``url`` on every repository (also Server's)."""
    return [outcome for api in apis for outcome in listed.delete(api, url)]


def apply(target: base.Target, ctx: base.Context) -> list[base.Outcome]:
    """Create or update the hook on every repository."""
    apis, desired = _apis(target, ctx)
    return apply_all(_HOOKS, apis, desired, target.url)


def delete(target: base.Target, ctx: base.Context) -> list[base.Outcome]:
    """Delete the hooks pointing at this source's URL."""
    return delete_all(_HOOKS, _apis(target, ctx)[0], target.url)
