"""The ``argoWorkflow`` trigger: what Argo Events does through the ``argo`` CLI, done over the API.

Argo Events shells out to ``argo submit|resubmit|resume|retry|suspend|stop|terminate``.
knevents has no CLI in its image; it does what the CLI does:

* ``submit`` (default): create the Workflow from the resolved resource, with
  the same labels as the k8s trigger (Argo adds them too) and the event-ids
  annotation. ``args`` of ``argo submit`` that map onto the Workflow are
  honoured: ``-p/--parameter k=v``, ``--entrypoint``, ``--serviceaccount``,
  ``-l/--labels``, ``--name``, ``--generate-name``.
* ``submit-from``: the resource names a WorkflowTemplate, ClusterWorkflowTemplate
  or CronWorkflow; a Workflow is created with ``spec.workflowTemplateRef`` (or the
  CronWorkflow's ``spec.workflowSpec``), labelled as the CLI labels it.
* ``suspend`` / ``stop`` / ``terminate``: merge-patch ``spec.suspend: true`` /
  ``spec.shutdown: Stop|Terminate`` on the named Workflow, as the Argo server does.
* ``resume`` / ``resubmit`` / ``retry``: through the Argo Server REST API
  (``KNEVENTS_ARGO_SERVER_URL``): only the server rebuilds node state and
  resumes suspend-template nodes (clearing ``spec.suspend`` would not), so the
  sensor needs no Workflow permission for them.

``policy.k8s`` then polls the Workflow's labels (e.g. ``workflows.argoproj.io/completed``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from knevents import errors
from knevents.spec import models, sensor_rules
from knevents.triggers import base, fetch, k8s, kube, permissions, policy

if TYPE_CHECKING:
    from knevents.sensors import engine

__all__ = ["OPERATIONS", "TRIGGER", "ArgoWorkflowTrigger", "apply_submit_args", "workflow_from"]

GROUP_VERSION = "argoproj.io/v1alpha1"
OPERATIONS = ("submit", "submit-from", "resubmit", "resume", "retry", "suspend", "stop", "terminate")
_ARGO_SERVER_OPERATIONS = ("resume", "resubmit", "retry")
_PATCHES: dict[str, dict[str, Any]] = {
    "suspend": {"spec": {"suspend": True}},
    "stop": {"spec": {"shutdown": "Stop"}},
    "terminate": {"spec": {"shutdown": "Terminate"}},
}


def apply_submit_args(workflow: dict[str, Any], args: list[str]) -> None:
    """Apply ``argo submit`` flags that change the Workflow object (in place).

    Each entry is one argv word, as Argo Events passes them to the CLI (no shell splitting).
    """
    words = list(args)
    spec, metadata = workflow.setdefault("spec", {}), workflow.setdefault("metadata", {})
    i = 0
    while i < len(words):
        flag, value = words[i], None
        if "=" in flag and flag.startswith("--"):
            flag, value = flag.split("=", 1)
        elif i + 1 < len(words):
            value = words[i + 1]
            i += 1
        i += 1
        if value is None:
            raise errors.TriggerError(f"argoWorkflow args: {flag} needs a value")
        if flag in ("-p", "--parameter"):
            key, sep, val = value.partition("=")
            if not sep:
                raise errors.TriggerError(f"argoWorkflow args: parameter {value!r} is not name=value")
            params = spec.setdefault("arguments", {}).setdefault("parameters", [])
            for param in params:
                if param.get("name") == key:
                    param["value"] = val
                    break
            else:
                params.append({"name": key, "value": val})
        elif flag == "--entrypoint":
            spec["entrypoint"] = value
        elif flag == "--serviceaccount":
            spec["serviceAccountName"] = value
        elif flag in ("-l", "--labels"):
            for pair in value.split(","):
                key, _, val = pair.partition("=")
                metadata.setdefault("labels", {})[key] = val
        elif flag == "--name":
            metadata["name"] = value
            metadata.pop("generateName", None)
        elif flag == "--generate-name":
            metadata["generateName"] = value
        else:
            raise errors.TriggerError(
                f"argoWorkflow args: {flag} is not supported by knevents "
                "(supported: -p/--parameter, --entrypoint, --serviceaccount, -l/--labels, --name, --generate-name)"
            )


async def workflow_from(client: kube.Kube | None, source: dict[str, Any], namespace: str) -> dict[str, Any]:
    """The Workflow ``argo submit --from <kind>/<name>`` creates."""
    kind, name = str(source.get("kind") or ""), str((source.get("metadata") or {}).get("name") or "")
    if not name:
        raise errors.TriggerError("argoWorkflow submit-from needs metadata.name of the template")
    metadata: dict[str, Any] = {"generateName": f"{name}-", "namespace": namespace, "labels": {}}
    workflow: dict[str, Any] = {"apiVersion": GROUP_VERSION, "kind": "Workflow", "metadata": metadata}
    lowered = kind.lower()
    if lowered == "workflowtemplate":
        metadata["labels"]["workflows.argoproj.io/workflow-template"] = name
        workflow["spec"] = {"workflowTemplateRef": {"name": name}}
    elif lowered == "clusterworkflowtemplate":
        metadata["labels"]["workflows.argoproj.io/cluster-workflow-template"] = name
        workflow["spec"] = {"workflowTemplateRef": {"name": name, "clusterScope": True}}
    elif lowered == "cronworkflow":
        metadata["labels"]["workflows.argoproj.io/cron-workflow"] = name
        cron = source
        if client is not None:
            live = await k8s.get_or_none(client, GROUP_VERSION, "CronWorkflow", name, namespace)
            if live is None:
                raise errors.TriggerError(
                    f"submit-from: CronWorkflow {name} not found in namespace {namespace}"
                )
            cron = live
        cron_spec = cron.get("spec") or {}
        workflow["spec"] = copy.deepcopy(cron_spec.get("workflowSpec") or {})
        extra = cron_spec.get("workflowMetadata") or {}
        metadata["labels"].update(extra.get("labels") or {})
        if extra.get("annotations"):
            metadata["annotations"] = dict(extra["annotations"])
    else:
        raise errors.TriggerError(
            f"argoWorkflow submit-from: kind {kind!r} must be WorkflowTemplate, ClusterWorkflowTemplate or CronWorkflow"
        )
    return workflow


class ArgoWorkflowTrigger:
    """Submits, or acts on, an Argo Workflow."""

    async def execute(self, resolved: engine.Resolved, ctx: base.TriggerContext) -> base.TriggerResult:
        spec = resolved.spec.template.argo_workflow
        if spec is None:
            raise errors.TriggerError("the trigger has no template.argoWorkflow section")
        operation = str(getattr(spec, "operation", None) or "submit").lower()
        if operation not in OPERATIONS:
            raise errors.TriggerError(
                f"argoWorkflow operation {operation!r} is not one of {', '.join(OPERATIONS)}"
            )
        obj, _, _, metadata = k8s.identity(resolved.resource, "argoWorkflow trigger")
        namespace = str(metadata.get("namespace") or ctx.namespace)
        name = str(metadata.get("name") or "")
        client = None if ctx.dry_run else kube.client(ctx.settings.kube)
        if operation in ("submit", "submit-from"):
            return await self._submit(
                resolved, ctx, client, operation, obj, namespace, list(getattr(spec, "args", None) or [])
            )
        if not name:
            raise errors.TriggerError(f"argoWorkflow {operation} needs metadata.name of the Workflow")
        if operation in _ARGO_SERVER_OPERATIONS:
            return await self._argo_server(resolved, ctx, operation, name, namespace)
        if client is None:
            return base.TriggerResult(
                resolved.trigger, resolved.kind, f"dry run: would {operation} Workflow {name}", resource=obj
            )
        target = kube.Target(operation, GROUP_VERSION, "Workflow", name, namespace)
        patched = await kube.call(
            target,
            client.patch,
            GROUP_VERSION,
            "Workflow",
            name,
            namespace,
            _PATCHES[operation],
            k8s.PATCH_TYPES["merge"],
        )
        return base.TriggerResult(
            resolved.trigger, resolved.kind, f"{operation}: Workflow {name}", resource=patched
        )

    async def _submit(
        self,
        resolved: engine.Resolved,
        ctx: base.TriggerContext,
        client: kube.Kube | None,
        operation: str,
        obj: dict[str, Any],
        namespace: str,
        args: list[str],
    ) -> base.TriggerResult:
        if operation == "submit-from":
            workflow = await workflow_from(client, obj, namespace)
        else:
            if obj.get("kind") != "Workflow":
                raise errors.TriggerError(
                    f"argoWorkflow submit needs a Workflow resource, got kind {obj.get('kind')!r}"
                )
            workflow = obj
            if not (workflow["metadata"].get("name") or workflow["metadata"].get("generateName")):
                raise errors.TriggerError("argoWorkflow submit needs metadata.name or metadata.generateName")
        workflow["metadata"]["namespace"] = namespace
        apply_submit_args(workflow, args)
        k8s.stamp(workflow, resolved, ctx, labels=True)
        if client is None:
            why = "dry run" if ctx.dry_run else "dry run (no Kubernetes cluster configured)"
            return base.TriggerResult(resolved.trigger, resolved.kind, why, resource=workflow)
        shown = workflow["metadata"].get("name") or workflow["metadata"].get("generateName")
        target = kube.Target("create", GROUP_VERSION, "Workflow", str(shown), namespace)
        created = await kube.call(target, client.create, workflow, namespace)
        note = await k8s.apply_k8s_policy(client, resolved, created, GROUP_VERSION, "Workflow")
        done = f"submitted Workflow {(created.get('metadata') or {}).get('name')} in {namespace}"
        return base.TriggerResult(
            resolved.trigger, resolved.kind, f"{done}; {note}" if note else done, resource=created
        )

    async def _argo_server(
        self, resolved: engine.Resolved, ctx: base.TriggerContext, operation: str, name: str, namespace: str
    ) -> base.TriggerResult:
        import httpx

        server = ctx.settings.http.argo_server_url
        if not server:
            raise errors.TriggerError(
                f"{operation} needs KNEVENTS_ARGO_SERVER_URL (the Argo Server REST API)"
            )
        url = f"{server.rstrip('/')}/api/v1/workflows/{namespace}/{name}/{operation}"
        if ctx.dry_run:
            return base.TriggerResult(
                resolved.trigger, resolved.kind, f"dry run: would PUT {base.redact_url(url)}"
            )
        body = {"namespace": namespace, "name": name}
        headers = {base.EVENT_IDS_HEADER: base.event_ids(resolved.events)}
        try:
            async with httpx.AsyncClient(timeout=ctx.settings.http.timeout) as client:
                response = await client.put(url, json=body, headers=headers)
        except (httpx.HTTPError, OSError) as exc:
            raise errors.TriggerRetryableError(
                f"{operation} Workflow {name}: Argo Server unreachable: {exc.__class__.__name__}"
            ) from None
        if response.status_code >= 500 or response.status_code == 429:
            raise errors.TriggerRetryableError(
                f"{operation} Workflow {name}: Argo Server answered {response.status_code}"
            )
        if response.status_code >= 300:
            message = _message(response)
            raise errors.TriggerError(
                f"{operation} Workflow {name}: Argo Server answered {response.status_code}: {message}"
            )
        result = (
            response.json()
            if response.headers.get("content-type", "").startswith("application/json")
            else None
        )
        return base.TriggerResult(
            resolved.trigger,
            resolved.kind,
            f"{operation}: Workflow {name}",
            status=response.status_code,
            resource=result,
        )


def _message(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return str(response.text[:200])
    return str(body.get("message") or body) if isinstance(body, dict) else str(body)[:200]


def _check(wf: models.ArgoWorkflowTrigger, ctx: base.CheckContext) -> Iterator[tuple[str, str]]:
    if wf.source is None:
        yield f"{ctx.path}.source", "an argoWorkflow trigger needs a `source` (resource, configmap, url …)"
    if wf.operation and wf.operation not in OPERATIONS:
        ops = ", ".join(sorted(OPERATIONS))
        yield f"{ctx.path}.operation", f"unknown argoWorkflow operation `{wf.operation}` (use one of {ops})"
    yield from fetch.check_location(wf.source, f"{ctx.path}.source")
    yield from sensor_rules.check_parameters(wf.parameters, f"{ctx.path}.parameters", ctx.dependencies)
    yield from policy.check_k8s_policy(ctx.trigger, ctx.trigger_path)


def _permissions(
    wf: models.ArgoWorkflowTrigger, trigger: models.Trigger, namespace: str
) -> Iterator[base.Grant | str]:
    """Exactly the Kubernetes calls ArgoWorkflowTrigger makes for the operation (none for the Argo Server's)."""
    where = f"trigger {trigger.template.name}"
    operation = (wf.operation or "submit").lower()
    if operation in _ARGO_SERVER_OPERATIONS:  # the Argo Server acts with its own identity
        yield (
            f"{where}: {operation} goes through the Argo Server REST API: set KNEVENTS_ARGO_SERVER_URL "
            "in the sensor's spec.template.container.env"
        )
        return
    if operation not in OPERATIONS:
        return  # refused by _check
    resource = permissions.inline_resource(wf.source)
    if resource is None:
        yield permissions.not_inline(where, wf.source)
        resource = {}
    workflow = {"apiVersion": GROUP_VERSION, "kind": "Workflow", "metadata": resource.get("metadata") or {}}
    if operation in _PATCHES:  # suspend / stop / terminate: one merge patch, nothing read
        yield from permissions.grants(workflow, ("patch",), namespace, wf.parameters, where)
        return
    verbs = ("create", "get") if permissions.polls(trigger) else ("create",)
    if operation == "submit-from":
        kind = str(resource.get("kind") or "")
        workflow["metadata"] = {"namespace": (resource.get("metadata") or {}).get("namespace")}
        if kind.lower() == "cronworkflow":  # the CronWorkflow's spec is read; templates are only referenced
            yield from permissions.grants(resource, ("get",), namespace, None, where)
        elif kind.lower() not in ("workflowtemplate", "clusterworkflowtemplate"):
            yield f"{where}: submit-from of kind {kind or 'unknown'!r}; a CronWorkflow source also needs get"
    yield from permissions.grants(workflow, verbs, namespace, wf.parameters, where)


TRIGGER = base.TriggerKind(
    key="argoWorkflow",
    model=models.ArgoWorkflowTrigger,
    executor=ArgoWorkflowTrigger(),
    summary="submits (or suspends, resumes, retries …) an Argo Workflow built from the events",
    check=_check,
    permissions=_permissions,
)
