"""The ``kafka`` trigger: produce the firing's payload to a Kafka topic (Argo's KafkaTrigger), on aiokafka.

Fields, as Argo reads them: ``url`` (brokers, comma-separated) and ``topic``
(required), ``payload`` (required: Argo fails a trigger without it; the engine
builds the body from it), ``parameters`` (applied by the engine to this object
first, so a parameter may set the topic or the key), ``partitioningKey`` (the
record key), ``headers`` and ``secureHeaders`` (record headers, the latter from
Secrets or ConfigMaps), ``requiredAcks`` (``0`` none, ``1`` leader, ``-1`` all;
unset = all, Argo's ``WaitForAll``), ``compress``, ``tls``, ``sasl``.

Differences, each stated in docs/triggers.md: each firing waits for the
broker's acknowledgement (Argo hands the record to an async producer and
reports success before it is written), so a failure is retried under
``retryStrategy`` instead of being only logged; ``compress`` uses gzip (Argo:
snappy, which needs a native library in Python; every Kafka consumer reads
both); ``flushFrequency`` has no effect (nothing is batched across firings);
``partition`` is deprecated and unused, as in Argo; ``version`` is Sarama's
setting (aiokafka negotiates); ``tls`` verifies the broker unless
``insecureSkipVerify`` (Argo always skips verification here);
``schemaRegistry`` (Avro) is refused by validation. The record also carries
``Knevents-Event-Ids`` and ``traceparent`` headers.

A broker that is unreachable, a timeout or a retriable Kafka error (leader
election …) is :class:`errors.TriggerRetryableError`; an unknown topic with
auto-creation off, a record too large or an authorisation failure is
permanent. Secret values (SASL password, secure headers) never appear in a
message. One producer per broker configuration and event loop is kept (Argo
keeps one per trigger), stopped with its loop (:mod:`.pools`); aiokafka is
imported on first use.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from knevents import errors, kafkaconn
from knevents.spec import models, sensor_rules
from knevents.triggers import base, http, pools

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer

    from knevents.sensors import engine

__all__ = ["TRIGGER", "KafkaTrigger", "aclose", "record_headers"]

_PRODUCERS: pools.LoopPools[str, AIOKafkaProducer] = pools.LoopPools(lambda producer: producer.stop())
_TIMEOUT_MS = 15000


def record_headers(spec: Any, resolved: engine.Resolved, ctx: base.TriggerContext) -> tuple[list[tuple[str, bytes]], list[str]]:
    """The record headers (``headers``, ``secureHeaders``, event ids, traceparent) and the secret values used."""
    pairs = [(str(k), str(v).encode()) for k, v in (spec.headers or {}).items()]
    hidden: list[str] = []
    for secure in spec.secure_headers or []:
        source = secure.value_from
        if source is not None and source.secret_key_ref is not None:
            value = ctx.secrets.secret(source.secret_key_ref)
        elif source is not None and source.config_map_key_ref is not None:
            value = ctx.secrets.configmap(source.config_map_key_ref)
        else:
            raise errors.TriggerError(f"secureHeaders {secure.name}: valueFrom needs secretKeyRef or configMapKeyRef")
        pairs.append((str(secure.name), value.encode()))
        hidden.append(value)
    pairs.append((base.EVENT_IDS_HEADER, base.event_ids(resolved.events).encode()))
    if ctx.traceparent:
        pairs.append(("traceparent", ctx.traceparent.encode()))
    return pairs, hidden


def _options(spec: Any, ctx: base.TriggerContext) -> tuple[dict[str, Any], list[str]]:
    """aiokafka producer keywords for the brokers, acks, compression, TLS and SASL; and the secrets used."""
    acks = spec.required_acks if spec.required_acks not in (None, 0) else -1  # Argo: 0 means "unset" → all
    options: dict[str, Any] = {
        "bootstrap_servers": [u.strip() for u in str(spec.url).split(",") if u.strip()],
        "acks": "all" if acks == -1 else acks,
        "compression_type": "gzip" if spec.compress else None,
        "request_timeout_ms": _TIMEOUT_MS,
        "max_request_size": 2 * 1024 * 1024,
    }
    hidden: list[str] = []
    context: ssl.SSLContext | None = None
    if spec.tls is not None:
        verify, _, tls_secrets = http.ssl_context(spec.tls, ctx)
        context = None if isinstance(verify, bool) else verify
        hidden += tls_secrets
    sasl, user, password = spec.sasl, "", ""
    if sasl is not None:
        user = ctx.secrets.secret(sasl.user_secret) if sasl.user_secret else ""
        password = ctx.secrets.secret(sasl.password_secret) if sasl.password_secret else ""
        hidden.append(password)
    options.update(kafkaconn.security(context, (sasl.mechanism or "") if sasl is not None else None, user, password))
    return options, hidden


async def _producer(options: dict[str, Any]) -> AIOKafkaProducer:
    """The started producer for this configuration on the running loop (started on first use)."""
    from aiokafka import AIOKafkaProducer

    digest = hashlib.sha256(repr(sorted((k, repr(v)) for k, v in options.items())).encode()).hexdigest()
    producer = _PRODUCERS.here().get(digest)
    if producer is None:
        from aiokafka import errors as kafka_errors

        kafkaconn.patch_scram()
        producer = AIOKafkaProducer(**options)
        try:  # kafkaconn.start: a start cut short (the firing cancelled) leaves no bootstrap connection open
            await kafkaconn.start(producer)
        except kafka_errors.KafkaConnectionError as exc:
            await producer.stop()
            raise await kafkaconn.explain(options, exc) from None
        except BaseException:
            await producer.stop()
            raise
        kept = _PRODUCERS.here().setdefault(digest, producer)
        if kept is not producer:  # a concurrent firing started one first: keep one, stop the other
            await producer.stop()
        return kept
    return producer


class KafkaTrigger:
    """Produces ``resolved.payload`` to ``template.kafka.topic`` and waits for the broker's ack."""

    async def execute(self, resolved: engine.Resolved, ctx: base.TriggerContext) -> base.TriggerResult:
        spec = resolved.spec.template.kafka
        if spec is None:
            raise errors.TriggerError("the trigger has no template.kafka section")
        if not spec.url or not spec.topic:
            raise errors.TriggerError("kafka trigger needs both url and topic")
        if spec.payload is None:
            raise errors.TriggerError("kafka trigger: payload parameters are not specified")  # Argo's rule
        if spec.schema_registry is not None:
            raise errors.TriggerError("kafka trigger: schemaRegistry (Avro) is not supported by knevents")
        shown = f"Kafka {spec.url} topic {spec.topic}"
        headers, hidden = record_headers(spec, resolved, ctx)
        options, more = _options(spec, ctx)
        hidden += more
        if ctx.dry_run:
            return base.TriggerResult(resolved.trigger, resolved.kind, f"dry run: would produce to {shown}")
        key = spec.partitioning_key.encode() if spec.partitioning_key is not None else None
        meta = await _send(options, str(spec.topic), resolved.payload or b"", key, headers, shown, hidden)
        return base.TriggerResult(resolved.trigger, resolved.kind,
                                  f"produced to {shown} (partition {meta.partition}, offset {meta.offset})")


async def _send(options: dict[str, Any], topic: str, value: bytes, key: bytes | None,
                headers: list[tuple[str, bytes]], shown: str, hidden: list[str]) -> Any:
    from aiokafka import errors as kafka_errors

    try:
        producer = await _producer(options)
        return await asyncio.wait_for(producer.send_and_wait(topic, value, key=key, headers=headers),
                                      _TIMEOUT_MS / 1000 + 5)
    except kafkaconn.Failure as exc:  # the broker could not be reached or refused TLS/SASL: say which
        reason = base.scrub(str(exc), hidden)
        if exc.permanent:
            raise errors.TriggerError(f"{shown}: {reason}") from None
        raise errors.TriggerRetryableError(f"{shown}: could not produce: {reason}") from None
    except (OSError, TimeoutError, kafka_errors.KafkaConnectionError, kafka_errors.KafkaTimeoutError) as exc:
        await _forget()
        reason = base.scrub(str(exc) or type(exc).__name__, hidden)
        raise errors.TriggerRetryableError(f"{shown}: could not produce: {reason}") from None
    except kafka_errors.KafkaError as exc:
        reason = base.scrub(f"{type(exc).__name__}: {exc}", hidden)
        if getattr(exc, "retriable", False):
            raise errors.TriggerRetryableError(f"{shown}: {reason}") from None
        raise errors.TriggerError(f"{shown}: {reason}") from None


async def _forget() -> None:
    """Drop (and stop) this loop's producers after a connection failure: the next attempt starts afresh."""
    await _PRODUCERS.aclose()  # a producer of a dead broker may fail to stop: dropped anyway, after 5 s


async def aclose() -> None:
    """Stop the producers of the running loop (sensor shutdown)."""
    await _forget()


def _check(kafka: models.KafkaTrigger, ctx: base.CheckContext) -> Iterator[tuple[str, str]]:
    for value, key in ((kafka.url, "url"), (kafka.topic, "topic")):
        if not value:
            yield f"{ctx.path}.{key}", f"a kafka trigger needs `{key}`"
    if kafka.payload is None:
        yield f"{ctx.path}.payload", "a kafka trigger needs a `payload` list"
    if kafka.schema_registry is not None:
        yield f"{ctx.path}.schemaRegistry", "not supported by knevents: Avro encoding through a schema registry"
    yield from kafkaconn.check(kafka.tls, kafka.sasl, ctx.path)
    yield from sensor_rules.check_parameters(kafka.parameters, f"{ctx.path}.parameters", ctx.dependencies)
    yield from sensor_rules.check_parameters(kafka.payload, f"{ctx.path}.payload", ctx.dependencies)


TRIGGER = base.TriggerKind(
    key="kafka",
    model=models.KafkaTrigger,
    executor=KafkaTrigger(),
    summary="produces the payload built from the events to a Kafka topic, waiting for the broker's ack",
    check=_check,
)
