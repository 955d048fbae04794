"""Find the Secrets and ConfigMaps a manifest references, so they can be mounted.

Argo specs point at credentials with ``SecretKeySelector`` / ``ConfigMapKeySelector``
objects (``{name, key, optional}``) in many places (``accessKey``,
``webhookSecret``, ``basicAuth.password``, ``secureHeaders[].valueFrom`` …).
The function reads them from ``/var/run/secrets/knevents/<name>/<key>``
(:mod:`knevents.secrets`), so every referenced Secret becomes a volume.

The walk works on the manifest dictionary: a selector is a mapping whose keys
are ``name`` and ``key`` (plus ``optional``), both strings, except under
``bucket`` (an ``S3Bucket`` has the same two fields); it is a ConfigMap
selector when the field holding it names a config map (``configMapKeyRef``,
``configmap``). Free-form parts are skipped because they describe *other*
workloads, not what the function reads: a trigger's ``resource`` (a Workflow's
pod env may use ``secretKeyRef``), ``metadata`` and the pod ``template``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["References", "find", "with_secret"]

_SELECTOR_KEYS = frozenset({"name", "key", "optional"})
_FREE_FORM = frozenset({"resource", "metadata", "template", "inline", "status"})


@dataclass(frozen=True)
class References:
    """Sorted, de-duplicated names of the Secrets and ConfigMaps a manifest reads."""

    secrets: tuple[str, ...] = ()
    configmaps: tuple[str, ...] = ()


def with_secret(found: References, secret: str | None) -> References:
    """``found`` plus one more Secret to mount (the NATS credentials), kept sorted and unique."""
    if not secret:
        return found
    return References(tuple(sorted({*found.secrets, secret})), found.configmaps)


def _is_selector(value: Mapping[str, Any]) -> bool:
    return (
        isinstance(value.get("name"), str)
        and isinstance(value.get("key"), str)
        and set(value) <= _SELECTOR_KEYS
        and bool(value["name"])
    )


def find(spec: Mapping[str, Any]) -> References:
    """Every Secret/ConfigMap referenced under ``spec`` (a manifest's ``spec`` mapping)."""
    secrets: set[str] = set()
    configmaps: set[str] = set()

    def walk(value: Any, field: str, depth: int) -> None:
        if isinstance(value, Mapping):
            if _is_selector(value):
                if (
                    field != "bucket"
                ):  # an S3Bucket {name, key} has the same shape; the only one in Argo's schema
                    (configmaps if "configmap" in field.lower() else secrets).add(value["name"])
                return
            for key, child in value.items():
                if depth == 0 and key == "template":
                    continue  # the pod template: its own env/volumes are carried over as they are
                if key in _FREE_FORM and key != "template":
                    continue
                walk(child, str(key), depth + 1)
        elif isinstance(value, list):
            for item in value:
                walk(item, field, depth + 1)

    walk(spec, "", 0)
    return References(tuple(sorted(secrets)), tuple(sorted(configmaps)))
