"""Render one Argo EventSource: its spec ConfigMap, its Knative Service, and PingSources.

How each entry runs is declared by its type (``SourceType.knative``, see
docs/extending.md); nothing here names a type. Scaling follows how events
arrive. A *push* entry (a webhook, an SNS or Pub/Sub push, a calendar
``schedule`` ticked by a PingSource) only works when a request comes in, so
the Service scales to zero (``min-scale: "0"``). A *pull* entry (sqs, nats, a
calendar ``interval`` …) has to run to poll, so it keeps one replica
(``min-scale: "1"``) and no more (``max-scale: "1"``): like Argo's single
active event source pod, two pollers of a calendar interval or a plain NATS
subscription would emit every event twice. One pull entry makes the whole
EventSource pull-type, except that consumer-group entries (a Kafka group)
run ``spec.replicas`` members with no cap.

Only an EventSource with a ``Knative.SERVICE`` entry (requests from outside)
gets a public route; a PingSource ticks from inside, so the others are
``cluster-local``. ``Knative.PING`` entries get a PingSource posting to their
endpoint; entries that keep state in JetStream KV (a calendar's catch-up) get
the NATS settings; the types' ``notes`` become render warnings.

Events are published to the Broker named by ``spec.eventBusName`` (default
``default``) at ``K_SINK``, which a SinkBinding sets from the Broker's
``status.address``: the ingress URL depends on the Broker class (the
channel-based broker's ``broker-ingress``, the Kafka broker's
``kafka-broker-ingress`` …), so it is never guessed here. The SinkBinding
comes before the Service so that Knative's webhook injects ``K_SINK`` into
the Service's first revision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from knevents import errors, sources
from knevents.deploy import names, objects, rbac, refs, workload
from knevents.deploy.options import RenderOptions
from knevents.sources import base
from knevents.spec import loading

__all__ = ["Entry", "Rendered", "entries", "render", "supported"]

_NOT_EVENTS = frozenset({"template", "eventBusName", "replicas", "service"})


@dataclass(frozen=True)
class Rendered:
    """The objects for one manifest and what could not be carried over."""

    objects: tuple[objects.Obj, ...]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Entry:
    """One event entry of the spec, with its type when knevents runs it and its config parses."""

    key: str
    name: str
    raw: Mapping[str, Any]
    type: base.SourceType[Any] | None
    config: Any

    @property
    def way(self) -> base.Knative:
        """How the entry is deployed; a type knevents does not run (or a config that does not parse) polls."""
        if self.type is None or self.config is None:
            return base.Knative.ONE_REPLICA
        return self.type.knative(self.config)


def entries(spec: Mapping[str, Any]) -> list[Entry]:
    """Every entry of an EventSource spec, in spec order."""
    out = []
    for key, events in spec.items():
        if key in _NOT_EVENTS or not isinstance(events, Mapping):
            continue
        source_type = sources.TYPES.get(key)
        for event_name, raw in events.items():
            config = raw if isinstance(raw, Mapping) else {}
            out.append(Entry(key, str(event_name), config, source_type, _parse(source_type, config)))
    return out


def supported(key: str) -> bool:
    """Whether knevents runs event source type ``key``: asked of the source registry, never listed here."""
    return sources.TYPES.get(key) is not None


def _refuse_unsupported(name: str, found: list[Entry]) -> None:
    """An entry of a type knevents does not run would deploy a Service that never emits: refuse it."""
    keys = sorted({entry.key for entry in found if entry.type is None})
    if keys:
        raise errors.SpecError(
            [
                errors.Problem(
                    f"EventSource {name}: event source type {key!r} is not supported by knevents; "
                    "render refuses to deploy a function that would never emit its events",
                    f"spec.{key}",
                    unsupported=True,
                )
                for key in keys
            ]
        )


def _parse(source_type: base.SourceType[Any] | None, raw: Mapping[str, Any]) -> Any:
    # unknown fields are dropped, as Argo (and the functions) read them
    return loading.lenient(source_type.model, dict(raw)) if source_type is not None else None


def _scale(found: list[Entry], replicas: Any) -> dict[str, str]:
    """Scale to zero when every entry is pushed; else one replica, or consumer-group members.

    A consumer group (a Kafka group, an AMQP queue several consumers share) shares the work among its
    members, so an EventSource whose entries all consume in one runs ``spec.replicas`` replicas (default 1) and may be
    scaled further by hand or an HPA (no ``max-scale`` cap); Knative's request-driven autoscaler never
    adds replicas to a pull source. Any other pull entry pins the EventSource to one replica.
    """
    ways = {entry.way for entry in found}
    if all(way.push for way in ways):
        return {"autoscaling.knative.dev/min-scale": "0"}
    if ways == {base.Knative.CONSUMER_GROUP}:
        count = replicas if isinstance(replicas, int) and replicas > 0 else 1
        return {"autoscaling.knative.dev/min-scale": str(count)}
    return {"autoscaling.knative.dev/min-scale": "1", "autoscaling.knative.dev/max-scale": "1"}


def service_name(event_source: str) -> str:
    """The Knative Service name of an EventSource."""
    return names.dns_label(event_source, "eventsource")


def render(doc: Mapping[str, Any], namespace: str, options: RenderOptions) -> Rendered:
    """All objects for one EventSource manifest (a dict in Argo's format)."""
    name = str(doc["metadata"]["name"])
    spec: Mapping[str, Any] = doc.get("spec") or {}
    labels = names.labels("eventsource", name)
    svc = service_name(name)
    bus = str(spec.get("eventBusName") or "default")
    found = entries(spec)
    _refuse_unsupported(name, found)
    scale = _scale(found, spec.get("replicas"))
    config_map = objects.config_map(svc, namespace, {names.SPEC_FILE: _spec_yaml(doc, namespace)}, labels)
    perms = rbac.for_sources(found)
    account: str | None = (spec.get("template") or {}).get("serviceAccountName")
    access = [objects.service_account(svc, namespace, labels)] if perms and not account else []
    access += rbac.role_objects("eventsource", name, namespace, perms, account or svc, labels)
    env = _env(found, namespace, bus, options)
    creds = options.nats_credentials_secret if "KNEVENTS_NATS_CREDS" in env else None
    service = workload.build(
        workload.Workload(
            function="eventsource",
            name=svc,
            namespace=namespace,
            spec_config_map=svc,
            references=refs.with_secret(refs.find(spec), creds),
            labels=labels,
            env=env,
            revision_annotations=scale,
            template=spec.get("template") or {},
            service_account=account or (svc if perms else None),
            public=any(entry.way is base.Knative.SERVICE for entry in found),
        ),
        options.image,
    )
    pings = [ping for entry in found if (ping := _ping(name, svc, namespace, entry, labels)) is not None]
    warnings = [
        f"EventSource {name}: spec.template.{field} is not rendered (a Knative Service does not take it)"
        for field in workload.unsupported_template_fields(spec.get("template") or {})
    ]
    warnings += [f"EventSource {name}: {w}" for w in workload.env_warnings(spec.get("template") or {})]
    warnings += [f"EventSource {name}: {w}" for w in perms.warnings]
    warnings.extend(
        f"EventSource {name}: {note}"
        for entry in found
        if entry.type is not None and entry.config is not None
        for note in entry.type.notes(entry.name, entry.config)
    )
    if not found:
        warnings.append(f"EventSource {name}: no event entries found")
    warnings.extend(f"EventSource {name}: {w}" for w in _route_clashes(found))
    binding = objects.sink_binding(svc, namespace, service=svc, broker=bus, labels=labels)
    return Rendered((config_map, *access, binding, service, *pings), tuple(warnings))


def _endpoints(entry: Entry) -> list[str]:
    """The HTTP paths a push entry listens on (none for pull entries)."""
    if entry.type is None or entry.config is None or not entry.way.push:
        return []
    return [found.path(entry.name) for found in entry.type.endpoints(entry.name, entry.config)]


def _route_clashes(found: list[Entry]) -> list[str]:
    """Push entries that would share one path: fine on separate ports standalone, not on Knative's one $PORT."""
    owners: dict[str, list[str]] = {}
    for entry in found:
        for endpoint in _endpoints(entry):
            owners.setdefault(endpoint, []).append(f"{entry.key}.{entry.name}")
    return [
        f"{' and '.join(events)} listen on the same path {path}; on Knative every event shares one port, "
        "give them different endpoints"
        for path, events in owners.items()
        if len(events) > 1
    ]


def _env(found: list[Entry], namespace: str, bus: str, options: RenderOptions) -> dict[str, str]:
    env = {"KNEVENTS_BUS": bus}
    # an entry that keeps state in JetStream KV (a calendar's catch-up) needs the NATS settings
    if any(entry.type is not None and entry.config is not None and entry.type.keeps_state(entry.config)
           for entry in found):
        env.update(options.nats_env())
    return env


def _ping(source: str, svc: str, namespace: str, entry: Entry, labels: Mapping[str, str]) -> objects.Obj | None:
    """The PingSource of a ``Knative.PING`` entry, posting to the entry's endpoint on the Service."""
    if entry.type is None or entry.config is None or entry.type.ping is None:
        return None
    ping = entry.type.ping(entry.config)
    paths = [found.path(entry.name) for found in entry.type.endpoints(entry.name, entry.config)]
    if ping is None or not paths:
        return None
    return objects.ping_source(
        names.dns_label(source, entry.name),
        namespace,
        schedule=ping.schedule,
        timezone=ping.timezone,
        sink=objects.destination(svc, uri=paths[0]),
        labels=labels,
    )


def _spec_yaml(doc: Mapping[str, Any], namespace: str) -> str:
    """The manifest as the function reads it, with the namespace it is deployed to."""
    out = dict(doc)
    out["metadata"] = {**(doc.get("metadata") or {}), "namespace": namespace}
    out.pop("status", None)
    return str(yaml.safe_dump(out, sort_keys=False))
