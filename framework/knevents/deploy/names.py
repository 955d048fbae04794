"""Names, labels and annotation keys shared by every rendered object.

Kubernetes object names must be DNS-1123 labels (lowercase alphanumerics and
``-``, at most 63 characters, starting with a letter for Knative Services).
Argo names are usually valid already; when one is not (``dep_1``, too long),
it is lowered, cleaned and, if anything was changed or cut, suffixed with a
short hash of the original so that two different names never collide.
"""

from __future__ import annotations

import hashlib
import re

__all__ = [
    "ANNOTATION_BACKOFF_DELAY",
    "ANNOTATION_DEAD_LETTER_SINK",
    "ANNOTATION_RETRY",
    "LABEL_COMPONENT",
    "LABEL_NAME",
    "LABEL_PART_OF",
    "SPEC_DIR",
    "SPEC_FILE",
    "dns_label",
    "labels",
    "service_host",
]

ANNOTATION_DEAD_LETTER_SINK = "events.knevents.io/dead-letter-sink"
"""On a Sensor: where the broker sends events the sensor could not take (URI or Knative Service name)."""
ANNOTATION_RETRY = "events.knevents.io/delivery-retry"
"""On a Sensor: broker redeliveries before dead-lettering (integer)."""
ANNOTATION_BACKOFF_DELAY = "events.knevents.io/delivery-backoff-delay"
"""On a Sensor: first retry delay, ISO-8601 duration (``PT0.5S``)."""

LABEL_PART_OF = "app.kubernetes.io/part-of"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_NAME = "events.knevents.io/name"

SPEC_DIR = "/etc/knevents"
"""Where the spec ConfigMap is mounted in a function's container."""
SPEC_FILE = "spec.yaml"
"""The ConfigMap key (and file name) holding the manifest."""

_INVALID = re.compile(r"[^a-z0-9-]+")


def dns_label(*parts: str, max_len: int = 63) -> str:
    """A valid DNS-1123 label made of ``parts`` joined by ``-``; stable and collision-safe."""
    original = "-".join(p for p in parts if p)
    cleaned = _INVALID.sub("-", original.lower()).strip("-")
    cleaned = re.sub(r"-{2,}", "-", cleaned)
    if cleaned and not cleaned[0].isalpha():
        cleaned = "x-" + cleaned
    if cleaned == original and len(cleaned) <= max_len:
        return cleaned
    digest = hashlib.sha256(original.encode()).hexdigest()[:6]
    head = cleaned[: max_len - len(digest) - 1].rstrip("-")
    return f"{head}-{digest}" if head else f"x-{digest}"


def labels(component: str, name: str) -> dict[str, str]:
    """The labels every object rendered for one EventSource / Sensor carries."""
    return {LABEL_PART_OF: "knevents", LABEL_COMPONENT: component, LABEL_NAME: dns_label(name)}


def service_host(name: str, namespace: str) -> str:
    """The cluster-local host name of a Knative Service."""
    return f"{name}.{namespace}.svc.cluster.local"
