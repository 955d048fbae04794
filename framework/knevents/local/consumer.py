"""A sensor's durable JetStream consumer: its delivery policy, its name, and creating or updating it.

The runner's dispatcher (:mod:`knevents.local.dispatcher`) pulls from it. The consumer lives in the
JetStream store, so a restarted runner, and every worker of ``run --workers``, finds the same one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from dataclasses import dataclass
from typing import Any

from knevents import errors

__all__ = ["DeliveryPolicy", "consumer_name", "ensure"]

log = logging.getLogger("knevents.local.dispatcher")
_NOT_NAME = re.compile(r"[^A-Za-z0-9_-]")
_CREATE_ATTEMPTS = 5
"""Tries at creating a sensor's consumer when the server does not answer (one second apart)."""


@dataclass(frozen=True)
class DeliveryPolicy:
    """Retry and dead-letter rules, as a Knative Trigger's ``delivery`` would set them."""

    max_deliveries: int = 5
    """Attempts before the event goes to the dead-letter subject (Knative's ``retry`` + 1)."""
    backoff: float = 0.5
    """Seconds before the first redelivery, doubled per attempt (Knative's exponential ``backoffDelay``)."""
    max_backoff: float = 30.0
    """Seconds; cap on the redelivery delay so a long outage does not park events for hours."""
    ack_wait: float = 4.0
    """Seconds the server waits for an ack (or an in-progress ack) before redelivering: how long the events a
    crashed runner held stay parked. Long deliveries are kept alive by in-progress acks every ``ack_wait / 4``."""
    stop_grace: float = 3.0
    """Seconds a stopping dispatcher lets deliveries in flight finish before it cancels them and naks their
    messages; below the runner's 10 s stop budget."""
    concurrency: int = 16
    """Events handled at once per sensor; state updates are compare-and-set, so order is not needed. 16 keeps
    an HTTP trigger's connection pool small (httpcore scans its pool on every request) while hiding latency."""
    workers: int = 1
    """Processes pulling from the same consumer (``run --workers``): the consumer's unacked budget scales with it."""


def consumer_name(sensor: str) -> str:
    """The durable consumer name of a sensor (NATS names allow no dots, spaces or wildcards)."""
    return "sensor-" + _NOT_NAME.sub("_", sensor)


async def ensure(js: Any, stream: str, durable: str, subjects: list[str], policy: DeliveryPolicy,
                 sensor: str) -> None:
    """Create the durable consumer, or update its filter when the sensor's dependencies changed."""
    from nats.js import api

    config = api.ConsumerConfig(
        durable_name=durable,
        ack_policy=api.AckPolicy.EXPLICIT,
        deliver_policy=api.DeliverPolicy.NEW,
        max_deliver=-1,
        ack_wait=policy.ack_wait,
        # room for every worker's delivery slots (`run --workers`), with the same headroom per worker as one had
        max_ack_pending=policy.concurrency * 4 * max(1, policy.workers),
        filter_subjects=subjects if len(subjects) > 1 else None,
        filter_subject=subjects[0] if len(subjects) == 1 else None,
    )
    import nats.js.errors

    for attempt in range(_CREATE_ATTEMPTS):
        try:
            await js.add_consumer(stream, config)
            return
        except nats.js.errors.APIError as exc:
            # The server refused this config for the existing durable (a field it cannot update; filter
            # changes it updates itself): drop and recreate it. Events of the old config that were
            # still pending are of no interest to the new sensor.
            log.info("recreating consumer %s: %s", durable, exc)
            with contextlib.suppress(Exception):
                await js.delete_consumer(stream, durable)
            break
        except Exception as exc:
            # No answer (a timeout on a busy server, a reconnect): the durable may hold events that no
            # one got yet, and other workers of `run --workers` may be pulling from it; never delete it.
            if attempt == _CREATE_ATTEMPTS - 1:
                raise errors.BusUnavailableError(
                    f"cannot create the consumer of sensor {sensor}: {exc!r}") from exc
            log.warning("consumer %s: %r; trying again", durable, exc)
            await asyncio.sleep(1.0)
    try:
        await js.add_consumer(stream, config)
    except Exception as again:
        raise errors.BusUnavailableError(
            f"cannot create the consumer of sensor {sensor}: {again}"
        ) from again
