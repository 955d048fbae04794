"""Kubernetes API access a type module declares: one grant of verbs on a resource type.

Trigger kinds (``k8s``, ``argoWorkflow``) and event source types
(``resource``) declare the API calls their config makes as :class:`Grant`
values; the renderer turns them into Roles. The type lives here, below both
packages, because sources and triggers may not import each other.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CLUSTER", "Grant"]

CLUSTER = ""
"""The namespace of a grant on a cluster-scoped resource (``Namespace`` …): rendered as a ClusterRole."""


@dataclass(frozen=True)
class Grant:
    """Kubernetes API verbs called on one resource type in one namespace."""

    namespace: str
    """Where; :data:`CLUSTER` for a cluster-scoped kind (or every namespace)."""
    group: str
    """The API group (``""`` for the core group, ``argoproj.io`` …)."""
    resource: str
    """The plural resource name (``configmaps``, ``workflows``)."""
    verbs: tuple[str, ...]
    """Exactly the verbs the code calls (``create``; ``get`` + ``patch`` …)."""
