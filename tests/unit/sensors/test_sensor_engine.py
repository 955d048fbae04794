"""SensorEngine: matching, the AND state machine, conditionsReset, fingerprints, resolving firings."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from knevents import errors, events, validation
from knevents.sensors import engine

T0 = datetime(2024, 1, 15, 9, 0, tzinfo=UTC)


def sensor(dependencies: list[dict[str, Any]], triggers: list[dict[str, Any]]) -> engine.SensorEngine:
    doc = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Sensor",
        "metadata": {"name": "s", "namespace": "ns"},
        "spec": {"dependencies": dependencies, "triggers": triggers},
    }
    return engine.SensorEngine(validation.parse_sensor(doc))


def dep(name: str, source: str = "webhook", event: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"name": name, "eventSourceName": source, "eventName": event or name, **extra}


def log_trigger(name: str, conditions: str | None = None, **template: Any) -> dict[str, Any]:
    t: dict[str, Any] = {"name": name, "log": {}, **template}
    if conditions is not None:
        t["conditions"] = conditions
    return {"template": t}


def ev(subject: str, id: str, data: Any = None, source: str = "webhook", time: datetime = T0) -> events.Event:
    return events.new_event(
        source=source, subject=subject, type="webhook", id=id, time=time, data=data or {"n": id}
    )


DEPS = [dep("a"), dep("b"), dep("c")]


def test_match_returns_matching_dependencies_in_spec_order() -> None:
    e = sensor(
        [
            dep("first", event="x"),
            dep("other", event="y"),
            dep("second", event="x", filters={"data": [{"path": "n", "type": "string", "value": ["^no$"]}]}),
        ],
        [log_trigger("t", "first || second || other")],
    )
    results = e.match(ev("x", "1"))
    assert [(r.name, r.passed) for r in results] == [("first", True), ("second", False)]
    assert results[1].error == "data filter: n = '1' does not match ['^no$']"
    assert e.match(ev("x", "2", source="elsewhere")) == []
    assert e.name == "s" and e.namespace == "ns"


def test_match_reports_transform_then_filter_on_the_transformed_data() -> None:
    e = sensor(
        [
            dep(
                "d",
                transform={"jq": "{kind: .body.type}"},
                filters={"data": [{"path": "kind", "type": "string", "value": ["push"]}]},
            )
        ],
        [log_trigger("t")],
    )
    [result] = e.match(ev("d", "1", {"body": {"type": "push"}}))
    assert result.passed and json.loads(result.event.data or b"") == {"kind": "push"}
    [bad] = e.match(ev("d", "2", {"body": 1}).with_data(b"[1]"))
    assert not bad.passed and bad.error is not None and bad.error.startswith("transform failed")


def test_triggers_for_and_needs_state() -> None:
    e = sensor(
        DEPS,
        [
            log_trigger("and", "a && b"),
            log_trigger("or", "b || c"),
            log_trigger("all"),
            log_trigger("one", "c"),
        ],
    )
    assert e.triggers_for("a") == ["and", "all"]
    assert e.triggers_for("c") == ["or", "all", "one"]
    assert [e.needs_state(t) for t in ("and", "or", "all", "one")] == [True, False, True, False]
    assert e.trigger_dependencies("or") == ("b", "c")


def test_without_and_fires_at_once_with_only_the_current_event() -> None:
    e = sensor(DEPS, [log_trigger("or", "a || b")])
    saved = engine.TriggerState({"a": ev("a", "old")}, {"a": T0})
    adv = e.advance("or", saved, "b", ev("b", "1"), T0)
    assert adv.fired is not None and list(adv.fired) == ["b"]
    assert adv.state == engine.TriggerState.EMPTY


def test_and_waits_then_fires_with_every_saved_dependency_and_clears() -> None:
    e = sensor(DEPS, [log_trigger("t", "a && b")])
    s1 = e.advance("t", engine.TriggerState.EMPTY, "a", ev("a", "1"), T0)
    assert s1.fired is None and set(s1.state.events) == {"a"}
    s2 = e.advance("t", s1.state, "a", ev("a", "2"), T0 + timedelta(seconds=1))  # newest replaces older
    assert s2.fired is None and s2.state.events["a"].id == "2"
    s3 = e.advance("t", s2.state, "b", ev("b", "3"), T0 + timedelta(seconds=2))
    assert s3.fired is not None and {k: v.id for k, v in s3.fired.items()} == {"a": "2", "b": "3"}
    assert s3.state == engine.TriggerState.EMPTY


def test_mixed_condition_fires_with_every_saved_dependency_of_the_trigger() -> None:
    e = sensor(DEPS, [log_trigger("t", "(a && b) || c")])
    s1 = e.advance("t", engine.TriggerState.EMPTY, "a", ev("a", "1"), T0)
    assert s1.fired is None
    s2 = e.advance("t", s1.state, "c", ev("c", "2"), T0)
    assert s2.fired is not None and {k: v.id for k, v in s2.fired.items()} == {"a": "1", "c": "2"}


def test_implicit_and_of_all_dependencies() -> None:
    e = sensor(DEPS, [log_trigger("t")])
    state = engine.TriggerState.EMPTY
    for name in ("a", "b"):
        adv = e.advance("t", state, name, ev(name, name), T0)
        assert adv.fired is None
        state = adv.state
    assert e.advance("t", state, "c", ev("c", "c"), T0).fired is not None


def test_advance_rejects_a_foreign_dependency() -> None:
    e = sensor(DEPS, [log_trigger("t", "a && b")])
    with pytest.raises(ValueError, match="does not depend on 'c'"):
        e.advance("t", engine.TriggerState.EMPTY, "c", ev("c", "1"), T0)
    with pytest.raises(KeyError, match="no trigger 'nope'"):
        e.needs_state("nope")


def reset_trigger(cron: str, timezone: str | None = None) -> dict[str, Any]:
    by_time: dict[str, Any] = {"cron": cron}
    if timezone:
        by_time["timezone"] = timezone
    return log_trigger("t", "a && b", conditionsReset=[{"byTime": by_time}])


@pytest.mark.parametrize(
    ("cron", "zone", "saved_at", "now", "kept"),
    [
        ("0 10 * * *", None, "09:30", "09:59", True),  # no tick in between
        ("0 10 * * *", None, "09:30", "10:00", False),  # the tick at 10:00 drops it
        ("0 10 * * *", None, "09:30", "10:30", False),
        ("0 10 * * *", None, "10:00", "10:30", True),  # saved at the tick: not before it
        ("*/15 * * * *", None, "09:50", "09:59", True),
        ("*/15 * * * *", None, "09:44", "09:46", False),
        # 10:00 in Berlin (UTC+1 in January) is 09:00 UTC
        ("0 10 * * *", "Europe/Berlin", "08:30", "09:10", False),
        ("0 10 * * *", "Europe/Berlin", "09:05", "09:10", True),
    ],
)
def test_conditions_reset_by_time(cron: str, zone: str | None, saved_at: str, now: str, kept: bool) -> None:
    e = sensor(DEPS, [reset_trigger(cron, zone)])
    at = datetime.fromisoformat(f"2024-01-15T{saved_at}:00+00:00")
    current = datetime.fromisoformat(f"2024-01-15T{now}:00+00:00")
    s1 = e.advance("t", engine.TriggerState.EMPTY, "a", ev("a", "1"), at)
    s2 = e.advance("t", s1.state, "b", ev("b", "2"), current)
    assert (s2.fired is not None) is kept


def test_state_round_trips_byte_for_byte() -> None:
    raw = ev("a", "1").with_data(b'{"n": 1.50,  "x":[ ]}')
    binary = ev("b", "2").with_data(b"\x00\xff")
    state = engine.TriggerState({"a": raw, "b": binary}, {"a": T0, "b": T0 + timedelta(seconds=3)})
    back = engine.TriggerState.from_bytes(state.to_bytes())
    assert back == state
    assert back.events["a"].data == b'{"n": 1.50,  "x":[ ]}'
    with pytest.raises(ValueError, match="not readable"):
        engine.TriggerState.from_bytes(b"{nope")
    assert engine.TriggerState.from_bytes(engine.TriggerState.EMPTY.to_bytes()) == engine.TriggerState.EMPTY


def test_fingerprint_changes_with_conditions_and_dependencies_only() -> None:
    base = sensor(DEPS, [log_trigger("t", "a && b")]).fingerprint("t")
    assert sensor(DEPS, [log_trigger("t", "a&&b")]).fingerprint("t") == base
    assert sensor(DEPS, [log_trigger("t", "a && c")]).fingerprint("t") != base
    moved = [dep("a", event="renamed"), dep("b"), dep("c")]
    assert sensor(moved, [log_trigger("t", "a && b")]).fingerprint("t") != base
    filtered = [dep("a", filters={"context": {"type": "x"}}), dep("b"), dep("c")]
    assert sensor(filtered, [log_trigger("t", "a && b")]).fingerprint("t") == base


def test_invalid_sensor_lists_every_problem_with_its_path() -> None:
    with pytest.raises(errors.SpecError) as info:
        sensor(
            [
                dep("a", filters={"data": [{"path": "x", "type": "string", "value": ["("]}]}),
                dep("b"),
                dep(
                    "c",
                    filters={
                        "data": [{"path": "x", "type": "string", "value": ["x"], "template": "{{ nope }}"}],
                        "exprs": [{"expr": "a ==", "fields": [{"name": "a", "path": "a"}]}],
                    },
                ),
            ],
            [log_trigger("t1", "a && b")],
        )
    text = str(info.value)
    for fragment in (
        "spec.dependencies[0].filters.data[0].value[0]",
        "spec.dependencies[2].filters.data[0].template",
        "spec.dependencies[2].filters.exprs[0].expr",
    ):
        assert fragment in text
    assert len(info.value.problems) == 3


@pytest.mark.parametrize(
    ("deps", "triggers"),
    [
        (DEPS, [log_trigger("t1", "a && nope")]),
        ([dep("a", transform={"jq": ".x |"})], [log_trigger("t")]),
        ([dep("a", filters={"script": "if then"})], [log_trigger("t")]),
    ],
)
def test_other_invalid_sensors_are_spec_errors_too(
    deps: list[dict[str, Any]], triggers: list[dict[str, Any]]
) -> None:
    with pytest.raises(errors.SpecError):
        sensor(deps, triggers)


K8S = {
    "template": {
        "name": "wf",
        "k8s": {
            "operation": "create",
            "source": {
                "resource": {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"generateName": "cm-"},
                    "data": {"k": "v"},
                }
            },
            "parameters": [{"src": {"dependencyName": "a", "dataKey": "body.name"}, "dest": "data.k"}],
        },
    }
}


def test_resolve_k8s_applies_template_parameters_to_the_resource() -> None:
    e = sensor(DEPS, [K8S])
    resolved = e.resolve("wf", {"a": ev("a", "1", {"body": {"name": "kubedojo"}})})
    assert resolved.error is None and resolved.kind == "k8s" and resolved.payload is None
    assert resolved.resource == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"generateName": "cm-"},
        "data": {"k": "kubedojo"},
    }
    # the spec's own resource is untouched
    assert resolved.spec.template is not None and resolved.spec.template.k8s is not None
    assert (
        resolved.spec.template.k8s.source is not None
        and resolved.spec.template.k8s.source.resource is not None
    )
    assert resolved.spec.template.k8s.source.resource["data"] == {"k": "v"}
    fetched = e.resolve("wf", {"a": ev("a", "1", {"body": {"name": "z"}})}, base_resource={"data": {"k": 0}})
    assert fetched.resource == {"data": {"k": "z"}}


def test_resolve_reports_parameter_errors_instead_of_raising() -> None:
    e = sensor(DEPS, [K8S])
    resolved = e.resolve("wf", {"a": ev("a", "1", {"other": 1})})
    assert resolved.resource is None
    assert resolved.error is not None and "key body.name does not exist" in resolved.error


def test_resolve_http_payload_and_template_parameters() -> None:
    trigger = {
        "template": {
            "name": "h",
            "http": {
                "url": "http://example/hook",
                "method": "POST",
                "parameters": [
                    {
                        "src": {"dependencyName": "a", "dataTemplate": "http://example/{{ .Input.path }}"},
                        "dest": "url",
                    }
                ],
                "payload": [
                    {"src": {"dependencyName": "a", "dataKey": "n"}, "dest": "id"},
                    {"src": {"dependencyName": "a", "dataKey": "count", "useRawData": True}, "dest": "count"},
                ],
            },
        },
        "parameters": [{"src": {"dependencyName": "a", "dataKey": "method"}, "dest": "http.method"}],
    }
    e = sensor(DEPS, [trigger])
    resolved = e.resolve("h", {"a": ev("a", "1", {"n": "x1", "count": 3, "path": "p/q", "method": "PUT"})})
    assert resolved.error is None and resolved.kind == "http" and resolved.resource is None
    assert resolved.payload == b'{"id":"x1","count":3}'
    http = resolved.spec.template.http if resolved.spec.template else None
    assert http is not None and http.url == "http://example/p/q" and http.method == "PUT"


def test_trigger_parameters_can_rewrite_the_resource() -> None:
    trigger = dict(K8S)
    trigger["parameters"] = [
        {"src": {"dependencyName": "a", "dataKey": "ns"}, "dest": "k8s.source.resource.metadata.namespace"}
    ]
    e = sensor(DEPS, [trigger])
    resolved = e.resolve("wf", {"a": ev("a", "1", {"ns": "team", "body": {"name": "n"}})})
    assert resolved.resource is not None and resolved.resource["metadata"] == {
        "generateName": "cm-",
        "namespace": "team",
    }


def test_trigger_parameters_that_break_the_template_are_a_resolve_error() -> None:
    trigger = {
        "template": {"name": "h", "http": {"url": "http://x"}},
        "parameters": [
            {"src": {"dependencyName": "a", "dataKey": "obj", "useRawData": True}, "dest": "http.timeout"}
        ],
    }
    e = sensor(DEPS, [trigger])
    resolved = e.resolve("h", {"a": ev("a", "1", {"obj": {"not": "a number"}})})
    assert resolved.error is not None and "invalid" in resolved.error
