"""``knevents render --ui``: the web UI as a Knative Service beside the rendered functions.

One UI per namespace and bus (the UI follows one bus): a ConfigMap holding
every EventSource and Sensor manifest on that bus, mounted as files at
:data:`UI_DIR`, and a Knative Service whose container runs ``knevents ui`` on
those files (``$PORT`` comes from Knative). It reaches NATS exactly as the
sensor Services do (:meth:`RenderOptions.nats_env` and the same credentials
volume), so whatever state the sensors keep there, the page shows.

Choices:

* the bearer token comes from a Secret (``KNEVENTS_UI_TOKEN`` via
  ``secretKeyRef``), never a literal in the manifests; render lists that
  Secret among the prerequisites like every other Secret it references;
* read-only unless ``--ui-allow-actions``;
* scale to zero, and at most one replica: the live list lives in the
  process's memory and the per-session token of actions is per process, so a
  second replica would answer a page it did not serve with 403;
* the readiness probe asks ``/health``, the one path that answers without the
  token (200 ``ok``, no data);
* events: on Knative they travel through the Broker, so a Trigger with no filter
  on the bus's Broker delivers every event to the UI at :data:`EVENTS_PATH`
  (``knevents ui --receive-events``), which keeps them in a bounded stream on
  NATS (:mod:`knevents.ui.cluster`); the sensor Services get
  ``KNEVENTS_RECORD_FIRINGS=1`` (:mod:`knevents.deploy.sensor`) so their firings
  reach the page too; sensor Triggers without a dead-letter sink of the user's
  send their dead letters to the UI (:func:`dead_letter_path`);
* with ``--ui-allow-actions``, a SinkBinding gives the UI the Broker's address
  as ``K_SINK``, where replay sends the archived events (never guessed here:
  the address depends on the Broker class).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from knevents import errors
from knevents.deploy import eventsource, names, objects, workload
from knevents.deploy.options import RenderOptions
from knevents.settings import SecretSettings

__all__ = ["EVENTS_PATH", "TOKEN_KEY", "UI_DIR", "Rendered", "dead_letter_path", "render", "service_name"]

UI_DIR = f"{names.SPEC_DIR}/ui"
"""Where the manifests ConfigMap is mounted in the UI's container."""
TOKEN_KEY = "token"
"""The key of ``--ui-token-secret`` holding the bearer token."""
EVENTS_PATH = "/cloudevents"
"""Where the UI takes the Broker's CloudEvents (its Trigger's subscriber ``uri``; ``knevents.ui.cluster``)."""
_CONFIGMAP_LIMIT = 1024 * 1024
"""Bytes: the API server refuses a ConfigMap whose data is larger."""
_REVISION_ANNOTATIONS = {"autoscaling.knative.dev/min-scale": "0", "autoscaling.knative.dev/max-scale": "1"}


@dataclass(frozen=True)
class Rendered:
    """The UI objects of one namespace and bus."""

    name: str
    namespace: str
    objects: tuple[objects.Obj, ...]


def dead_letter_path(sensor: str) -> str:
    """Where the UI takes a sensor's dead letters (a sensor Trigger's ``deadLetterSink`` uri)."""
    return f"{EVENTS_PATH}/deadletters/{sensor}"


def service_name(bus: str) -> str:
    """``knevents-ui`` for the default bus, ``knevents-ui-<bus>`` for another."""
    return "knevents-ui" if bus == "default" else names.dns_label("knevents-ui", bus)


def render(docs: Sequence[tuple[str, Mapping[str, Any]]], options: RenderOptions) -> list[Rendered]:
    """The UI objects for ``(namespace, manifest)`` pairs (EventSources and Sensors), one set per namespace and bus."""
    sets: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for namespace, doc in docs:
        bus = str((doc.get("spec") or {}).get("eventBusName") or "default")
        sets.setdefault((namespace, bus), []).append(doc)
    out, problems = [], []
    for (namespace, bus), members in sorted(sets.items(), key=lambda item: item[0]):
        name = service_name(bus)
        data = {_file_name(doc): eventsource._spec_yaml(doc, namespace) for doc in members}
        size = sum(len(k) + len(v.encode()) for k, v in data.items())
        if size > _CONFIGMAP_LIMIT:
            problems.append(errors.Problem(
                f"the UI's ConfigMap {namespace}/{name} would hold {size} bytes of manifests, over the 1 MiB a "
                "ConfigMap may hold; render fewer manifests with --ui"))
            continue
        labels = names.labels("ui", name)
        config_map = objects.config_map(name, namespace, data, labels)
        service = _service(name, namespace, bus, labels, options)
        # the SinkBinding before the Service, so that Knative's webhook injects K_SINK when it is created
        binding = ((objects.sink_binding(name, namespace, service=name, broker=bus, labels=labels),)
                   if options.ui_allow_actions else ())
        out.append(Rendered(name, namespace, (config_map, *binding, service, _trigger(name, namespace, bus, labels,
                                                                                       options))))
    if problems:
        raise errors.SpecError(problems)
    return out


def _file_name(doc: Mapping[str, Any]) -> str:
    return names.dns_label(str(doc["kind"]).lower(), str(doc["metadata"]["name"])) + ".yaml"


def _trigger(name: str, namespace: str, bus: str, labels: Mapping[str, str], options: RenderOptions) -> objects.Obj:
    """Every event of the Broker to the UI (no filter); retried like a sensor's, never dead-lettered."""
    deliver: objects.Obj = {"retry": options.retry, "backoffPolicy": "exponential",
                            "backoffDelay": options.backoff_delay}
    return objects.trigger(name, namespace, broker_name=bus, filters={},
                           subscriber=objects.destination(name, uri=EVENTS_PATH), labels=labels, delivery=deliver)


def _service(name: str, namespace: str, bus: str, labels: Mapping[str, str], options: RenderOptions) -> objects.Obj:
    volumes: list[objects.Obj] = [{"name": "knevents-ui-manifests", "configMap": {"name": name}}]
    mounts: list[objects.Obj] = [{"name": "knevents-ui-manifests", "mountPath": UI_DIR, "readOnly": True}]
    creds = options.nats_credentials_secret
    if creds:  # the same volume and path as a sensor's (knevents.deploy.workload), named by KNEVENTS_NATS_CREDS
        volume = names.dns_label("secret", creds)
        volumes.append({"name": volume, "secret": {"secretName": creds}})
        mounts.append({"name": volume, "mountPath": f"{SecretSettings.secrets_dir}/{creds}", "readOnly": True})
    env: list[objects.Obj] = [{"name": k, "value": v} for k, v in options.nats_env().items()]
    env.append({"name": "KNEVENTS_BUS_NAME", "value": bus})
    env.append({"name": "KNEVENTS_UI_TOKEN",
                "valueFrom": {"secretKeyRef": {"name": options.ui_token_secret, "key": TOKEN_KEY}}})
    container = {
        "name": "ui",
        "image": options.image,
        "command": ["knevents"],
        "args": ["ui", UI_DIR, "--host", "0.0.0.0", "--receive-events",
                 *(["--allow-actions"] if options.ui_allow_actions else [])],
        "env": env,
        "volumeMounts": mounts,
        "readinessProbe": {"httpGet": {"path": "/health"}},
        "securityContext": workload.security_context(),
    }
    return objects.knative_service(name, namespace, labels=labels, container=container,
                                   revision_annotations=_REVISION_ANNOTATIONS, volumes=volumes)
