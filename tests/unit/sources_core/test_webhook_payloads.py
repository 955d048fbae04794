"""The webhook source through the runtime: Argo's payloads, routing and checks (memory bus)."""

from __future__ import annotations

import json
import logging

import pytest
from knevents import errors, events

from tests.unit.sources_core import helpers
from tests.unit.sources_core.helpers import request, runtime

HOOK = {"webhook": {"example": {"port": "12000", "endpoint": "/example", "method": "POST"}}}
JSON = {"Content-Type": "application/json"}


async def test_post_json_becomes_argo_payload() -> None:
    rt, bus = runtime(HOOK)
    answer = await rt.handle(request("POST", "/example", b'{"message": "hi", "n": 1.50}', JSON))
    assert answer.status == 200
    (event,) = bus.events
    assert (event.source, event.subject, event.type) == ("es", "example", "webhook")
    assert len(event.id) == 32
    data = events.data_json(event)
    assert data["body"] == {"message": "hi", "n": 1.5}
    assert data["header"]["Content-Type"] == ["application/json"]
    assert "metadata" not in data
    assert b"1.50" in (event.data or b"")  # the body is carried as sent


async def test_get_query_is_the_body() -> None:
    rt, bus = runtime({"webhook": {"g": {"port": "12000", "endpoint": "/g", "method": "GET"}}})
    answer = await rt.handle(request("GET", "/g", query="aaa=b%20b&ccc=d%20d&ccc=e"))
    assert answer.status == 200
    assert events.data_json(bus.events[0])["body"] == {"aaa": ["b b"], "ccc": ["d d", "e"]}
    await rt.handle(request("GET", "/g"))
    assert events.data_json(bus.events[1])["body"] == {}


async def test_form_post_is_the_body() -> None:
    rt, bus = runtime(HOOK)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    answer = await rt.handle(request("POST", "/example", b"aaa=b%20b&ccc=d%20d", form))
    assert answer.status == 200
    assert events.data_json(bus.events[0])["body"] == {"aaa": ["b b"], "ccc": ["d d"]}


@pytest.mark.parametrize("body", [b"not json", b"", b"{", b"NaN", b"\xff\xfe"])
async def test_non_json_body_is_400_and_nothing_published(body: bytes) -> None:
    rt, bus = runtime(HOOK)
    answer = await rt.handle(request("POST", "/example", body, {"Content-Type": "text/plain"}))
    assert answer.status == 400
    assert bus.events == []


async def test_metadata_is_carried() -> None:
    spec = {"webhook": {"m": {"port": "12000", "endpoint": "/m", "method": "POST", "metadata": {"team": "a"}}}}
    rt, bus = runtime(spec)
    assert (await rt.handle(request("POST", "/m", b"[1,2]"))).status == 200
    data = events.data_json(bus.events[0])
    assert data["metadata"] == {"team": "a"}
    assert data["body"] == [1, 2]


async def test_routing_404_405_health_and_shared_port() -> None:
    spec = {"webhook": {
        "a": {"port": "12000", "endpoint": "/a", "method": "POST"},
        "b": {"port": "12000", "endpoint": "/b/", "method": "PUT"},
        "c": {"port": "13000", "endpoint": "/c", "method": "POST"},
    }}
    rt, bus = runtime(spec)
    assert sorted(rt.routes()) == [(12000, "/a", "POST"), (12000, "/b/", "PUT"), (13000, "/c", "POST")]
    assert (await rt.handle(request("GET", "/health"))).status == 200
    assert (await rt.handle(request("POST", "/nope", b"{}"))).status == 404
    wrong = await rt.handle(request("GET", "/a"))
    assert wrong.status == 405
    assert wrong.headers["allow"] == "POST"
    assert (await rt.handle(request("PUT", "/b", b"{}"))).status == 200
    assert (await rt.handle(request("POST", "/c", b"{}"), port=12000)).status == 404
    assert (await rt.handle(request("POST", "/c", b"{}"), port=13000)).status == 200
    assert [e.subject for e in bus.events] == ["b", "c"]
    metrics = await rt.handle(request("GET", "/metrics"))
    assert b"knevents_eventsource_events_published_total" in metrics.body


async def test_bearer_auth_and_masking(caplog: pytest.LogCaptureFixture) -> None:
    spec = {"webhook": {"s": {"port": "12000", "endpoint": "/s", "method": "POST", "authSecret": {"name": "hook", "key": "token"}}}}
    secret = "s3cr3t-t0ken-value"
    rt, bus = runtime(spec, secrets={"hook/token": secret})
    caplog.set_level(logging.DEBUG)
    for header in [{}, {"Authorization": "Bearer wrong"}, {"Authorization": secret},
                   {"Authorization": f"Basic {secret}"}]:
        assert (await rt.handle(request("POST", "/s", b"{}", header))).status == 401
    assert bus.events == []
    ok = await rt.handle(request("POST", "/s", b"{}", {"Authorization": f"Bearer {secret}"}))
    assert ok.status == 200
    (event,) = bus.events
    assert events.data_json(event)["header"]["Authorization"] == ["*** Masked Auth Secret ***"]
    assert secret.encode() not in (event.data or b"")
    assert secret not in caplog.text


async def test_missing_auth_secret_is_500_with_its_name_only() -> None:
    spec = {"webhook": {"s": {"port": "12000", "endpoint": "/s", "method": "POST", "authSecret": {"name": "hook", "key": "token"}}}}
    rt, bus = runtime(spec)
    answer = await rt.handle(request("POST", "/s", b"{}", {"Authorization": "Bearer x"}))
    assert answer.status == 500
    assert bus.events == []


async def test_max_payload_size_is_413() -> None:
    spec = {"webhook": {"s": {"port": "12000", "endpoint": "/s", "method": "POST", "maxPayloadSize": 10}}}
    rt, small_bus = runtime(spec)
    assert (await rt.handle(request("POST", "/s", b'{"a":"0123456789"}'))).status == 413
    assert small_bus.events == []
    assert (await rt.handle(request("POST", "/s", b'{"a":1}'))).status == 200
    rt2, bus2 = runtime(HOOK)
    big = b'{"a":"' + b"x" * (1024 * 1024) + b'"}'
    assert (await rt2.handle(request("POST", "/example", big, JSON))).status == 413
    assert bus2.events == []


async def test_incoming_cloudevent_gets_a_stable_id() -> None:
    rt, bus = runtime(HOOK)
    headers = {**JSON, "ce-id": "abc", "ce-source": "/up", "ce-specversion": "1.0", "ce-type": "t"}
    await rt.handle(request("POST", "/example", b"{}", headers))
    await rt.handle(request("POST", "/example", b"{}", headers))
    await rt.handle(request("POST", "/example", b"{}", JSON))
    ids = [e.id for e in bus.events]
    assert ids[0] == ids[1] != ids[2]


async def test_traceparent_becomes_extension() -> None:
    rt, bus = runtime(HOOK)
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    await rt.handle(request("POST", "/example", b"{}", {**JSON, "traceparent": tp}))
    await rt.handle(request("POST", "/example", b"{}", {**JSON, "traceparent": "garbage"}))
    assert bus.events[0].extensions == {"traceparent": tp}
    assert bus.events[1].extensions == {}


async def test_eventsource_filter_drops_with_200() -> None:
    spec = {"webhook": {"f": {"port": "12000", "endpoint": "/f", "method": "POST",
                              "filter": {"expression": "(body.id == 4) && (body.name != 'Joe')"}}}}
    rt, bus = runtime(spec)
    for body in [{"id": 4, "name": "Ann"}, {"id": 4, "name": "Joe"}, {"id": 5}, {"other": 1}]:
        answer = await rt.handle(request("POST", "/f", json.dumps(body).encode(), JSON))
        assert answer.status == 200
    assert [events.data_json(e)["body"] for e in bus.events] == [{"id": 4, "name": "Ann"}]


def test_filter_sees_dashes_as_underscores() -> None:
    from knevents.sources import filter as source_filter

    config = helpers.event_source({"webhook": {"f": {"port": "1", "endpoint": "/f",
                                                     "filter": {"expression": "x_top == 'y' && x_top.z != 1"}}}})
    flt = source_filter.from_config(config.spec.webhook["f"], "w")
    assert flt is not None
    keep = events.new_event(source="s", subject="e", type="webhook", data={"x-top": "y"})
    assert flt.passes(keep)[0] is False  # x_top.z does not resolve: dropped, as Argo drops on errors
    simple = source_filter.from_config(
        helpers.event_source({"webhook": {"f": {"port": "1", "endpoint": "/f",
                                                "filter": {"expression": "x_top == 'y'"}}}}).spec.webhook["f"], "w")
    assert simple is not None
    assert simple.passes(keep) == (True, None)
    assert simple.passes(events.new_event(source="s", subject="e", type="webhook", data=[1]))[0] is False


def test_bad_specs_raise_every_problem() -> None:
    spec = {"webhook": {
        "a": {"port": "12000", "endpoint": "/a", "method": "POST", "maxPayloadSize": -1},
        "c": {"port": "12000", "endpoint": "/c", "filter": {"expression": "a == "}},
    }}
    with pytest.raises(errors.SpecError) as info:
        runtime(spec)
    text = str(info.value)
    assert "spec.webhook.a" in text and "maxPayloadSize" in text
    assert "spec.webhook.c" in text and "filter.expression" in text
