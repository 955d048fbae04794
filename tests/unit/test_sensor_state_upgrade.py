"""Sensor state across the upgrade: records written by the previous release are still read, and the new ones
nest the state as an object, with events encoded byte for byte the same way as in the outbox."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from knevents import events
from knevents.runtime import sensor_record
from knevents.sensors import engine

V1 = Path(__file__).parent / "data" / "sensor-record-v1.json"
"""A record exactly as the previous release (record v1, trigger state v2) wrote it: half of an AND saved,
one firing in the outbox."""


def test_a_record_of_the_previous_release_is_read_after_the_upgrade() -> None:
    record = sensor_record.decode(V1.read_bytes())
    assert record.fingerprint == "fp-123" and record.applied == ("evt-a:a",)
    assert record.state is not None
    state = engine.TriggerState.from_bytes(record.state)
    saved = state.events["a"]
    assert saved.id == "evt-a" and saved.data == b'{"body": {"n": 1.50}, "header": {}}'  # byte for byte
    assert saved.extensions["traceparent"].startswith("00-0af7")
    assert state.saved_at["a"] == datetime(2024, 1, 15, 12, 0, 5, tzinfo=UTC)
    [firing] = record.outbox
    assert firing.id == "firing-1" and firing.attempts == 2 and set(firing.events) == {"a", "b"}
    assert firing.events["b"].data == b"\x00\xffbinary"


def test_the_upgraded_record_nests_the_state_and_reads_back_the_same() -> None:
    old = sensor_record.decode(V1.read_bytes())
    assert old.state is not None
    state = engine.TriggerState.from_bytes(old.state)
    upgraded = sensor_record.encode(old.__class__(old.fingerprint, state.to_bytes(), old.applied, old.outbox))
    doc = json.loads(upgraded)
    assert doc["v"] == 2
    assert isinstance(doc["state"], dict)  # no JSON string inside JSON
    nested = doc["state"]["deps"]["a"]["event"]
    assert nested["id"] == "evt-a" and "data_base64" in nested  # `1.50` would not survive a JSON round trip
    assert doc["outbox"][0]["events"]["b"] == events.to_stored(old.outbox[0].events["b"])  # one encoding
    assert events.to_stored(state.events["a"]) == nested
    again = sensor_record.decode(upgraded)
    assert again.state is not None
    back = engine.TriggerState.from_bytes(again.state)
    assert back.events["a"].data == state.events["a"].data and back.saved_at == state.saved_at
    assert again.outbox[0].events["a"].data == old.outbox[0].events["a"].data


def test_compact_json_data_stays_readable_in_the_record() -> None:
    event = events.new_event(source="hooks", subject="a", type="webhook", data={"body": {"n": 1}})
    state = engine.TriggerState({"a": event}, {"a": datetime(2024, 1, 15, tzinfo=UTC)})
    doc = json.loads(sensor_record.encode(sensor_record.Record("fp", state.to_bytes())))
    assert doc["state"]["deps"]["a"]["event"]["data"] == {"body": {"n": 1}}
    assert engine.TriggerState.from_bytes(sensor_record.decode(json.dumps(doc).encode()).state or b"") == state
