"""What ``knevents validate`` accepts, the functions run: over Argo's whole example corpus.

Every Sensor that validation accepts builds the sensor engine and the sensor function's runtime; every
EventSource it accepts builds the event source runtime (each entry's source through its type's factory).
A manifest that validates but does not start is the drift issue 11 removes.
"""

from __future__ import annotations

import pytest
from knevents import validation
from knevents.bus.memory import MemoryPublisher
from knevents.runtime.sensor import SensorRuntime
from knevents.runtime.source import SourceRuntime
from knevents.secrets import SecretResolver
from knevents.sensors import engine
from knevents.settings import Settings
from knevents.state.memory import MemoryStore

from tests import upstream

EXAMPLES = upstream.examples_dir()
pytestmark = pytest.mark.skipif(EXAMPLES is None, reason=upstream.REASON)


def _corpus() -> validation.loading.Manifests:
    assert EXAMPLES is not None
    return validation.collect([EXAMPLES])


def test_every_valid_sensor_builds_the_engine_and_the_sensor_function() -> None:
    manifests = _corpus()
    assert len(manifests.sensors) > 50
    for sensor in manifests.sensors:
        engine.SensorEngine(sensor)
        SensorRuntime(sensor, MemoryStore(), settings=Settings(), secrets=SecretResolver())


def test_every_valid_event_source_starts_in_the_runtime() -> None:
    manifests = _corpus()
    assert len(manifests.event_sources) > 25
    built = 0
    for source in manifests.event_sources:
        runtime = SourceRuntime(source, MemoryPublisher(), settings=Settings(), secrets=SecretResolver())
        built += len(runtime.routes()) + len(runtime.pull_entries())
    assert built > 25
