"""``knevents.testing.simulate`` and ``knevents test``: the report contract, upstream examples, the seed acceptance case."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from knevents import errors, testing
from knevents.cli import main as cli_main

from tests import upstream

DATA = Path(__file__).parent / "sensors" / "data"
BUILD_SENSOR = DATA / "build-sensor.yaml"
BUILD_EVENT = DATA / "build-event.json"


def ce(
    source: str, subject: str, id: str, data: Any = None, time: str = "2024-01-15T12:00:00Z", **extra: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "specversion": "1.0",
        "id": id,
        "source": source,
        "subject": subject,
        "type": "webhook",
        "time": time,
    }
    if data is not None:
        out["data"] = data
    out.update(extra)
    return out


# --- the acceptance case ------------------------------------------------------------------------


def test_seed_build_sensor_submits_the_workflow_with_the_project() -> None:
    report = testing.simulate(BUILD_SENSOR, [json.loads(BUILD_EVENT.read_text())])
    assert report["sensor"] == "build-sensor"
    [step] = report["steps"]
    assert step["dependencies"] == [
        {
            "name": "webhook-build",
            "passed": True,
            "error": None,
            "data": {
                "header": {"Content-Type": ["application/json"]},
                "body": {"project": "kubedojo", "branch": "main", "commit": "abc123"},
            },
        }
    ]
    [fired] = step["fired"]
    assert fired["trigger"] == "trigger-workflow"
    assert fired["events"] == {"webhook-build": "6c3a0f1e2b7d4f4f9a1e0c2d3b4a5f60"}
    assert fired["error"] is None and fired["payload"] is None and fired["payload_raw"] is None
    workflow = fired["resource"]
    assert workflow["kind"] == "Workflow"
    assert workflow["spec"]["arguments"]["parameters"][0] == {"name": "message", "value": "kubedojo"}
    assert workflow["spec"]["templates"][0]["container"]["args"] == [
        'echo "Received event data:" && echo "{{inputs.parameters.message}}"'
    ]
    assert report["pending"] == {}


def test_seed_build_sensor_from_a_dict_matches_the_file() -> None:
    manifest = yaml.safe_load(BUILD_SENSOR.read_text())
    event = json.loads(BUILD_EVENT.read_text())
    assert testing.simulate(manifest, [event]) == testing.simulate(str(BUILD_SENSOR), [event])


def test_cli_json_output_for_the_seed_sensor(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(["test", str(BUILD_SENSOR), "--event", str(BUILD_EVENT), "--output", "json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    resource = out["steps"][0]["fired"][0]["resource"]
    assert resource["spec"]["arguments"]["parameters"][0]["value"] == "kubedojo"


def test_cli_text_output_explains_the_step(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(["test", str(BUILD_SENSOR), "--event", str(BUILD_EVENT)])
    text = capsys.readouterr().out
    assert code == 0
    assert "dependency webhook-build: matched, passed" in text
    assert "FIRED trigger trigger-workflow (argoWorkflow submit Workflow) with webhook-build=" in text
    assert '"value": "kubedojo"' in text


# --- the state machine through simulate ---------------------------------------------------------

AND_SENSOR: dict[str, Any] = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Sensor",
    "metadata": {"name": "pair"},
    "spec": {
        "dependencies": [
            {"name": "push", "eventSourceName": "github", "eventName": "push",
             "filters": {"data": [{"path": "body.ref", "type": "string", "value": ["^refs/heads/main$"]}]}},
            {"name": "scan", "eventSourceName": "scanner", "eventName": "done"},
        ],
        "triggers": [
            {"template": {"name": "deploy", "conditions": "push && scan", "http": {
                "url": "http://deploy.local/hook",
                "payload": [
                    {"src": {"dependencyName": "push", "dataKey": "body.sha"}, "dest": "sha"},
                    {"src": {"dependencyName": "scan", "dataKey": "score", "useRawData": True}, "dest": "score"},
                ],
            }}},
            {"template": {"name": "notify", "conditions": "scan", "log": {}}},
        ],
    },
}  # fmt: skip


def test_and_condition_waits_stores_fires_and_clears() -> None:
    report = testing.simulate(
        AND_SENSOR,
        [
            ce("github", "push", "p1", {"body": {"ref": "refs/heads/dev", "sha": "s1"}}),
            ce("github", "push", "p2", {"body": {"ref": "refs/heads/main", "sha": "s2"}}),
            ce("github", "push", "p2", {"body": {"ref": "refs/heads/main", "sha": "s2"}}),  # duplicate id
            ce("scanner", "done", "c1", {"score": 9.5}),
            ce("scanner", "done", "c2", {"score": 1}),
        ],
    )
    steps = report["steps"]
    assert steps[0]["dependencies"][0]["passed"] is False
    assert "body.ref" in steps[0]["dependencies"][0]["error"]
    assert steps[0]["fired"] == [] and steps[1]["fired"] == []
    assert steps[2] == {"event": "p2", "dependencies": [], "fired": []}
    fired = steps[3]["fired"]
    assert [f["trigger"] for f in fired] == ["deploy", "notify"]  # spec order
    assert fired[0]["events"] == {"push": "p2", "scan": "c1"}
    assert fired[0]["payload"] == {"sha": "s2", "score": 9.5}
    assert fired[0]["payload_raw"] == '{"sha":"s2","score":9.5}'
    assert fired[0]["resource"] is None
    assert fired[1]["events"] == {"scan": "c1"} and fired[1]["payload"] is None
    assert [f["trigger"] for f in steps[4]["fired"]] == ["notify"]
    assert report["pending"] == {"deploy": {"scan": "c2"}}


def test_reset_tick_clears_saved_state() -> None:
    report = testing.simulate(
        AND_SENSOR,
        [
            ce("github", "push", "p1", {"body": {"ref": "refs/heads/main", "sha": "s"}}),
            {"reset": True},
            ce("scanner", "done", "c1", {"score": 1}),
        ],
    )
    assert report["steps"][1] == {"event": None, "dependencies": [], "fired": []}
    assert [f["trigger"] for f in report["steps"][2]["fired"]] == ["notify"]
    assert report["pending"] == {"deploy": {"scan": "c1"}}


def test_resolve_errors_are_reported_not_raised() -> None:
    sensor = copy.deepcopy(AND_SENSOR)
    report = testing.simulate(
        sensor,
        [
            ce("github", "push", "p1", {"body": {"ref": "refs/heads/main"}}),
            ce("scanner", "done", "c1", {"score": 1}),
        ],
    )
    deploy = report["steps"][1]["fired"][0]
    assert deploy["trigger"] == "deploy" and deploy["payload"] is None
    assert "key body.sha does not exist" in deploy["error"]


def test_data_forms_in_the_report() -> None:
    sensor = copy.deepcopy(AND_SENSOR)
    report = testing.simulate(
        sensor,
        [
            ce("scanner", "done", "c1"),
            ce("scanner", "done", "c2", data_base64="AAEC", datacontenttype="application/octet-stream"),
            ce("scanner", "done", "c3", data="plain text", datacontenttype="text/plain"),
        ],
    )
    assert [s["dependencies"][0]["data"] for s in report["steps"]] == [None, "\x00\x01\x02", "plain text"]


# --- invalid input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "events",
    [
        [{"id": "x"}],
        [ce("a", "b", "1") | {"specversion": "0.3"}],
        ["not an object"],
        [ce("a", "b", "1") | {"time": "yesterday"}],
    ],
)
def test_invalid_events_raise_event_error(events: list[Any]) -> None:
    with pytest.raises(errors.EventError):
        testing.simulate(AND_SENSOR, events)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s["spec"]["triggers"][0]["template"].update(conditions="push && nope"),
        lambda s: s["spec"]["dependencies"][0]["filters"]["data"][0].update(value=["("]),
        lambda s: s.pop("spec"),
        lambda s: s["spec"]["dependencies"][1].update(transform={"jq": ".x |"}),
    ],
)
def test_invalid_sensors_raise_spec_error(mutate: Any) -> None:
    sensor = copy.deepcopy(AND_SENSOR)
    mutate(sensor)
    with pytest.raises(errors.SpecError):
        testing.simulate(sensor, [])


def test_missing_sensor_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(errors.SpecError, match="no such sensor file"):
        testing.simulate(tmp_path / "nope.yaml", [])


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "knevents", "test", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_cli_bad_input_exits_2_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad_event = tmp_path / "bad.json"
    bad_event.write_text('[{"id": "1", "source": "s"}]')
    not_json = tmp_path / "nj.json"
    not_json.write_text("{nope")
    bad_sensor = tmp_path / "s.yaml"
    bad_sensor.write_text(yaml.safe_dump({**AND_SENSOR, "spec": {"dependencies": [], "triggers": "x"}}))
    cases = [
        (
            (str(BUILD_SENSOR), "--event", str(bad_event)),
            "bad.json[0]: invalid CloudEvent: missing required attribute(s)",
        ),
        ((str(BUILD_SENSOR), "--event", str(not_json)), "nj.json: not JSON"),
        ((str(BUILD_SENSOR), "--event", str(tmp_path / "missing.json")), "missing.json: cannot read"),
        ((str(bad_sensor), "--event", str(BUILD_EVENT)), "invalid sensor"),
        ((str(tmp_path / "missing.yaml"), "--event", str(BUILD_EVENT)), "no such sensor file"),
        ((str(BUILD_SENSOR),), "give at least one --event FILE"),
    ]
    for args, message in cases:
        code = cli_main(["test", *args])
        captured = capsys.readouterr()
        assert code == 2, (args, captured.err)
        assert captured.err.startswith("knevents test: ") and message in captured.err, captured.err
        assert captured.out == ""


def test_cli_in_a_subprocess_exits_2_without_traceback(tmp_path: Path) -> None:
    bad_event = tmp_path / "bad.json"
    bad_event.write_text('{"specversion": "1.0"}')
    result = run_cli(str(BUILD_SENSOR), "--event", str(bad_event))
    assert result.returncode == 2
    assert result.stderr.startswith("knevents test: ") and "Traceback" not in result.stderr


def test_cli_processes_several_files_in_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sensor = tmp_path / "pair.yaml"
    sensor.write_text(yaml.safe_dump(AND_SENSOR))
    first = tmp_path / "1.json"
    first.write_text(json.dumps(ce("github", "push", "p1", {"body": {"ref": "refs/heads/main", "sha": "s"}})))
    second = tmp_path / "2.json"
    second.write_text(json.dumps([ce("scanner", "done", "c1", {"score": 2})]))
    assert cli_main(["test", str(sensor), "-e", str(first), "-e", str(second), "-o", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [s["event"] for s in report["steps"]] == ["p1", "c1"]
    assert report["steps"][1]["fired"][0]["payload"] == {"sha": "s", "score": 2}
    assert cli_main(["test", str(sensor), "-e", str(first)]) == 0
    text = capsys.readouterr().out
    assert "stored for trigger deploy: push=p1; waiting for: scan" in text
    assert "pending: trigger deploy holds push=p1" in text


# --- upstream example sensors ------------------------------------------------------------------


def _examples_dir() -> Path | None:
    """Argo's example sensors: ``$KNEVENTS_ARGO_EXAMPLES/examples/sensors`` (None without the corpus)."""
    base = upstream.examples_dir()
    return base / "sensors" if base is not None else None


EXAMPLES = _examples_dir()

# (file, events, expected per step: list of fired trigger names)
UPSTREAM_CASES: list[tuple[str, list[dict[str, Any]], list[list[str]]]] = [
    (
        "filter-with-data-simple-1.yaml",
        [
            ce("webhook", "example", "1", {"body": {"message": "hello there"}}),
            ce("webhook", "example", "2", {"body": {"message": "bye"}}),
        ],
        [["data-workflow"], []],
    ),
    (
        "filter-with-data-advanced.yaml",
        [
            ce("webhook", "example", "1", {"a": True, "b": {"c": 3.14, "d": "hello, world"}, "name": "n"}),
            ce("webhook", "example", "2", {"a": True, "b": {"c": 3.15, "d": "hello, world"}, "name": "n"}),
        ],
        [["workflow"], []],
    ),
    (
        "filter-with-expressions.yaml",
        [
            ce("webhook", "example", "1", {"a": "b", "a-longer-name": 1, "nested": {"path": {"can-get": {"longer": False}}}, "name": "x"}),
            ce("webhook", "example", "2", {"a": "x", "a-longer-name": 10, "nested": {"path": {"can-get": {"longer": True}}}, "name": "x"}),
        ],
        [["workflow"], []],
    ),
    (
        "filter-with-context.yaml",
        [
            ce("webhook", "example", "1", {"body": {"message": "m"}}),
        ],
        [[]],  # the context filter wants source custom-webhook
    ),
    (
        "filter-script.yaml",
        [
            ce("webhook", "example", "1", {"body": {"a": "b", "d": {"e": "z"}}, "name": "x"}),
            ce("webhook", "example", "2", {"body": {"a": "b", "d": {"e": "y"}}, "name": "x"}),
        ],
        [["workflow"], []],
    ),
    (
        "filter-with-multiple-filters-in-or.yaml",
        [
            ce("webhook", "example", "1", {"a": "x", "c": 25, "d": {"e": True}, "name": "x"}),
            ce("webhook", "example", "2", {"a": "x", "c": 1, "d": {"e": True}, "name": "x"}),
        ],
        [["workflow"], []],
    ),
    (
        "filter-with-time.yaml",
        [
            ce("webhook", "example", "1", {"body": {"message": "m"}}, time="2024-01-15T03:00:00Z"),
            ce("webhook", "example", "2", {"body": {"message": "m"}}, time="2024-01-15T05:00:00Z"),
        ],
        [["done-workflow"], []],
    ),
    (
        "transform.yaml",
        [
            ce("webhook", "example", "1", {"body": {"message": "original"}}),
            ce("webhook", "example-foo", "2", {"body": {"message": "ab"}}),
        ],
        [["webhook-workflow-trigger"], ["webhook-workflow-trigger-1"]],
    ),
    (
        "dependencies-conditions.yaml",
        [ce("webhook", "example", "1", {"body": {"message": "m"}}), ce("webhook", "example-foo", "2", {"body": {"message": "m"}})],
        [["webhook-workflow-trigger"], ["webhook-workflow-trigger-2"]],
    ),
    (
        "filter-with-multiple-filters-mixed.yaml",
        [
            ce("webhook", "example", "1", {"a": "b", "c": 10, "d": {"e": False}, "name": "x"}),
            ce("webhook", "example", "2", {"a": "x", "c": 1, "d": {"e": True}, "name": "x"}),
        ],
        [["workflow"], []],
    ),
    (
        "filter-with-data-simple-3.yaml",
        [ce("webhook", "example", "1", {"body": {"value": 50}}), ce("webhook", "example", "2", {"body": {"value": 51}})],
        [["data-workflow"], []],
    ),
    (
        "filter-with-data-simple-4.yaml",
        [ce("webhook", "example", "1", {"body": {"value": 50}}), ce("webhook", "example", "2", {"body": {"value": 51}})],
        [[], ["data-workflow"]],
    ),
    (
        "filter-with-multiple-data-filters-in-or.yaml",
        [
            ce("webhook", "example", "1", {"a": False, "b": {"c": 1, "d": "hello there"}, "name": "x"}),
            ce("webhook", "example", "2", {"a": False, "b": {"c": 1, "d": "bye"}, "name": "x"}),
        ],
        [["workflow"], []],
    ),
    (
        "filter-with-multiple-expr-filters-in-or.yaml",
        [
            ce("webhook", "example", "1", {"a": "x", "a-longer-name": 10, "nested": {"path": {"can-get": {"longer": False}}}, "name": "x"}),
            ce("webhook", "example", "2", {"a": "x", "a-longer-name": 10, "nested": {"path": {"can-get": {"longer": True}}}, "name": "x"}),
        ],
        [["workflow"], []],
    ),
    (
        "multi-dependencies.yaml",
        [
            ce("webhook", "example", "1", {"body": {"a": "x"}}),
            ce("calendar", "example-with-interval", "2", {"eventTime": "t"}),
        ],
        [[], ["multi-dependencies-workflow-trigger"]],
    ),
]  # fmt: skip


def _upstream_ids() -> list[str]:
    return [case[0] for case in UPSTREAM_CASES] if EXAMPLES else ["bundled-build-sensor"]


@pytest.mark.parametrize("name", _upstream_ids())
def test_upstream_examples_through_simulate(name: str) -> None:
    if EXAMPLES is None:
        # Without the upstream corpus the bundled seed sensor stands in, so the test still checks something.
        report = testing.simulate(BUILD_SENSOR, [json.loads(BUILD_EVENT.read_text())])
        assert [[f["trigger"] for f in s["fired"]] for s in report["steps"]] == [["trigger-workflow"]]
        return
    _, evs, expected = next(case for case in UPSTREAM_CASES if case[0] == name)
    report = testing.simulate(EXAMPLES / name, evs)
    assert [[f["trigger"] for f in s["fired"]] for s in report["steps"]] == expected
    for step in report["steps"]:
        for fired in step["fired"]:
            assert fired["error"] is None, fired


def test_upstream_transform_example_rewrites_data() -> None:
    if EXAMPLES is None:
        return
    report = testing.simulate(
        EXAMPLES / "transform.yaml",
        [
            ce("webhook", "example", "1", {"body": {"message": "original"}}),
            ce("webhook", "example-foo", "2", {"body": {"message": "ab"}}),
        ],
    )
    assert report["steps"][0]["dependencies"][0]["data"] == {"body": {"message": "updated"}}
    assert report["steps"][1]["dependencies"][0]["data"] == {"body": {"message": "abab"}}
    parameter = report["steps"][0]["fired"][0]["resource"]["spec"]["arguments"]["parameters"][0]["value"]
    assert json.loads(parameter) == {"message": "updated"}


def test_every_upstream_sensor_loads_or_is_a_clear_spec_error() -> None:
    if EXAMPLES is None:
        return
    files = sorted([*EXAMPLES.glob("*.yaml"), *EXAMPLES.glob("*.yml")])
    assert files
    for path in files:
        try:
            testing.simulate(path, [])
        except errors.SpecError as exc:
            assert exc.problems, path


def test_seed_module_filter_examples() -> None:
    report = testing.simulate(
        DATA / "seed-filters.yaml",
        [
            ce("github-events", "code-push", "1", {"body": {"ref": "refs/heads/main"}}),
            ce("github-events", "code-push", "2", {"body": {"ref": "refs/heads/dev"}}),
            ce("github-events", "pull-request", "3", {"body": {"action": "synchronize"}}),
            ce("github-events", "pull-request", "4", {"body": {"action": "closed"}}),
            ce("github-events", "other", "5", {"body": {}}),
            ce("myorg/myrepo", "other", "6", {"body": {}}, type="com.github.push"),
        ],
    )
    outcome = [
        (s["dependencies"][0]["passed"] if s["dependencies"] else None, len(s["fired"]))
        for s in report["steps"]
    ]
    assert outcome == [(True, 1), (False, 0), (True, 1), (False, 0), (False, 0), (None, 0)]


def test_deeply_nested_data_is_rejected_not_crashed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # gjson.rs overflows the native stack on ~1e6 nesting levels; the engine must refuse such data first.
    import base64

    deep = b'{"body":{"project":' + b"[" * 1_000_000 + b"]" * 1_000_000 + b"}}"
    event = ce(
        "webhook",
        "build",
        "deep",
        data_base64=base64.b64encode(deep).decode(),
        datacontenttype="application/json",
    )
    report = testing.simulate(BUILD_SENSOR, [event])
    [dep] = report["steps"][0]["dependencies"]
    assert dep["passed"] is False and "nests too deeply" in dep["error"]
    assert report["steps"][0]["fired"] == []
    as_file = tmp_path / "deep.json"
    as_file.write_text(
        '{"specversion":"1.0","id":"x","source":"webhook","subject":"build","type":"webhook","data":'
        + "[" * 100_000
        + "]" * 100_000
        + "}"
    )
    assert cli_main(["test", str(BUILD_SENSOR), "--event", str(as_file)]) == 2
    assert "nests too deeply" in capsys.readouterr().err


def test_upstream_trigger_with_template_renders_go_templates() -> None:
    if EXAMPLES is None:
        return
    report = testing.simulate(
        EXAMPLES / "trigger-with-template.yaml",
        [ce("webhook", "example", "1", {"body": {"message": "hello there", "name": "Joe Smith"}})],
    )
    [fired] = report["steps"][0]["fired"]
    assert fired["error"] is None
    workflow = fired["resource"]
    assert [p["value"] for p in workflow["spec"]["arguments"]["parameters"]] == ["Hello There", "Example"]
    assert workflow["metadata"]["generateName"] == "webhook-joesmith-"


def test_upstream_complete_parameterization_rewrites_the_template() -> None:
    if EXAMPLES is None:
        return
    data = {
        "name": "renamed",
        "bucket": "b",
        "key": "k.yaml",
        "port": ":9001",
        "namespace": "n",
        "image": "i",
    }
    report = testing.simulate(
        EXAMPLES / "complete-trigger-parameterization.yaml", [ce("webhook", "example", "1", data)]
    )
    [fired] = report["steps"][0]["fired"]
    # The resource lives in S3: resolving says so instead of guessing.
    assert fired["resource"] is None and "not inline" in fired["error"]


def test_sensor_as_yaml_text() -> None:
    text = BUILD_SENSOR.read_text()
    report = testing.simulate(text, [json.loads(BUILD_EVENT.read_text())])
    assert (
        report["steps"][0]["fired"][0]["resource"]["spec"]["arguments"]["parameters"][0]["value"]
        == "kubedojo"
    )


def test_dates_in_a_caller_loaded_resource_become_text() -> None:
    import datetime

    manifest = yaml.safe_load(BUILD_SENSOR.read_text())
    resource = manifest["spec"]["triggers"][0]["template"]["argoWorkflow"]["source"]["resource"]
    resource["metadata"]["annotations"] = {"when": datetime.date(2024, 1, 1)}
    report = testing.simulate(manifest, [json.loads(BUILD_EVENT.read_text())])
    fired = report["steps"][0]["fired"][0]
    assert fired["error"] is None and fired["resource"]["metadata"]["annotations"] == {"when": "2024-01-01"}
