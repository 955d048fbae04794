"""Every fenced YAML example of the user's seed document works in knevents.

The blocks are extracted from ``$KNEVENTS_SEEDS/argo-events-complete-documentation.txt``
and named by the text that introduces them. Whole manifests must load with no
problem; the few fragments (a ``filters:`` block, an Argo Workflows
``templates:`` list, ``metadata`` snippets) are placed where they belong in a
Sensor or EventSource and must load there. (argo-events-module-1.2.txt lost
its indentation; its manifests are rebuilt under examples/ and checked by the
runner's tests.)
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from knevents import errors, validation

_ROOT = os.environ.get("KNEVENTS_SEEDS")
if not _ROOT:
    pytest.skip("set KNEVENTS_SEEDS to the folder of the seed documents", allow_module_level=True)

DOCUMENT = Path(_ROOT) / "argo-events-complete-documentation.txt"
_FENCE = re.compile(r"```ya?ml\n(.*?)```", re.S)


def _blocks() -> list[tuple[str, str]]:
    text = DOCUMENT.read_text(encoding="utf-8")
    out = []
    for match in _FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        intro = [row for row in text[: match.start()].splitlines() if row.strip()][-1]
        slug = re.sub(r"[^a-z0-9]+", "-", intro.lower()).strip("-")[:48]
        out.append((f"L{line}-{slug}", match.group(1)))
    return out


BLOCKS = _blocks()

_SENSOR: dict[str, Any] = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Sensor",
    "metadata": {"name": "seed-fragment"},
    "spec": {
        "dependencies": [{"name": "dep", "eventSourceName": "webhook", "eventName": "example"}],
        "triggers": [
            {
                "template": {
                    "name": "run",
                    "k8s": {
                        "operation": "create",
                        "source": {
                            "resource": {
                                "apiVersion": "argoproj.io/v1alpha1",
                                "kind": "Workflow",
                                "metadata": {"generateName": "seed-"},
                                "spec": {"entrypoint": "main"},
                            }
                        },
                    },
                }
            }
        ],
    },
}
_WEBHOOK = {"webhook": {"example": {"port": "12000", "endpoint": "/example", "method": "POST"}}}


def _place(fragment: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Put a fragment where it belongs; returns what kind of fragment it was and the full manifest."""
    if "filters" in fragment:
        sensor = copy.deepcopy(_SENSOR)
        sensor["spec"]["dependencies"][0]["filters"] = fragment["filters"]
        return "filters", sensor
    if "templates" in fragment:
        sensor = copy.deepcopy(_SENSOR)
        resource = sensor["spec"]["triggers"][0]["template"]["k8s"]["source"]["resource"]
        resource["spec"]["templates"] = fragment["templates"]
        return "workflow", sensor
    if fragment.get("kind") == "EventSource" and "spec" not in fragment:
        return "metadata", {**fragment, "spec": _WEBHOOK}
    raise AssertionError(f"unrecognised fragment: {sorted(fragment)}")


def test_the_seed_document_has_examples() -> None:
    assert len(BLOCKS) >= 10


@pytest.mark.parametrize(("name", "text"), BLOCKS, ids=[name for name, _ in BLOCKS])
def test_seed_example(name: str, text: str) -> None:
    manifests = validation.load_text(text, file=name)
    if manifests.count:
        assert manifests.problems == []
        assert manifests.count == 1
        return
    # a fragment: not a manifest by itself, so it must fail clearly, and load once put in place
    fragment = yaml.safe_load(text)
    assert manifests.problems, name
    assert all("Traceback" not in p.message for p in manifests.problems)
    kind, manifest = _place(fragment)
    if kind == "metadata":
        assert [p.path for p in manifests.problems] == ["spec"]
        source = validation.parse_event_source(manifest)
        assert source.metadata.labels == fragment["metadata"].get("labels")
        assert source.metadata.annotations == fragment["metadata"].get("annotations")
        return
    sensor = validation.parse_sensor(manifest)
    if kind == "filters":
        data = sensor.spec.dependencies[0].filters
        assert data is not None and data.data
        assert [f.path for f in data.data] == [f["path"] for f in fragment["filters"]["data"]]
    else:
        k8s = sensor.spec.triggers[0].template.k8s
        assert k8s is not None and k8s.source is not None and k8s.source.resource is not None
        assert k8s.source.resource["spec"]["templates"] == fragment["templates"]


def test_seed_s3_source_uses_the_sns_default() -> None:
    """The seed's `s3:` source sets neither sns nor sqs: knevents receives it by SNS push (the default)."""
    (text,) = [t for _, t in BLOCKS if "\n  s3:\n" in t]
    source = validation.load_one(text, kind="EventSource")
    assert source.spec.s3 is not None
    bucket = source.spec.s3["mybucket"]
    assert bucket.bucket.name == "my-bucket"
    assert bucket.role_arn == "arn:aws:iam::123456789012:role/my-role"
    assert bucket.sns is None and bucket.sqs is None


def test_seed_nats_event_bus_is_reported_not_supported() -> None:
    (text,) = [t for _, t in BLOCKS if "kind: EventBus" in t]
    manifests = validation.load_text(text)
    assert manifests.problems == [] and len(manifests.event_buses) == 1
    assert [p.path for p in manifests.unsupported] == ["spec.nats"]
    assert all(isinstance(p, errors.Problem) and p.unsupported for p in manifests.unsupported)
