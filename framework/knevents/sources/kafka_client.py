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

__all__ = ["STOP_GRACE", "consumer", "errors", "options", "partitions", "start", "stop", "subscribe"]



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


STOP_GRACE = 5.0
"""Seconds a consumer gets to start or stop politely before it is cut short (a lost broker must not hold a
shutdown; a group join on Tansu alone takes about this long)."""


async def start(consumer: AIOKafkaConsumer, opts: dict[str, Any]) -> None:
    """Start ``consumer``; when it cannot, raise an error that names the cause (TLS, SASL login, network).

    A stop that comes while the consumer starts lets the start finish first (for :data:`STOP_GRACE` at most),
    then cuts it short; :func:`kafkaconn.start` closes the connection aiokafka's cut-short bootstrap would
    drop (:func:`stop` cannot reach it: it is not in the client's pool).
    """
    kafkaconn.patch_scram()
    starting = asyncio.ensure_future(_start(consumer, opts))
    try:
        await asyncio.shield(starting)
    except asyncio.CancelledError:
        await asyncio.wait({starting}, timeout=STOP_GRACE)
        starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)  # its outcome no longer matters: we stop
        raise


async def _start(consumer: AIOKafkaConsumer, opts: dict[str, Any]) -> None:
    from aiokafka import errors as kafka_errors

    try:
        await kafkaconn.start(consumer)
    except kafka_errors.KafkaConnectionError as exc:
        failure = await kafkaconn.explain(opts, exc)
        raise kafka_errors.KafkaConnectionError(str(failure)) from None


async def stop(consumer: AIOKafkaConsumer) -> None:
    """Stop ``consumer`` without holding a shutdown for a lost broker, and leave no connection or task behind.

    aiokafka's ``stop`` talks to the broker (it finishes a group join in progress, leaves the group) before
    it closes the client's connections; with the broker gone or a join pending it can wait long. So it gets
    :data:`STOP_GRACE`; then it is cancelled, and so is every background task of the consumer it did not reach
    (group coordination, heartbeat, offset refresh, fetching): left running, they reconnect after the close
    below and those connections stay open for good. The client's connections are closed last, in any case
    (also when this coroutine is cancelled; closing twice is harmless).
    """
    stopping = asyncio.ensure_future(consumer.stop())
    try:
        await asyncio.wait({stopping}, timeout=STOP_GRACE)
    finally:
        stopping.cancel()  # a no-op once done; else it also cancels the aiokafka task it was waiting for
        leftovers = [stopping, *_background_tasks(consumer)]
        for task in leftovers:
            task.cancel()
        with contextlib.suppress(TimeoutError):  # each re-raises its cancellation at once; bounded all the same
            await asyncio.wait_for(asyncio.gather(*leftovers, return_exceptions=True), STOP_GRACE)
        client = getattr(consumer, "_client", None)  # aiokafka keeps its connection pool there
        if client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.close(), STOP_GRACE)


def _background_tasks(consumer: AIOKafkaConsumer) -> list[asyncio.Task[Any]]:
    """The unfinished asyncio tasks held by the consumer's coordinator and fetcher (aiokafka internals, found
    by type rather than by attribute name so that a renamed attribute is still found)."""
    found: list[asyncio.Task[Any]] = []
    for owner in (getattr(consumer, "_coordinator", None), getattr(consumer, "_fetcher", None)):
        for value in vars(owner).values() if owner is not None else ():
            values = value if isinstance(value, set | list | tuple) else (value,)
            found += [v for v in values if isinstance(v, asyncio.Task) and not v.done()]
    return found


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
