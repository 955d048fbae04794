"""Small builders for spec tests: a valid Sensor / EventSource, and a way to change one field of it."""

from __future__ import annotations

import copy
from typing import Any

_DELETE = object()
DELETE: Any = _DELETE
"""Pass as the value to remove the key instead of setting it."""


def sensor() -> dict[str, Any]:
    """A valid Sensor with two dependencies and an http, a k8s and a log trigger."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Sensor",
        "metadata": {"name": "s", "namespace": "ns"},
        "spec": {
            "dependencies": [
                {"name": "dep-a", "eventSourceName": "hooks", "eventName": "a"},
                {"name": "dep_b", "eventSourceName": "hooks", "eventName": "b"},
            ],
            "triggers": [
                {
                    "template": {
                        "name": "call",
                        "conditions": "dep-a && dep_b",
                        "http": {
                            "url": "http://example.test/x",
                            "method": "POST",
                            "payload": [{"src": {"dependencyName": "dep-a", "dataKey": "body"}, "dest": "a"}],
                        },
                    }
                },
                {
                    "template": {
                        "name": "create",
                        "k8s": {
                            "operation": "create",
                            "source": {"resource": {"apiVersion": "v1", "kind": "ConfigMap"}},
                            "parameters": [
                                {"src": {"dependencyName": "dep_b", "dataKey": "body.x"}, "dest": "data.x"}
                            ],
                        },
                    }
                },
                {"template": {"name": "print", "log": {}}},
            ],
        },
    }


def event_source() -> dict[str, Any]:
    """A valid EventSource with a webhook and a calendar event."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "EventSource",
        "metadata": {"name": "hooks"},
        "spec": {
            "webhook": {"a": {"port": "12000", "endpoint": "/a", "method": "POST"}},
            "calendar": {"tick": {"interval": "10s"}},
        },
    }


def patch(obj: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A copy of ``obj`` with the value at ``dotted`` (``spec.triggers.0.template.name``) replaced."""
    out = copy.deepcopy(obj)
    parts = dotted.split(".")
    node: Any = out
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    last: Any = int(parts[-1]) if isinstance(node, list) else parts[-1]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return out
