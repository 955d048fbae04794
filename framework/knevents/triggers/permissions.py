"""From a trigger's inline resource to the RBAC grants its executor needs: the part k8s and argoWorkflow share.

Each kind module says *which verbs* its executor calls for an operation (its
``permissions`` hook); this module says *on what*: the API group from the
resource's ``apiVersion``, the resource name and scope from
:mod:`knevents.triggers.apiresources` (cluster-scoped kinds are granted under
:data:`base.CLUSTER`, i.e. a ClusterRole), the namespace from
``metadata.namespace`` or else the sensor's. What the manifest cannot tell — a
resource read at run time from a URL, git or S3, a namespace or kind set by a
parameter, a kind that is not built in — comes back as a warning string.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import yaml

from knevents.spec import models
from knevents.triggers import apiresources, base

__all__ = ["grants", "inline_resource", "polls"]


def inline_resource(source: models.ArtifactLocation | None) -> Mapping[str, Any] | None:
    """The resource written in the manifest (``source.resource`` or ``source.inline``), else None."""
    if source is None:
        return None
    if isinstance(source.resource, Mapping):
        return source.resource
    if source.inline:
        try:
            parsed = yaml.safe_load(source.inline)
        except yaml.YAMLError:
            return None
        return parsed if isinstance(parsed, Mapping) else None
    return None


def polls(trigger: models.Trigger) -> bool:
    """Whether ``policy.k8s`` makes the executor read the object back until its labels match."""
    k8s_policy = trigger.policy.k8s if trigger.policy is not None else None
    return bool(k8s_policy is not None and k8s_policy.labels)


def not_inline(where: str, source: models.ArtifactLocation | None) -> str:
    """The warning for a resource only known at run time."""
    kinds = ", ".join(k for k, v in (source.model_dump(exclude_none=True) if source else {}).items() if v)
    return (
        f"{where}: the resource is not inline (source: {kinds or 'none'}); "
        "grant the sensor's ServiceAccount the permissions it needs yourself"
    )


def grants(
    resource: Mapping[str, Any],
    verbs: Iterable[str],
    namespace: str,
    parameters: Iterable[models.TriggerParameter] | None,
    where: str,
) -> Iterator[base.Grant | str]:
    """The grant of ``verbs`` on ``resource``'s kind, and warnings for what the manifest leaves open."""
    api_version = str(resource.get("apiVersion") or "v1")
    group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
    kind = str(resource.get("kind") or "")
    if not kind:
        yield f"{where}: the resource has no kind; no permissions derived"
        return
    found = apiresources.lookup(group, kind)
    if found is None:
        found = apiresources.Resource(group, kind, apiresources.plural(kind), True)
        yield (
            f"{where}: {kind} ({api_version}) is not a built-in kind; granted as namespaced resource "
            f"{found.plural!r} (check `kubectl api-resources`)"
        )
    target = str((resource.get("metadata") or {}).get("namespace") or namespace)
    yield base.Grant(
        target if found.namespaced else base.CLUSTER, group, found.plural, tuple(sorted(set(verbs)))
    )
    for param in parameters or ():
        dest = str(param.dest or "")
        if dest.startswith(("metadata.namespace", "kind", "apiVersion")):
            yield f"{where}: a parameter sets {dest}; the grant only covers what the manifest says"
