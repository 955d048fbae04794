"""JetStream ``streamConfig`` is read exactly as Argo reads it (viper + spf13/cast) and fits NatsJetStreamChannel.

Argo's own controller default is ``maxBytes: 1GB`` with ``maxAge: 72h``: cast cannot parse ``1GB`` as an
integer, so Argo's stream gets no byte limit; ``72h`` is a Go duration. Before this, ``1GB`` was copied as
written and the NatsJetStreamChannel schema refused the Broker's channel (``'1GB' is not of type 'integer'``).
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from knevents import errors
from knevents.deploy import check, gocast, render

from tests.deploy import crds


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1000, 1000),
        ("1000", 1000),
        ("12.000", 12),  # cast trims a zero decimal part
        ("0x10", 16),
        ("010", 8),  # a leading 0 is octal to strconv.ParseInt(s, 0, 64)
        ("1_000", 1000),
        (2.9, 2),  # a YAML float is truncated
        (True, 1),
        ("1GB", 0),
        ("12.5", 0),
        ("9223372036854775808", 0),  # overflows int64
        (None, 0),
    ],
)
def test_integers_as_cast_reads_them(value: Any, expected: int) -> None:
    assert gocast.to_int(value)[0] == expected


@pytest.mark.parametrize(
    ("value", "nanos"),
    [
        ("72h", 72 * 3600 * 10**9),
        ("1h30m", 5400 * 10**9),
        ("1.5s", 1_500_000_000),
        (".5ms", 500_000),
        ("300", 300),  # no unit letter: cast appends "ns"
        (300, 300),  # a YAML number is nanoseconds to Go
        ("2µs", 2000),
        ("0", 0),
        ("3 days", 0),
        ("h", 0),
        ("1d", 0),
    ],
)
def test_durations_as_cast_reads_them(value: Any, nanos: int) -> None:
    assert gocast.to_duration(value)[0] == nanos


@pytest.mark.parametrize(
    "nanos", [0, 1, 1_500_000_000, 30 * 10**9, 300 * 10**9, 72 * 3600 * 10**9, -5 * 10**9]
)
def test_rendered_durations_read_back_exactly(nanos: int) -> None:
    assert gocast.parse_duration(gocast.go_duration(nanos)) == nanos


def _bus(stream_config: str) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "EventBus",
        "metadata": {"name": "default"},
        "spec": {"jetstream": {"version": "2.9.22", "streamConfig": stream_config}},
    }


ARGO_DEFAULT = (
    "maxMsgs: 1000000\nmaxAge: 72h\nmaxBytes: 1GB\nreplicas: 3\nduplicates: 300s\nretention: 0\ndiscard: 0\n"
)


def _channel(rendering: render.Rendering) -> dict[str, Any]:
    config_map = next(o for o in rendering.objects if o["kind"] == "ConfigMap")
    loaded: dict[str, Any] = yaml.safe_load(config_map["data"]["channel-template-spec"])
    return loaded


def test_argos_default_stream_config_renders_as_argo_reads_it() -> None:
    rendering = render.render([], [], [_bus(ARGO_DEFAULT)])
    assert _channel(rendering)["spec"]["stream"]["config"] == {
        "maxMsgs": 1000000,
        "maxAge": "72h0m0s",
        "replicas": 3,
        "duplicateWindow": "5m0s",
        "retention": "Limits",
        "discard": "Old",
    }
    assert any("maxBytes" in w and "'1GB'" in w and "no limit" in w for w in rendering.warnings)


def test_sizes_and_durations_pass_the_channel_schema() -> None:
    config = "maxBytes: '0x40000000'\nmaxAge: 3600\nduplicates: 2m\nretention: '1'\ndiscard: 1\nmaxMsgs: -1\n"
    rendering = render.render([], [], [_bus(config)])
    assert _channel(rendering)["spec"]["stream"]["config"] == {
        "maxBytes": 1 << 30,
        "maxAge": "3600ns",
        "duplicateWindow": "2m0s",
        "retention": "Interest",
        "discard": "New",
    }
    assert check.check(rendering.objects) == []


@pytest.mark.parametrize("release", crds.RELEASES)
@pytest.mark.parametrize(
    "config", [ARGO_DEFAULT, "maxBytes: 1073741824\nmaxAge: 1.5h\n", "maxMsgSize: 1MB\n"]
)
def test_the_crds_of_each_release_accept_the_channel(config: str, release: str) -> None:
    assert crds.findings(render.render([], [], [_bus(config)]).objects, release) == []


@pytest.mark.parametrize("config", ["retention: 3\n", "discard: -1\n", "maxAge: -1s\n"])
def test_values_argo_cannot_create_a_stream_with_are_errors(config: str) -> None:
    with pytest.raises(errors.SpecError, match="streamConfig"):
        render.render([], [], [_bus(config)])
