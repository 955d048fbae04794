"""Render one Argo Sensor: spec ConfigMap, Knative Service, Broker Triggers, RBAC.

A sensor only ever receives events from its Broker, so its Service scales to
zero. Each distinct ``(eventSourceName, eventName)`` among its dependencies
becomes one Knative Trigger with exact filters on the CloudEvent ``source``
and ``subject`` (two dependencies on the same event share a Trigger: the
sensor matches every dependency against each event it receives, and a second
delivery of the same event id would only be dropped as a duplicate).

Delivery to the sensor (``spec.delivery`` of each Trigger) is exponential
backoff with ``retry`` attempts from ``backoffDelay``; ``deadLetterSink`` is
set when the sensor carries the ``events.knevents.io/dead-letter-sink``
annotation or ``--dead-letter-sink`` is given, else with ``--ui`` to the UI. The annotations
``events.knevents.io/delivery-retry`` and
``events.knevents.io/delivery-backoff-delay`` override the defaults per sensor.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from knevents import errors
from knevents.deploy import eventsource, names, objects, rbac, refs, ui, workload
from knevents.deploy.options import RenderOptions
from knevents.runtime import sensor_app

__all__ = ["delivery", "render", "service_name"]

_ISO_DURATION = re.compile(r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$")


def service_name(sensor: str) -> str:
    """The Knative Service name of a Sensor."""
    return names.dns_label(sensor, "sensor")


def delivery(name: str, annotations: Mapping[str, str], options: RenderOptions, bus: str = "default") -> objects.Obj:
    """The Trigger ``delivery`` for a sensor; bad annotation values raise :class:`errors.SpecError`.

    With ``--ui`` and no dead-letter sink of the user's, the UI of the sensor's bus takes the dead letters (it
    keeps them for the page to show, replay or discard); a sink the user names wins (a Trigger has one).
    """
    problems = []
    retry_text = annotations.get(names.ANNOTATION_RETRY, str(options.retry))
    if not retry_text.isdigit():
        problems.append(
            errors.Problem(
                f"must be a non-negative integer, got {retry_text!r}", _path(names.ANNOTATION_RETRY)
            )
        )
    backoff = annotations.get(names.ANNOTATION_BACKOFF_DELAY, options.backoff_delay)
    if not _ISO_DURATION.match(backoff):
        problems.append(
            errors.Problem(
                f"must be an ISO-8601 duration like PT0.5S, got {backoff!r}",
                _path(names.ANNOTATION_BACKOFF_DELAY),
            )
        )
    sink = annotations.get(names.ANNOTATION_DEAD_LETTER_SINK, options.dead_letter_sink or "")
    if problems:
        raise errors.SpecError([errors.Problem(f"Sensor {name}: {p.message}", p.path) for p in problems])
    out: objects.Obj = {"retry": int(retry_text), "backoffPolicy": "exponential", "backoffDelay": backoff}
    if sink:
        out["deadLetterSink"] = _sink(sink)
    elif options.ui:
        out["deadLetterSink"] = objects.destination(ui.service_name(bus), uri=ui.dead_letter_path(name))
    return out


def _path(annotation: str) -> str:
    return f"metadata.annotations[{annotation}]"


def _sink(value: str) -> objects.Obj:
    if value.startswith(("http://", "https://")):
        return objects.destination(uri=value)
    return objects.destination(names.dns_label(value))


def render(doc: Mapping[str, Any], namespace: str, options: RenderOptions) -> eventsource.Rendered:
    """All objects for one Sensor manifest (a dict in Argo's format)."""
    name = str(doc["metadata"]["name"])
    annotations: Mapping[str, str] = doc["metadata"].get("annotations") or {}
    spec: Mapping[str, Any] = doc.get("spec") or {}
    template: Mapping[str, Any] = spec.get("template") or {}
    labels = names.labels("sensor", name)
    svc = service_name(name)
    out: list[objects.Obj] = [
        objects.config_map(svc, namespace, {names.SPEC_FILE: eventsource._spec_yaml(doc, namespace)}, labels)
    ]
    perms = rbac.derive(spec, namespace)
    account: str | None = template.get("serviceAccountName")
    if perms and not account:
        out.append(objects.service_account(svc, namespace, labels))
    out.extend(_rbac(name, namespace, perms, account or svc, labels))
    out.append(
        workload.build(
            workload.Workload(
                function="sensor",
                name=svc,
                namespace=namespace,
                spec_config_map=svc,
                references=refs.with_secret(refs.find(spec), options.nats_credentials_secret),
                labels=labels,
                env=_env(options),
                revision_annotations={"autoscaling.knative.dev/min-scale": "0"},
                service_account=account or (svc if perms else None),
                template=template,
            ),
            options.image,
        )
    )
    bus = str(spec.get("eventBusName") or "default")
    out.extend(_triggers(name, spec, namespace, labels, delivery(name, annotations, options, bus)))
    warnings = [f"Sensor {name}: {w}" for w in perms.warnings]
    warnings += [
        f"Sensor {name}: spec.template.{field} is not rendered (a Knative Service does not take it)"
        for field in workload.unsupported_template_fields(template)
    ]
    warnings += [f"Sensor {name}: {w}" for w in workload.env_warnings(template)]
    return eventsource.Rendered(tuple(out), tuple(warnings))


def _env(options: RenderOptions) -> dict[str, str]:
    """NATS, and with ``--ui`` the switch that makes the function write its firings where the UI reads them."""
    env = options.nats_env()
    if options.ui:
        env[sensor_app.RECORD_ENV] = "1"
    return env


def _rbac(
    name: str, namespace: str, perms: rbac.Permissions, account: str, labels: Mapping[str, str]
) -> list[objects.Obj]:
    return rbac.role_objects("sensor", name, namespace, perms, account, labels)


def _triggers(
    name: str, spec: Mapping[str, Any], namespace: str, labels: Mapping[str, str], deliver: objects.Obj
) -> list[objects.Obj]:
    broker = str(spec.get("eventBusName") or "default")
    seen: set[tuple[str, str]] = set()
    out = []
    for dep in spec.get("dependencies") or ():
        key = (str(dep["eventSourceName"]), str(dep["eventName"]))
        if key in seen:
            continue
        seen.add(key)
        out.append(
            objects.trigger(
                names.dns_label(name, str(dep["name"])),
                namespace,
                broker_name=broker,
                filters={"source": key[0], "subject": key[1]},
                subscriber=objects.destination(service_name(name)),
                labels=labels,
                delivery=deliver,
            )
        )
    return out
