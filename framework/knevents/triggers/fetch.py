"""Fetch a k8s / argoWorkflow trigger's resource when it is not inline (Argo's ``FetchResource``).

The engine applies parameters to an inline ``source.resource``; for the other
sources it answers "the caller must fetch it". The sensor runtime calls
:func:`fetch_resource` and resolves again with ``base_resource=`` the result:

* ``source.configmap``: the ConfigMap key through the secret resolver (mounted
  ConfigMap volume, or ``KNEVENTS_CONFIGMAP_<NAME>_<KEY>``);
* ``source.file``: a file on the function's filesystem, under ``KNEVENTS_FILES_DIR`` only
  (default the working directory; symlinks and ``..`` are resolved first);
* ``source.url``: an HTTP GET (``verifyCert`` honoured);
* ``source.git`` and ``source.s3`` are not supported: a clear error says to inline
  the resource or use a ConfigMap.

The text is YAML or JSON and must hold one object. Unreachable URLs are
retryable; everything else is permanent.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from knevents import errors
from knevents.spec import support
from knevents.triggers import base

__all__ = ["fetch_resource", "parse_resource", "reads_resource"]


def parse_resource(text: str, where: str) -> dict[str, Any]:
    """One Kubernetes object from YAML or JSON text."""
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise errors.TriggerError(f"{where}: not valid YAML/JSON: {exc.__class__.__name__}") from None
    if not isinstance(value, dict):
        raise errors.TriggerError(f"{where}: must hold one object (a Kubernetes resource)")
    return value


def _outside_source(trigger: Any) -> Any | None:
    """The ``source`` of ``trigger``'s resource when it is kept outside the spec; ``None`` when inline or none."""
    part = next((obj for _key, obj in support.resource_kinds(trigger.template)), None)
    source = part.source if part is not None else None
    if source is None or getattr(source, "resource", None) is not None or getattr(source, "inline", None):
        return None
    return source


def reads_resource(trigger: Any) -> bool:
    """Whether :func:`fetch_resource` has anything to read for ``trigger``.

    The sensor runtime asks once per trigger when it starts, not per event: the answer scans
    every kind field of the template, and an ``http`` trigger (most of them) never fetches.
    """
    return _outside_source(trigger) is not None


async def fetch_resource(trigger: Any, ctx: base.TriggerContext) -> dict[str, Any] | None:
    """The base resource of ``trigger`` (a spec ``Trigger``); ``None`` when it is inline or has none."""
    source = _outside_source(trigger)
    if source is None:
        return None
    if getattr(source, "configmap", None) is not None:
        selector = source.configmap
        text = ctx.secrets.configmap(selector)
        return parse_resource(text, f"source.configmap {selector.name}/{selector.key}")
    if getattr(source, "file", None) is not None:
        path = source.file.path or ""
        base_dir = Path(ctx.settings.secrets.files_dir).resolve()
        if not Path(base_dir, path).resolve().is_relative_to(base_dir):
            raise errors.TriggerError(f"source.file {path}: outside {base_dir} (KNEVENTS_FILES_DIR); not read")
        try:
            text = await asyncio.to_thread(Path(base_dir, path).read_text)
        except OSError as exc:
            raise errors.TriggerError(f"source.file {path}: cannot be read: {exc.strerror}") from None
        return parse_resource(text, f"source.file {path}")
    if getattr(source, "url", None) is not None:
        return await _from_url(source.url.path or "", source.url.verify_cert is not False, ctx)
    for unsupported in ("git", "s3"):
        if getattr(source, unsupported, None) is not None:
            raise errors.TriggerError(
                f"source.{unsupported} is not supported by knevents: inline the resource (source.resource) "
                "or put it in a ConfigMap (source.configmap)"
            )
    return None


async def _from_url(url: str, verify: bool, ctx: base.TriggerContext) -> dict[str, Any]:
    import httpx

    shown = base.redact_url(url)
    if not url.startswith(("http://", "https://")):
        raise errors.TriggerError(f"source.url {shown!r} must start with http:// or https://")
    try:
        async with httpx.AsyncClient(verify=verify, timeout=ctx.settings.http.timeout) as client:
            response = await client.get(url)
    except (httpx.HTTPError, OSError) as exc:
        raise errors.TriggerRetryableError(f"source.url {shown}: {exc.__class__.__name__}") from None
    if response.status_code >= 500 or response.status_code == 429:
        raise errors.TriggerRetryableError(f"source.url {shown} answered {response.status_code}")
    if response.status_code >= 300:
        raise errors.TriggerError(f"source.url {shown} answered {response.status_code}")
    return parse_resource(response.text, f"source.url {shown}")
