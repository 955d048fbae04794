"""natsclient.LeanClient on a real nats-server: requests answer, route, time out and fail like nats-py's.

It overrides a private method of nats-py's Client; these tests are what fails if a nats-py
upgrade changes the response multiplexing it relies on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import nats.errors
import nats.js.errors
import pytest
from knevents.natsclient import LeanClient
from nats.aio.msg import Msg


@pytest.fixture
async def client(nats_url: str) -> AsyncIterator[LeanClient]:
    nc = LeanClient()
    await nc.connect(servers=[nats_url], allow_reconnect=False)
    try:
        yield nc
    finally:
        await nc.close()


async def _echo(nc: LeanClient, subject: str, delay_odd: float = 0.0) -> None:
    async def answer(msg: Msg) -> None:
        # odd requests answer late, so replies come back out of order
        if delay_odd and int(msg.data) % 2:
            await asyncio.sleep(delay_odd)
        await msg.respond(b"re:" + msg.data + b":" + (msg.headers or {}).get("k", "").encode())

    async def serve(msg: Msg) -> None:
        asyncio.get_running_loop().create_task(answer(msg))

    await nc.subscribe(subject, cb=serve)


async def test_concurrent_requests_each_get_their_own_reply(client: LeanClient) -> None:
    await _echo(client, "echo", delay_odd=0.05)
    replies = await asyncio.gather(*(client.request("echo", str(i).encode(), timeout=10, headers={"k": str(i)})
                                     for i in range(200)))
    assert [r.data for r in replies] == [f"re:{i}:{i}".encode() for i in range(200)]
    assert client._resp_map == {}  # nothing left waiting


async def test_tokens_are_not_reused(client: LeanClient) -> None:
    subjects: list[str] = []

    async def serve(msg: Msg) -> None:
        subjects.append(msg.reply)
        await msg.respond(b"ok")

    await client.subscribe("seen", cb=serve)
    for _ in range(50):
        await client.request("seen", b"", timeout=10)
    assert len(set(subjects)) == 50


async def test_timeout_is_nats_timeout_and_a_late_reply_is_dropped(client: LeanClient) -> None:
    release = asyncio.Event()
    late: list[Msg] = []

    async def slow(msg: Msg) -> None:
        late.append(msg)
        await release.wait()
        await msg.respond(b"late")

    async def serve(msg: Msg) -> None:
        asyncio.get_running_loop().create_task(slow(msg))

    await client.subscribe("slow", cb=serve)
    with pytest.raises(nats.errors.TimeoutError):
        await client.request("slow", b"", timeout=0.2)
    assert client._resp_map == {}
    release.set()
    await _echo(client, "echo")
    # the late reply to the timed-out request does not answer the next one
    assert (await client.request("echo", b"x", timeout=10)).data == b"re:x:"


async def test_no_responders(client: LeanClient) -> None:
    with pytest.raises(nats.errors.NoRespondersError):
        await client.request("nobody.listens", b"", timeout=10)


async def test_jetstream_publish_and_kv_through_it(client: LeanClient) -> None:
    js = client.jetstream(timeout=10)
    await js.add_stream(name="S", subjects=["s.>"])
    acks = await asyncio.gather(*(js.publish("s.x", str(i).encode()) for i in range(50)))
    assert sorted(a.seq for a in acks) == list(range(1, 51))
    kv = await js.create_key_value(bucket="b")
    revision = await kv.create("k", b"v1")
    assert (await kv.get("k")).value == b"v1"
    await kv.update("k", b"v2", last=revision)
    with pytest.raises(nats.js.errors.KeyWrongLastSequenceError):
        await kv.update("k", b"v3", last=revision)  # compare-and-set still refuses a stale revision


HEADER_BLOCKS = [
    b"ce-id: 1\r\nce-source: es/a\r\nContent-Type: application/json\r\n\r\n",
    b"Name:Value\r\nTabbed:\tv  \r\nEmpty:\r\n\r\n",
    b"no colon here\r\nbad name: x\r\n caps : y\r\n\r\n",
    "k: caf\u00e9\r\nn\u00e4me: v\r\n\r\n".encode(),
    b"k: \xff\xfe\r\nx\x1fy: z\r\nrepeat: 1\r\nrepeat: 2\r\n",
    b"",
]


@pytest.mark.parametrize("raw", HEADER_BLOCKS)
def test_header_parsing_matches_nats_py(raw: bytes) -> None:
    from nats.aio.client import Client

    assert LeanClient._parse_header_lines(raw) == Client._parse_header_lines(raw)


async def test_headers_arrive_as_sent_through_a_real_server(client: LeanClient) -> None:
    sub = await client.subscribe("hdr")
    sent = {"ce-id": "abc", "ce-source": "es/webhook", "x-utf8": "caf\u00e9", "x-pad": "  spaced"}
    await client.publish("hdr", b"{}", headers=sent)
    msg = await sub.next_msg(timeout=30)
    assert msg.headers == {**sent, "x-pad": "spaced"}


async def test_publishes_are_written_together_in_order_and_none_is_lost(client: LeanClient) -> None:
    got: list[bytes] = []
    done = asyncio.Event()

    async def take(msg: Msg) -> None:
        got.append(msg.data)
        if len(got) == 2000:
            done.set()

    await client.subscribe("many", cb=take)
    for i in range(1000):  # one turn of the loop each: one write each
        await client.publish("many", str(i).encode())
        await asyncio.sleep(0)
    await asyncio.gather(*(client.publish("many", str(i).encode()) for i in range(1000, 2000)))  # one write
    await client.flush(timeout=10)  # nats-py's forced flush still answers
    await asyncio.wait_for(done.wait(), 60)
    assert got == [str(i).encode() for i in range(2000)]


async def test_a_direct_subscription_gets_every_message_in_order_until_unsubscribed(client: LeanClient) -> None:
    got: list[Msg] = []
    sub = await client.subscribe_direct("direct", got.append)
    for i in range(500):
        await client.publish("direct", str(i).encode(), headers={"n": str(i)})
    await client.flush(timeout=10)
    for _ in range(1200):
        if len(got) == 500:
            break
        await asyncio.sleep(0.05)
    assert [m.data for m in got] == [str(i).encode() for i in range(500)]
    assert got[7].headers == {"n": "7"} and got[7].subject == "direct"
    await sub.unsubscribe()
    await client.publish("direct", b"late")
    await client.flush(timeout=10)
    await asyncio.sleep(0.2)
    assert len(got) == 500
