"""Fetch a k8s / argoWorkflow trigger's resource when it is not inline (Argo's ``FetchResource``).

The engine applies parameters to an inline ``source.resource`` (or ``source.inline``);
for the other locations it answers "the caller must fetch it". The sensor runtime
calls :func:`fetch_resource` and resolves again with ``base_resource=`` the result:

* ``source.configmap``: the ConfigMap key through the secret resolver (mounted
  ConfigMap volume, or ``KNEVENTS_CONFIGMAP_<NAME>_<KEY>``);
* ``source.file``: a file on the function's filesystem, under ``KNEVENTS_FILES_DIR`` only
  (default the working directory; symlinks and ``..`` are resolved first);
* ``source.url``: an HTTP GET (``verifyCert`` honoured; bounded in size and time by :mod:`.fetch_http`);
* ``source.s3``: a GetObject signed with SigV4 (:mod:`knevents.triggers.fetch_s3`);
* ``source.git``: a shallow fetch with the ``git`` CLI (:mod:`knevents.triggers.fetch_git`).

:data:`LOCATIONS` is what ``knevents validate`` accepts and :func:`check_source` the
rules it applies to a location; the readers call the same function before reading,
so a source that validates is one the runtime reads. The text is YAML or JSON and
must hold one object. Unreachable servers are retryable; everything else is permanent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from knevents import errors
from knevents.spec import support
from knevents.triggers import base, fetch_git, fetch_http, fetch_s3

__all__ = [
    "LOCATIONS",
    "check_location",
    "check_source",
    "fetch_resource",
    "parse_resource",
    "reads_resource",
    "unsupported_parts",
]

Reader = Callable[[Any, base.TriggerContext], Awaitable[dict[str, Any]]]


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


async def _from_configmap(selector: Any, ctx: base.TriggerContext) -> dict[str, Any]:
    text = ctx.secrets.configmap(selector)
    return parse_resource(text, f"source.configmap {selector.name}/{selector.key}")


async def _from_file(spec: Any, ctx: base.TriggerContext) -> dict[str, Any]:
    path = spec.path or ""
    base_dir = Path(ctx.settings.secrets.files_dir).resolve()
    if not Path(base_dir, path).resolve().is_relative_to(base_dir):
        raise errors.TriggerError(f"source.file {path}: outside {base_dir} (KNEVENTS_FILES_DIR); not read")
    try:
        text = await asyncio.to_thread(Path(base_dir, path).read_text)
    except OSError as exc:
        raise errors.TriggerError(f"source.file {path}: cannot be read: {exc.strerror}") from None
    return parse_resource(text, f"source.file {path}")


async def _from_url(spec: Any, ctx: base.TriggerContext) -> dict[str, Any]:
    url = spec.path or ""
    shown = f"source.url {base.redact_url(url)}"
    if not url.startswith(("http://", "https://")):
        raise errors.TriggerError(f"{shown!r} must start with http:// or https://")
    status, body = await fetch_http.get(url, {}, spec.verify_cert is not False, ctx.settings.http.timeout, shown)
    if status >= 500 or status in (408, 429):
        raise errors.TriggerRetryableError(f"{shown} answered {status}")
    if status >= 300:
        raise errors.TriggerError(f"{shown} answered {status}")
    return parse_resource(body.decode("utf-8", "replace"), shown)


async def _from_s3(spec: Any, ctx: base.TriggerContext) -> dict[str, Any]:
    _refuse(check_source("s3", spec, "source.s3"))
    return parse_resource(await fetch_s3.read(spec, ctx), fetch_s3.describe(spec))


async def _from_git(spec: Any, ctx: base.TriggerContext) -> dict[str, Any]:
    _refuse(check_source("git", spec, "source.git"))
    _refuse(fetch_git.unsupported(spec, "source.git"))
    return parse_resource(await fetch_git.read(spec, ctx), fetch_git.describe(spec))


_READERS: dict[str, Reader] = {
    "configmap": _from_configmap,
    "file": _from_file,
    "url": _from_url,
    "s3": _from_s3,
    "git": _from_git,
}
_CHECKS: dict[str, Callable[[Any, str], Iterator[tuple[str, str]]]] = {
    "s3": fetch_s3.check,
    "git": fetch_git.check,
}

LOCATIONS: frozenset[str] = frozenset({"resource", "inline", *_READERS})
"""``source:`` keys of k8s / argoWorkflow triggers knevents reads a resource from (what validate accepts)."""


def check_source(location: str, spec: Any, path: str) -> Iterator[tuple[str, str]]:
    """``(path, message)`` for what makes ``source.<location>`` unreadable; run by validate and before reading."""
    rules = _CHECKS.get(location)
    if rules is not None:
        yield from rules(spec, path)


def check_location(source: Any, path: str) -> Iterator[tuple[str, str]]:
    """:func:`check_source` for the location set in a kind's ``source`` (an ``ArtifactLocation``)."""
    for location in _CHECKS:
        spec = getattr(source, location, None) if source is not None else None
        if spec is not None:
            yield from check_source(location, spec, f"{path}.{location}")


def unsupported_parts(source: Any, path: str) -> Iterator[tuple[str, str]]:
    """Parts of a readable location knevents does not run (``source.git.githubApp``): validate's notes."""
    git = getattr(source, "git", None) if source is not None else None
    if git is not None:
        yield from fetch_git.unsupported(git, f"{path}.git")


def _refuse(problems: Iterator[tuple[str, str]]) -> None:
    for path, message in problems:
        raise errors.TriggerError(f"{path}: {message}")


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
    for location, reader in _READERS.items():
        spec = getattr(source, location, None)
        if spec is not None:
            return await reader(spec, ctx)
    return None
