"""GitHub repository and organization webhooks (REST v3), as Argo's github source creates them.

``GET/POST /repos/{owner}/{repo}/hooks``, ``PATCH/DELETE …/hooks/{id}`` (and the
same under ``/orgs/{org}``), ``Authorization: token <apiToken>``. The hook is
``{"name": "web", "active": <active>, "events": <events>, "config": {"url",
"content_type", "insecure_ssl", "secret"?}}``. A hook is ours when its
``config.url`` is the source's URL; it is updated when its events, ``active``,
content type or ``insecure_ssl`` differ (GitHub never returns the secret, so
a changed secret alone is not seen). ``githubBaseURL`` selects GitHub
Enterprise (``…/api/v3``). ``githubApp`` credentials are not supported here.
"""

from __future__ import annotations

from typing import Any

from knevents.hooks import base

__all__ = ["API_URL_ENV", "apply", "credentials", "delete", "wants"]

PROVIDER = "github"
API_URL_ENV = "KNEVENTS_GITHUB_API_URL"
"""Environment variable that overrides the provider's API base (tests, proxies): the spec has no field."""


def credentials(config: Any) -> list[Any]:
    """The Secret selectors the hook calls of one entry need (``knevents run`` skips the hook when one is unreadable)."""
    return [config.api_token, config.webhook_secret]


def wants(config: Any) -> bool:
    """Argo creates hooks when an ``apiToken`` (or a GitHub App) is given."""
    return config.api_token is not None or config.github_app is not None


def _scopes(config: Any) -> list[str]:
    out = [f"repos/{repo.owner}/{name}" for repo in config.repositories or [] for name in repo.names or []]
    if config.owner and config.repository:
        out.append(f"repos/{config.owner}/{config.repository}")
    return out + [f"orgs/{org}" for org in config.organizations or []]


def _api_base(config: Any, ctx: base.Context) -> str:
    given = config.github_base_url or ctx.api_bases.get(PROVIDER) or "https://api.github.com"
    given = given.rstrip("/")
    if config.github_base_url and not given.endswith("/api/v3"):
        given += "/api/v3"  # what go-github's enterprise client does
    return given


def _apis(target: base.Target, ctx: base.Context) -> tuple[list[base.Api], dict[str, Any], list[str]]:
    config = target.config
    if config.api_token is None:
        raise base.HookError(f"{PROVIDER} {target.event_source}/{target.event_name}: only apiToken is supported "
                             "for hook management (githubApp is not)")
    token = ctx.secret(config.api_token, PROVIDER, "apiToken")
    secret = ctx.secret(config.webhook_secret, PROVIDER, "webhookSecret") if config.webhook_secret else ""
    hook_config = {"url": target.url, "content_type": config.content_type or "json",
                   "insecure_ssl": "1" if config.insecure else "0"}
    if secret:
        hook_config["secret"] = secret
    desired = {"name": "web", "active": bool(config.active), "events": list(config.events or []),
               "config": hook_config}
    headers = {"Authorization": f"token {token}", "Accept": "application/vnd.github+json"}
    apis = [ctx.api(PROVIDER, _api_base(config, ctx), headers, [token, secret], scope) for scope in _scopes(config)]
    return apis, desired, [token, secret]


_HOOKS = base.Listed("hooks", update="PATCH", url_of=lambda hook: (hook.get("config") or {}).get("url"),
                     params={"per_page": "100"})


def _differs(desired: dict[str, Any]) -> Any:
    def differs(hook: dict[str, Any]) -> bool:
        conf = hook.get("config") or {}
        return (not base.same_set(hook.get("events"), desired["events"]) or hook.get("active") != desired["active"]
                or conf.get("content_type") != desired["config"]["content_type"]
                or str(conf.get("insecure_ssl", "0")) != desired["config"]["insecure_ssl"])

    return differs


def apply(target: base.Target, ctx: base.Context) -> list[base.Outcome]:
    """Create or update the hook on every repository and organization."""
    apis, desired, _ = _apis(target, ctx)
    return [_HOOKS.apply(api, desired, target.url, _differs(desired)) for api in apis]


def delete(target: base.Target, ctx: base.Context) -> list[base.Outcome]:
    """Delete the hooks pointing at this source's URL."""
    apis, _, _ = _apis(target, ctx)
    return [outcome for api in apis for outcome in _HOOKS.delete(api, target.url)]
