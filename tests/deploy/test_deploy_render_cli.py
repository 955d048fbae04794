"""``knevents render`` end to end: files in, YAML / kn script / a directory out, clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from knevents import cli
from knevents.deploy import render

from tests import upstream
from tests.deploy import corpus, schemas


def _webhook() -> Path:
    return upstream.example("event-sources", "webhook.yaml")


def _sensor() -> Path:
    return upstream.example("sensors", "special-workflow-trigger-shortened.yaml")


GOLDEN = Path(__file__).parent / "golden" / "webhook-workflow.yaml"


def test_yaml_to_stdout_validates(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        cli.main(["render", str(_webhook()), str(_sensor()), "--namespace", "events", "--image", "reg/kn:1"])
        == 0
    )
    objs = list(yaml.safe_load_all(capsys.readouterr().out))
    assert {o["kind"] for o in objs} == {
        "Broker",
        "ConfigMap",
        "SinkBinding",
        "Service",
        "Role",
        "RoleBinding",
        "Trigger",
    }
    for obj in objs:
        assert obj["metadata"].get("namespace", "events") == "events"
        assert schemas.roundtrip(obj) == obj
    images = {o["spec"]["template"]["spec"]["containers"][0]["image"] for o in objs if o["kind"] == "Service"}
    assert images == {"reg/kn:1"}


def _example_sets() -> list[Path]:
    """Each example folder is deployed on its own; the seed documents' examples are one file each."""
    examples = corpus.REPO / "examples"
    sets = [d for d in sorted(examples.iterdir()) if d.is_dir() and d.name != "seeds"]
    sets += sorted(p for p in (examples / "seeds").rglob("*") if p.suffix in (".yaml", ".yml"))
    return sets


EXAMPLE_SETS = _example_sets()


@pytest.mark.parametrize("example", EXAMPLE_SETS, ids=[corpus.ident(p) for p in EXAMPLE_SETS])
def test_the_projects_examples_render_through_validation(example: Path) -> None:
    rendering = render.render_paths([example])
    assert {o["kind"] for o in rendering.objects} & {"Service", "Broker"}
    for obj in rendering.objects:
        assert schemas.roundtrip(obj) == obj


def test_golden_output_for_one_example() -> None:
    # regenerate with KNEVENTS_UPDATE_GOLDEN=1 after an intended change, and review the diff
    text = render.dump_yaml(render.render_paths([_webhook(), _sensor()]).objects)
    if os.environ.get("KNEVENTS_UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()


def test_output_dir_gets_one_file_per_manifest_and_a_kustomization(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert cli.main(["render", str(_webhook()), str(_sensor()), "-o", str(out)]) == 0
    kustomization = yaml.safe_load((out / "kustomization.yaml").read_text())
    assert kustomization["resources"] == [
        "eventbus-default-default.yaml",
        "eventsource-default-webhook.yaml",
        "sensor-default-special-workflow-trigger-shortened.yaml",
    ]
    total = sum(len(list(yaml.safe_load_all((out / f).read_text()))) for f in kustomization["resources"])
    assert total == len(render.render_paths([_webhook(), _sensor()]).objects)


def test_kn_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["render", str(_webhook()), "--format", "kn"]) == 0
    script = capsys.readouterr().out
    assert script.startswith("#!/bin/sh\n")
    assert "kn broker create default" in script and "kn service create webhook-eventsource" in script
    assert cli.main(["render", str(_webhook()), "--format", "kn", "-o", str(tmp_path)]) == 0
    assert (tmp_path / "deploy.sh").read_text() == script


def test_invalid_manifest_is_exit_1_with_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: argoproj.io/v1alpha1\nkind: Sensor\nmetadata: {name: s}\n"
        "spec:\n  dependencies: [{name: d, eventSourceName: a, eventname: b}]\n  triggers: []\n"
    )
    assert cli.main(["render", str(bad), str(tmp_path / "missing.yaml")]) == 1
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "eventname" in err and "missing.yaml" in err
    assert "Traceback" not in err


def test_bad_delivery_annotation_is_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = yaml.safe_load(_sensor().read_text())
    doc["metadata"]["annotations"] = {"events.knevents.io/delivery-retry": "-1"}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert cli.main(["render", str(path)]) == 1
    assert "events.knevents.io/delivery-retry" in capsys.readouterr().err


def test_console_script_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "knevents", "render", str(_webhook())],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "kind: Service" in done.stdout


def test_check_passes_the_examples_and_prints_the_same_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["render", str(_webhook()), str(_sensor())]) == 0
    plain = capsys.readouterr().out
    assert cli.main(["render", "--check", str(_webhook()), str(_sensor())]) == 0
    checked = capsys.readouterr()
    assert checked.out == plain
    assert "check:" not in checked.err


def test_check_refuses_what_it_cannot_vouch_for(capsys: pytest.CaptureFixture[str]) -> None:
    # no Kubernetes 1.99 schemas: the RBAC objects are not checked, which is a finding, never a pass
    assert cli.main(["render", "--check", "--kube-version", "1.99", str(_webhook()), str(_sensor())]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "check: Role " in captured.err and "not checked against Kubernetes 1.99" in captured.err


def test_unknown_field_is_rendered_without_it_and_warned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "apiVersion: argoproj.io/v1alpha1\nkind: Sensor\nmetadata: {name: s}\n"
        "spec:\n  dependencies: [{name: d, eventSourceName: a, eventName: b}]\n"
        "  triggers:\n    - template: {name: t, log: {}, policy: {status: {allow: [200]}}}\n"
    )
    assert cli.main(["render", str(path)]) == 0
    captured = capsys.readouterr()
    assert (
        "warning: " + str(path) + ", document 1, spec.triggers[0].template.policy: unknown field `policy` "
        "ignored (as in Argo); `policy` belongs one level up, beside `template`" in captured.err
    )
    assert "policy" not in captured.out and "kind: Service" in captured.out


def test_render_of_nothing_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    assert cli.main(["render", str(tmp_path)]) == 1
    assert (
        f"knevents render: no EventSource, Sensor or EventBus manifest in {tmp_path}: nothing to render"
        in capsys.readouterr().err
    )
