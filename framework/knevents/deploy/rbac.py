"""Turn the Kubernetes permissions each trigger kind declares into Roles, ClusterRoles and bindings.

Which verbs a trigger needs is not written here: every trigger kind module
declares it in its ``TRIGGER`` descriptor (``permissions``: exactly the calls
its executor makes for that config — see :mod:`knevents.triggers.k8s`,
:mod:`knevents.triggers.argo_workflow`; kinds that never call the Kubernetes
API declare none). This module only walks a Sensor's triggers (``dlqTrigger``
included), asks each kind, and groups the grants per namespace: cluster-scoped
kinds (:data:`CLUSTER`) become a ClusterRole, the rest a Role in the target
namespace, bound to the function's ServiceAccount. Nothing broader is granted.
What a kind could not derive from the manifest comes back as a warning.

An EventSource's ``resource`` entries need ``list`` and ``watch`` on the
watched resource, in its ``namespace`` (a ClusterRole when it watches all
namespaces): :func:`for_sources`. :func:`role_objects` turns grants into
Roles/ClusterRoles and their bindings for either kind of function.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pydantic

from knevents import triggers
from knevents.deploy import names, objects
from knevents.spec import models
from knevents.triggers import base

__all__ = ["CLUSTER", "Permissions", "derive", "for_sources", "role_objects", "rules"]

CLUSTER = base.CLUSTER
"""The grants key of cluster-scoped resources (``Namespace`` …): rendered as a ClusterRole."""


@dataclass
class Permissions:
    """Verbs per (namespace, apiGroup, resource), plus what could not be derived."""

    grants: dict[str, dict[tuple[str, str], set[str]]] = field(default_factory=lambda: defaultdict(dict))
    warnings: list[str] = field(default_factory=list)

    def add(self, namespace: str, group: str, resource: str, verbs: tuple[str, ...]) -> None:
        """Grant ``verbs`` on ``group/resource`` in ``namespace``."""
        self.grants[namespace].setdefault((group, resource), set()).update(verbs)

    def __bool__(self) -> bool:
        return bool(self.grants)


def _triggers(spec: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(path, trigger) for every trigger, including ``dlqTrigger``s."""
    for index, trigger in enumerate(spec.get("triggers") or ()):
        path = f"spec.triggers[{index}]"
        while isinstance(trigger, Mapping):
            yield path, trigger
            trigger, path = trigger.get("dlqTrigger"), path + ".dlqTrigger"


def derive(spec: Mapping[str, Any], namespace: str) -> Permissions:
    """The permissions every trigger of a Sensor spec declares it needs, in namespace ``namespace``."""
    perms = Permissions()
    for path, raw in _triggers(spec):
        template: Mapping[str, Any] = raw.get("template") or {}
        for key, config in template.items():
            kind = triggers.find(key) if isinstance(config, Mapping) else None
            if kind is None:
                continue
            try:
                trigger = models.Trigger.model_validate({**raw, "dlqTrigger": None})
                declared = list(kind.permissions(kind.parse(config), trigger, namespace))
            except pydantic.ValidationError:
                perms.warnings.append(f"{path}: {key} does not load; no permissions derived")
                continue
            for item in declared:
                if isinstance(item, str):
                    perms.warnings.append(item)
                else:
                    perms.add(item.namespace, item.group, item.resource, item.verbs)
    return perms


def rules(grants: Mapping[tuple[str, str], set[str]]) -> list[dict[str, Any]]:
    """RBAC rules, one per resource, sorted, for one namespace's grants."""
    return [
        {"apiGroups": [group], "resources": [resource], "verbs": sorted(verbs)}
        for (group, resource), verbs in sorted(grants.items())
    ]


def for_sources(found: Iterable[Any]) -> Permissions:
    """What an EventSource's entries declare (``eventsource.Entry`` values: type and parsed config)."""
    perms = Permissions()
    for entry in found:
        if entry.type is None or entry.config is None:
            continue
        for item in entry.type.permissions(entry.name, entry.config):
            if isinstance(item, str):
                perms.warnings.append(item)
            else:
                perms.add(item.namespace, item.group, item.resource, item.verbs)
    return perms


def role_objects(
    owner: str, name: str, namespace: str, perms: Permissions, account: str, labels: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Roles (ClusterRoles for cluster-wide grants) and bindings to ``account`` for one function."""
    out = []
    for target, grants in sorted(perms.grants.items()):
        if target == CLUSTER:
            # cluster-wide names must not clash between namespaces
            role = names.dns_label("knevents", namespace, name, owner)
            out.append(objects.cluster_role(role, rules(grants), labels))
            out.append(
                objects.cluster_role_binding(
                    role, account=account, account_namespace=namespace, labels=labels
                )
            )
            continue
        role = names.dns_label("knevents", name, owner)
        out.append(objects.role(role, target, rules(grants), labels))
        out.append(
            objects.role_binding(
                role, target, role_name=role, account=account, account_namespace=namespace, labels=labels
            )
        )
    return out
