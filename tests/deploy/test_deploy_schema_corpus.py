"""Every example renders to objects that Knative's and Kubernetes' schemas accept, losing no field."""

from __future__ import annotations

from pathlib import Path

import pytest
from knevents.deploy import render

from tests import upstream
from tests.deploy import corpus, schemas

FILES = corpus.manifest_files()


def test_the_corpus_is_there() -> None:
    # the upstream examples are the test data: a missing checkout must fail, not pass silently
    if corpus.UPSTREAM is None:
        pytest.skip(upstream.REASON)
    assert len(FILES) > 80, f"expected the Argo examples under {corpus.UPSTREAM}"


@pytest.mark.parametrize("path", FILES, ids=[corpus.ident(p) for p in FILES])
def test_rendered_objects_validate_and_roundtrip(path: Path) -> None:
    docs = corpus.documents(path)
    rendering = render.render(docs.get("EventSource", []), docs.get("Sensor", []), docs.get("EventBus", []))
    assert rendering.objects
    for obj in rendering.objects:
        assert schemas.roundtrip(obj) == obj, (
            f"{obj['kind']} {obj['metadata']['name']} lost or changed a field"
        )


def test_roundtrip_catches_a_field_the_schema_does_not_know() -> None:
    docs = corpus.documents(upstream.example("sensors", "log.yaml"))
    rendering = render.render([], docs["Sensor"])
    service = next(o for o in rendering.objects if o["kind"] == "Service")
    service["spec"]["template"]["spec"]["containers"][0]["notAField"] = 1
    assert schemas.roundtrip(service) != service
