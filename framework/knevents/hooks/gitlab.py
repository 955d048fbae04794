"""GitLab project and group webhooks (REST v4), as Argo's gitlab source creates them.

``GET/POST /api/v4/projects/{id}/hooks``, ``PUT/DELETE …/hooks/{hook_id}`` (and
``/groups/{id}``), ``PRIVATE-TOKEN: <accessToken>``. The body carries ``url``,
``token`` (``secretToken``), ``enable_ssl_verification`` and one boolean per
event option; Argo's event names map to them (``PushEvents`` →
``push_events`` …). Every option is sent, false when not listed, because GitLab
turns ``push_events`` on by default. A hook is ours when its ``url`` is the
source's; it is updated when an option or SSL verification differs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from knevents.hooks import base

__all__ = ["EVENT_OPTIONS", "apply", "credentials", "delete", "wants"]

PROVIDER = "gitlab"


def credentials(config: Any) -> list[Any]:
    """The Secret selectors the hook calls of one entry need (``knevents run`` skips the hook when one is unreadable)."""
    return [config.access_token, config.secret_token]
EVENT_OPTIONS = {
    "PushEvents": "push_events", "TagPushEvents": "tag_push_events", "IssuesEvents": "issues_events",
    "ConfidentialIssuesEvents": "confidential_issues_events", "MergeRequestsEvents": "merge_requests_events",
    "NoteEvents": "note_events", "ConfidentialNoteEvents": "confidential_note_events", "JobEvents": "job_events",
    "PipelineEvents": "pipeline_events", "WikiPageEvents": "wiki_page_events",
    "DeploymentEvents": "deployment_events", "ReleasesEvents": "releases_events",
}
"""Argo's ``events`` names → GitLab's hook options."""


def wants(config: Any) -> bool:
    """Argo creates hooks when an ``accessToken`` is given."""
    return config.access_token is not None


def _scopes(config: Any) -> list[str]:
    projects = list(config.projects or []) + ([config.project_id] if config.project_id else [])
    return ([f"projects/{quote(p, safe='')}" for p in projects]
            + [f"groups/{quote(g, safe='')}" for g in config.groups or []])


def _desired(target: base.Target, secret: str) -> dict[str, Any]:
    config = target.config
    unknown = [e for e in config.events or [] if e not in EVENT_OPTIONS]
    if unknown:
        raise base.HookError(f"{PROVIDER} {target.event_source}/{target.event_name}: unknown events {unknown} "
                             f"(known: {', '.join(EVENT_OPTIONS)})")
    body: dict[str, Any] = {"url": target.url, "enable_ssl_verification": bool(config.enable_ssl_verification)}
    body.update({option: name in (config.events or []) for name, option in EVENT_OPTIONS.items()})
    if secret:
        body["token"] = secret
    return body


def _apis(target: base.Target, ctx: base.Context) -> tuple[list[base.Api], dict[str, Any]]:
    config = target.config
    token = ctx.secret(config.access_token, PROVIDER, "accessToken")
    secret = ctx.secret(config.secret_token, PROVIDER, "secretToken") if config.secret_token else ""
    root = (config.gitlab_base_url or ctx.api_bases.get(PROVIDER) or "https://gitlab.com").rstrip("/")
    apis = [ctx.api(PROVIDER, root + "/api/v4", {"PRIVATE-TOKEN": token}, [token, secret], scope)
            for scope in _scopes(config)]
    return apis, _desired(target, secret)


def _next_page(answer: Any, headers: Mapping[str, str], query: Mapping[str, str]) -> str | dict[str, str] | None:
    """GitLab's next page: the ``Link`` header's ``rel="next"``, else the ``X-Next-Page`` number (empty on the
    last page), the two ways GitLab documents for offset pages."""
    page = headers.get("x-next-page", "").strip()
    return base.link_next(headers) or ({**query, "page": page} if page else None)


_HOOKS = base.Listed("hooks", params={"per_page": "100"}, next_page=_next_page)
"""Asked for 100 hooks a page (the maximum; 20 by default)."""


def apply(target: base.Target, ctx: base.Context) -> list[base.Outcome]:
    """Create or update the hook on every project and group."""
    apis, desired = _apis(target, ctx)
    return [_HOOKS.apply(api, desired, target.url, lambda hook: any(
        hook.get(k) != v for k, v in desired.items() if k not in ("url", "token"))) for api in apis]


def delete(target: base.Target, ctx: base.Context) -> list[base.Outcome]:
    """Delete the hooks pointing at this source's URL."""
    apis, _ = _apis(target, ctx)
    return [outcome for api in apis for outcome in _HOOKS.delete(api, target.url)]
