"""codec.header_block is, byte for byte, the header block nats-py writes for encode_nats's headers.

The batch publisher writes ``HPUB`` commands itself with this block instead of
calling nats-py's ``publish``; any difference would change what the bus stores
(or let a CR/LF through into the protocol). nats-py's own encoding loop is the
reference: it is replayed here from its ``_send_publish`` rules.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st
from knevents import events
from knevents.bus import codec
from nats.aio import client as nats_client


def _nats_py_block(headers: dict[str, str]) -> bytes:
    """What nats-py 2.x puts between ``HPUB`` and the payload for ``headers`` (its ``_send_publish`` loop)."""
    block = bytearray(b"NATS/1.0\r\n")
    for key, value in headers.items():
        name = key.strip()
        if not name:
            continue
        assert nats_client._HEADER_KEY_RE.fullmatch(name)
        block += name.encode() + b": " + value.strip().translate(nats_client._HEADER_VALUE_NEWLINES).encode() + b"\r\n"
    return bytes(block + b"\r\n")


def _same(event: events.Event) -> None:
    assert codec.header_block(event) == _nats_py_block(codec.encode_nats(event)[0])


def test_common_event() -> None:
    _same(events.new_event(source="bench", subject="orders", type="kafka", data=b"{}", id="bench:orders:h:9092:t:0:7"))


def test_optional_attributes_and_extensions() -> None:
    _same(events.Event(id="x", source="s", type="t"))  # no subject, time or content type
    _same(events.Event(id="x", source="s", type="t", subject=" padded ", datacontenttype=None, dataschema="http://x",
                       time=datetime(2024, 5, 1, 10, tzinfo=timezone(timedelta(hours=2))),
                       extensions={"traceparent": "00-aa-bb-01", "partitionkey": "k"}))
    _same(events.Event(id="x", source="s", type="t", time=datetime(2024, 5, 1, 10, 0, 0, 500)))  # naive time


def test_escaped_and_unsafe_values() -> None:
    _same(events.new_event(source="sørce", subject="a%b", type="t", data=b"{}", id="id\r\nHPUB x 0 0"))
    _same(events.new_event(source="s", subject="e", type="t", data=b"{}", id="ïd with spaces "))


def test_times_within_and_across_seconds() -> None:
    start = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)
    for offset in (0, 1, 999_999, 1_000_000, 1_000_001, 61_000_000):
        moment = start + timedelta(microseconds=offset)
        _same(events.new_event(source="s", subject="e", type="t", data=b"{}", id="i", time=moment))


@given(st.text(), st.text(), st.text(), st.datetimes(timezones=st.just(UTC)))
def test_any_text(source: str, subject: str, event_id: str, moment: datetime) -> None:
    _same(events.new_event(source=source or "s", subject=subject, type="t", data=b"{}", id=event_id or "i", time=moment))
