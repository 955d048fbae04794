"""Dependency transforms (jq, Lua), as argo-events' transform.go."""

from __future__ import annotations

import json
from typing import Any

import pytest
from knevents import events
from knevents.sensors import transform
from knevents.spec import models

EVENT = events.new_event(
    source="s", subject="e", type="webhook", data={"body": {"a": 1, "name": "x"}, "z": True}
)


def run(spec: dict[str, Any], ev: events.Event = EVENT) -> events.Event:
    compiled = transform.compile_transform(models.EventDependencyTransformer.model_validate(spec))
    assert compiled is not None
    return compiled.apply(ev)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"jq": ".body.a += 1"}, {"body": {"a": 2, "name": "x"}, "z": True}),
        ({"jq": "{name: .body.name}"}, {"name": "x"}),
        ({"jq": ".body"}, {"a": 1, "name": "x"}),
        (
            {"script": "event.body.a = event.body.a * 10; return event"},
            {"body": {"a": 10, "name": "x"}, "z": True},
        ),
        ({"script": "return {upper = string.upper(event.body.name)}"}, {"upper": "X"}),
        ({"jq": ".body", "script": "return {}"}, {"a": 1, "name": "x"}),  # jq wins, as in Argo
    ],
)
def test_transforms(spec: dict[str, Any], expected: Any) -> None:
    out = run(spec)
    assert json.loads(out.data or b"") == expected
    assert out.datacontenttype == "application/json"
    assert out.id == EVENT.id


def test_output_is_go_json_with_sorted_keys() -> None:
    out = run({"jq": '{b: 1, a: "<"}'})
    assert out.data == b'{"a":"\\u003c","b":1}'


@pytest.mark.parametrize(
    ("spec", "ev", "message"),
    [
        ({"jq": ".body.a"}, EVENT, "must be a JSON object"),
        ({"jq": "empty"}, EVENT, "no output available"),
        ({"jq": ".body"}, EVENT.with_data(b"[1,2]"), "not a JSON object"),
        ({"jq": ".body"}, EVENT.with_data(b"nope"), "not valid JSON"),
        ({"script": "return 1"}, EVENT, "not of lua table"),
        ({"script": "error('boom')"}, EVENT, "boom"),
        ({"jq": ".a | error"}, EVENT, "jq"),
    ],
)
def test_transform_errors(spec: dict[str, Any], ev: events.Event, message: str) -> None:
    with pytest.raises(transform.TransformError, match=message):
        run(spec, ev)


def test_event_without_data_is_unchanged() -> None:
    ev = EVENT.with_data(None)
    assert run({"jq": ".x"}, ev) is ev


@pytest.mark.parametrize(
    ("spec", "where"), [({"jq": ".a |"}, "transform.jq"), ({"script": "x ="}, "transform.script")]
)
def test_invalid_transforms_are_spec_errors(spec: dict[str, Any], where: str) -> None:
    with pytest.raises(transform.TransformSpecError, match=where):
        transform.compile_transform(models.EventDependencyTransformer.model_validate(spec))


@pytest.mark.parametrize(
    "script",
    [
        "return {x = os.getenv('HOME')}",
        "return {x = io.read()}",
        "while true do end",
        "return {x = load('return 1')()}",
    ],
)
def test_transform_script_is_sandboxed(script: str) -> None:
    with pytest.raises(transform.TransformError):
        run({"script": script})
