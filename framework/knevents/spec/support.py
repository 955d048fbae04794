"""What knevents runs, and the "valid but not supported" report for everything else.

Argo Events defines far more event source types and trigger kinds than
knevents implements. A manifest using one of them is still *valid* Argo: it
loads, and the unsupported parts are listed as notes (``Problem(unsupported=True)``)
so ``knevents validate`` can say so without failing. The sets below are the
single place other parts keep in step with (the source registry, the trigger
registry, the renderer).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from knevents import errors
from knevents.spec import models

__all__ = [
    "SOURCE_SPEC_FIELDS",
    "SUPPORTED_ARTIFACT_LOCATIONS",
    "SUPPORTED_BUS_TYPES",
    "SUPPORTED_SOURCE_TYPES",
    "SUPPORTED_TRIGGER_KINDS",
    "TRIGGER_TEMPLATE_FIELDS",
    "source_types",
    "trigger_kinds",
    "unsupported_in_bus",
    "unsupported_in_sensor",
    "unsupported_in_source",
]

SUPPORTED_SOURCE_TYPES: frozenset[str] = frozenset(
    {
        "webhook", "github", "gitlab", "calendar", "sns", "sqs", "s3", "minio", "pubSub", "nats", "generic",
        "slack", "stripe", "bitbucket", "bitbucketserver", "gerrit", "storageGrid", "amqp", "file", "kafka", "mqtt",
        "resource", "redis", "redisStream", "azureQueueStorage",
    }
)
"""EventSource spec keys knevents runs (``knevents.sources.load`` has a module for each)."""

SUPPORTED_TRIGGER_KINDS: frozenset[str] = frozenset(
    {"k8s", "argoWorkflow", "http", "log", "awsLambda", "nats", "amqp", "slack", "email", "kafka"}
)
"""Trigger template keys knevents executes (``knevents.triggers.REGISTRY``)."""

SUPPORTED_BUS_TYPES: frozenset[str] = frozenset({"jetstream"})
"""EventBus types knevents runs as its bus (a JetStream-backed Knative Broker / embedded JetStream)."""

SUPPORTED_ARTIFACT_LOCATIONS: frozenset[str] = frozenset(
    {"resource", "inline", "configmap", "file", "url", "s3"}
)
"""``source:`` keys of k8s / argoWorkflow triggers knevents can read a resource from."""

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


def _note(message: str, path: str) -> errors.Problem:
    return errors.Problem(message=message, path=path, unsupported=True)


def unsupported_in_source(source: models.EventSource) -> Iterator[errors.Problem]:
    """Notes for the event source types of ``source`` that knevents does not run."""
    for key, _ in source_types(source.spec):
        if key not in SUPPORTED_SOURCE_TYPES:
            yield _note(f"event source type `{key}` is not supported by knevents", f"spec.{key}")


def _unsupported_in_trigger(trigger: models.Trigger, path: str) -> Iterator[errors.Problem]:
    template = trigger.template
    for kind in trigger_kinds(template):
        if kind not in SUPPORTED_TRIGGER_KINDS:
            yield _note(f"trigger kind `{kind}` is not supported by knevents", f"{path}.template.{kind}")
    for kind, spec in (("k8s", template.k8s), ("argoWorkflow", template.argo_workflow)):
        source = getattr(spec, "source", None) if spec is not None else None
        if source is None:
            continue
        for attr, alias in _aliases(models.ArtifactLocation).items():
            if getattr(source, attr) is not None and alias not in SUPPORTED_ARTIFACT_LOCATIONS:
                yield _note(
                    f"reading the {kind} resource from `source.{alias}` is not supported by knevents",
                    f"{path}.template.{kind}.source.{alias}",
                )
    if trigger.dlq_trigger is not None:
        yield from _unsupported_in_trigger(trigger.dlq_trigger, f"{path}.dlqTrigger")


def unsupported_in_sensor(sensor: models.Sensor) -> Iterator[errors.Problem]:
    """Notes for the trigger kinds and resource sources of ``sensor`` that knevents does not run."""
    for index, trigger in enumerate(sensor.spec.triggers):
        yield from _unsupported_in_trigger(trigger, f"spec.triggers[{index}]")


def unsupported_in_bus(bus: models.EventBus) -> Iterator[errors.Problem]:
    """Notes for EventBus types knevents does not run as they are."""
    spec = bus.spec
    if spec.kafka is not None:
        yield _note(
            "EventBus type `kafka` is not run by knevents itself; `knevents render` maps it to a "
            "Kafka-backed Knative Broker, and `knevents run` uses its embedded JetStream",
            "spec.kafka",
        )
    if spec.nats is not None:
        yield _note(
            "EventBus type `nats` (NATS Streaming) is not supported by knevents; its bus is JetStream "
            "(`jetstream:`), which `knevents run` embeds",
            "spec.nats",
        )
