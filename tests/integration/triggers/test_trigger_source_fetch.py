"""fetch_resource: k8s/argoWorkflow resources from a ConfigMap, a file or a URL (Argo's FetchResource)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from knevents import errors, triggers
from knevents.secrets import env_name

from tests.integration.triggers.http_target import Answer, HttpTarget, trickle
from tests.unit.triggers import trigger_support as support

WORKFLOW_YAML = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: from-source-
spec:
  entrypoint: main
"""


@pytest.fixture
def target(tmp_path: Path) -> Iterator[HttpTarget]:
    server = HttpTarget(tmp_path).start()
    yield server
    server.close()


def k8s_with(source: dict[str, object]) -> object:
    return support.trigger({"name": "t", "k8s": {"source": source}})


async def test_configmap_source() -> None:
    ctx = support.context(secrets={env_name("CONFIGMAP", "workflow-cm", "wf"): WORKFLOW_YAML})
    resource = await triggers.fetch_resource(
        k8s_with({"configmap": {"name": "workflow-cm", "key": "wf"}}), ctx
    )
    assert resource is not None and resource["metadata"]["generateName"] == "from-source-"


async def test_file_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # source.file reads under KNEVENTS_FILES_DIR, by default the working directory
    path = tmp_path / "wf.yaml"
    path.write_text(WORKFLOW_YAML)
    resource = await triggers.fetch_resource(k8s_with({"file": {"path": str(path)}}), support.context())
    assert resource is not None and resource["kind"] == "Workflow"
    with pytest.raises(errors.TriggerError, match="cannot be read"):
        await triggers.fetch_resource(k8s_with({"file": {"path": str(tmp_path / "nope")}}), support.context())


async def test_url_source(target: HttpTarget) -> None:
    target.default = Answer(200, WORKFLOW_YAML.encode())
    resource = await triggers.fetch_resource(
        k8s_with({"url": {"path": target.url("/wf.yaml")}}), support.context()
    )
    assert resource is not None and resource["spec"] == {"entrypoint": "main"}
    target.default = Answer(503)
    with pytest.raises(errors.TriggerRetryableError, match="answered 503"):
        await triggers.fetch_resource(k8s_with({"url": {"path": target.url("/wf.yaml")}}), support.context())


async def test_a_url_answer_too_large_or_too_slow_is_refused(target: HttpTarget, monkeypatch: pytest.MonkeyPatch) -> None:
    """source.url used to read the whole answer into memory, for as long as the server kept sending."""
    from knevents.triggers import fetch_http

    target.default = Answer(200, b"# " + b"x" * fetch_http.MAX_BYTES + b"\n" + WORKFLOW_YAML.encode())
    with pytest.raises(errors.TriggerError, match=f"larger than {fetch_http.MAX_BYTES} bytes"):
        await triggers.fetch_resource(k8s_with({"url": {"path": target.url("/big.yaml")}}), support.context())
    monkeypatch.setattr(fetch_http, "DEADLINE", 3.0)  # ample to connect and read the answer's head
    slow = trickle()
    try:
        async with asyncio.timeout(60):
            with pytest.raises(errors.TriggerRetryableError, match="not read within 3s"):
                await triggers.fetch_resource(k8s_with({"url": {"path": f"http://127.0.0.1:{slow.port}/wf.yaml"}}),
                                              support.context())
        assert await asyncio.to_thread(slow.hung_up.wait, 60)
    finally:
        slow.close()


async def test_inline_resource_needs_no_fetch() -> None:
    inline = k8s_with({"resource": {"apiVersion": "v1", "kind": "ConfigMap"}})
    assert await triggers.fetch_resource(inline, support.context()) is None


async def test_text_that_is_not_an_object_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "wf.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(errors.TriggerError, match="must hold one object"):
        await triggers.fetch_resource(k8s_with({"file": {"path": str(path)}}), support.context())


def test_reads_resource_exactly_when_fetch_has_something_to_read() -> None:
    # the sensor runtime asks this once per trigger and skips fetch_resource for the others
    assert triggers.reads_resource(k8s_with({"configmap": {"name": "workflow-cm", "key": "wf"}}))
    assert triggers.reads_resource(k8s_with({"file": {"path": "wf.yaml"}}))
    assert triggers.reads_resource(k8s_with({"url": {"path": "http://127.0.0.1:1/wf.yaml"}}))
    assert triggers.reads_resource(k8s_with({"git": {"url": "https://github.com/x/y.git", "filePath": "wf.yaml"}}))
    assert not triggers.reads_resource(k8s_with({"resource": {"apiVersion": "v1", "kind": "ConfigMap"}}))
    assert not triggers.reads_resource(support.trigger({"name": "t", "http": {"url": "http://127.0.0.1:1/"}}))
