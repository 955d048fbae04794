"""One builder per Kubernetes kind knevents renders, returning plain dictionaries.

The dictionaries are exactly what ``kubectl apply`` takes; field names follow
the Knative Serving/Eventing v1 and Kubernetes v1 schemas (the tests validate
every rendered object against Knative's published models). Optional parts are
left out rather than set to ``None`` so that the YAML stays minimal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "Obj",
    "broker",
    "cluster_role",
    "cluster_role_binding",
    "config_map",
    "destination",
    "knative_service",
    "meta",
    "ping_source",
    "role",
    "role_binding",
    "service_account",
    "sink_binding",
    "trigger",
]

Obj = dict[str, Any]
"""A Kubernetes object as a JSON-like dictionary."""

SERVING = "serving.knative.dev/v1"
EVENTING = "eventing.knative.dev/v1"
SOURCES = "sources.knative.dev/v1"
RBAC = "rbac.authorization.k8s.io/v1"
VISIBILITY = "networking.knative.dev/visibility"
"""Service label: ``cluster-local`` means reachable only inside the cluster (no public route)."""


def meta(
    name: str,
    namespace: str,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> Obj:
    """``metadata`` with only the parts that are set."""
    out: Obj = {"name": name, "namespace": namespace}
    if labels:
        out["labels"] = dict(labels)
    if annotations:
        out["annotations"] = dict(annotations)
    return out


def config_map(name: str, namespace: str, data: Mapping[str, str], labels: Mapping[str, str]) -> Obj:
    """A ConfigMap with string data."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta(name, namespace, labels),
        "data": dict(data),
    }


def knative_service(
    name: str,
    namespace: str,
    *,
    labels: Mapping[str, str],
    container: Obj,
    revision_annotations: Mapping[str, str],
    volumes: Sequence[Obj] = (),
    service_account: str | None = None,
    image_pull_secrets: Sequence[Obj] = (),
    cluster_local: bool = False,
) -> Obj:
    """A Knative Service running one container; ``cluster_local`` keeps it off the ingress."""
    pod: Obj = {"containers": [container]}
    if service_account:
        pod["serviceAccountName"] = service_account
    if volumes:
        pod["volumes"] = list(volumes)
    if image_pull_secrets:
        pod["imagePullSecrets"] = list(image_pull_secrets)
    template_meta: Obj = {"labels": dict(labels)}
    if revision_annotations:
        template_meta["annotations"] = dict(revision_annotations)
    return {
        "apiVersion": SERVING,
        "kind": "Service",
        "metadata": meta(
            name, namespace, {**labels, **({VISIBILITY: "cluster-local"} if cluster_local else {})}
        ),
        "spec": {"template": {"metadata": template_meta, "spec": pod}},
    }


def destination(service: str | None = None, *, uri: str | None = None, namespace: str | None = None) -> Obj:
    """A Knative Destination: a Knative Service ref, a URI, or both (URI relative to the ref)."""
    out: Obj = {}
    if service is not None:
        ref: Obj = {"apiVersion": SERVING, "kind": "Service", "name": service}
        if namespace:
            ref["namespace"] = namespace
        out["ref"] = ref
    if uri is not None:
        out["uri"] = uri
    return out


def broker(
    name: str,
    namespace: str,
    *,
    broker_class: str,
    labels: Mapping[str, str],
    config: Obj | None = None,
    annotations: Mapping[str, str] | None = None,
) -> Obj:
    """A Broker of a given class, optionally pointing at its config object."""
    all_annotations = {"eventing.knative.dev/broker.class": broker_class, **(annotations or {})}
    spec: Obj = {}
    if config is not None:
        spec["config"] = config
    return {
        "apiVersion": EVENTING,
        "kind": "Broker",
        "metadata": meta(name, namespace, labels, all_annotations),
        "spec": spec,
    }


def trigger(
    name: str,
    namespace: str,
    *,
    broker_name: str,
    filters: Mapping[str, str],
    subscriber: Obj,
    labels: Mapping[str, str],
    delivery: Obj | None = None,
) -> Obj:
    """A Broker Trigger with exact attribute filters (none: every event of the Broker)."""
    spec: Obj = {"broker": broker_name}
    if filters:
        spec["filter"] = {"attributes": dict(filters)}
    spec["subscriber"] = subscriber
    if delivery:
        spec["delivery"] = delivery
    return {
        "apiVersion": EVENTING,
        "kind": "Trigger",
        "metadata": meta(name, namespace, labels),
        "spec": spec,
    }


def ping_source(
    name: str,
    namespace: str,
    *,
    schedule: str,
    sink: Obj,
    labels: Mapping[str, str],
    timezone: str | None = None,
    data: str | None = None,
) -> Obj:
    """A PingSource posting a CloudEvent to ``sink`` on a cron schedule."""
    spec: Obj = {"schedule": schedule, "sink": sink}
    if timezone:
        spec["timezone"] = timezone
    if data is not None:
        spec["contentType"] = "application/json"
        spec["data"] = data
    return {
        "apiVersion": SOURCES,
        "kind": "PingSource",
        "metadata": meta(name, namespace, labels),
        "spec": spec,
    }


def sink_binding(name: str, namespace: str, *, service: str, broker: str, labels: Mapping[str, str]) -> Obj:
    """A SinkBinding giving Knative Service ``service`` the address of Broker ``broker`` as ``K_SINK``."""
    return {
        "apiVersion": SOURCES,
        "kind": "SinkBinding",
        "metadata": meta(name, namespace, labels),
        "spec": {
            "subject": {"apiVersion": SERVING, "kind": "Service", "name": service},
            "sink": {"ref": {"apiVersion": EVENTING, "kind": "Broker", "name": broker}},
        },
    }


def service_account(name: str, namespace: str, labels: Mapping[str, str]) -> Obj:
    """A ServiceAccount."""
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(name, namespace, labels)}


def role(name: str, namespace: str, rules: Sequence[Obj], labels: Mapping[str, str]) -> Obj:
    """A namespaced Role."""
    return {
        "apiVersion": RBAC,
        "kind": "Role",
        "metadata": meta(name, namespace, labels),
        "rules": list(rules),
    }


def role_binding(
    name: str,
    namespace: str,
    *,
    role_name: str,
    account: str,
    account_namespace: str,
    labels: Mapping[str, str],
) -> Obj:
    """Bind a Role to a ServiceAccount (possibly from another namespace)."""
    return {
        "apiVersion": RBAC,
        "kind": "RoleBinding",
        "metadata": meta(name, namespace, labels),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role_name},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": account_namespace}],
    }


def cluster_role(name: str, rules: Sequence[Obj], labels: Mapping[str, str]) -> Obj:
    """A ClusterRole (for cluster-scoped resources only)."""
    return {
        "apiVersion": RBAC,
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": dict(labels)},
        "rules": list(rules),
    }


def cluster_role_binding(
    name: str, *, account: str, account_namespace: str, labels: Mapping[str, str]
) -> Obj:
    """Bind the ClusterRole of the same name to a ServiceAccount."""
    return {
        "apiVersion": RBAC,
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name, "labels": dict(labels)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": account_namespace}],
    }
