"""Discovery documents of the Kubernetes API stand-in (tests only): what resources it serves."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["RESOURCES", "ApiResource", "document", "groups"]


@dataclass(frozen=True)
class ApiResource:
    """One resource type the stand-in serves."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def builtin(self) -> bool:
        return self.group in ("", "apps", "batch")


RESOURCES: tuple[ApiResource, ...] = (
    ApiResource("", "v1", "ConfigMap", "configmaps"),
    ApiResource("", "v1", "Pod", "pods"),
    ApiResource("", "v1", "Service", "services"),
    ApiResource("", "v1", "Secret", "secrets"),
    ApiResource("", "v1", "Namespace", "namespaces", namespaced=False),
    ApiResource("apps", "v1", "Deployment", "deployments"),
    ApiResource("batch", "v1", "Job", "jobs"),
    ApiResource("argoproj.io", "v1alpha1", "Workflow", "workflows"),
    ApiResource("argoproj.io", "v1alpha1", "WorkflowTemplate", "workflowtemplates"),
    ApiResource(
        "argoproj.io", "v1alpha1", "ClusterWorkflowTemplate", "clusterworkflowtemplates", namespaced=False
    ),
    ApiResource("argoproj.io", "v1alpha1", "CronWorkflow", "cronworkflows"),
)
VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def groups() -> Iterator[tuple[str, str]]:
    """(group, version) pairs served, in order, without the core group."""
    seen: list[tuple[str, str]] = []
    for r in RESOURCES:
        if r.group and (r.group, r.version) not in seen:
            seen.append((r.group, r.version))
    yield from seen


def document(path: str) -> dict[str, Any] | None:
    """The discovery answer for ``path`` (``/version``, ``/api``, ``/apis``, group lists), or None."""
    if path == "/version":
        return {
            "major": "1",
            "minor": "30",
            "gitVersion": "v1.30.0-knevents-standin",
            "gitCommit": "0" * 40,
            "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "go1.22.0",
            "compiler": "gc",
            "platform": "linux/amd64",
        }
    if path == "/api":
        return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
    if path == "/apis":
        listed = [
            {
                "name": g,
                "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v},
            }
            for g, v in groups()
        ]
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": listed}
    parts = path.strip("/").split("/")
    if parts == ["api", "v1"]:
        group, version = "", "v1"
    elif len(parts) == 3 and parts[0] == "apis":
        group, version = parts[1], parts[2]
    elif len(parts) == 2 and parts[0] == "apis":
        versions = [v for g, v in groups() if g == parts[1]]
        if not versions:
            return None
        return {
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": parts[1],
            "versions": [{"groupVersion": f"{parts[1]}/{v}", "version": v} for v in versions],
            "preferredVersion": {"groupVersion": f"{parts[1]}/{versions[0]}", "version": versions[0]},
        }
    else:
        return None
    resources = [
        {
            "name": r.plural,
            "singularName": r.kind.lower(),
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": VERBS,
        }
        for r in RESOURCES
        if (r.group, r.version) == (group, version)
    ]
    if not resources:
        return None
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}
