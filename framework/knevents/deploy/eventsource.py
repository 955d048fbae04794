"""Render one Argo EventSource: its spec ConfigMap, its Knative Service, and PingSources.

Scaling follows how events arrive. A *push* source (webhook, github, gitlab,
sns, s3/minio notified through SNS, Pub/Sub push, a calendar ``schedule``
ticked by a PingSource) only works when a request comes in, so its Service
scales to zero (``min-scale: "0"``). A *pull* source (sqs, s3/minio through
SQS, Pub/Sub pull, nats, kafka, a calendar ``interval`` …) has to run to
poll, so it keeps one replica (``min-scale: "1"``) and no more
(``max-scale: "1"``) — except Kafka consumer groups, see :func:`_pull_scale`: like Argo's single active event source pod, two
pollers of a calendar interval or a plain NATS subscription would emit every
event twice. One pull entry makes the whole EventSource pull-type.

An EventSource with an entry of a type knevents does not run (no module in
:mod:`knevents.sources` registers it) is refused with a
:class:`~knevents.errors.SpecError`: deployed, it would be a Service that
never emits.

Only an EventSource that receives requests from outside (a push entry other
than a calendar, which a PingSource ticks from inside) gets a public route;
the others are ``cluster-local``.

Events are published to the Broker named by ``spec.eventBusName`` (default
``default``) at ``K_SINK``, which a SinkBinding sets from the Broker's
``status.address``: the ingress URL depends on the Broker class (the
channel-based broker's ``broker-ingress``, the Kafka broker's
``kafka-broker-ingress`` …), so it is never guessed here. The SinkBinding
comes before the Service so that Knative's webhook injects ``K_SINK`` into
the Service's first revision. A calendar with
``persistence.catchup`` also gets ``KNEVENTS_NATS_URL``: it keeps its last
tick in JetStream KV.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from knevents import errors
from knevents.deploy import names, objects, rbac, refs, workload
from knevents.deploy.options import RenderOptions

__all__ = ["PUSH", "Rendered", "is_push", "render", "supported"]

PUSH = "push"
PULL = "pull"

_ALWAYS_PUSH = frozenset(
    {
        "webhook",
        "github",
        "gitlab",
        "sns",
        "bitbucket",
        "bitbucketserver",
        "slack",
        "stripe",
        "storageGrid",
        "gerrit",
    }
)
_NOT_EVENTS = frozenset({"template", "eventBusName", "replicas", "service"})
CALENDAR_PATH = "/calendar/{event}"
"""Where a PingSource posts a calendar tick (the calendar source's push route)."""


@dataclass(frozen=True)
class Rendered:
    """The objects for one manifest and what could not be carried over."""

    objects: tuple[objects.Obj, ...]
    warnings: tuple[str, ...] = ()


def is_push(key: str, config: Mapping[str, Any]) -> bool:
    """Whether one event entry of type ``key`` receives its events as HTTP requests."""
    if key in _ALWAYS_PUSH:
        return True
    if key == "s3":
        return not config.get("sqs")
    if key == "minio":  # Argo's default listens on MinIO's stream (pull); sns/webhook deliveries are pushed
        return bool(config.get("sns") or config.get("webhook"))
    if key == "pubSub":
        return bool(config.get("push"))
    if key == "calendar":
        return bool(config.get("schedule"))
    return False


def _consumer_group(key: str, config: Mapping[str, Any]) -> bool:
    """Whether the type's descriptor deploys this entry as consumer-group replicas (a Kafka group)."""
    from knevents import sources
    from knevents.sources import base

    try:
        kind = sources.find(key)
        return kind.knative(kind.parse(config)) is base.Knative.CONSUMER_GROUP
    except Exception:  # an unknown type or an entry that does not parse: validation reports it, one replica here
        return False


def _pull_scale(found: list[tuple[str, str, Mapping[str, Any]]], replicas: Any) -> dict[str, str]:
    """One replica for a pull EventSource, unless every entry consumes in an upstream consumer group.

    A Kafka consumer group shares the partitions among its members, so such an EventSource runs
    ``spec.replicas`` replicas (default 1), each a member, and may be scaled further by hand or an HPA
    (no ``max-scale`` cap); Knative's request-driven autoscaler never adds replicas to a pull source.
    """
    if found and all(_consumer_group(key, config) for key, _, config in found):
        count = replicas if isinstance(replicas, int) and replicas > 0 else 1
        return {"autoscaling.knative.dev/min-scale": str(count)}
    return {"autoscaling.knative.dev/min-scale": "1", "autoscaling.knative.dev/max-scale": "1"}


def entries(spec: Mapping[str, Any]) -> list[tuple[str, str, Mapping[str, Any]]]:
    """Every (type key, event name, config) of an EventSource spec, in spec order."""
    out = []
    for key, events in spec.items():
        if key in _NOT_EVENTS or not isinstance(events, Mapping):
            continue
        for event_name, config in events.items():
            out.append((key, str(event_name), config if isinstance(config, Mapping) else {}))
    return out


def supported(key: str) -> bool:
    """Whether knevents runs event source type ``key``: asked of the source registry, never listed here."""
    from knevents import sources

    return sources.TYPES.get(key) is not None


def _refuse_unsupported(name: str, found: list[tuple[str, str, Mapping[str, Any]]]) -> None:
    """An entry of a type knevents does not run would deploy a Service that never emits: refuse it."""
    keys = sorted({key for key, _, _ in found if not supported(key)})
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
    push = all(is_push(key, config) for key, _, config in found)
    scale = (
        {"autoscaling.knative.dev/min-scale": "0"}
        if push
        else _pull_scale(found, spec.get("replicas"))
    )
    config_map = objects.config_map(svc, namespace, {names.SPEC_FILE: _spec_yaml(doc, namespace)}, labels)
    perms = rbac.for_sources(spec)
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
            public=any(is_push(key, config) and key != "calendar" for key, _, config in found),
        ),
        options.image,
    )
    pings = [
        _ping(name, svc, namespace, event_name, config, labels)
        for key, event_name, config in found
        if key == "calendar" and config.get("schedule")
    ]
    warnings = [
        f"EventSource {name}: spec.template.{field} is not rendered (a Knative Service does not take it)"
        for field in workload.unsupported_template_fields(spec.get("template") or {})
    ]
    warnings += [f"EventSource {name}: {w}" for w in workload.env_warnings(spec.get("template") or {})]
    warnings += [f"EventSource {name}: {w}" for w in perms.warnings]
    warnings.extend(
        f"EventSource {name}: file.{event_name} watches {(config.get('watchPathConfig') or {}).get('directory')} "
        "inside its pod: mount that directory into the rendered Service (add the volume to it); it runs one replica"
        for key, event_name, config in found
        if key == "file"
    )
    if not found:
        warnings.append(f"EventSource {name}: no event entries found")
    warnings.extend(f"EventSource {name}: {w}" for w in _route_clashes(found))
    binding = objects.sink_binding(svc, namespace, service=svc, broker=bus, labels=labels)
    return Rendered((config_map, *access, binding, service, *pings), tuple(warnings))


def _endpoint(key: str, event_name: str, config: Mapping[str, Any]) -> str | None:
    """The HTTP path a push entry listens on (None for pull entries)."""
    if not is_push(key, config):
        return None
    if key == "webhook":
        return str(config.get("endpoint") or "/")
    if key == "calendar":
        return CALENDAR_PATH.format(event=event_name)
    if key in ("s3", "minio"):
        return str((config.get("sns") or {}).get("endpoint") or f"/{event_name}")
    if key == "pubSub":
        return str((config.get("push") or {}).get("endpoint") or f"/{event_name}")
    return str((config.get("webhook") or {}).get("endpoint") or f"/{event_name}")


def _route_clashes(found: list[tuple[str, str, Mapping[str, Any]]]) -> list[str]:
    """Push entries that would share one path: fine on separate ports standalone, not on Knative's one $PORT."""
    owners: dict[str, list[str]] = {}
    for key, event_name, config in found:
        endpoint = _endpoint(key, event_name, config)
        if endpoint is not None:
            owners.setdefault(endpoint, []).append(f"{key}.{event_name}")
    return [
        f"{' and '.join(events)} listen on the same path {path}; on Knative every event shares one port, "
        "give them different endpoints"
        for path, events in owners.items()
        if len(events) > 1
    ]


def _env(
    found: list[tuple[str, str, Mapping[str, Any]]], namespace: str, bus: str, options: RenderOptions
) -> dict[str, str]:
    env = {"KNEVENTS_BUS": bus}
    # calendar catch-up keeps the last tick in JetStream KV: the only state an event source has
    if any(key == "calendar" and _catchup(config) for key, _, config in found):
        env.update(options.nats_env())
    return env


def _catchup(config: Mapping[str, Any]) -> bool:
    catchup = (config.get("persistence") or {}).get("catchup") or {}
    return bool(catchup.get("enabled"))


def _ping(
    source: str,
    svc: str,
    namespace: str,
    event_name: str,
    config: Mapping[str, Any],
    labels: Mapping[str, str],
) -> objects.Obj:
    sink = objects.destination(svc, uri=CALENDAR_PATH.format(event=event_name))
    return objects.ping_source(
        names.dns_label(source, event_name),
        namespace,
        schedule=str(config["schedule"]),
        timezone=config.get("timezone") or None,
        sink=sink,
        labels=labels,
    )


def _spec_yaml(doc: Mapping[str, Any], namespace: str) -> str:
    """The manifest as the function reads it, with the namespace it is deployed to."""
    out = dict(doc)
    out["metadata"] = {**(doc.get("metadata") or {}), "namespace": namespace}
    out.pop("status", None)
    return str(yaml.safe_dump(out, sort_keys=False))
