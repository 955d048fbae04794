"""The Knative Service that runs one knevents function, shared by event sources and sensors.

The container gets only what the Knative runtime contract and the function
need: the image, ``$PORT`` (set by Knative), the function choice as
functions-framework reads it (``FUNCTION_TARGET``, ``FUNCTION_SIGNATURE_TYPE``)
plus ``KNEVENTS_FUNCTION`` for the image's start script, the spec mounted from
a ConfigMap (``KNEVENTS_SPEC``), one read-only volume per referenced Secret at
``/var/run/secrets/knevents/<name>`` and per ConfigMap at
``/var/run/configmaps/knevents/<name>``. Parts of Argo's pod ``template`` that
Knative accepts (service account, env, resources, image pull secrets) are
carried over; the rest is reported as a warning by the caller. An env
variable read through the downward API (``valueFrom.fieldRef`` /
``resourceFieldRef``) is refused by Knative unless the
``kubernetes.podspec-fieldref`` flag is on (it is off by default): the
namespace is written as a plain value (it is known when rendering), any
other such variable is left out with a warning (:func:`env_warnings`). A function
nothing outside the cluster has to reach (every sensor: only the Broker posts
to it; pull sources; calendar PingSources) is ``cluster-local``, so no public
route can feed it events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from knevents.deploy import entrypoint, names, objects, refs
from knevents.settings import SecretSettings

__all__ = ["Workload", "build", "env_warnings", "security_context", "unsupported_template_fields"]

_TEMPLATE_CARRIED = frozenset({"serviceAccountName", "container", "imagePullSecrets"})
_CONTAINER_CARRIED = frozenset({"env", "resources", "envFrom"})
# downward-API env sources behind Knative's kubernetes.podspec-fieldref flag (off by default)
_FLAGGED_ENV_SOURCES = ("fieldRef", "resourceFieldRef")
_SECRETS_DIR = SecretSettings.secrets_dir
_CONFIGMAPS_DIR = SecretSettings.configmaps_dir


@dataclass(frozen=True)
class Workload:
    """Everything that differs between an event source's and a sensor's Service."""

    function: str
    """``eventsource`` or ``sensor``: the directory under ``functions/``."""
    name: str
    namespace: str
    spec_config_map: str
    references: refs.References
    labels: Mapping[str, str]
    env: Mapping[str, str] = field(default_factory=dict)
    revision_annotations: Mapping[str, str] = field(default_factory=dict)
    service_account: str | None = None
    template: Mapping[str, Any] = field(default_factory=dict)
    """Argo's ``spec.template`` (pod template) of the manifest."""
    public: bool = False
    """Reachable from outside the cluster (webhooks, SNS, Pub/Sub push); otherwise cluster-local."""


def _volume(name: str, kind: str, source: str) -> dict[str, Any]:
    key = "configMap" if kind == "configmap" else "secret"
    ref = {"name": source} if kind == "configmap" else {"secretName": source}
    return {"name": name, key: ref}


def _mounts(work: Workload) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    volumes = [_volume("knevents-spec", "configmap", work.spec_config_map)]
    mounts = [{"name": "knevents-spec", "mountPath": names.SPEC_DIR, "readOnly": True}]
    for secret in work.references.secrets:
        volume = names.dns_label("secret", secret)
        volumes.append(_volume(volume, "secret", secret))
        mounts.append({"name": volume, "mountPath": f"{_SECRETS_DIR}/{secret}", "readOnly": True})
    for config_map in work.references.configmaps:
        volume = names.dns_label("configmap", config_map)
        volumes.append(_volume(volume, "configmap", config_map))
        mounts.append({"name": volume, "mountPath": f"{_CONFIGMAPS_DIR}/{config_map}", "readOnly": True})
    return volumes, mounts


def security_context() -> dict[str, Any]:
    """The restricted container security context (``kn --security-context strict``), a fresh copy each call."""
    return {
        "allowPrivilegeEscalation": False,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _container(work: Workload, image: str, mounts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    function = entrypoint.FUNCTIONS[work.function]
    env = {
        "KNEVENTS_FUNCTION": work.function,
        "FUNCTION_TARGET": function.target,
        "FUNCTION_SIGNATURE_TYPE": "http",
        **({"FUNCTION_USE_ASGI": "true"} if function.asgi else {}),
        "KNEVENTS_SPEC": f"{names.SPEC_DIR}/{names.SPEC_FILE}",
        "KNEVENTS_NAMESPACE": work.namespace,
        **work.env,
    }
    container: dict[str, Any] = {
        "name": work.function,
        "image": image,
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "volumeMounts": list(mounts),
        "readinessProbe": {"httpGet": {"path": "/health"}},
        "securityContext": security_context(),
    }
    user = work.template.get("container") or {}
    if user.get("env"):
        container["env"].extend(
            admitted
            for e in user["env"]
            if e.get("name") not in env and (admitted := _admitted_env(e, work.namespace)) is not None
        )
    if user.get("envFrom"):
        container["envFrom"] = [dict(e) for e in user["envFrom"]]
    if user.get("resources"):
        container["resources"] = dict(user["resources"])
    return container


def _flagged_source(item: Mapping[str, Any]) -> str | None:
    """The ``valueFrom`` key of an env entry that Knative gates behind kubernetes.podspec-fieldref."""
    source = item.get("valueFrom") or {}
    return next((key for key in _FLAGGED_ENV_SOURCES if key in source), None)


def _admitted_env(item: Mapping[str, Any], namespace: str) -> dict[str, Any] | None:
    """The env entry as Knative admits it by default, or None when it cannot be (see :func:`env_warnings`)."""
    flagged = _flagged_source(item)
    if flagged is None:
        return dict(item)
    if flagged == "fieldRef" and item["valueFrom"]["fieldRef"].get("fieldPath") == "metadata.namespace":
        return {"name": item["name"], "value": namespace}  # known when rendering: no downward API needed
    return None


def env_warnings(template: Mapping[str, Any]) -> list[str]:
    """What :func:`build` leaves out of the pod template's env because Knative would refuse it."""
    out = []
    for item in (template.get("container") or {}).get("env") or ():
        flagged = _flagged_source(item)
        if flagged is None:
            continue
        path = (item["valueFrom"][flagged] or {}).get("fieldPath") or (item["valueFrom"][flagged] or {}).get(
            "resource"
        )
        if path == "metadata.namespace":
            continue
        out.append(
            f"spec.template.container.env {item.get('name')} (valueFrom.{flagged} {path}) is left out: Knative "
            "admits it only with the kubernetes.podspec-fieldref feature flag, off by default "
            "(config-features in knative-serving); turn it on and add the variable back, or use a value. "
            "KNEVENTS_NAMESPACE and Knative's K_SERVICE / K_REVISION are always set"
        )
    return out


def build(work: Workload, image: str) -> objects.Obj:
    """The Knative Service for one function."""
    volumes, mounts = _mounts(work)
    account = work.service_account or work.template.get("serviceAccountName")
    return objects.knative_service(
        work.name,
        work.namespace,
        labels=work.labels,
        container=_container(work, image, mounts),
        revision_annotations=work.revision_annotations,
        volumes=volumes,
        service_account=account,
        image_pull_secrets=list(work.template.get("imagePullSecrets") or ()),
        cluster_local=not work.public,
    )


def unsupported_template_fields(template: Mapping[str, Any]) -> list[str]:
    """Fields of Argo's pod template that a Knative Service does not take (reported, not rendered)."""
    dropped = sorted(k for k in template if k not in _TEMPLATE_CARRIED)
    container = template.get("container") or {}
    dropped += sorted(f"container.{k}" for k in container if k not in _CONTAINER_CARRIED)
    return dropped
