"""Terraform modules: formatted, valid where they initialise offline, their own ``terraform test``s pass,
and the manifests module reads ``knevents render`` output exactly as Python wrote it.

Modules needing the kubernetes or google providers cannot be initialised here
(only the AWS provider is in the mirror): their logic lives in provider-free
submodules (``knevents/manifests``, ``gcp-pubsub-push/config``) that are
validated and tested.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from knevents.deploy import render

from tests import upstream
from tests.deploy import corpus, tfrun

OFFLINE = [
    "terraform/modules/aws-s3-notifications",
    "terraform/modules/knevents-hooks",
    "terraform/modules/knevents/manifests",
    "terraform/modules/gcp-pubsub-push/config",
    "terraform/examples/s3-to-knevents",
]
WITH_TESTS = [
    "terraform/modules/aws-s3-notifications",
    "terraform/modules/knevents/manifests",
    "terraform/modules/gcp-pubsub-push/config",
]


def test_everything_is_formatted(tmp_path: Path) -> None:
    config = tfrun.cli_config(tmp_path)
    for directory in (tfrun.TERRAFORM_DIR, corpus.REPO / "tests" / "deploy"):
        tfrun.terraform(directory, "fmt", "-check", "-recursive", "-diff", config=config)


def test_every_module_and_example_is_covered() -> None:
    found = {str(p.parent.relative_to(corpus.REPO)) for p in tfrun.TERRAFORM_DIR.rglob("main.tf")}
    needing_other_providers = {
        "terraform/modules/knevents",
        "terraform/modules/gcp-pubsub-push",
        "terraform/examples/knative-deploy",
        "terraform/examples/pubsub-push",
    }
    assert found == set(OFFLINE) | needing_other_providers


@pytest.mark.parametrize("module", OFFLINE)
def test_validate_offline(module: str, tmp_path: Path) -> None:
    root = tfrun.scratch(tmp_path)
    config = tfrun.cli_config(tmp_path)
    tfrun.terraform(root / module, "init", "-backend=false", "-input=false", config=config)
    tfrun.terraform(root / module, "validate", config=config)
    if module in WITH_TESTS:
        done = tfrun.terraform(root / module, "test", config=config)
        assert " 0 failed" in done.stdout and "passed" in done.stdout


def test_manifests_module_reads_render_output_like_python(tmp_path: Path) -> None:
    docs = corpus.documents(upstream.example("sensors", "trigger-standard-k8s-resource.yaml"))
    sources = corpus.documents(upstream.example("event-sources", "calendar.yaml"))
    bus = corpus.documents(upstream.example("eventbus", "native.yaml"))
    rendering = render.render(sources["EventSource"], docs["Sensor"], bus["EventBus"])
    stream = tmp_path / "knevents.yaml"
    stream.write_text(render.dump_yaml(rendering.objects))
    here = corpus.REPO / "tests" / "deploy" / "terraform_manifests"
    root = tfrun.scratch(tmp_path, here)
    work = root / here.relative_to(corpus.REPO)
    config = tfrun.cli_config(tmp_path)
    tfrun.terraform(work, "init", "-input=false", config=config)
    tfrun.terraform(work, "apply", "-auto-approve", "-input=false", f"-var=yaml_file={stream}", config=config)
    outputs = json.loads(tfrun.terraform(work, "output", "-json", config=config).stdout)
    by_key = {
        f"{o['kind']}/{o['metadata'].get('namespace', '')}/{o['metadata']['name']}": o
        for o in rendering.objects
    }
    assert outputs["all"]["value"] == by_key
    base = {
        k
        for k, o in by_key.items()
        if o["kind"] in {"ConfigMap", "Role", "RoleBinding", "ServiceAccount", "Broker"}
    }
    assert set(outputs["base"]["value"]) == base
    assert set(outputs["workloads"]["value"]) == set(by_key) - base


def test_missing_mirror_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tfrun, "_MIRRORS", ())
    monkeypatch.setenv("KNEVENTS_TF_PROVIDER_MIRROR", "/nonexistent")
    with pytest.raises(AssertionError, match="no Terraform provider mirror with hashicorp/aws found"):
        tfrun.provider_mirror()
