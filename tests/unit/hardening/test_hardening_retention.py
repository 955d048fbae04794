"""Issue 12 §4: the bus stream's limits from Argo's EventBus names and strings, with defaults."""

from __future__ import annotations

import pytest
from knevents import errors, spec
from knevents.bus import retention


def _bus(spec_body: dict[str, object]) -> object:
    return spec.parse_event_bus({"apiVersion": "argoproj.io/v1alpha1", "kind": "EventBus",
                                 "metadata": {"name": "default"}, "spec": spec_body})


def test_defaults_are_argos() -> None:
    assert retention.from_event_bus(_bus({"jetstream": {"version": "latest"}})) == retention.Retention(
        max_age=72 * 3600, max_bytes=1024**3, max_msgs=1_000_000)


def test_stream_config_is_read_with_units() -> None:
    bus = _bus({"jetstream": {"streamConfig": "maxAge: 24h\nmaxBytes: 1GB\nmaxMsgs: 100\n"}})
    assert retention.from_event_bus(bus) == retention.Retention(max_age=86400, max_bytes=10**9, max_msgs=100)


def test_native_nats_names_are_read() -> None:
    bus = _bus({"nats": {"native": {"maxAge": "30m", "maxBytes": "512Mi", "maxMsgs": 0}}})
    assert retention.from_event_bus(bus) == retention.Retention(max_age=1800, max_bytes=512 * 1024**2, max_msgs=-1)


@pytest.mark.parametrize(("text", "size"), [("1073741824", 1024**3), ("64KiB", 65536), ("2k", 2000), ("1.5Gi", 1536 * 1024**2)])
def test_sizes(text: str, size: int) -> None:
    assert retention.parse_size(text, "x") == size


@pytest.mark.parametrize("bad", ["lots", "1XB", "-"])
def test_bad_values_name_the_field(bad: str) -> None:
    with pytest.raises(errors.SpecError, match="maxBytes"):
        retention.from_event_bus(_bus({"jetstream": {"streamConfig": f"maxBytes: {bad}\n"}}))
