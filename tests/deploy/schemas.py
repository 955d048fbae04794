"""Check rendered objects against Knative's and Kubernetes' published schemas, dropping nothing.

Knative kinds are validated with the ``cloudcoil-models-knative-*`` pydantic
models (generated from Knative's CRD schemas); core kinds (ConfigMap, RBAC)
with the official ``kubernetes`` client models. Both ignore unknown fields,
so each object is also dumped back and compared with what was rendered: a
field the schema does not know would vanish in the round trip.
"""

from __future__ import annotations

import warnings
from typing import Any

_KNATIVE: dict[tuple[str, str], Any] = {}


def _knative_models() -> dict[tuple[str, str], Any]:
    if not _KNATIVE:
        with warnings.catch_warnings():
            # cloudcoil's generated Channel model shadows a parent attribute; harmless, and not ours
            warnings.simplefilter("ignore", UserWarning)
            from cloudcoil.models.knative_eventing.eventing import v1 as eventing
            from cloudcoil.models.knative_eventing.sources import v1 as sources
            from cloudcoil.models.knative_serving.serving import v1 as serving
        _KNATIVE.update(
            {
                ("serving.knative.dev/v1", "Service"): serving.Service,
                ("eventing.knative.dev/v1", "Broker"): eventing.Broker,
                ("eventing.knative.dev/v1", "Trigger"): eventing.Trigger,
                ("sources.knative.dev/v1", "PingSource"): sources.PingSource,
                ("sources.knative.dev/v1", "SinkBinding"): sources.SinkBinding,
            }
        )
    return _KNATIVE


_CORE = {
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "ServiceAccount"): "V1ServiceAccount",
    ("v1", "Service"): "V1Service",
    ("rbac.authorization.k8s.io/v1", "Role"): "V1Role",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "V1RoleBinding",
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): "V1ClusterRole",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "V1ClusterRoleBinding",
}


def roundtrip(obj: dict[str, Any]) -> dict[str, Any]:
    """Validate ``obj`` with its schema model and return what the model dumps back."""
    key = (obj["apiVersion"], obj["kind"])
    models = _knative_models()
    if key in models:
        model = models[key].model_validate(obj)
        dumped: dict[str, Any] = model.model_dump(mode="json", by_alias=True, exclude_none=True)
        return dumped
    if key in _CORE:
        from kubernetes import client

        api = client.ApiClient()
        typed = api._ApiClient__deserialize(obj, _CORE[key])  # type: ignore[attr-defined]
        result: dict[str, Any] = api.sanitize_for_serialization(typed)
        return result
    raise AssertionError(f"no schema known for {key}")
