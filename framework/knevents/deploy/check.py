"""``knevents render --check``: would a cluster accept these objects? Checked offline, before applying.

Three kinds of checks, each a list of :class:`Finding` (empty means accepted):

* **Knative CRD schemas** (:mod:`knevents.deploy.crdschema`): Services,
  Brokers, Triggers, PingSources, SinkBindings and the NatsJetStreamChannel
  a Broker's channel-template ConfigMap describes, with strict unknown
  fields as ``kubectl apply`` sends them. The schemas vendored in
  ``schemas/knative.json`` come from Knative's CRDs (Apache-2.0; the commits
  are in ``schemas/README.md``); a directory of CRD YAML can be given instead.
* **Kubernetes schemas** for core and RBAC objects, with
  ``kubernetes-validate`` (strict, offline; installed by ``knevents[check]``).
  Without it these objects are reported as not checked, never as passing.
* **Admission rules** the schemas cannot express: fields Knative gates behind
  a feature flag that is off by default (``valueFrom.fieldRef`` …), the
  environment variables and mount paths Knative Serving reserves, volumes
  nothing mounts, and the immutable ``spec`` (and class) of a Broker when the
  same Broker is rendered twice (two renderings applied into one namespace).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from knevents.deploy import crdschema, objects

__all__ = ["DEFAULT_KUBE_VERSION", "Finding", "check", "knative_schemas"]

DEFAULT_KUBE_VERSION = "1.30"
"""The oldest Kubernetes minor the rendered objects are checked against by default."""

# knative/serving pkg/apis/serving/k8s_validation.go: what a user container may not set or mount over
_RESERVED_ENV = frozenset({"PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"})
_RESERVED_PATHS = frozenset({"/", "/dev", "/dev/log", "/tmp", "/var", "/var/log"})
_CORE_GROUPS = ("v1", "rbac.authorization.k8s.io/")
_CHANNEL_TEMPLATE = "channel-template-spec"
_BROKER_CLASS = "eventing.knative.dev/broker.class"


@dataclass(frozen=True)
class Finding:
    """One reason a cluster would refuse an object."""

    object: str
    """``Kind namespace/name``."""
    path: str
    """Where in the object, dotted (empty for the object as a whole)."""
    message: str

    def __str__(self) -> str:
        return f"{self.object}: {self.path + ': ' if self.path else ''}{self.message}"


def knative_schemas(directories: Iterable[Path] = ()) -> dict[str, dict[str, Any]]:
    """Schemas from CRD YAML in ``directories``, else the ones vendored in the package."""
    dirs = list(directories)
    return crdschema.load_dir(*dirs) if dirs else _vendored()


@functools.cache
def _vendored() -> dict[str, dict[str, Any]]:
    text = resources.files("knevents.deploy").joinpath("schemas/knative.json").read_text()
    loaded: dict[str, dict[str, Any]] = json.loads(text)
    return loaded


def check(
    objs: Iterable[objects.Obj],
    *,
    schemas: Mapping[str, dict[str, Any]] | None = None,
    kube_version: str = DEFAULT_KUBE_VERSION,
) -> list[Finding]:
    """Every problem a cluster would report for ``objs`` (applied together, in one namespace or more)."""
    schemas = schemas if schemas is not None else knative_schemas()
    all_objs = list(objs)
    findings: list[Finding] = []
    for obj in all_objs:
        where = _where(obj)
        key = f"{obj.get('apiVersion')} {obj.get('kind')}"
        if key in schemas:
            findings += _schema_findings(where, obj, schemas[key])
        elif str(obj.get("apiVersion")).startswith(_CORE_GROUPS):
            findings += _kube_findings(where, obj, kube_version)
        else:
            findings.append(Finding(where, "", f"no schema known for {key}"))
        if key == "v1 ConfigMap" and _CHANNEL_TEMPLATE in (obj.get("data") or {}):
            findings += _channel_template(where, obj["data"][_CHANNEL_TEMPLATE], schemas)
        if key == f"{objects.SERVING} Service":
            findings += _serving_admission(where, obj)
    findings += _immutable(all_objs)
    return findings


def _where(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    name = f"{meta['namespace']}/{meta.get('name')}" if meta.get("namespace") else str(meta.get("name"))
    return f"{obj.get('kind')} {name}"


def _flag_rejects(validator: Any, flag: str, instance: Any, schema: Any) -> Iterator[Any]:
    import jsonschema

    yield jsonschema.ValidationError(
        f"is behind the Knative feature flag {flag}, which is off by default: the webhook rejects it"
    )


@functools.cache
def _validator_class() -> Any:
    import jsonschema

    return jsonschema.validators.extend(
        jsonschema.Draft202012Validator, {crdschema.FEATURE_FLAG: _flag_rejects}
    )


# schemas are loaded once and reused: keep one validator per schema object (held, so its id stays unique)
_VALIDATORS: dict[int, tuple[Mapping[str, Any], Any]] = {}


def _schema_findings(where: str, obj: Any, schema: Mapping[str, Any]) -> list[Finding]:
    held = _VALIDATORS.get(id(schema))
    if held is None or held[0] is not schema:
        held = _VALIDATORS[id(schema)] = (schema, _validator_class()(schema))
    validator = held[1]
    return [
        Finding(where, ".".join(str(p) for p in err.absolute_path), err.message)
        for err in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
    ]


def _kube_findings(where: str, obj: Mapping[str, Any], version: str) -> list[Finding]:
    try:
        import kubernetes_validate
        from kubernetes_validate import utils
    except ImportError:
        return [Finding(where, "", "not checked: install knevents[check] (kubernetes-validate)")]
    try:
        kubernetes_validate.validate(dict(obj), version, strict=True)
    except utils.ValidationError as err:
        return [Finding(where, ".".join(str(p) for p in err.path), str(err.message))]
    except (utils.SchemaNotFoundError, utils.VersionNotSupportedError, utils.InvalidSchemaError) as err:
        return [Finding(where, "", f"not checked against Kubernetes {version}: {err}")]
    return []


def _channel_template(where: str, text: str, schemas: Mapping[str, dict[str, Any]]) -> list[Finding]:
    try:
        template = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return [Finding(where, f"data.{_CHANNEL_TEMPLATE}", f"not YAML: {exc}")]
    if not isinstance(template, Mapping):
        return [Finding(where, f"data.{_CHANNEL_TEMPLATE}", "not a mapping")]
    key = f"{template.get('apiVersion')} {template.get('kind')}"
    if key not in schemas:
        return [Finding(where, f"data.{_CHANNEL_TEMPLATE}", f"no schema known for channel {key}")]
    # the Broker creates the channel from this template: check it as that object would be checked
    channel = {**template, "metadata": {"name": "channel"}}
    return [
        Finding(where, f"data.{_CHANNEL_TEMPLATE}.{f.path}", f.message)
        for f in _schema_findings(where, channel, schemas[key])
    ]


def _serving_admission(where: str, obj: Mapping[str, Any]) -> list[Finding]:
    pod = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    findings = []
    mounted: set[str] = set()
    for index, container in enumerate(pod.get("containers") or ()):
        base = f"spec.template.spec.containers.{index}"
        for env in container.get("env") or ():
            if env.get("name") in _RESERVED_ENV:
                findings.append(Finding(where, f"{base}.env", f"{env['name']} is reserved by Knative"))
        for mount in container.get("volumeMounts") or ():
            mounted.add(str(mount.get("name")))
            path = str(mount.get("mountPath", "")).rstrip("/") or "/"
            if path in _RESERVED_PATHS or not path.startswith("/"):
                findings.append(Finding(where, f"{base}.volumeMounts", f"mount path {path} is not allowed"))
    for volume in pod.get("volumes") or ():
        if volume.get("name") not in mounted:
            findings.append(
                Finding(where, "spec.template.spec.volumes", f"volume {volume.get('name')} is not mounted")
            )
    return findings


def _immutable(objs: Iterable[Mapping[str, Any]]) -> list[Finding]:
    """A Broker's class and spec cannot change: the same Broker rendered twice must be rendered alike."""
    seen: dict[str, tuple[Any, Any]] = {}
    findings = []
    for obj in objs:
        if obj.get("kind") != "Broker":
            continue
        where = _where(obj)
        frozen = ((obj["metadata"].get("annotations") or {}).get(_BROKER_CLASS), obj.get("spec") or {})
        first = seen.setdefault(where, frozen)
        if first != frozen:
            findings.append(
                Finding(
                    where,
                    "spec",
                    f"rendered twice with different class or spec ({first} and {frozen}); "
                    "a Broker's spec is immutable, so the second apply fails",
                )
            )
    return findings
