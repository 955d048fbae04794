"""The aiokafka side of the ``kafka`` source: client options from Argo's fields, consumers, errors.

Kept apart from :mod:`knevents.sources.kafka` so the Argo semantics read
without the client's knobs. aiokafka is imported inside each function: the
event-source function must not pay for it unless a spec uses ``kafka``.

Why aiokafka (measured on Tansu, see docs/event-sources.md): it is asyncio
native (the runtime is an asyncio loop; librdkafka's confluent-kafka needs a
thread per consumer), its consumer groups join in ~5 s on Tansu where
librdkafka's stall up to ``max.poll.interval.ms``, and its fetch loop keeps up
with the bus publish rate, which is what bounds ingest.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from knevents import kafkaconn
from knevents.sources import base, common, tls

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer

__all__ = ["consumer", "errors", "options", "partitions", "start", "subscribe"]



def errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "the broker is unreachable or refused us": reconnect with backoff."""
    from aiokafka import errors as kafka_errors

    return (kafka_errors.KafkaError, OSError, TimeoutError)


def options(config: Any, ctx: base.SourceContext) -> dict[str, Any]:
    """Connection keyword arguments for aiokafka: brokers, TLS and SASL from Secrets."""
    opts: dict[str, Any] = {"bootstrap_servers": [u.strip() for u in str(config.url).split(",") if u.strip()],
                            "request_timeout_ms": 15000, "retry_backoff_ms": 200}
    context = tls.client_context(config.tls, ctx.secrets, "tls")
    sasl = config.sasl
    user = password = ""
    if sasl is not None:
        user = common.read_secret(ctx.secrets, sasl.user_secret, "sasl.userSecret")
        password = common.read_secret(ctx.secrets, sasl.password_secret, "sasl.passwordSecret")
    opts.update(kafkaconn.security(context, (sasl.mechanism or "") if sasl is not None else None, user, password))
    return opts


async def start(consumer: AIOKafkaConsumer, opts: dict[str, Any]) -> None:
    """Start ``consumer``; when it cannot, raise an error that names the cause (TLS, SASL login, network)."""
    from aiokafka import errors as kafka_errors

    kafkaconn.patch_scram()
    try:
        await consumer.start()
    except kafka_errors.KafkaConnectionError as exc:
        failure = await kafkaconn.explain(opts, exc)
        raise kafka_errors.KafkaConnectionError(str(failure)) from None


async def stop(consumer: AIOKafkaConsumer) -> None:
    """Stop ``consumer`` without holding a shutdown for a lost broker, and never leave a connection open.

    aiokafka's ``stop`` talks to the broker (leaving the group) before it closes the client's connections;
    with the broker gone it can wait long, or raise and skip the closing, and the sockets leak. So it gets 5 s,
    and the client's connections are closed afterwards in any case (closing twice is harmless).
    """
    with contextlib.suppress(Exception):
        await asyncio.wait_for(asyncio.shield(consumer.stop()), 5)
    client = getattr(consumer, "_client", None)  # aiokafka keeps its connection pool there
    if client is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.close(), 5)


def consumer(config: Any, opts: dict[str, Any], private_group: str | None) -> AIOKafkaConsumer:
    """A consumer: in ``config.consumerGroup``, or (no group) with a private group id used only for commits."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.coordinator.assignors.range import RangePartitionAssignor
    from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
    from aiokafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor

    group = config.consumer_group
    strategy = {"roundrobin": RoundRobinPartitionAssignor, "sticky": StickyPartitionAssignor}.get(
        (group.rebalance_strategy or "") if group is not None else "", RangePartitionAssignor)
    return AIOKafkaConsumer(
        group_id=group.group_name if group is not None else private_group,
        enable_auto_commit=False,
        # the initial position of a new group is chosen in subscribe(); a position that falls out of
        # range later (a recreated topic) restarts from the earliest record rather than skipping some
        auto_offset_reset="earliest",
        partition_assignment_strategy=(strategy,),
        max_partition_fetch_bytes=2 * 1024 * 1024,  # room for a record over the bus limit, skipped as too_large
        **opts,
    )


def subscribe(consumer: AIOKafkaConsumer, config: Any) -> None:
    """Join the group on ``topic``; a partition the group never committed starts at the newest offset unless ``oldest``."""
    from aiokafka.abc import ConsumerRebalanceListener

    oldest = bool(config.consumer_group.oldest)

    class _Start(ConsumerRebalanceListener):  # type: ignore[misc]
        async def on_partitions_revoked(self, revoked: Any) -> None:
            return None

        async def on_partitions_assigned(self, assigned: Any) -> None:
            for tp in assigned:
                if not oldest and await consumer.committed(tp) is None:
                    await consumer.seek_to_end(tp)

    consumer.subscribe([str(config.topic)], listener=_Start())


async def partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    """The partitions of ``topic`` the cluster knows (empty when the topic does not exist)."""
    cluster = await consumer._client.fetch_all_metadata()
    return set(cluster.partitions_for_topic(topic) or ())
