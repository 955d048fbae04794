"""What the rendered objects need that ``knevents render`` does not render: the user's prerequisites.

Services mount Secrets (credentials an EventSource or Sensor references),
run as ServiceAccounts named in Argo's pod template, pull with image pull
secrets; a Kafka Broker reads its TLS/SASL Secret. Those belong to the user
— knevents cannot invent credentials — so render lists each one that is
referenced but not among the rendered objects (a warning per object, and a
comment block at the top of the ``--format kn`` script), instead of letting
a pod sit in ``CreateContainerConfigError``. The Knative components the
objects need (eventing-natss for a JetStream Broker, eventing-kafka-broker for
a Kafka one) are listed the same way.

The walk is over the rendered objects, not the Argo specs, so whatever a
renderer mounts is covered, including what later renderers add.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from knevents.deploy import objects

__all__ = ["Prerequisite", "components", "find"]

_COMPONENTS = {
    "NatsJetStreamChannel": "eventing-natss (the NatsJetStreamChannel of JetStream Brokers)",
    "Kafka": "eventing-kafka-broker (the Kafka Broker class)",
}


@dataclass(frozen=True)
class Prerequisite:
    """An object the rendered ones reference and the user has to create first."""

    kind: str
    """``Secret``, ``ConfigMap`` or ``ServiceAccount``."""
    namespace: str
    name: str
    users: tuple[str, ...]
    """The rendered objects that reference it (``Service ns/name``)."""

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name} (used by {', '.join(self.users)})"


def _pod_refs(pod: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    if pod.get("serviceAccountName"):
        yield "ServiceAccount", str(pod["serviceAccountName"])
    for secret in pod.get("imagePullSecrets") or ():
        yield "Secret", str(secret["name"])
    for volume in pod.get("volumes") or ():
        if "secret" in volume and not volume["secret"].get("optional"):
            yield "Secret", str(volume["secret"]["secretName"])
        if "configMap" in volume and not volume["configMap"].get("optional"):
            yield "ConfigMap", str(volume["configMap"]["name"])
    for container in pod.get("containers") or ():
        for env in container.get("env") or ():
            source = env.get("valueFrom") or {}
            for key, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
                if key in source and not source[key].get("optional"):
                    yield kind, str(source[key]["name"])
        for item in container.get("envFrom") or ():
            for key, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
                if key in item and not item[key].get("optional"):
                    yield kind, str(item[key]["name"])


def _refs(obj: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    if obj["kind"] == "Service" and obj["apiVersion"] == objects.SERVING:
        yield from _pod_refs(obj["spec"]["template"]["spec"])
    elif obj["kind"] == "ConfigMap" and "auth.secret.ref.name" in (obj.get("data") or {}):
        yield "Secret", str(obj["data"]["auth.secret.ref.name"])  # a Kafka Broker's TLS/SASL credentials
    elif obj["kind"] in ("RoleBinding", "ClusterRoleBinding"):
        for subject in obj.get("subjects") or ():
            if subject.get("kind") == "ServiceAccount":
                # a subject may live in another namespace than the binding: "name@namespace"
                yield "ServiceAccount", f"{subject['name']}@{subject.get('namespace', '')}"


def find(objs: Iterable[objects.Obj]) -> list[Prerequisite]:
    """Every Secret, ConfigMap and ServiceAccount the objects reference but do not include, sorted."""
    all_objs = list(objs)
    rendered = {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in all_objs}
    users: dict[tuple[str, str, str], list[str]] = {}
    for obj in all_objs:
        user = f"{obj['kind']} {obj['metadata'].get('namespace', '-')}/{obj['metadata']['name']}"
        for kind, ref in _refs(obj):
            name, _, namespace = ref.partition("@")
            key = (kind, namespace or obj["metadata"].get("namespace", ""), name)
            if key not in rendered and user not in users.setdefault(key, []):
                users[key].append(user)
    return [Prerequisite(k, ns, name, tuple(who)) for (k, ns, name), who in sorted(users.items())]


def components(objs: Iterable[objects.Obj]) -> list[str]:
    """The Knative components beyond Serving and Eventing the objects need, sorted."""
    needed = set()
    for obj in objs:
        if obj["kind"] == "Broker":
            broker_class = (obj["metadata"].get("annotations") or {}).get("eventing.knative.dev/broker.class")
            if broker_class in _COMPONENTS:
                needed.add(_COMPONENTS[broker_class])
        template = (
            (obj.get("data") or {}).get("channel-template-spec") if obj["kind"] == "ConfigMap" else None
        )
        if template:
            kind = (yaml.safe_load(template) or {}).get("kind")
            if kind in _COMPONENTS:
                needed.add(_COMPONENTS[kind])
    return sorted(needed)
