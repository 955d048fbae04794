"""Trigger parameters, grounded in argo-events' params.go (ResolveParamValue, ApplyParams, ConstructPayload)."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from knevents import events
from knevents.sensors import params
from knevents.spec import models

EVENT = events.new_event(
    id="id-1",
    source="webhook",
    subject="example",
    type="webhook",
    time=datetime(2024, 1, 1, 12, 0, 0, 123456, tzinfo=UTC),
    data={"body": {"name": "kubedojo", "n": 5, "f": 1.50, "ok": True, "nul": None, "obj": {"k": [1, 2]}}},
)
FIRED = {"dep": EVENT}


def compile_one(
    src: dict[str, Any], dest: str = "x", operation: str | None = None
) -> tuple[params.CompiledParam, ...]:
    spec: dict[str, Any] = {"src": {"dependencyName": "dep", **src}, "dest": dest}
    if operation:
        spec["operation"] = operation
    return params.compile_params(
        [models.TriggerParameter.model_validate(spec)], "parameters", ["dep", "other"]
    )


def applied(src: dict[str, Any], doc: dict[str, Any] | None = None, **kw: Any) -> Any:
    document = json.dumps(doc if doc is not None else {"x": "old"}).encode()
    return json.loads(params.apply_params(document, compile_one(src, **kw), FIRED))


@pytest.mark.parametrize(
    ("src", "value"),
    [
        ({"dataKey": "body.name"}, "kubedojo"),
        ({"dataKey": "body.n"}, "5"),  # without useRawData everything is a string
        ({"dataKey": "body.n", "useRawData": True}, 5),
        ({"dataKey": "body.f", "useRawData": True}, 1.5),
        ({"dataKey": "body.ok"}, "true"),
        ({"dataKey": "body.ok", "useRawData": True}, True),
        ({"dataKey": "body.nul", "useRawData": True}, None),
        ({"dataKey": "body.obj", "useRawData": True}, {"k": [1, 2]}),
        ({"dataKey": "body.obj"}, '{"k":[1,2]}'),
        ({"dataKey": "body.name", "useRawData": True}, "kubedojo"),  # strings stay strings
        ({"dataKey": "body.missing", "value": "dflt"}, "dflt"),
        ({"dataTemplate": "{{ .Input.body.name | upper }}"}, "KUBEDOJO"),
        ({"dataTemplate": "{{ .Input.body.n }}", "useRawData": True}, "5"),  # template output is a string
        (
            {"dataTemplate": "{{ .Input.body.missing }}", "dataKey": "body.name"},
            "kubedojo",
        ),  # falls back to key
        ({"dataTemplate": "{{ .Input.body.nul.x }}", "value": "dflt"}, "dflt"),  # then to value
        ({"contextKey": "type"}, "webhook"),
        ({"contextKey": "id"}, "id-1"),
        ({"contextKey": "time"}, "2024-01-01T12:00:00Z"),  # metav1.Time: seconds, UTC
        ({"contextTemplate": "{{ .Input.source }}/{{ .Input.subject }}"}, "webhook/example"),
        ({"contextKey": "type", "dataKey": "body.name"}, "kubedojo"),  # data wins over context
        ({"value": "literal"}, "literal"),
    ],
)
def test_resolve_and_apply(src: dict[str, Any], value: Any) -> None:
    assert applied(src)["x"] == value


def test_no_key_no_value_is_the_whole_event_as_argo_marshals_it() -> None:
    text = applied({})["x"]
    whole = json.loads(text)
    assert whole["context"] == {
        "id": "id-1",
        "source": "webhook",
        "specversion": "1.0",
        "type": "webhook",
        "datacontenttype": "application/json",
        "subject": "example",
        "time": "2024-01-01T12:00:00Z",
    }
    assert base64.b64decode(whole["data"]) == EVENT.data
    assert list(whole) == ["context", "data"]


@pytest.mark.parametrize(
    ("operation", "expected"),
    [("overwrite", "kubedojo"), ("append", "old-kubedojo"), ("prepend", "kubedojo-old"), (None, "kubedojo")],
)
def test_operations(operation: str | None, expected: str) -> None:
    src = {"dataKey": "body.name"}
    doc = {"x": "old-"} if operation == "append" else {"x": "-old"} if operation == "prepend" else {"x": "o"}
    assert applied(src, doc, operation=operation)["x"] == expected


def test_append_to_missing_dest_just_sets() -> None:
    assert applied({"dataKey": "body.n", "useRawData": True}, {}, operation="append")["x"] == 5


def test_append_makes_the_result_a_string_even_with_raw_data() -> None:
    assert applied({"dataKey": "body.n", "useRawData": True}, {"x": 1}, operation="append")["x"] == "15"


def test_absent_dependency_uses_value_or_is_skipped() -> None:
    with_default = compile_one({"dataKey": "a"}, dest="y")
    spec = models.TriggerParameter.model_validate(
        {"src": {"dependencyName": "other", "dataKey": "a", "value": "dflt"}, "dest": "y"}
    )
    compiled = params.compile_params([spec], "p", ["dep", "other"])
    assert json.loads(params.apply_params(b"{}", compiled, FIRED)) == {"y": "dflt"}
    skipped = params.compile_params(
        [
            models.TriggerParameter.model_validate(
                {"src": {"dependencyName": "other", "dataKey": "a"}, "dest": "y"}
            )
        ],
        "p",
        ["dep", "other"],
    )
    assert json.loads(params.apply_params(b'{"y":1}', skipped, FIRED)) == {"y": 1}
    assert with_default  # compiled fine


@pytest.mark.parametrize(
    ("src", "message"),
    [
        (
            {"dataKey": "body.missing"},
            "unable to resolve 'dep' parameter value: key body.missing does not exist",
        ),
        ({"dataTemplate": "{{ .Input.body.missing }}"}, "evaluated to empty string or no value"),
    ],
)
def test_unresolvable_parameters_are_errors(src: dict[str, Any], message: str) -> None:
    with pytest.raises(params.ParamError, match=message):
        applied(src)


def test_non_json_data_falls_back_to_the_default() -> None:
    binary = EVENT.with_data(b"\x00not json")
    compiled = compile_one({"dataKey": "a", "value": "dflt"})
    assert json.loads(params.apply_params(b"{}", compiled, {"dep": binary})) == {"x": "dflt"}
    with pytest.raises(params.ParamError, match="not valid JSON"):
        params.apply_params(b"{}", compile_one({"dataKey": "a"}), {"dep": binary})


def test_yaml_data_is_converted() -> None:
    yaml_event = dataclasses.replace(EVENT, data=b"a: 1\nb: [x]\n", datacontenttype="application/x-yaml")
    compiled = compile_one({"dataKey": "b.0"})
    assert json.loads(params.apply_params(b"{}", compiled, {"dep": yaml_event})) == {"x": "x"}


def payload(*specs: dict[str, Any], fired: dict[str, events.Event] | None = None) -> bytes | None:
    models_ = [models.TriggerParameter.model_validate(s) for s in specs]
    return params.construct_payload(
        params.compile_params(models_, "payload", ["dep", "other"]), fired or FIRED
    )


def test_payload_is_built_from_nothing() -> None:
    body = payload(
        {"src": {"dependencyName": "dep", "dataKey": "body.name"}, "dest": "project"},
        {"src": {"dependencyName": "dep", "dataKey": "body.n", "useRawData": True}, "dest": "meta.count"},
        {"src": {"dependencyName": "dep", "contextKey": "type"}, "dest": "type"},
    )
    assert body == b'{"project":"kubedojo","meta":{"count":5},"type":"webhook"}'


def test_payload_without_dest_is_the_raw_value() -> None:
    assert payload({"src": {"dependencyName": "dep", "dataKey": "body.obj"}}) == b'{"k":[1,2]}'


def test_payload_of_absent_dependency_without_default_is_a_clear_error() -> None:
    # Argo dereferences a nil pointer here and the sensor crashes.
    with pytest.raises(params.ParamError, match="dependency 'other' has no event in this firing"):
        payload({"src": {"dependencyName": "other", "dataKey": "a"}, "dest": "a"})
    assert (
        payload({"src": {"dependencyName": "other", "dataKey": "a", "value": "v"}, "dest": "a"})
        == b'{"a":"v"}'
    )


def test_no_payload_parameters_is_no_payload() -> None:
    assert payload() is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"src": {"dependencyName": "nope", "dataKey": "a"}, "dest": "x"}, "unknown dependency 'nope'"),
        (
            {"src": {"dependencyName": "dep", "dataKey": "a"}, "dest": "x", "operation": "merge"},
            "unsupported operation",
        ),
        (
            {"src": {"dependencyName": "dep", "dataTemplate": "{{ nope }}"}, "dest": "x"},
            "parameters[0].src.dataTemplate",
        ),
        ({"src": {"dependencyName": "dep", "dataKey": "a"}, "dest": "a.*"}, "wildcards"),
    ],
)
def test_invalid_parameters_are_spec_errors(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(params.ParamSpecError, match=message.replace("[", "\\[").replace("]", "\\]")):
        params.compile_params([models.TriggerParameter.model_validate(spec)], "parameters", ["dep", "other"])
