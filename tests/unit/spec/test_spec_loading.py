"""Loading: YAML quirks, multi-document files, folders, other kinds, malformed input, wrong types, suggestions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from knevents import errors, validation

from tests.unit.spec.helpers import DELETE, event_source, patch, sensor


def _dump(*docs: dict[str, Any]) -> str:
    return "\n---\n".join(json.dumps(d) for d in docs)


# -- YAML -------------------------------------------------------------------------------------------------

MALFORMED = [
    ("unclosed-flow", "kind: Sensor\nspec: {a: [1, 2}\n", "line 2"),
    ("bad-indent", "kind: Sensor\nspec:\n  a: 1\n b: 2\n", "line 4"),
    ("tab", "kind: Sensor\nspec:\n\ta: 1\n", "line 3"),
    (
        "duplicate-key",
        "apiVersion: argoproj.io/v1alpha1\nkind: Sensor\nkind: Sensor\n",
        "duplicate key 'kind'",
    ),
    ("alias-cycle", "kind: Sensor\nspec:\n  dependencies: &a [*a]\n", "a cycle"),
    (
        "alias-bomb",
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefg", "bcdefgh", strict=True)
        )
        + "kind: Sensor\n",
        "once aliases are expanded",
    ),
]


@pytest.mark.parametrize(("text", "fragment"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_yaml_gives_the_position(text: str, fragment: str) -> None:
    manifests = validation.load_text(text, file="bad.yaml")
    assert len(manifests.problems) == 1
    problem = manifests.problems[0]
    assert problem.file == "bad.yaml" and problem.document == 1
    assert "malformed YAML" in problem.message and fragment in problem.message


def test_yaml_times_and_dates_stay_strings() -> None:
    text = """
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {name: s, creationTimestamp: 2024-01-01T00:00:00Z, futureKey: 2024-02-02}
spec:
  dependencies:
    - name: d
      eventSourceName: e
      eventName: n
      filters:
        time: {start: 10:00:00, stop: 18:30:00}
  triggers: [{template: {name: t, log: {}}}]
"""
    (found,) = validation.load_text(text).sensors
    time = found.spec.dependencies[0].filters.time  # type: ignore[union-attr]
    assert (time.start, time.stop) == ("10:00:00", "18:30:00")  # type: ignore[union-attr]
    assert found.metadata.creation_timestamp == "2024-01-01T00:00:00Z"
    assert found.metadata.model_extra == {"futureKey": "2024-02-02"}  # unknown metadata is kept


def test_documents_are_numbered_and_empty_ones_skipped() -> None:
    bad = patch(sensor(), "spec.triggers.0.template.http.method", "FETCH")
    text = "---\n" + _dump(event_source()) + "\n---\n\n---\n" + _dump(bad)
    manifests = validation.load_text(text, file="f.yaml")
    assert len(manifests.event_sources) == 1
    assert [(p.document, p.path) for p in manifests.problems] == [
        (3, "spec.triggers[0].template.http.method")
    ]


def test_other_kinds_are_skipped_with_a_note() -> None:
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa"}}
    workflow = {"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate", "metadata": {"name": "w"}}
    manifests = validation.load_text(_dump(account, sensor(), workflow))
    assert manifests.problems == [] and len(manifests.sensors) == 1
    assert [p.document for p in manifests.skipped] == [1, 3]
    assert "ServiceAccount" in manifests.skipped[0].message


def test_not_a_manifest() -> None:
    manifests = validation.load_text("- a\n- b\n")
    assert manifests.problems[0].message == "a manifest must be a mapping, got a list"
    manifests = validation.load_text("spec: {}\n")
    assert "`apiVersion` and `kind` are missing" in manifests.problems[0].message


# -- shapes and suggestions ---------------------------------------------------------------------------------

SHAPES: list[tuple[str, str, Any, str, str]] = [
    (
        "string-got-list",
        "spec.dependencies.0.eventName",
        ["a"],
        "spec.dependencies[0].eventName",
        "expected a string, got a list",
    ),
    ("list-got-string", "spec.triggers", "t", "spec.triggers", "expected a list, got a string"),
    (
        "mapping-got-string",
        "spec.triggers.0.template.http",
        "x",
        "spec.triggers[0].template.http",
        "expected a mapping, got a string",
    ),
    ("int-got-text", "spec.replicas", "two", "spec.replicas", "expected an integer, got a string"),
    (
        "bool-got-text",
        "spec.triggers.0.atLeastOnce",
        "maybe",
        "spec.triggers[0].atLeastOnce",
        "expected true or false, got a string",
    ),
    (
        "int-or-string-got-list",
        "spec.triggers.0.retryStrategy",
        {"duration": [1]},
        "spec.triggers[0].retryStrategy.duration",
        "expected an integer or a string, got a list",
    ),
    (
        "case-slip",
        "spec.triggers.0.template.Http",
        {},
        "spec.triggers[0].template.Http",
        "did you mean `http`? (field names are case-sensitive)",
    ),
    (
        "snake-case",
        "spec.dependencies.0.event_source_name",
        "x",
        "spec.dependencies[0].event_source_name",
        "did you mean `eventSourceName`? (YAML field names are camelCase)",
    ),
    (
        "typo",
        "spec.triggers.0.template.condtions",
        "a",
        "spec.triggers[0].template.condtions",
        "did you mean `conditions`?",
    ),
    (
        "one-level-too-deep",
        "spec.triggers.0.template.retryStrategy",
        {"steps": 1},
        "spec.triggers[0].template.retryStrategy",
        "belongs one level up, beside `template`",
    ),
    (
        "unknown-trigger-kind",
        "spec.triggers.2.template.openwhisk",
        {},
        "spec.triggers[2].template.openwhisk",
        "did you mean `openWhisk`?",
    ),
    (
        "missing",
        "spec.triggers.2.template.name",
        DELETE,
        "spec.triggers[2].template.name",
        "missing required field `name`",
    ),
]


@pytest.mark.parametrize(
    ("field", "value", "path", "fragment"), [s[1:] for s in SHAPES], ids=[s[0] for s in SHAPES]
)
def test_shape_problem(field: str, value: Any, path: str, fragment: str) -> None:
    warned: list[errors.Problem] = []  # unknown fields are warnings (Argo ignores them), the rest errors
    with pytest.raises(errors.SpecError) as info:
        validation.parse_sensor(patch(sensor(), field, value), warnings=warned)
        raise errors.SpecError("no error")
    found = [(p.path, p.message) for p in [*info.value.problems, *warned]]
    assert any(p == path and fragment in m for p, m in found), found
    assert all("pydantic" not in m and "Input should" not in m for _, m in found)


def test_messages_name_types_never_values() -> None:
    secret = "s3cr3t-token-value"
    obj = patch(sensor(), "spec.triggers.0.template.http.basicAuth", {"username": [secret]})
    with pytest.raises(errors.SpecError) as info:
        validation.parse_sensor(obj)
    assert secret not in str(info.value)


def test_numbers_are_accepted_where_argo_keeps_strings() -> None:
    source = validation.parse_event_source(patch(event_source(), "spec.webhook.a.port", 12000))
    assert source.spec.webhook is not None and source.spec.webhook["a"].port == "12000"


def test_kind_mismatch() -> None:
    with pytest.raises(errors.SpecError, match="expected kind Sensor, got 'EventSource'"):
        validation.parse_sensor(event_source())


# -- files, folders, load_one --------------------------------------------------------------------------------


def test_folders_are_read_recursively(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "s.yaml").write_text(_dump(sensor()))
    (tmp_path / "e.yml").write_text(_dump(event_source()))
    (tmp_path / "notes.txt").write_text("not yaml: [")
    manifests = validation.load_paths([tmp_path])
    assert (len(manifests.sensors), len(manifests.event_sources)) == (1, 1)
    assert sorted(Path(f).name for f in manifests.files) == ["e.yml", "s.yaml"]


def test_load_paths_raises_with_every_file(tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text(_dump(patch(sensor(), "spec.triggers.0.template.http.method", "X")))
    (tmp_path / "two.yaml").write_text(_dump(patch(event_source(), "spec.webhook.a.endpoint", "a")))
    with pytest.raises(errors.SpecError) as info:
        validation.load_paths(tmp_path)
    assert {Path(p.file or "").name for p in info.value.problems} == {"one.yaml", "two.yaml"}
    assert "2 problem(s)" in str(info.value)


def test_missing_path_is_a_problem(tmp_path: Path) -> None:
    manifests = validation.collect([tmp_path / "nope.yaml"])
    assert manifests.problems[0].message == "no such file or directory"


def test_load_one_from_text_path_and_kind(tmp_path: Path) -> None:
    text = _dump(sensor())
    assert validation.load_one(text).metadata.name == "s"
    file = tmp_path / "s.yaml"
    file.write_text(_dump(sensor(), event_source()))
    assert type(validation.load_one(file, kind="EventSource")).__name__ == "EventSource"
    assert validation.load_one(str(file), kind="Sensor").metadata.name == "s"
    with pytest.raises(errors.SpecError, match="exactly one"):
        validation.load_one(file)
    with pytest.raises(errors.SpecError, match="no such file"):
        validation.load_one(str(tmp_path / "missing.yaml"))


def test_problems_carry_the_yaml_line() -> None:
    text = """apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata:
  name: hooks
spec:
  webhook:
    a:
      port: "12000"
      endpoint: a
    b:
      port: "12001"
      endpoint: /b
      methd: POST
"""
    loaded = validation.load_text(text)
    found = {p.path: p.message for p in [*loaded.problems, *loaded.warnings]}
    assert found["spec.webhook.a.endpoint"].endswith("(line 9)")
    assert (
        found["spec.webhook.b.methd"]
        == "unknown field `methd` ignored (as in Argo); did you mean `method`? (line 13)"
    )


def test_unknown_fields_are_ignored_with_a_warning_as_argo_does() -> None:
    obj = patch(sensor(), "spec.triggers.0.template.atLeastOnce", True)
    obj = patch(obj, "spec.dependencies.0.eventname", "x")
    warned: list[errors.Problem] = []
    model = validation.parse_sensor(obj, warnings=warned)
    assert not model.spec.triggers[0].at_least_once  # ignored, as Argo does: it is not read one level up
    assert [(w.path, w.message) for w in warned] == [
        (
            "spec.dependencies[0].eventname",
            "unknown field `eventname` ignored (as in Argo); did you mean `eventName`? (field names are case-sensitive)",
        ),
        (
            "spec.triggers[0].template.atLeastOnce",
            "unknown field `atLeastOnce` ignored (as in Argo); `atLeastOnce` belongs one level up, beside `template`",
        ),
    ]


def test_an_unknown_field_that_leaves_a_template_with_no_kind_stays_an_error() -> None:
    obj = patch(sensor(), "spec.triggers.0.template.http", DELETE)
    obj = patch(obj, "spec.triggers.0.template.htp", {"url": "http://x"})
    with pytest.raises(errors.SpecError) as info:
        validation.parse_sensor(obj, warnings=[])
    messages = [f"{p.path}: {p.message}" for p in info.value.problems]
    assert any(
        m.startswith("spec.triggers[0].template: a trigger template needs a trigger kind") for m in messages
    )
    assert "spec.triggers[0].template.htp: unknown field `htp`; did you mean `http`?" in messages


def test_functions_log_the_warning_once(caplog: pytest.LogCaptureFixture) -> None:
    text = _dump(patch(sensor(), "spec.triggers.0.template.policy", {"status": {"allow": [200]}}))
    with caplog.at_level("WARNING", logger="knevents.spec"):
        validation.load_one(text, kind="Sensor")
    [line] = [r.getMessage() for r in caplog.records if "policy" in r.getMessage()]
    assert (
        "spec.triggers[0].template.policy: unknown field `policy` ignored (as in Argo); "
        "`policy` belongs one level up, beside `template`" in line
    )


def test_rules_still_run_on_the_parts_that_parse() -> None:
    """A shape error in one trigger does not hide a rule violation in another."""
    obj = patch(sensor(), "spec.triggers.0.template.http.method", ["POST"])
    obj = patch(obj, "spec.triggers.1.template.k8s.operation", "apply")
    obj = patch(obj, "spec.dependencies.1.filtersLogicalOperator", "xor")
    with pytest.raises(errors.SpecError) as info:
        validation.parse_sensor(obj)
    assert [p.path for p in info.value.problems] == [
        "spec.triggers[0].template.http.method",
        "spec.dependencies[1].filtersLogicalOperator",
        "spec.triggers[1].template.k8s.operation",
    ]


KIND_MISTAKES = [
    (
        "version-typo",
        {"apiVersion": "argoproj.io/v1alpha", "kind": "Sensor"},
        "apiVersion",
        "expected apiVersion",
    ),
    ("version-missing", {"kind": "EventSource"}, "apiVersion", "got None"),
    (
        "kind-typo",
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "Sensors"},
        "kind",
        "did you mean `Sensor`?",
    ),
    ("kind-case", {"apiVersion": "argoproj.io/v1alpha1", "kind": "eventsource"}, "kind", "`EventSource`"),
]


@pytest.mark.parametrize(
    ("obj", "path", "fragment"), [k[1:] for k in KIND_MISTAKES], ids=[k[0] for k in KIND_MISTAKES]
)
def test_mistyped_kind_or_version_is_an_error_not_a_skip(
    obj: dict[str, Any], path: str, fragment: str
) -> None:
    manifests = validation.load_text(json.dumps({**obj, "metadata": {"name": "x"}}))
    assert manifests.skipped == []
    assert [(p.path, fragment in p.message) for p in manifests.problems] == [(path, True)]


def test_other_argo_kinds_are_skipped() -> None:
    manifests = validation.load_text(
        json.dumps({"apiVersion": "argoproj.io/v1alpha1", "kind": "CronWorkflow"})
    )
    assert manifests.problems == [] and len(manifests.skipped) == 1


STRESS_SENSOR = """apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {name: stress-testing-log}
spec:
  dependencies: [{name: dep, eventSourceName: stress-testing, eventName: test}]
  triggers:
  - template:
      name: workflow-trigger
      k8s:
        group: argoproj.io
        version: v1alpha1
        resource: workflows
        operation: create
        source:
          resource: {apiVersion: argoproj.io/v1alpha1, kind: Workflow, metadata: {generateName: hello-world-}}
"""
"""Argo's stress-test sensor (test/stress/testdata/sensors/workflow.yaml), with the k8s fields of Argo < 1.2."""


def test_argo_s_stress_test_sensor_loads_with_its_old_k8s_fields_ignored() -> None:
    loaded = validation.load_text(STRESS_SENSOR)
    assert not loaded.problems and len(loaded.sensors) == 1
    assert [w.path for w in loaded.warnings] == [
        "spec.triggers[0].template.k8s.group",
        "spec.triggers[0].template.k8s.version",
        "spec.triggers[0].template.k8s.resource",
    ]
    assert all("was removed from Argo Events' k8s trigger" in w.message for w in loaded.warnings)
