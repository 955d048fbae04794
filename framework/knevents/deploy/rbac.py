"""Derive the least Kubernetes permissions a sensor's triggers need.

Only ``k8s`` and ``argoWorkflow`` triggers talk to the Kubernetes API. For
each, the API group comes from the resource's ``apiVersion``, the resource
from its ``kind`` (a small table of known plurals, else the English rule
CRDs follow: ``…s`` → ``…ses``, consonant + ``y`` → ``…ies``, otherwise ``+s``), the
namespace from ``metadata.namespace`` (else the sensor's), and the verbs
from the operation:

=================  ===============================================
k8s create         create
k8s update         get, update
k8s patch          get, patch
k8s delete         delete
``liveObject`` /   + get (the live object is read, or its labels are
``policy.k8s``     polled until the policy is met)
argo submit        workflows: create
argo submit-from   workflowtemplates or cronworkflows: get; workflows: create
argo suspend, resume, stop, terminate   workflows: get, patch
argo resubmit      workflows: get, create
argo retry         workflows: get, update
=================  ===============================================

An EventSource's ``resource`` entries need ``get``, ``list`` and ``watch`` on
the watched resource, in its ``namespace`` (a ClusterRole when it watches all
namespaces): :func:`for_sources`. :func:`role_objects` turns grants into
Roles/ClusterRoles and their bindings for either kind of function.

A cluster-scoped kind (``Namespace`` …) is granted through a ClusterRole,
with the same verbs. Nothing broader is granted. What cannot be derived from
the manifest (a resource fetched from a URL, git or S3 at run time, a
namespace set by a parameter) is reported as a warning.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from knevents.deploy import names, objects

__all__ = ["CLUSTER", "Permissions", "derive", "for_sources", "plural", "role_objects", "rules"]

CLUSTER = ""
"""The grants key of cluster-scoped resources (``Namespace`` …): rendered as a ClusterRole."""

_PLURALS: Mapping[str, str] = {
    "Pod": "pods",
    "Service": "services",
    "ConfigMap": "configmaps",
    "Secret": "secrets",
    "Endpoints": "endpoints",
    "Ingress": "ingresses",
    "NetworkPolicy": "networkpolicies",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "Deployment": "deployments",
    "StatefulSet": "statefulsets",
    "DaemonSet": "daemonsets",
    "ReplicaSet": "replicasets",
    "Job": "jobs",
    "CronJob": "cronjobs",
    "ServiceAccount": "serviceaccounts",
    "Event": "events",
    "Workflow": "workflows",
    "WorkflowTemplate": "workflowtemplates",
    "CronWorkflow": "cronworkflows",
    "Sensor": "sensors",
    "EventSource": "eventsources",
    "EventBus": "eventbuses",
}
_CLUSTER_SCOPED = frozenset(
    {
        "Namespace",
        "Node",
        "PersistentVolume",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "StorageClass",
        "ClusterWorkflowTemplate",
        "PriorityClass",
    }
)
_K8S_VERBS: Mapping[str, tuple[str, ...]] = {
    "create": ("create",),
    "update": ("get", "update"),
    "patch": ("get", "patch"),
    "delete": ("delete",),
}
_ARGO_WORKFLOW_VERBS: Mapping[str, tuple[str, ...]] = {
    "submit": ("create",),
    "submit-from": ("create",),
    "suspend": ("get", "patch"),
    "resume": ("get", "patch"),
    "stop": ("get", "patch"),
    "terminate": ("get", "patch"),
    "resubmit": ("get", "create"),
    "retry": ("get", "update"),
}
_ARGO_GROUP = "argoproj.io"


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


def plural(kind: str) -> str:
    """The resource name of a kind (``Workflow`` → ``workflows``, ``Policy`` → ``policies``)."""
    if kind in _PLURALS:
        return _PLURALS[kind]
    lower = kind.lower()
    if lower.endswith("s"):
        return lower + "es"
    if lower.endswith("y") and lower[-2:-1] not in ("a", "e", "i", "o", "u"):
        return lower[:-1] + "ies"
    return lower + "s"


def _group(api_version: str) -> str:
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


def _triggers(spec: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(path, trigger) for every trigger, including ``dlqTrigger``s."""
    for index, trigger in enumerate(spec.get("triggers") or ()):
        path = f"spec.triggers[{index}]"
        while isinstance(trigger, Mapping):
            yield path, trigger
            trigger, path = trigger.get("dlqTrigger"), path + ".dlqTrigger"


def derive(spec: Mapping[str, Any], namespace: str) -> Permissions:
    """The permissions every ``k8s`` / ``argoWorkflow`` trigger of a Sensor spec needs."""
    perms = Permissions()
    for path, trigger in _triggers(spec):
        template = trigger.get("template") or {}
        name = template.get("name", path)
        if template.get("k8s"):
            _k8s(perms, f"trigger {name}", template["k8s"], trigger, namespace)
        if template.get("argoWorkflow"):
            _argo(perms, f"trigger {name}", template["argoWorkflow"], namespace)
    return perms


def _resource(source: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    resource = (source or {}).get("resource")
    return resource if isinstance(resource, Mapping) else None


def _target_namespace(resource: Mapping[str, Any], namespace: str) -> str:
    target = (resource.get("metadata") or {}).get("namespace")
    return str(target) if target else namespace


def _dynamic_namespace(perms: Permissions, where: str, trigger_part: Mapping[str, Any]) -> None:
    for param in trigger_part.get("parameters") or ():
        if str(param.get("dest", "")).startswith("metadata.namespace"):
            perms.warnings.append(
                f"{where}: a parameter sets metadata.namespace; the Role only covers the namespace in the manifest"
            )


def _k8s(
    perms: Permissions, where: str, k8s: Mapping[str, Any], trigger: Mapping[str, Any], namespace: str
) -> None:
    resource = _resource(k8s.get("source"))
    if resource is None:
        perms.warnings.append(
            f"{where}: the resource is not inline (source: {', '.join(k8s.get('source') or {}) or 'none'}); "
            "grant the sensor's ServiceAccount the permissions it needs yourself"
        )
        return
    operation = str(k8s.get("operation") or "create")
    verbs = _K8S_VERBS.get(operation)
    if verbs is None:
        perms.warnings.append(f"{where}: unknown k8s operation {operation!r}; no permissions derived")
        return
    if k8s.get("liveObject") or (trigger.get("policy") or {}).get("k8s"):
        verbs = (*verbs, "get")
    kind = str(resource.get("kind") or "")
    if not kind:
        perms.warnings.append(f"{where}: the resource has no kind; no permissions derived")
        return
    # a cluster-scoped kind is granted cluster-wide (a ClusterRole), under the key CLUSTER
    target = CLUSTER if kind in _CLUSTER_SCOPED else _target_namespace(resource, namespace)
    perms.add(target, _group(str(resource.get("apiVersion") or "v1")), plural(kind), verbs)
    _dynamic_namespace(perms, where, k8s)


def _argo(perms: Permissions, where: str, argo: Mapping[str, Any], namespace: str) -> None:
    operation = str(argo.get("operation") or "submit")
    verbs = _ARGO_WORKFLOW_VERBS.get(operation)
    if verbs is None:
        perms.warnings.append(
            f"{where}: unknown argoWorkflow operation {operation!r}; no permissions derived"
        )
        return
    resource = _resource(argo.get("source")) or {}
    target = _target_namespace(resource, namespace)
    perms.add(target, _ARGO_GROUP, "workflows", verbs)
    if operation == "submit-from":
        kind = str(resource.get("kind") or "")
        sources = (
            [plural(kind)]
            if kind in ("WorkflowTemplate", "CronWorkflow")
            else ["workflowtemplates", "cronworkflows"]
        )
        for source in sources:
            perms.add(target, _ARGO_GROUP, source, ("get",))
    _dynamic_namespace(perms, where, argo)


def rules(grants: Mapping[tuple[str, str], set[str]]) -> list[dict[str, Any]]:
    """RBAC rules, one per resource, sorted, for one namespace's grants."""
    return [
        {"apiGroups": [group], "resources": [resource], "verbs": sorted(verbs)}
        for (group, resource), verbs in sorted(grants.items())
    ]


def for_sources(spec: Mapping[str, Any]) -> Permissions:
    """What an EventSource's ``resource`` entries read: get/list/watch on each watched resource."""
    perms = Permissions()
    for name, config in (spec.get("resource") or {}).items():
        if not isinstance(config, Mapping) or not config.get("resource"):
            perms.warnings.append(f"resource.{name}: no `resource` to grant access to")
            continue
        target = str(config.get("namespace") or CLUSTER)
        perms.add(target, str(config.get("group") or ""), str(config["resource"]), ("get", "list", "watch"))
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
            out.append(objects.cluster_role_binding(role, account=account, account_namespace=namespace, labels=labels))
            continue
        role = names.dns_label("knevents", name, owner)
        out.append(objects.role(role, target, rules(grants), labels))
        out.append(
            objects.role_binding(role, target, role_name=role, account=account, account_namespace=namespace,
                                 labels=labels)
        )
    return out
