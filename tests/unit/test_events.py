"""The event envelope against the official CloudEvents SDK's own HTTP encodings."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent
from knevents import errors, events


def sdk_event(data: object = None) -> CloudEvent:
    attrs = {
        "id": "abc",
        "source": "webhook",
        "type": "webhook",
        "subject": "example",
        "time": "2026-01-02T03:04:05.123456789Z",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    }
    return CloudEvent(attrs, data)


@pytest.mark.parametrize("encode", [to_binary, to_structured])
def test_from_http_reads_what_the_sdk_writes(encode: object) -> None:
    headers, body = encode(sdk_event({"body": {"x": 1}}))  # type: ignore[operator]
    event = events.from_http(dict(headers), body)
    assert (event.id, event.source, event.subject, event.type) == ("abc", "webhook", "example", "webhook")
    assert event.time == datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert json.loads(event.data or b"") == {"body": {"x": 1}}
    assert event.extensions["traceparent"].startswith("00-0af7")


def test_binary_round_trip_keeps_exact_bytes() -> None:
    original = events.new_event(source="s", subject="e", type="webhook", data=b'{"a": 1.50}')
    message = events.to_binary(original)
    assert message.body == b'{"a": 1.50}'
    assert events.from_http(message.headers, message.body) == original


def test_structured_round_trip() -> None:
    original = events.new_event(source="s", subject="e", type="webhook", data={"a": [1, 2]})
    message = events.to_structured(original)
    assert events.from_http(message.headers, message.body) == original


def test_json_form_uses_data_base64_for_non_json() -> None:
    event = events.Event(id="1", source="s", type="t", data=b"\xff\x00", datacontenttype="application/octet-stream")
    obj = events.to_json(event)
    assert "data" not in obj and obj["data_base64"] == "/wA="
    assert events.from_json(obj).data == b"\xff\x00"


def test_new_id_is_32_lowercase_hex() -> None:
    value = events.new_id()
    assert len(value) == 32 and value == value.lower() and int(value, 16) >= 0


@pytest.mark.parametrize(
    ("headers", "body", "reason"),
    [
        ({"content-type": "application/json"}, b"{}", "not a CloudEvent"),
        ({"ce-specversion": "1.0", "ce-source": "s", "ce-type": "t"}, b"", "ce-id"),
        ({"ce-specversion": "0.3", "ce-id": "1", "ce-source": "s", "ce-type": "t"}, b"", "specversion"),
        ({"content-type": "application/cloudevents+json"}, b"{nope", "not valid JSON"),
        ({"content-type": "application/cloudevents+json"}, b"[]", "JSON object"),
        ({"content-type": "application/cloudevents-batch+json"}, b"[]", "batched"),
        (
            {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "s", "ce-type": "t", "ce-time": "yesterday"},
            b"",
            "RFC 3339",
        ),
    ],
)
def test_invalid_requests_say_why(headers: dict[str, str], body: bytes, reason: str) -> None:
    with pytest.raises(errors.EventError, match=reason):
        events.from_http(headers, body)
