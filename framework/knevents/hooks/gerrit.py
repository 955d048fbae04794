"""Gerrit project webhooks through the ``webhooks`` plugin's REST API, as Argo's gerrit source creates them.

``GET {gerritBaseURL}/a/config/server/webhooks~projects/{project}/remotes/`` lists
a project's remotes by name; ``PUT …/remotes/{hookName}`` creates or replaces
one with ``{"url", "events", "sslVerify", "maxTries"?}``; ``DELETE`` removes it.
HTTP basic auth (``auth.username``/``password``; the ``/a/`` prefix is Gerrit's
authenticated path), answers start with Gerrit's ``)]}'`` guard line. The
remote named ``hookName`` is ours when its ``url`` is the source's; a remote of
that name pointing elsewhere is replaced, as Argo does.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

from knevents.hooks import base

__all__ = ["apply", "credentials", "delete", "wants"]

PROVIDER = "gerrit"


def credentials(config: Any) -> list[Any]:
    """The Secret selectors the hook calls of one entry need (``knevents run`` skips the hook when one is unreadable)."""
    return [config.auth.username, config.auth.password] if config.auth is not None else []


def wants(config: Any) -> bool:
    """Argo creates hooks when projects, a hook name and a public URL are given."""
    return bool(config.projects) and bool(config.hook_name)


def _apis(target: base.Target, ctx: base.Context) -> tuple[list[base.Api], dict[str, Any]]:
    config = target.config
    if not config.gerrit_base_url:
        raise base.HookError(f"{PROVIDER} {target.event_source}/{target.event_name}: gerritBaseURL is needed")
    headers: dict[str, str] = {}
    masked: list[str] = []
    root = config.gerrit_base_url.rstrip("/")
    if config.auth is not None:
        user = ctx.secret(config.auth.username, PROVIDER, "auth.username")
        password = ctx.secret(config.auth.password, PROVIDER, "auth.password")
        encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {encoded}"
        masked = [password, encoded]
        root += "/a"
    desired: dict[str, Any] = {"url": target.url, "events": list(config.events or []),
                               "sslVerify": bool(config.ssl_verify)}
    if config.max_tries:
        desired["maxTries"] = config.max_tries
    apis = [ctx.api(PROVIDER, root, headers, masked, f"config/server/webhooks~projects/{quote(p, safe='')}",
                    prefix=")]}'") for p in config.projects or []]
    return apis, desired


def _remotes(api: base.Api, name: str) -> list[dict[str, Any]] | None:
    answer = api.call("GET", f"{api.scope}/remotes/")
    if answer is None:
        return None
    return [{**hook, "name": key} for key, hook in answer.items() if key == name]


def apply(target: base.Target, ctx: base.Context) -> list[base.Outcome]:
    """Create the remote ``hookName`` on every project, or replace it when it differs."""
    apis, desired = _apis(target, ctx)
    return [_apply_one(api, desired, target.config.hook_name) for api in apis]


def _apply_one(api: base.Api, desired: dict[str, Any], name: str) -> base.Outcome:
    def put() -> dict[str, str]:
        api.call("PUT", f"{api.scope}/remotes/{quote(name, safe='')}", body=desired)
        return {"name": name}

    return base.reconcile(
        api, _remotes(api, name), lambda hook: True,
        lambda hook: hook.get("url") != desired["url"] or not base.same_set(hook.get("events"), desired["events"])
        or bool(hook.get("sslVerify")) != desired["sslVerify"],
        create=put, update=lambda hook: put(), ident=lambda hook: str(hook.get("name", "")))


def delete(target: base.Target, ctx: base.Context) -> list[base.Outcome]:
    """Delete the remote ``hookName`` where it points at this source's URL."""
    apis, _ = _apis(target, ctx)
    return [outcome for api in apis for outcome in _delete_one(api, target.url, target.config.hook_name)]


def _delete_one(api: base.Api, url: str, name: str) -> list[base.Outcome]:
    return base.remove(api, _remotes(api, name), lambda hook: hook.get("url") == url,
                       lambda hook: api.call("DELETE", f"{api.scope}/remotes/{quote(name, safe='')}"),
                       lambda hook: str(hook.get("name", "")))
