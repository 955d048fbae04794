"""Subject naming and the NATS codec of the bus (pure functions)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from knevents import bus, events


def test_plain_names_are_kept() -> None:
    assert bus.subject("default", "webhook", "example") == "default.webhook.example"


def test_unsafe_characters_are_escaped() -> None:
    token = bus.encode_token("a.b *>c%")
    assert not set(token) & set(".*> ")
    assert bus.decode_token(token) == "a.b *>c%"
    assert bus.encode_token("") == "%"
    assert bus.decode_token("%") == ""


@given(st.text())
def test_tokens_round_trip(name: str) -> None:
    token = bus.encode_token(name)
    assert token
    assert not any(ch in token for ch in ".*> \t\r\n")
    assert bus.decode_token(token) == name


def test_stream_names() -> None:
    assert bus.stream_name("default") == "KNEVENTS-default"
    assert bus.stream_name("a.b") != bus.stream_name("a_b")
    assert "." not in bus.stream_name("a.b")


def test_filters() -> None:
    assert bus.subject_filter("default") == "default.>"
    assert bus.subject_filter("default", "es") == "default.es.*"
    assert bus.subject_filter("default", "es", "e") == "default.es.e"


def test_nats_codec_round_trip() -> None:
    event = events.new_event(
        source="ß-source", subject="naïve\nname", type="webhook", data={"a": 1},
        extensions={"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
    )
    headers, body = bus.encode_nats(event)
    assert headers["Nats-Msg-Id"] == event.id
    assert all(" " <= ch <= "~" for value in headers.values() for ch in value)
    back = bus.decode_nats(headers, body)
    assert back.source == "ß-source"
    assert back.subject == "naïve\nname"
    assert back.extensions["traceparent"] == event.extensions["traceparent"]
    assert back.data == event.data
