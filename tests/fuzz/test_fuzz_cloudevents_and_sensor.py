"""Property-based fuzzing of CloudEvent parsing and of the sensor's HTTP endpoint.

Whatever arrives, parsing answers with an ``EventError`` (a 400 with the reason)
or an event, and the sensor function answers without a traceback and never with
a 5xx while its state store is up (a 5xx tells the broker to retry, which would
turn garbage into an endless retry loop).
"""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from knevents import errors, events, web
from knevents.runtime.sensor import SensorRuntime
from knevents.secrets import SecretResolver
from knevents.settings import Settings
from knevents.spec import parse_sensor
from knevents.state.memory import MemoryStore

_TEXT = st.text(max_size=40)
_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), _TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_TEXT, inner, max_size=4)),
    max_leaves=20,
)
_HEADER_NAMES = st.sampled_from(
    ["ce-specversion", "ce-id", "ce-source", "ce-type", "ce-subject", "ce-time", "content-type",
     "ce-traceparent", "ce-Bad Name", "ce-", "x-other"]
)
_HEADER_VALUES = st.one_of(
    st.sampled_from(["1.0", "0.3", "", "webhook", "example", "2026-01-01T00:00:00Z", "not-a-time",
                     "application/json", "application/cloudevents+json", "application/cloudevents-batch+json",
                     "text/plain", "%zz", "%41"]),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
)
_HEADERS = st.dictionaries(_HEADER_NAMES, _HEADER_VALUES, max_size=8)
_BODIES = st.one_of(
    st.binary(max_size=300),
    _JSON.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {"specversion": st.sampled_from(["1.0", "2", 1]), "id": _TEXT, "source": _TEXT, "type": _TEXT},
        optional={"subject": _TEXT, "time": _TEXT, "data": _JSON, "data_base64": _TEXT, "x": _JSON},
    ).map(lambda v: json.dumps(v).encode()),
)

SENSOR = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Sensor",
    "metadata": {"name": "fuzz"},
    "spec": {
        "dependencies": [
            {
                "name": "a",
                "eventSourceName": "webhook",
                "eventName": "example",
                "filters": {
                    "data": [
                        {"path": "body.n", "type": "number", "comparator": ">", "value": ["1"]},
                        {"path": "body.s", "type": "string", "value": ["^x.*", "y"]},
                    ],
                    "exprs": [{"expr": "n > 2 || s == 'z'", "fields": [
                        {"name": "n", "path": "body.n"}, {"name": "s", "path": "body.s"}]}],
                    "dataLogicalOperator": "or",
                },
                "filtersLogicalOperator": "or",
            },
            {"name": "b", "eventSourceName": "webhook", "eventName": "other"},
        ],
        "triggers": [
            {"template": {"name": "and", "conditions": "a && b", "log": {}}},
            {
                "template": {
                    "name": "http",
                    "conditions": "a",
                    "http": {
                        "url": "http://127.0.0.1:9/never-called",
                        "payload": [
                            {"src": {"dependencyName": "a", "dataKey": "body.s", "value": "d"}, "dest": "s"},
                            {"src": {"dependencyName": "a", "dataTemplate": "{{ .Input.body.n | int }}"},
                             "dest": "n"},
                        ],
                    },
                }
            },
        ],
    },
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_HEADERS, _BODIES)
def test_from_http_answers_an_event_or_a_reason(headers: dict[str, str], body: bytes) -> None:
    try:
        event = events.from_http(headers, body)
    except errors.EventError as exc:
        assert str(exc)
        return
    # Whatever parsed must survive both encodings unchanged.
    for encode in (events.to_binary, events.to_structured):
        message = encode(event)
        assert events.from_http(message.headers, message.body) == event


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_TEXT, _JSON, max_size=8))
def test_from_json_answers_an_event_or_a_reason(obj: dict[str, Any]) -> None:
    try:
        events.from_json(obj)
    except errors.EventError as exc:
        assert str(exc)


class _Sensor:
    """One runtime over a memory store; triggers are recorded, not executed."""

    def __init__(self) -> None:
        self.fired: list[str] = []

        async def fire(resolved: Any, ctx: Any) -> Any:
            from knevents import triggers

            self.fired.append(resolved.trigger)
            return triggers.TriggerResult(trigger=resolved.trigger, kind=resolved.kind, detail="recorded")

        self.runtime = SensorRuntime(parse_sensor(SENSOR), MemoryStore(), settings=Settings(),
                                     secrets=SecretResolver(env={}), fire=fire)
        self.loop = asyncio.new_event_loop()

    def post(self, method: str, headers: dict[str, str], body: bytes) -> web.Response:
        request = web.Request(method=method, path="/", headers=web.Headers(headers), body=body)
        return self.loop.run_until_complete(self.runtime.handle(request))


@functools.cache
def _sensor() -> _Sensor:
    return _Sensor()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["POST", "GET", "PUT"]), _HEADERS, _BODIES)
def test_sensor_endpoint_never_fails_on_garbage(method: str, headers: dict[str, str], body: bytes) -> None:
    response = _sensor().post(method, headers, body)
    assert response.status < 500, response.body


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["example", "other", "nope"]), _JSON, st.booleans())
def test_sensor_endpoint_never_fails_on_valid_events_with_any_data(subject: str, data: Any, structured: bool) -> None:
    event = events.new_event(source="webhook", subject=subject, type="webhook", data={"body": data})
    message = (events.to_structured if structured else events.to_binary)(event)
    response = _sensor().post("POST", dict(message.headers), message.body)
    assert 200 <= response.status < 300, response.body
