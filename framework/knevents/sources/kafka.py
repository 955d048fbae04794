"""The ``kafka`` event source: Argo's KafkaEventSource on aiokafka, committing only what the bus accepted.

Each record becomes one event with Argo's ``KafkaEventData``: ``{"topic",
"key", "partition", "body", "timestamp", "headers", "metadata"?}`` in Go's
field order; ``body`` is the value's JSON with ``jsonBody`` (a record that is
not JSON is skipped and counted, as Argo fails to marshal it), else base64 as
Go marshals ``[]byte``; ``timestamp`` is Go's ``time.Time.String()``;
``headers`` a map (the last value of a repeated key wins, as in Argo). The
event id is Argo's ``eventSource:event:url:topic:partition:offset``, so a
redelivered record dedupes on the bus and in the sensor.

Two modes, as in Argo:

* **no** ``consumerGroup``: one ``partition``, starting at the newest offset
  on first start (Argo's ``OffsetNewest``). knevents also commits the offset
  it has published under a private group id (``knevents.<ns>.<eventsource>.<event>``,
  no membership), so a restart resumes where it stopped: nothing produced
  while the runner was down is lost (Argo loses it).
* ``consumerGroup``: every partition of the topic, shared by the group's
  members (several replicas on Knative), ``oldest`` for a new group,
  ``rebalanceStrategy`` range / roundrobin / sticky.

Each fetched batch of a partition is published pipelined (every event sent in
offset order on the one bus connection, then every ack awaited) and its offset
committed only then; when the bus refused one, only the records before it are
committed and the consumer seeks back to it and retries after a pause (the
records after it, perhaps stored already, are deduped by their id). A crash
re-delivers at most one batch (:data:`BATCH` records) per consumer, deduped
downstream by the event id. aiokafka is imported lazily.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from knevents import errors, events, kafkaconn
from knevents.sources import base, common, kafka_client, reconnect
from knevents.spec import models

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer, ConsumerRecord

__all__ = ["BATCH", "SOURCE", "KafkaSource", "check", "create", "go_time", "record_data"]

log = logging.getLogger(__name__)

BATCH = 200
"""Records per fetch: the most a SIGKILL can make the source publish twice (per consumer)."""

MAX_DATA = 1008 * 1024
"""Bytes of event data a record may become: NATS takes 1 MiB per message, headers included, and would
refuse a larger event on every retry (the Knative broker's limit is of the same order)."""


def go_time(millis: int) -> str:
    """Go's ``time.Time.String()`` of a Kafka timestamp in UTC: ``2024-05-01 10:00:00.5 +0000 UTC``."""
    global _last_second
    second, ms = divmod(millis, 1000)
    if _last_second[0] != second:  # the records of a batch mostly share their second: format it once
        _last_second = (second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%d %H:%M:%S"))
    fraction = f".{ms:03d}".rstrip("0") if ms else ""
    return f"{_last_second[1]}{fraction} +0000 UTC"


_last_second: tuple[int | None, str] = (None, "")


def record_data(record: ConsumerRecord[Any, Any], *, json_body: bool, metadata: dict[str, str] | None) -> bytes | None:
    """The event data of one record, or ``None`` when ``json_body`` is set and the value is not JSON."""
    headers = {k: (v or b"").decode("utf-8", "replace") for k, v in record.headers or ()}
    return _data(record, headers, json_body, common.metadata_member(metadata))


def _data(record: Any, headers: dict[str, str], json_body: bool, metadata_member: str) -> bytes | None:
    """:func:`record_data` with the record's headers decoded and the metadata member made by the caller."""
    value: bytes | None = record.value
    if value is None:
        body = "null"
    elif json_body:
        text = common.json_text(value)
        if text is None:
            return None
        body = text
    else:
        body = f'"{base64.b64encode(value).decode("ascii")}"'
    key = _string(record.key.decode("utf-8", "replace")) if record.key is not None else '""'
    members = _string_map(headers) if headers else "{}"
    return (f'{{"topic":{_string(record.topic)},"key":{key},"partition":{record.partition},"body":{body},'
            f'"timestamp":"{go_time(record.timestamp)}","headers":{members}{metadata_member}}}').encode()


def _string(text: str) -> str:
    """``json.dumps(text, ensure_ascii=False)``, without the encoder for the common text that needs no escape."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return json.dumps(text, ensure_ascii=False)


def _string_map(values: dict[str, str]) -> str:
    """A JSON object of ``values`` with sorted keys, as Go marshals a ``map[string]string``."""
    return json.dumps(dict(sorted(values.items())), ensure_ascii=False)


class KafkaSource:
    """One ``kafka`` entry: consume, publish each record, commit what the bus accepted."""

    def __init__(self, event_name: str, config: Any, ctx: base.SourceContext) -> None:
        where = f"kafka.{event_name}"
        common.refuse(check(config, where))
        self.event_name = event_name
        self._config = config
        self._ctx = ctx
        self._where = where
        self._reconnect = reconnect.Reconnect(config.connection_backoff, f"{where}.connectionBackoff")
        self._last_ts: dict[Any, int] = {}
        """Partition → timestamp of the last record published (to notice and survive a broker reset)."""
        self._skip_before: dict[Any, int] = {}
        self._check_at: dict[Any, int] = {}
        """Partition → offset of the last record published, being fetched again to check the log is the same."""
        self._next_reset_check = 0.0
        self._url0 = str(config.url).split(",")[0].strip()
        self._metadata = dict(config.metadata) if config.metadata else None
        self._metadata_member = common.metadata_member(self._metadata)
        self._json_body = bool(config.json_body)
        self._id_prefix = f"{ctx.event_source_name}:{event_name}:{self._url0}:"
        self._pause = 1.0 / config.limit_events_per_second if config.limit_events_per_second else 0.0
        for name, value in (("config", config.config), ("version", config.version)):
            if value:
                log.warning("kafka %s: `%s` is Sarama-specific and ignored (aiokafka negotiates the protocol "
                            "version and has its own settings)", event_name, name)

    def not_ready(self) -> str | None:
        """Why this source cannot consume now, or ``None``."""
        return self._reconnect.waiting

    async def run(self, publish: base.Publish, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; reconnect with ``connectionBackoff`` whenever the broker is lost."""
        while not stop.is_set():
            try:
                await _until_stopped(self._session(publish, stop), stop)
            except kafka_client.errors() as exc:
                reason = f"kafka {self._url0}: {exc!r}"
                delay = await self._reconnect.wait(reason, stop)
                log.warning("kafka %s: %s; reconnected after %.1fs", self.event_name, reason, delay)

    async def _session(self, publish: base.Publish, stop: asyncio.Event) -> None:
        options = kafka_client.options(self._config, self._ctx)
        group = self._config.consumer_group
        consumer = kafka_client.consumer(self._config, options, self._private_group() if group is None else None)
        self._check_at.clear()
        try:
            await kafka_client.start(consumer, options)
            if group is None:
                if not await self._assign_partition(consumer, stop):
                    return
            else:
                kafka_client.subscribe(consumer, self._config)
            self._reconnect.connected()
            log.info("kafka %s: consuming %s from %s", self.event_name, self._config.topic, self._url0)
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=500, max_records=BATCH)
                if not batch:
                    await self._rewind_if_reset(consumer)
                for records in batch.values():
                    if not await self._handle(consumer, records, publish, stop):
                        break
        finally:
            await kafka_client.stop(consumer)

    async def _rewind_if_reset(self, consumer: AIOKafkaConsumer) -> None:
        """Read a partition again from its start when the broker lost it (deleted topic, memory-only broker).

        The sign is a committed offset that vanished, or a log that now ends before our position.
        Offsets start at 0 again then, so waiting at the old position would skip the new records
        below it; records older than the last one published are skipped on the way (they were
        published already). Brokers that answer OFFSET_OUT_OF_RANGE are also covered by
        ``auto_offset_reset="earliest"``. An idle partition of the private group whose log ends
        at our position is checked too (see :meth:`_check_last`): a commit that reached the
        broker after it lost the topic leaves that same picture over a recreated topic.
        """
        now = asyncio.get_running_loop().time()
        if now < self._next_reset_check:
            return
        self._next_reset_check = now + 5.0
        for tp in consumer.assignment():
            if tp not in self._last_ts:
                continue
            end = consumer.highwater(tp)
            lost = await consumer.committed(tp) is None
            position = await consumer.position(tp)
            if lost or (end is not None and end < position):
                await self._read_again(consumer, tp)
            elif end == position and self._config.consumer_group is None:
                self._check_last(consumer, tp, position)

    def _check_last(self, consumer: AIOKafkaConsumer, tp: Any, position: int) -> None:
        """Fetch the last record published from ``tp`` (just before ``position``) again, to compare its timestamp.

        Only for the private group, where this process is the partition's one reader: in a consumer group
        another member may have published after it. :meth:`_handle` drops the record when it matches.
        """
        if position > 0:
            self._check_at[tp] = position - 1
            consumer.seek(tp, position - 1)

    async def _read_again(self, consumer: AIOKafkaConsumer, tp: Any) -> None:
        """The broker lost ``tp``'s offsets: read it from the start, skipping records older than the last published."""
        log.warning("kafka %s: the broker lost %s's offsets; reading it again from the start, skipping "
                    "records older than the last one published", self.event_name, tp)
        self._skip_before[tp] = self._last_ts.pop(tp)
        await consumer.seek_to_beginning(tp)

    def _private_group(self) -> str:
        return f"knevents.{self._ctx.namespace}.{self._ctx.event_source_name}.{self.event_name}"

    async def _assign_partition(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> bool:
        """Assign the configured partition at the committed offset, else the newest (Argo's start)."""
        from aiokafka import TopicPartition

        topic, number = str(self._config.topic), int(str(self._config.partition))
        while number not in (await kafka_client.partitions(consumer, topic)):
            await self._reconnect.wait(f"kafka {self._url0}: partition {number} of topic {topic} is not available", stop)
            if stop.is_set():
                return False
        tp = TopicPartition(topic, number)
        consumer.assign([tp])
        committed = await consumer.committed(tp)
        if committed is not None and committed >= 0:
            consumer.seek(tp, committed)
            if tp in self._last_ts:  # a new session: the broker may have lost the topic and kept a late commit
                self._check_last(consumer, tp, committed)
        elif tp in self._last_ts:
            # this process published from the partition before and its offset is gone: the broker lost it while
            # the session was down; the newest record would skip what was produced since
            await self._read_again(consumer, tp)
        else:
            await consumer.seek_to_end(tp)
        return True

    async def _handle(self, consumer: AIOKafkaConsumer, records: list[Any], publish: base.Publish,
                      stop: asyncio.Event) -> bool:
        """Publish one partition's records in order; commit the accepted prefix; False when the bus refused."""
        from aiokafka import TopicPartition

        first = records[0]
        tp = TopicPartition(first.topic, first.partition)
        at = self._check_at.pop(tp, None)
        if at is not None:
            if first.offset < at or (first.offset == at and first.timestamp != self._last_ts.get(tp)):
                await self._read_again(consumer, tp)  # not the record published last: a new log
                return True
            records = [r for r in records if r.offset > at]  # it was: published already
            if not records:
                return True
        floor = self._skip_before.pop(tp, None)
        if floor is not None:
            fresh = [r for r in records if r.timestamp >= floor]
            if not fresh:
                self._skip_before[tp] = floor
                await consumer.commit({tp: records[-1].offset + 1})
                return True
            records = fresh
        accepted = 0
        failure: Exception | None = None
        if self._pause:
            for record in records:
                event = self._event_of(record)
                try:
                    if event is not None:
                        await publish(event)
                except errors.BusUnavailableError as exc:
                    failure = exc
                    break
                accepted += 1
                await _sleep(stop, self._pause)
        else:
            # pipelined: the whole batch is sent in partition order, then every ack awaited
            try:
                await base.publish_batch(publish, [self._event_of(r) for r in records])
                accepted = len(records)
            except errors.BatchRefusedError as exc:
                accepted, failure = exc.done, exc
        if accepted:
            # noted before the commit, which fails when the broker lost the topic meanwhile: the next session
            # must then read the partition again from its start rather than from its newest record
            self._last_ts[tp] = records[accepted - 1].timestamp
            await consumer.commit({tp: records[accepted - 1].offset + 1})
        if failure is None:
            return True
        log.error("kafka %s: the bus refused offset %d of %s; retrying it: %s", self.event_name,
                  records[accepted].offset, tp, failure)
        consumer.seek(tp, records[accepted].offset)
        await _sleep(stop, 1.0)
        return False

    def _reject(self, reason: str, why: str) -> None:
        common.rejected(self._ctx.event_source_name, self.event_name, reason)
        log.error("kafka %s: record skipped (%s): %s", self.event_name, reason, why)

    def _event_of(self, record: Any) -> events.Event | None:
        """The event of one record, or ``None`` when it is skipped for good (bad JSON, too large, unconvertible)."""
        try:
            headers = {k: (v or b"").decode("utf-8", "replace") for k, v in record.headers or ()}
            data = _data(record, headers, self._json_body, self._metadata_member)
        except Exception as exc:  # a record we cannot convert must not block its partition
            self._reject("poison", f"{_where(record)}: {type(exc).__name__}: {exc}")
            return None
        if data is None:
            self._reject("malformed", f"{_where(record)}: jsonBody is set but the value is not JSON")
            return None
        if len(data) > MAX_DATA:
            self._reject("too_large",
                          f"{_where(record)}: {len(data)} bytes of event data, limit {MAX_DATA}")
            return None
        trace = common.traceparent(headers.get("traceparent")) if headers else None
        # Argo's id, plus the record timestamp: a recreated topic starts its offsets at 0 again and
        # must not collide with the old records inside the bus's and the sensor's dedupe windows
        event_id = f"{self._id_prefix}{record.topic}:{record.partition}:{record.offset}:{record.timestamp}"
        return events.new_event(source=self._ctx.event_source_name, subject=self.event_name, type="kafka",
                                data=data, id=event_id, extensions={"traceparent": trace} if trace else None)


def _where(record: Any) -> str:
    return f"{record.topic}/{record.partition}@{record.offset}"


async def _until_stopped(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> None:
    """Run ``work`` until it ends or ``stop`` is set (then cancel it: a client call may be retrying for long)."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if not task.cancelled():
        task.result()


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


def check(config: models.KafkaEventSource, path: str) -> Iterator[tuple[str, str]]:
    """Argo's ``validate.go`` rules, plus the fields knevents refuses (no I/O)."""
    if not config.url:
        yield f"{path}.url", "a kafka event source needs `url`"
    if not config.topic:
        yield f"{path}.topic", "a kafka event source needs `topic`"
    group = config.consumer_group
    if not config.partition and group is None:
        yield path, "a kafka event source needs `consumerGroup` or `partition`"
    if group is None and config.partition:
        try:
            int(str(config.partition))
        except ValueError:
            yield f"{path}.partition", f"partition {config.partition!r} is not a number"
    if group is not None and not group.group_name:
        yield f"{path}.consumerGroup.groupName", "a consumer group needs `groupName`"
    if group is not None and group.rebalance_strategy not in (None, "", "range", "roundrobin", "sticky"):
        yield f"{path}.consumerGroup.rebalanceStrategy", "rebalanceStrategy is one of range, roundrobin, sticky"
    yield from kafkaconn.check(config.tls, config.sasl, path)
    if config.schema_registry is not None:
        yield f"{path}.schemaRegistry", "not supported by knevents: Avro decoding through a schema registry"
    if config.aws_msk_iam_auth is not None:
        yield f"{path}.awsMskIamAuth", "not supported by knevents: AWS MSK IAM (OAUTHBEARER) authentication"


def create(event_name: str, config: models.KafkaEventSource, ctx: base.SourceContext) -> base.Source:
    """Factory for the ``kafka`` spec key."""
    return KafkaSource(event_name, config, ctx)


def _knative(config: models.KafkaEventSource) -> base.Knative:
    # a consumer group shares the partitions among replicas; a fixed partition is read by one consumer
    return base.Knative.CONSUMER_GROUP if config.consumer_group is not None else base.Knative.ONE_REPLICA


SOURCE = base.SourceType(
    key="kafka",
    model=models.KafkaEventSource,
    factory=create,
    knative=_knative,
    check=check,
    data='{"topic", "key", "partition", "body": <JSON with jsonBody, else base64>, "timestamp", "headers", '
    '"metadata"?}',
)
