"""``knevents hooks``: create, update and delete the provider webhooks an EventSource describes.

Argo's github, gitlab, bitbucket, bitbucketserver, gerrit and stripe sources
register their webhook on the provider when they start (and delete it on stop
with ``deleteHookOnFinish``). A knevents function scales to zero and cannot
own that lifecycle, so it is an explicit step: ``knevents hooks apply FOLDER
--url https://…`` before traffic, ``knevents hooks delete FOLDER`` when the
source goes away; ``knevents run`` applies them at start when the credentials
are there (``--no-hooks`` turns that off) and deletes those with
``deleteHookOnFinish`` on stop. One module per provider; each ``apply`` is
idempotent (a second run finds its hook by URL and changes nothing) and
``delete`` removes only hooks pointing at this source's URL.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from typing import Any

from knevents import errors, sources
from knevents.hooks import base

__all__ = ["api_bases", "apply", "delete", "has_credentials", "providers", "targets"]


def providers() -> tuple[str, ...]:
    """EventSource spec keys whose hooks knevents manages (``SourceType.manages_hooks``), in spec-key order;
    each has the module of the same name in this package."""
    return tuple(sorted(key for key, kind in sources.all_types().items() if kind.manages_hooks))


def _module(key: str) -> Any:
    return importlib.import_module(f"knevents.hooks.{key}")


def api_bases(env: dict[str, str] | None = None) -> dict[str, str]:
    """API base overrides for the providers whose spec has no base URL field (``API_URL_ENV`` of their module)."""
    source = os.environ if env is None else env
    out = {}
    for key in providers():
        variable = getattr(_module(key), "API_URL_ENV", None)
        if variable and source.get(variable):
            out[key] = source[variable]
    return out


def targets(event_sources: list[Any], url: str | None = None, *,
            on_missing_url: Any = None) -> Iterator[base.Target]:
    """Every entry that asks for a hook, with its hook URL (``url`` replaces each ``webhook.url``).

    An entry with no public URL is a SpecError, or is passed to ``on_missing_url(message)`` and skipped.
    """
    keys = providers()
    for es in event_sources:
        for key in keys:
            entries = getattr(es.spec, key, None) or {}
            for name, config in entries.items():
                if not _module(key).wants(config):
                    continue
                public = url or (config.webhook.url if config.webhook is not None else None)
                where = f"spec.{key}.{name} of EventSource {es.metadata.name}"
                if not public:
                    message = f"{where}: no public URL for the hook: set webhook.url or pass --url"
                    if on_missing_url is None:
                        raise errors.SpecError(message)
                    on_missing_url(message)
                    continue
                endpoint = config.webhook.endpoint if config.webhook is not None else ""
                yield base.Target(key, es.metadata.name, name, config, base.hook_url(public, endpoint))


def has_credentials(target: base.Target, secrets: Any) -> bool:
    """Whether every secret the hook calls need can be read (``knevents run`` skips the hook otherwise)."""
    selectors = _module(target.key).credentials(target.config)
    for selector in selectors:
        if selector is None:
            continue
        try:
            secrets.secret(selector)
        except errors.SecretError:
            return False
    return True


def apply(target: base.Target, ctx: base.Context) -> list[base.Outcome]:
    """Create or update the hook(s) of one entry."""
    outcomes: list[base.Outcome] = _module(target.key).apply(target, ctx)
    return outcomes


def delete(target: base.Target, ctx: base.Context) -> list[base.Outcome]:
    """Delete the hook(s) of one entry that point at its URL."""
    outcomes: list[base.Outcome] = _module(target.key).delete(target, ctx)
    return outcomes
