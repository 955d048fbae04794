"""Stripe webhook endpoints (``createWebhook``), as Argo's stripe source creates them.

``GET /v1/webhook_endpoints``, ``POST /v1/webhook_endpoints`` (form-encoded
``url``, ``enabled_events[]``), ``POST /v1/webhook_endpoints/{id}`` to update,
``DELETE /v1/webhook_endpoints/{id}``; ``Authorization: Bearer <apiKey>``.
``enabled_events`` is ``eventFilter``, or ``["*"]`` without one. Argo creates a
new endpoint on every start; knevents reuses the endpoint with the same URL
and updates its events when they differ. Stripe returns the endpoint's signing
secret (``whsec_…``) only when it creates it: knevents never prints it; reveal
it in the Stripe dashboard and store it where ``signingSecret`` points. The API
base is ``https://api.stripe.com`` (``KNEVENTS_STRIPE_API_URL`` overrides it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from knevents.hooks import base

__all__ = ["API_URL_ENV", "apply", "credentials", "delete", "wants"]

PROVIDER = "stripe"
API_URL_ENV = "KNEVENTS_STRIPE_API_URL"
"""Environment variable that overrides the provider's API base (tests, proxies): the spec has no field."""


def credentials(config: Any) -> list[Any]:
    """The Secret selectors the hook calls of one entry need (``knevents run`` skips the hook when one is unreadable)."""
    return [config.api_key]


def wants(config: Any) -> bool:
    """Argo creates the endpoint when ``createWebhook`` is true."""
    return bool(config.create_webhook)


def _api(target: base.Target, ctx: base.Context) -> tuple[base.Api, list[str]]:
    config = target.config
    if config.api_key is None:
        raise base.HookError(f"{PROVIDER} {target.event_source}/{target.event_name}: createWebhook needs apiKey")
    key = ctx.secret(config.api_key, PROVIDER, "apiKey")
    root = (ctx.api_bases.get(PROVIDER) or "https://api.stripe.com").rstrip("/") + "/v1"
    api = ctx.api(PROVIDER, root, {"Authorization": f"Bearer {key}"}, [key], f"endpoint {target.url}")
    return api, list(config.event_filter or ["*"])


def _form(events: list[str], url: str | None = None) -> list[tuple[str, str]]:
    form = [("url", url)] if url else []
    form.append(("description", "managed by knevents"))
    return form + [(f"enabled_events[{i}]", e) for i, e in enumerate(events)]


def _data(answer: Any) -> list[dict[str, Any]] | None:
    return None if answer is None else list(answer.get("data") or [])


def _next_page(answer: Any, headers: Mapping[str, str], query: Mapping[str, str]) -> dict[str, str] | None:
    """Stripe's next page: ``starting_after`` the last id of this one, while the list says ``has_more``."""
    data = _data(answer) or []
    more = isinstance(answer, dict) and answer.get("has_more")
    return {**query, "starting_after": str(data[-1]["id"])} if more and data else None


def _endpoints(api: base.Api) -> list[dict[str, Any]] | None:
    """Every endpoint of the account, 100 a page (the maximum; 10 by default)."""
    return api.list_all("webhook_endpoints", {"limit": "100"}, _data, _next_page)


def _ident(hook: Any) -> str:
    return str(hook.get("id", "")) if isinstance(hook, dict) else ""


def apply(target: base.Target, ctx: base.Context) -> list[base.Outcome]:
    """Create the endpoint, or update its events."""
    api, events = _api(target, ctx)
    return [base.reconcile(
        api, _endpoints(api), lambda hook: hook.get("url") == target.url,
        lambda hook: not base.same_set(hook.get("enabled_events"), events),
        create=lambda: api.call("POST", "webhook_endpoints", form=_form(events, target.url)),
        update=lambda hook: api.call("POST", f"webhook_endpoints/{hook['id']}", form=_form(events)),
        ident=_ident)]


def delete(target: base.Target, ctx: base.Context) -> list[base.Outcome]:
    """Delete the endpoints with this source's URL."""
    api, _ = _api(target, ctx)
    return base.remove(api, _endpoints(api), lambda hook: hook.get("url") == target.url,
                       lambda hook: api.call("DELETE", f"webhook_endpoints/{hook['id']}"), _ident)
