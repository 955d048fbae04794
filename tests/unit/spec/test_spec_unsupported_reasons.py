"""Types knevents deliberately does not run say why in `validate`, and are really not registered."""

from __future__ import annotations

import pytest
from knevents import sources, triggers, validation
from knevents.spec import support

from tests import upstream

FILES = {
    "event-sources/azure-events-hub.yaml": "azureEventsHub",
    "event-sources/azure-service-bus.yaml": "azureServiceBus",
    "event-sources/pulsar.yaml": "pulsar",
    "event-sources/nsq.yaml": "nsq",
    "event-sources/emitter.yaml": "emitter",
    "event-sources/hdfs.yaml": "hdfs",
    "sensors/azure-event-hubs-sensor.yaml": "azureEventHubs",
    "sensors/azure-service-bus-sensor.yaml": "azureServiceBus",
}


def test_reasons_name_only_types_without_a_module() -> None:
    for key in support.UNSUPPORTED_REASONS:
        assert sources.TYPES.get(key) is None and triggers.find(key) is None, key


@pytest.mark.parametrize(("name", "key"), sorted(FILES.items()))
def test_validate_gives_the_reason(name: str, key: str) -> None:
    path = upstream.example(*name.split("/"))
    manifests = validation.load_paths([str(path)])
    assert manifests.problems == []
    [note] = [n for n in manifests.unsupported if f"`{key}`" in n.message]
    assert note.message.endswith(support.UNSUPPORTED_REASONS[key])
