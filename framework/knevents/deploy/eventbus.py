"""Render an Argo EventBus as a Knative Broker (and the Broker's config).

* ``jetstream``: a channel-based Broker (``MTChannelBasedBroker``) whose
  config ConfigMap names ``NatsJetStreamChannel`` (eventing-natss,
  ``messaging.knative.dev/v1alpha1``) as its channel, with the stream limits
  taken from Argo's ``streamConfig``, read as Argo reads them
  (:mod:`knevents.deploy.gocast`: ``maxAge: 72h`` is a Go duration,
  ``maxBytes: 1GB`` is 0 to Argo, i.e. no limit — with a warning).
* ``kafka``: a ``Kafka``-class Broker with its config ConfigMap
  (``bootstrap.servers``); Argo's ``topic`` becomes the external-topic
  annotation so an existing topic is used.
* ``nats`` (NATS Streaming, deprecated upstream) and ``jetstreamExotic``: a
  JetStream bus with Argo's default stream settings, with a warning.
* No EventBus at all: the same, for every bus name that sources or sensors
  use (see :func:`default_broker`).

A Broker's spec (and class) is immutable, and two examples applied into one
namespace often both need Broker ``default``: every JetStream Broker is
therefore rendered with one and the same spec (its config is the ConfigMap
``<name>-jetstream-channel`` of its namespace), and what differs — the stream
settings — lives in that ConfigMap. Without ``streamConfig`` the ConfigMap is
Argo's default, so an EventBus without one and no EventBus at all render
identically.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from knevents import errors
from knevents.deploy import eventsource, gocast, names, objects

__all__ = ["CHANNEL_BROKER", "KAFKA_BROKER", "default_broker", "render"]

CHANNEL_BROKER = "MTChannelBasedBroker"
KAFKA_BROKER = "Kafka"

# Argo streamConfig key -> (NatsJetStreamChannel spec.stream.config key, how Argo reads it); the only
# keys Argo reads (pkg/eventbus/jetstream/base/jetstream.go), every other key is ignored by Argo too
_STREAM_INTS: Mapping[str, str] = {"maxMsgs": "maxMsgs", "maxBytes": "maxBytes", "replicas": "replicas"}
_STREAM_DURATIONS: Mapping[str, str] = {"maxAge": "maxAge", "duplicates": "duplicateWindow"}
# Argo reads retention/discard as integers (nats.go's enums); eventing-natss takes the names
_RETENTION = ("Limits", "Interest", "Work")
_DISCARD = ("Old", "New")
ARGO_DEFAULT_STREAM = "maxMsgs: 1000000\nmaxAge: 72h\nmaxBytes: 1GB\nreplicas: 3\nduplicates: 300s\n"
"""The stream settings Argo's controller config ships (``jetStream.streamConfig``), used without a streamConfig."""


def default_broker(name: str, namespace: str) -> tuple[objects.Obj, ...]:
    """The Broker for a bus name no EventBus manifest defines: a JetStream bus with Argo's default stream.

    It is rendered exactly as ``EventBus {name}: {jetstream: {}}`` would be, so
    the same Broker is never rendered two ways (its spec is immutable).
    """
    return _jetstream(name, namespace, {}, names.labels("eventbus", name)).objects


def render(doc: Mapping[str, Any], namespace: str) -> eventsource.Rendered:
    """The Broker (and config) for one EventBus manifest."""
    name = str(doc["metadata"]["name"])
    spec: Mapping[str, Any] = doc.get("spec") or {}
    labels = names.labels("eventbus", name)
    if spec.get("jetstream") is not None:
        return _jetstream(name, namespace, spec["jetstream"] or {}, labels)
    if spec.get("kafka") is not None:
        return _kafka(name, namespace, spec["kafka"] or {}, labels)
    kind = next((k for k in ("nats", "jetstreamExotic") if spec.get(k) is not None), "no bus type")
    warning = f"EventBus {name}: {kind} is rendered as a JetStream bus with Argo's default stream settings"
    return eventsource.Rendered(default_broker(name, namespace), (warning,))


def _jetstream(
    name: str, namespace: str, bus: Mapping[str, Any], labels: Mapping[str, str]
) -> eventsource.Rendered:
    warnings: list[str] = []
    if bus.get("streamConfig"):
        stream = _stream_config(name, bus["streamConfig"], warnings)
        warnings.append(
            f"EventBus {name}: the stream settings are read when Broker {name} is created; a Broker {name} "
            "that already exists keeps its stream (delete it first to change them)"
        )
    else:  # Argo's own default; its `maxBytes: 1GB` reads as no limit, said once in the docs, not per render
        stream = _stream_config(name, ARGO_DEFAULT_STREAM, [])
    channel: objects.Obj = {
        "apiVersion": "messaging.knative.dev/v1alpha1",
        "kind": "NatsJetStreamChannel",
        "spec": {"stream": {"config": stream}},
    }
    config_name = names.dns_label(name, "jetstream-channel")
    config = objects.config_map(
        config_name, namespace, {"channel-template-spec": yaml.safe_dump(channel, sort_keys=False)}, labels
    )
    # every JetStream Broker has this same spec, whatever its stream settings: those live in the
    # ConfigMap (mutable), so two renderings of one Broker never differ in the immutable part
    broker = objects.broker(
        name,
        namespace,
        broker_class=CHANNEL_BROKER,
        labels=labels,
        config={"apiVersion": "v1", "kind": "ConfigMap", "name": config_name, "namespace": namespace},
    )
    return eventsource.Rendered((config, broker), tuple(warnings))


def _stream_config(name: str, text: Any, warnings: list[str]) -> dict[str, Any]:
    """Argo's ``streamConfig`` read as Argo reads it, as NatsJetStreamChannel ``stream.config``."""
    if not text:
        return {}
    try:
        parsed = yaml.safe_load(text) if isinstance(text, str) else text
    except yaml.YAMLError:
        warnings.append(f"EventBus {name}: spec.jetstream.streamConfig is not YAML; stream defaults are used")
        return {}
    if not isinstance(parsed, Mapping):
        return {}
    out: dict[str, Any] = {}
    where = f"EventBus {name}: streamConfig"
    for key, value in parsed.items():
        if key in _STREAM_INTS:
            number, why = gocast.to_int(value)
            if why:
                warnings.append(f"{where}.{key}: Argo reads {why} as 0 (no limit); so does knevents")
            if number > 0:  # 0 and -1 are JetStream's "no limit" (replicas: its default, 1)
                out[_STREAM_INTS[key]] = number
        elif key in _STREAM_DURATIONS:
            nanos, why = gocast.to_duration(value)
            if why:
                warnings.append(f"{where}.{key}: Argo reads {why} as 0 (the default); so does knevents")
            if nanos < 0:
                raise errors.SpecError([errors.Problem(f"{where}.{key} must not be negative, got {value!r}")])
            if nanos:
                out[_STREAM_DURATIONS[key]] = gocast.go_duration(nanos)
        elif key in ("retention", "discard"):
            names_ = _RETENTION if key == "retention" else _DISCARD
            number, _ = gocast.to_int(value)
            if not 0 <= number < len(names_):
                raise errors.SpecError(
                    [
                        errors.Problem(
                            f"{where}.{key} must be 0..{len(names_) - 1} (as Argo reads it), got {value!r}"
                        )
                    ]
                )
            out[key] = names_[number]
        else:
            warnings.append(f"{where}.{key} is not read by Argo; not rendered")
    return out


def _kafka(
    name: str, namespace: str, bus: Mapping[str, Any], labels: Mapping[str, str]
) -> eventsource.Rendered:
    warnings = []
    config_name = names.dns_label(name, "kafka-broker-config")
    data = {
        "bootstrap.servers": str(bus.get("url") or ""),
        "default.topic.partitions": "10",
        "default.topic.replication.factor": "3",
    }
    if bus.get("tls") or bus.get("sasl"):
        data["auth.secret.ref.name"] = names.dns_label(name, "kafka-auth")
        warnings.append(
            f"EventBus {name}: TLS/SASL settings must be put in Secret {data['auth.secret.ref.name']} "
            "in the format the Knative Kafka broker expects"
        )
    annotations = (
        {"kafka.eventing.knative.dev/external.topic": str(bus["topic"])} if bus.get("topic") else None
    )
    config = objects.config_map(config_name, namespace, data, labels)
    broker = objects.broker(
        name,
        namespace,
        broker_class=KAFKA_BROKER,
        labels=labels,
        annotations=annotations,
        config={"apiVersion": "v1", "kind": "ConfigMap", "name": config_name, "namespace": namespace},
    )
    return eventsource.Rendered((config, broker), tuple(warnings))
