"""The UI beside a Knative cluster: it receives the Broker's events itself, and replays into the Broker.

On Knative, events travel through the Broker, never through a knevents bus
stream, so ``knevents render --ui`` subscribes the UI to the Broker (a Trigger
with no filter) and the UI keeps what it receives in a stream of its own on the
cluster's NATS — the stream the runner's bus would have, ``KNEVENTS-<bus>``,
bounded by :data:`ARCHIVE` — so the page's live list, counts and replay read it
exactly as they read a runner's bus.

* :func:`receive` takes one CloudEvent from an HTTP request (binary or
  structured mode, parsed by :func:`knevents.events.from_http`) and appends it
  with ``Nats-Msg-Id`` = its source and id (unique together, as CloudEvents
  asks of producers), so a Broker redelivery inside :data:`DUPLICATE_WINDOW` is
  stored and listed once, and another producer's event with the same id is not
  taken for it.
* The path (:data:`PATH`) needs no UI token — the Broker has none — so it only
  answers requests addressed to a cluster-local name (``<service>.<namespace>.svc…``,
  how the Broker reaches its subscribers) or to loopback: an outsider reaching
  the UI's public URL cannot add events to the archive that a replay would
  then hand to the sensors.
* Dead letters: ``render --ui`` makes the UI the ``deadLetterSink`` of sensor
  Triggers that have none, at ``PATH/deadletters/<sensor>`` (``deploy.ui.dead_letter_path``); Knative posts the
  event that ran out of retries there (with its ``knativeerror*`` attributes),
  and the UI keeps it where the runner keeps its own dead letters
  (``<bus>.dlq.<sensor>``, read through ``KNEVENTS_DLQ``), for the page to show,
  replay or discard.
* :func:`replay_to_broker` re-sends archived events to the Broker's ingress
  (``K_SINK``, given by a SinkBinding) as CloudEvents over HTTP, marked as a
  replay for one sensor (the other sensors the Broker also delivers to ignore it).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import unquote

from knevents import errors, events
from knevents.bus import codec, jetstream, naming, retention
from knevents.bus import stream as bus_stream
from knevents.deploy import ui as deploy_ui
from knevents.local import replay, streams
from knevents.runtime import sensor as sensor_runtime

__all__ = ["ARCHIVE", "CLUSTER_DOMAIN_ENV", "DUPLICATE_WINDOW", "PATH", "Received", "accept", "addressed_inside", "dead_letter_sensor",
           "originals", "parse", "prepare", "receive", "replay_to_broker", "resender"]

PATH = deploy_ui.EVENTS_PATH
"""Where the UI's Trigger delivers (``render --ui`` names it in the Trigger's subscriber)."""
ARCHIVE = retention.Retention(max_age=24 * 3600.0, max_bytes=256 * 1024**2, max_msgs=200_000)
"""What the UI keeps of the Broker's events: a day, at most 256 MiB and 200,000 events (oldest go first)."""
CLUSTER_DOMAIN_ENV = "KNEVENTS_CLUSTER_DOMAIN"
"""The Kubernetes cluster domain when it is not ``cluster.local``."""
DUPLICATE_WINDOW = 600.0
"""Seconds a redelivered event id is recognised: longer than the Broker's retries with their backoff."""


@dataclasses.dataclass(frozen=True)
class Received:
    """What became of one delivery."""

    event: events.Event
    subject: str
    headers: Mapping[str, str]
    duplicate: bool


async def prepare(js: Any, bus: str) -> None:
    """Create (or bound) the stream the received events go to, the dead letters' and the firing log."""
    await bus_stream.ensure_stream(js, bus, duplicate_window=DUPLICATE_WINDOW, limits=ARCHIVE)
    await streams.ensure(js, bus)  # KNEVENTS_DLQ (sourced from the bus stream) and KNEVENTS_FIRINGS


def addressed_inside(host_header: str, cluster_domain: str | None = None) -> bool:
    """Whether a request names a cluster-local host (``<svc>.<ns>.svc`` or ``<svc>.<ns>.svc.<cluster domain>``)
    or loopback. Exact forms only: a public domain that happens to start with ``svc.`` does not pass."""
    host = host_header.strip().lower()
    if host.startswith("["):  # an IPv6 literal, then nothing or a port
        name, _, rest = host[1:].partition("]")
        if rest and not rest.startswith(":"):
            return False
    else:
        name = host.rsplit(":", 1)[0]
    if name in ("localhost", "127.0.0.1", "::1"):
        return True
    labels = name.split(".")
    if len(labels) < 3 or labels[2] != "svc" or not all(labels[:2]):
        return False
    domain = (cluster_domain or os.environ.get(CLUSTER_DOMAIN_ENV) or "cluster.local").strip(".").lower()
    return ".".join(labels[3:]) in ("", domain)


def parse(headers: Mapping[str, str], body: bytes) -> events.Event:
    """The CloudEvent of a delivery; EventError (a 400) when it is not one or would pose as a dead letter."""
    event = events.from_http(headers, body)
    if event.source == streams.RESERVED_SOURCE:
        raise errors.EventError(f"source {event.source!r} is reserved for dead letters")
    return event


async def receive(js: Any, bus: str, event: events.Event, dead_for: str | None = None, *, limit: int = 0) -> Received:
    """Append ``event`` to the archive (or, ``dead_for`` a sensor, to its dead letters); ``duplicate`` when the
    stream already held it.

    Refused before NATS sees them: names making too long a subject (EventError: nats-server would close the
    connection, and nats-py its client for good) and a message over ``limit`` (NATS max_payload) less the
    runner's dead-letter headroom (EventTooLargeError, a 413 the Broker does not retry, where NATS's own
    refusal would be a 503 it retries in vain).
    """
    headers, body = codec.encode_nats(event)
    marked = event.extensions.get(replay.REPLAY_EXTENSION)
    # a replay the UI sent through the Broker comes back: its own id, or the original's hides it
    headers[codec.MSG_ID_HEADER] = _msg_id(event, "replay", marked) if marked else _msg_id(event)
    if dead_for is not None:
        subject: str | None = streams.dlq_subject(bus, dead_for)
        headers.update(_dead_letter_headers(event, dead_for))
    else:
        subject = naming.foreign_subject(bus, event.source, event.subject)
    if subject is None:
        raise errors.EventError(f"source and subject are too long for a bus subject (at most {naming.MAX_SUBJECT} "
                                "bytes once escaped)")
    room = limit - jetstream.DLQ_HEADROOM
    if limit and not jetstream.fits(body, headers, room):
        raise errors.EventTooLargeError(f"event with its headers over {room} bytes (NATS max_payload less "
                                        f"{jetstream.DLQ_HEADROOM} for dead-letter headers)", limit=room)
    try:
        ack = await js.publish(subject, body, headers=headers, stream=naming.stream_name(bus))
    except Exception as exc:
        raise errors.BusUnavailableError(f"the UI's stream did not take the event: {exc}") from exc
    return Received(event, subject, headers, bool(getattr(ack, "duplicate", False)))


def _msg_id(event: events.Event, *marks: str) -> str:
    """The event's ``Nats-Msg-Id``: its source and id, which CloudEvents makes unique together (two producers on
    one Broker may both send an id ``1``), the source's length first so no two pairs read alike."""
    return "-".join((*marks, f"{len(event.source)}:{event.source}:{event.id}"))


def _dead_letter_headers(event: events.Event, sensor: str) -> dict[str, str]:
    """The runner's dead-letter headers, from what Knative says of the failed delivery."""
    code = event.extensions.get("knativeerrorcode", "")
    where = event.extensions.get("knativeerrordest", "")
    reason = f"HTTP {code} from {where}" if code else f"not delivered to {where or 'the sensor'}"
    return {"Knevents-Sensor": sensor, "Knevents-Reason": reason[:500], "Knevents-Deliveries": "",
            codec.MSG_ID_HEADER: _msg_id(event, "dlq", sensor, event.extensions.get(replay.REPLAY_EXTENSION, ""))}


def dead_letter_sensor(path: str, sensors: Any) -> str | None:
    """The sensor of ``PATH/deadletters/<sensor>``, or None for :data:`PATH` itself; ValueError if unknown."""
    if path == PATH:
        return None
    prefix = deploy_ui.dead_letter_path("")
    name = unquote(path.removeprefix(prefix))
    if not path.startswith(prefix) or name not in sensors:
        raise ValueError(f"no sensor {name!r} here to take dead letters for")
    return name


async def accept(hub: Any, path: str, headers: Mapping[str, str], read: Callable[[], Awaitable[bytes | None]],
                 limit: int) -> tuple[int, dict[str, Any]]:
    """One delivery to :data:`PATH` (or a dead letter under it): the answer's status and JSON (2xx stored,
    4xx never retried, 503 retried). The body is ``read`` (None: over ``limit``) only once the host passed."""
    if not addressed_inside(headers.get("host", "")):  # the app passes "" for two Host headers
        return 403, {"error": "events are taken only from inside the cluster (the Broker), at a .svc address"}
    body = await read()
    if body is None:
        return 413, {"error": f"event over {limit} bytes (the NATS server's max_payload)"}
    try:
        event = parse(headers, body)
    except (errors.EventError, RecursionError, UnicodeDecodeError) as exc:
        return 400, {"error": f"invalid CloudEvent: {exc}" if isinstance(exc, errors.EventError)
                     else f"malformed CloudEvent: {type(exc).__name__}"}
    try:
        dead_for = dead_letter_sensor(path, hub.sensors)
    except ValueError as exc:
        return 400, {"error": str(exc)}  # not 404: Knative retries a 404
    try:
        got = await receive(hub.js, hub.bus, event, dead_for, limit=limit)
    except errors.EventTooLargeError as exc:
        return 413, {"event_id": event.id, "error": str(exc)}
    except errors.EventError as exc:
        return 400, {"event_id": event.id, "error": f"invalid CloudEvent: {exc}"}
    except errors.BusUnavailableError as exc:
        return 503, {"event_id": event.id, "error": str(exc)}
    if not got.duplicate:
        hub.take(got.subject, got.headers, event.data or b"")
    return 200, {"event_id": event.id, "duplicate": got.duplicate}


async def replay_to_broker(url: str, sensor: str, found: Sequence[events.Event], *,
                           trigger: str | None = None) -> str:
    """POST ``found`` to the Broker at ``url`` as a replay for ``sensor`` only; returns the replay id."""
    from knevents.bus import http

    replay_id = uuid.uuid4().hex[:16]
    sink = http.HttpSinkPublisher(url)
    try:
        for event in found:
            kept = {k: v for k, v in event.extensions.items() if not k.startswith("knativeerror")}
            extensions = {**kept, replay.REPLAY_EXTENSION: replay_id,
                          sensor_runtime.REPLAY_SENSOR_EXTENSION: sensor}
            if trigger:
                extensions[replay.REPLAY_TRIGGER_EXTENSION] = trigger
            await sink.publish(dataclasses.replace(event, extensions=extensions))
    finally:
        await sink.close()
    return replay_id


def resender(broker_url: str | None, receiving: bool) -> Callable[..., Awaitable[str]] | None:
    """How the UI replays (``Hub.resend``): to the Broker at ``broker_url``; beside a cluster without one, a
    refusal (onto the NATS bus a replay would reach no sensor there, and say it had); else None: onto the bus."""
    if broker_url:
        return functools.partial(replay_to_broker, broker_url)
    return _no_broker if receiving else None


async def _no_broker(sensor: str, found: Sequence[events.Event], *, trigger: str | None = None) -> str:
    raise errors.KneventsError("replay beside a cluster goes through the Broker, and this UI has no Broker address "
                               "(--broker-url, or K_SINK, which the SinkBinding of render --ui-allow-actions sets): "
                               "nothing was replayed")


def originals(found: Sequence[events.Event]) -> list[events.Event]:
    """The archived events that are not themselves replays (a replay comes back through the Broker)."""
    return [e for e in found if not e.extensions.get(replay.REPLAY_EXTENSION)]
