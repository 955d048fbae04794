"""Whatever a manifest holds, loading answers with problems, never with an exception."""

from __future__ import annotations

import json
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from knevents import validation

from tests.unit.spec.helpers import event_source, patch, sensor

_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8))
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), inner, max_size=3),
    ),
    max_leaves=12,
)
_SENSOR_FIELDS = [
    "spec",
    "metadata",
    "spec.dependencies",
    "spec.dependencies.0",
    "spec.dependencies.0.filters",
    "spec.dependencies.0.filters.data",
    "spec.triggers",
    "spec.triggers.0",
    "spec.triggers.0.template",
    "spec.triggers.0.template.conditions",
    "spec.triggers.0.template.http",
    "spec.triggers.0.template.http.payload",
    "spec.triggers.1.template.k8s.source",
    "spec.triggers.0.retryStrategy",
    "spec.triggers.0.dlqTrigger",
]
_SOURCE_FIELDS = [
    "spec",
    "spec.webhook",
    "spec.webhook.a",
    "spec.webhook.a.port",
    "spec.s3",
    "spec.calendar.tick",
]


def _check(obj: dict[str, Any]) -> None:
    try:
        text = yaml.safe_dump(obj)
    except yaml.YAMLError:
        text = json.dumps(obj, default=str)
    manifests = validation.load_text(text, file="fuzz.yaml")
    for problem in manifests.problems:
        assert problem.message and "Traceback" not in problem.message


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_SENSOR_FIELDS), _VALUES)
def test_sensor_fields_hold_anything(field: str, value: Any) -> None:
    _check(patch(sensor(), field, value))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_SOURCE_FIELDS), _VALUES)
def test_event_source_fields_hold_anything(field: str, value: Any) -> None:
    _check(patch(event_source(), field, value))


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_any_text(text: str) -> None:
    manifests = validation.load_text(text)
    assert manifests.count == 0 or manifests.problems == []
