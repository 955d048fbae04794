"""Walk a spec's event source types and trigger kinds generically, and the bus/artifact support notes.

Argo Events defines far more event source types and trigger kinds than
knevents implements. A manifest using one of them is still *valid* Argo: it
loads, and the unsupported parts are listed as notes (``Problem(unsupported=True)``)
so ``knevents validate`` can say so without failing. Which types and kinds
knevents runs is not written here: the type modules declare themselves
(``knevents.sources``, ``knevents.triggers``) and :mod:`knevents.validation`
reports the rest; this module only walks the models by their aliases.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from knevents import errors
from knevents.spec import models

__all__ = [
    "SOURCE_SPEC_FIELDS",
    "SUPPORTED_BUS_TYPES",
    "TRIGGER_TEMPLATE_FIELDS",
    "UNSUPPORTED_REASONS",
    "note",
    "reason",
    "resource_kinds",
    "source_types",
    "trigger_kinds",
    "unsupported_in_bus",
    "unsupported_locations",
]

SUPPORTED_BUS_TYPES: frozenset[str] = frozenset({"jetstream"})
"""EventBus types knevents runs as its bus (a JetStream-backed Knative Broker / embedded JetStream)."""

SOURCE_SPEC_FIELDS: frozenset[str] = frozenset({"eventBusName", "replicas", "service", "template"})
"""EventSourceSpec keys that are deployment settings, not event source types."""

TRIGGER_TEMPLATE_FIELDS: frozenset[str] = frozenset({"name", "conditions", "conditionsReset"})
"""TriggerTemplate keys that are not a trigger kind."""


def _aliases(cls: type[BaseModel]) -> dict[str, str]:
    """Model attribute name -> YAML name."""
    return {name: field.alias or name for name, field in cls.model_fields.items()}


def source_types(spec: models.EventSourceSpec) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(type key, {event name: config})`` for every event source type set in ``spec``."""
    for attr, alias in _aliases(models.EventSourceSpec).items():
        if alias in SOURCE_SPEC_FIELDS:
            continue
        value = getattr(spec, attr)
        if value is not None:
            yield alias, value


def trigger_kinds(template: models.TriggerTemplate) -> list[str]:
    """The trigger kind keys set in a template (exactly one in a valid trigger)."""
    return [
        alias
        for attr, alias in _aliases(models.TriggerTemplate).items()
        if alias not in TRIGGER_TEMPLATE_FIELDS and getattr(template, attr) is not None
    ]


def resource_kinds(template: models.TriggerTemplate) -> Iterator[tuple[str, Any]]:
    """``(kind key, kind object)`` of the kinds set in ``template`` that read a resource from ``source``."""
    for attr, alias in _aliases(models.TriggerTemplate).items():
        value = getattr(template, attr)
        if alias not in TRIGGER_TEMPLATE_FIELDS and value is not None and "source" in type(value).model_fields:
            yield alias, value


def unsupported_locations(
    trigger: models.Trigger, path: str, supported: frozenset[str]
) -> Iterator[errors.Problem]:
    """Notes for the resource ``source`` locations of a trigger (and its dlqTrigger) not in ``supported``.

    ``supported`` is ``knevents.triggers.ARTIFACT_LOCATIONS``: the locations the runtime has a reader for
    (this layer cannot import the triggers, so the caller passes it and the two cannot drift).
    """
    for kind, spec in resource_kinds(trigger.template):
        source = spec.source
        if source is None:
            continue
        for attr, alias in _aliases(models.ArtifactLocation).items():
            if getattr(source, attr) is not None and alias not in supported:
                yield note(
                    f"reading the {kind} resource from `source.{alias}` is not supported by knevents",
                    f"{path}.template.{kind}.source.{alias}",
                )
    if trigger.dlq_trigger is not None:
        yield from unsupported_locations(trigger.dlq_trigger, f"{path}.dlqTrigger", supported)


_NO_SERVER = "; a type never run against its server is not shipped"
UNSUPPORTED_REASONS: dict[str, str] = {
    "azureEventsHub": "Azure Event Hubs has no emulator installable on the machines knevents is tested on"
    + _NO_SERVER,
    "azureEventHubs": "Azure Event Hubs has no emulator installable on the machines knevents is tested on"
    + _NO_SERVER,
    "azureServiceBus": "Azure Service Bus has no emulator installable on the machines knevents is tested on"
    + _NO_SERVER,
    "pulsar": "no Apache Pulsar server can be installed on the machines knevents is tested on" + _NO_SERVER,
    "nsq": "no nsqd can be installed on the machines knevents is tested on" + _NO_SERVER,
    "emitter": "no Emitter broker can be installed on the machines knevents is tested on" + _NO_SERVER,
    "hdfs": "no HDFS (Hadoop) cluster can be installed on the machines knevents is tested on" + _NO_SERVER,
    "mns": "Alibaba Cloud MNS is a hosted service without an emulator" + _NO_SERVER,
}
"""Why knevents does not run an Argo event source type or trigger kind (spec key -> reason), for the notes."""


def reason(key: str) -> str:
    """``": <why>"`` for a key knevents deliberately does not run, else ``""``."""
    why = UNSUPPORTED_REASONS.get(key)
    return f": {why}" if why else ""


def note(message: str, path: str) -> errors.Problem:
    """A "valid Argo, but knevents does not run it" note."""
    return errors.Problem(message=message, path=path, unsupported=True)


def unsupported_in_bus(bus: models.EventBus) -> Iterator[errors.Problem]:
    """Notes for EventBus types knevents does not run as they are."""
    spec = bus.spec
    if spec.kafka is not None:
        yield note(
            "EventBus type `kafka` is not run by knevents itself; `knevents render` maps it to a "
            "Kafka-backed Knative Broker, and `knevents run` uses its embedded JetStream",
            "spec.kafka",
        )
    if spec.nats is not None:
        yield note(
            "EventBus type `nats` (NATS Streaming) is not supported by knevents; its bus is JetStream "
            "(`jetstream:`), which `knevents run` embeds",
            "spec.nats",
        )
