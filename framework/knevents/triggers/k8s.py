"""The ``k8s`` trigger (``StandardK8STrigger``): create, update, patch or delete any resource.

Argo's semantics (pkg/sensors/triggers/standard-k8s): the operation defaults
to ``create``; the namespace defaults to the sensor's (cluster-scoped kinds get
none); a created object gets the labels ``events.argoproj.io/sensor``,
``events.argoproj.io/trigger`` and ``events.argoproj.io/action-timestamp``
(milliseconds since the epoch). ``update`` reads the live object, merges the
resource over it (maps merged key by key, everything else replaced) and puts
it back; ``patch`` sends the resource with ``patchStrategy`` (merge by
default); both create the object when it does not exist yet. ``delete`` of a
missing object is a success. ``liveObject`` fetches the current object first;
since the engine has applied the parameters already, the resolved resource is
merged over the live one.

knevents adds the annotation ``events.knevents.io/event-ids`` (the firing's
idempotency key) and, with a trace, ``events.knevents.io/traceparent``.
Without a configured cluster, or with ``dry_run``, nothing is called and the
result carries the resource that would have been sent.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from knevents import errors
from knevents.spec import models, sensor_rules
from knevents.triggers import apiresources, base, fetch, kube, permissions, policy

if TYPE_CHECKING:
    from knevents.sensors import engine

__all__ = ["PATCH_TYPES", "TRIGGER", "K8sTrigger", "deep_merge", "json_patch_ops", "stamp"]

PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "application/merge-patch+json": "application/merge-patch+json",
    "application/json-patch+json": "application/json-patch+json",
    "application/strategic-merge-patch+json": "application/strategic-merge-patch+json",
}
_OPERATIONS = ("create", "update", "patch", "delete")


def stamp(obj: dict[str, Any], resolved: engine.Resolved, ctx: base.TriggerContext, *, labels: bool) -> None:
    """Add Argo's trigger labels (when ``labels``) and knevents' annotations to ``obj`` in place."""
    metadata = obj.setdefault("metadata", {})
    if labels:
        metadata["labels"] = {
            **(metadata.get("labels") or {}),
            "events.argoproj.io/sensor": ctx.sensor_name,
            "events.argoproj.io/trigger": resolved.trigger,
            "events.argoproj.io/action-timestamp": str(int(time.time() * 1000)),
        }
    annotations = dict(metadata.get("annotations") or {})
    annotations[base.EVENT_IDS_ANNOTATION] = base.event_ids(resolved.events)
    if ctx.traceparent:
        annotations[base.TRACEPARENT_ANNOTATION] = ctx.traceparent
    metadata["annotations"] = annotations


def deep_merge(live: Any, new: Any) -> Any:
    """``new`` over ``live``: maps merged key by key, anything else replaced (mergo WithOverride)."""
    if isinstance(live, Mapping) and isinstance(new, Mapping):
        merged = dict(live)
        for key, value in new.items():
            merged[key] = deep_merge(live.get(key), value) if key in live else copy.deepcopy(value)
        return merged
    return copy.deepcopy(new)


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def json_patch_ops(obj: Mapping[str, Any], live: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """A JSON patch setting every field of ``obj`` on ``live``: labels/annotations key by key, identity skipped.

    A JSON patch cannot add a key under a map that does not exist, so a labels/annotations map
    missing from the live object is added whole.
    """
    live_metadata = (live or {}).get("metadata") or {}
    ops: list[dict[str, Any]] = []
    for key, value in obj.items():
        if key in ("apiVersion", "kind"):
            continue
        if key == "metadata" and isinstance(value, Mapping):
            for meta_key in ("labels", "annotations"):
                entries = value.get(meta_key) or {}
                if entries and not isinstance(live_metadata.get(meta_key), Mapping):
                    ops.append({"op": "add", "path": f"/metadata/{meta_key}", "value": dict(entries)})
                    continue
                for name, item in entries.items():
                    ops.append({"op": "add", "path": f"/metadata/{meta_key}/{_escape(name)}", "value": item})
            continue
        ops.append({"op": "add", "path": f"/{_escape(key)}", "value": value})
    return ops


def identity(resource: Any, what: str) -> tuple[dict[str, Any], str, str, Mapping[str, Any]]:
    """A deep copy of the resolved resource, its apiVersion, kind and metadata; clear errors when absent."""
    if not isinstance(resource, Mapping):
        raise errors.TriggerError(f"{what} has no resource (set source.resource in the trigger)")
    obj = copy.deepcopy(dict(resource))
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not api_version or not kind:
        raise errors.TriggerError(f"{what}: the resource needs apiVersion and kind")
    if not isinstance(obj.get("metadata") or {}, Mapping):
        raise errors.TriggerError(f"{what}: the resource's metadata must be a map")
    obj.setdefault("metadata", {})
    return obj, str(api_version), str(kind), obj["metadata"]


async def namespace_of(
    client: kube.Kube | None, obj: dict[str, Any], api_version: str, kind: str, ctx: base.TriggerContext
) -> str | None:
    """The namespace to use: the resource's, else the sensor's; ``None`` for cluster-scoped kinds."""
    if client is not None:
        namespaced = await kube.call(
            kube.Target("discover", api_version, kind), client.namespaced, api_version, kind
        )
    else:  # no cluster (dry run): the kind table, as render uses it
        group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
        known = apiresources.lookup(group, kind)
        namespaced = known.namespaced if known is not None else True
    if not namespaced:
        obj["metadata"].pop("namespace", None)
        return None
    namespace = str(obj["metadata"].get("namespace") or ctx.namespace)
    obj["metadata"]["namespace"] = namespace
    return namespace


async def get_or_none(
    client: kube.Kube, api_version: str, kind: str, name: str, namespace: str | None
) -> dict[str, Any] | None:
    """The live object, or ``None`` when it does not exist."""
    target = kube.Target("get", api_version, kind, name, namespace)
    return await kube.call(target, _get_raw, client, api_version, kind, name, namespace)


def _get_raw(
    client: kube.Kube, api_version: str, kind: str, name: str, namespace: str | None
) -> dict[str, Any] | None:
    from kubernetes.client.exceptions import ApiException

    try:
        return client.get(api_version, kind, name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


async def apply_k8s_policy(
    client: kube.Kube, resolved: engine.Resolved, created: Mapping[str, Any], api_version: str, kind: str
) -> str | None:
    """``policy.k8s``: poll the created object until its labels match; a note or ``None``."""
    k8s_policy = getattr(getattr(resolved.spec, "policy", None), "k8s", None)
    if k8s_policy is None or not getattr(k8s_policy, "labels", None):
        return None
    metadata = created.get("metadata") or {}
    name, namespace = str(metadata.get("name") or ""), metadata.get("namespace")

    async def fetch() -> Mapping[str, Any] | None:
        return await get_or_none(client, api_version, kind, name, namespace)

    return await policy.wait_for_labels(fetch, k8s_policy, f"{kind} {name}")


class K8sTrigger:
    """Creates, updates, patches or deletes ``template.k8s.source.resource``."""

    async def execute(self, resolved: engine.Resolved, ctx: base.TriggerContext) -> base.TriggerResult:
        spec = resolved.spec.template.k8s
        if spec is None:
            raise errors.TriggerError("the trigger has no template.k8s section")
        operation = str(getattr(spec, "operation", None) or "create").lower()
        if operation not in _OPERATIONS:
            raise errors.TriggerError(f"k8s operation {operation!r} is not one of {', '.join(_OPERATIONS)}")
        obj, api_version, kind, metadata = identity(resolved.resource, "k8s trigger")
        name = str(metadata.get("name") or "")
        if operation != "create" and not name:
            raise errors.TriggerError(f"k8s {operation} needs metadata.name in the resource")
        if operation == "create" and not name and not metadata.get("generateName"):
            raise errors.TriggerError(
                "k8s create needs metadata.name or metadata.generateName in the resource"
            )
        client = None if ctx.dry_run else kube.client(ctx.settings.kube)
        namespace = await namespace_of(client, obj, api_version, kind, ctx)
        if operation != "delete":
            stamp(obj, resolved, ctx, labels=operation == "create")
        if client is None:
            why = "dry run" if ctx.dry_run else "dry run (no Kubernetes cluster configured)"
            return base.TriggerResult(resolved.trigger, resolved.kind, why, resource=obj)
        target = kube.Target(
            operation, api_version, kind, name or str(metadata.get("generateName")), namespace
        )
        result = await self._run(client, operation, obj, target, spec)
        if result is None:
            return base.TriggerResult(resolved.trigger, resolved.kind, f"{kind} {name} already absent")
        note = (
            await apply_k8s_policy(client, resolved, result, api_version, kind)
            if operation != "delete"
            else None
        )
        done = f"{operation}d {kind} {(result.get('metadata') or {}).get('name', name)} in {namespace or 'cluster'}"
        return base.TriggerResult(
            resolved.trigger, resolved.kind, f"{done}; {note}" if note else done, resource=result
        )

    async def _run(
        self, client: kube.Kube, operation: str, obj: dict[str, Any], target: kube.Target, spec: Any
    ) -> dict[str, Any] | None:
        namespace, av, kind = target.namespace, target.api_version, target.kind
        create = kube.Target("create", av, kind, target.name, namespace)
        if operation == "create":
            return await kube.call(create, client.create, obj, namespace)
        live = await get_or_none(client, av, kind, str(target.name), namespace)
        if operation == "delete":
            if live is None:
                return None
            await kube.call(target, client.delete, av, kind, str(target.name), namespace)
            return live
        if live is None:  # Argo creates the object when it does not exist yet
            return await kube.call(create, client.create, obj, namespace)
        if operation == "update":
            merged = deep_merge(live, obj)
            return await kube.call(target, client.replace, merged, namespace)
        strategy = str(getattr(spec, "patch_strategy", None) or "merge")
        content_type = PATCH_TYPES.get(strategy)
        if content_type is None:
            raise errors.TriggerError(f"k8s patchStrategy {strategy!r} is not one of merge, json, strategic")
        if getattr(spec, "live_object", False):
            obj = deep_merge(live, obj)
        body: Any = json_patch_ops(obj, live) if content_type.startswith("application/json-patch") else obj
        return await kube.call(
            target, client.patch, av, kind, str(target.name), namespace, body, content_type
        )


OPERATIONS = frozenset({"create", "update", "patch", "delete"})


def _check(k8s: models.StandardK8STrigger, ctx: base.CheckContext) -> Iterator[tuple[str, str]]:
    if k8s.source is None:
        yield f"{ctx.path}.source", "a k8s trigger needs a `source` (resource, configmap, url …)"
    if k8s.operation and k8s.operation not in OPERATIONS:
        yield (
            f"{ctx.path}.operation",
            f"unknown k8s operation `{k8s.operation}` (use create, update, patch or delete)",
        )
    yield from fetch.check_location(k8s.source, f"{ctx.path}.source")
    yield from sensor_rules.check_parameters(k8s.parameters, f"{ctx.path}.parameters", ctx.dependencies)
    yield from policy.check_k8s_policy(ctx.trigger, ctx.trigger_path)


# exactly what K8sTrigger._run calls: update/patch read first and create a missing object (as Argo
# does); delete reads first (a missing object is a success); create only creates
_VERBS: Mapping[str, tuple[str, ...]] = {
    "create": ("create",),
    "update": ("get", "create", "update"),
    "patch": ("get", "create", "patch"),
    "delete": ("get", "delete"),
}


def _permissions(
    k8s: models.StandardK8STrigger, trigger: models.Trigger, namespace: str
) -> Iterator[base.Grant | str]:
    where = f"trigger {trigger.template.name}"
    resource = permissions.inline_resource(k8s.source)
    if resource is None:
        yield permissions.not_inline(where, k8s.source)
        return
    verbs = _VERBS.get((k8s.operation or "create").lower())
    if verbs is None:
        yield f"{where}: unknown k8s operation {k8s.operation!r}; no permissions derived"
        return
    if permissions.polls(trigger):  # policy.k8s reads the object back (update/patch/delete read anyway)
        verbs = (*verbs, "get")
    yield from permissions.grants(resource, verbs, namespace, k8s.parameters, where)


TRIGGER = base.TriggerKind(
    key="k8s",
    model=models.StandardK8STrigger,
    executor=K8sTrigger(),
    summary="creates, updates, patches or deletes a Kubernetes resource built from the events",
    check=_check,
    permissions=_permissions,
)
