"""The state stores against the contract: the JetStream one on a real nats-server, the memory twin alike."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from knevents import errors
from knevents.local.natsd import NatsServer, free_port
from knevents.settings import NatsSettings, Settings, StateSettings
from knevents.state import base, memory
from knevents.state.jetstream import JetStreamStore


def _settings(connect_timeout: float = 1.0, **state: int) -> Settings:
    # A JetStream request can take seconds on a loaded CI machine (the first one on a fresh server
    # creates the stream): a short request timeout made these tests flake. Only the tests about an
    # unreachable server rely on the short connect timeout.
    return Settings(
        nats=NatsSettings(connect_timeout=connect_timeout, request_timeout=15.0), state=StateSettings(**state)
    )


@pytest.fixture(params=["jetstream", "memory"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[base.StateStore]:
    if request.param == "memory":
        yield memory.MemoryStore(max_value_size=1024)
        return
    server: NatsServer = request.getfixturevalue("nats_server")
    js = await JetStreamStore.connect(server.url, settings=_settings(connect_timeout=10.0, max_value_size=1024))
    try:
        yield js
    finally:
        await js.close()


async def test_compare_and_set_lets_one_writer_win(store: base.StateStore) -> None:
    bucket = await store.bucket("cas")
    assert await bucket.get("t1") is None
    rev = await bucket.create("t1", b"one")
    with pytest.raises(errors.StateConflictError):
        await bucket.create("t1", b"again")
    rev2 = await bucket.update("t1", b"two", last=rev)
    with pytest.raises(errors.StateConflictError):
        await bucket.update("t1", b"stale", last=rev)
    assert await bucket.get("t1") == base.Entry(b"two", rev2)
    assert await bucket.keys() == ["t1"]


async def test_concurrent_updates_never_both_win(store: base.StateStore) -> None:
    bucket = await store.bucket("race")
    rev = await bucket.create("k", b"0")
    results = await asyncio.gather(
        *(bucket.update("k", str(i).encode(), last=rev) for i in range(8)), return_exceptions=True
    )
    winners = [r for r in results if isinstance(r, int)]
    assert len(winners) == 1
    assert all(isinstance(r, errors.StateConflictError) for r in results if not isinstance(r, int))


async def test_delete_then_create_again(store: base.StateStore) -> None:
    bucket = await store.bucket("del")
    rev = await bucket.create("k", b"x")
    await bucket.delete("k", last=rev)
    assert await bucket.get("k") is None
    await bucket.create("k", b"y")
    await bucket.purge("k")
    assert await bucket.get("k") is None
    assert await bucket.keys() == []


async def test_value_larger_than_the_bucket_allows_is_a_clear_permanent_error(store: base.StateStore) -> None:
    bucket = await store.bucket("big")
    with pytest.raises(base.StateValueTooLargeError, match="at most 1024"):
        await bucket.put("k", b"x" * 2048)
    assert isinstance(base.StateValueTooLargeError("x"), errors.PermanentError)


async def test_dedupe_bucket_forgets_after_its_ttl(nats_server: NatsServer) -> None:
    store = await JetStreamStore.connect(nats_server.url, settings=_settings())
    try:
        bucket = await store.bucket("dedupe-ttl", ttl=1.0)
        await bucket.create("event-1", b"")
        with pytest.raises(errors.StateConflictError):
            await bucket.create("event-1", b"")
        for _ in range(600):  # the server ages entries out on its own schedule
            if await bucket.get("event-1") is None:
                break
            await asyncio.sleep(0.1)
        await bucket.create("event-1", b"")  # remembered no longer: first wins again
    finally:
        await store.close()


async def test_unreachable_nats_is_state_unavailable_not_a_hang() -> None:
    store = JetStreamStore(f"nats://user:hunter2@127.0.0.1:{free_port()}", settings=_settings())
    with pytest.raises(errors.StateUnavailableError, match="unreachable") as caught:
        await store.bucket("x")
    assert "hunter2" not in str(caught.value)
    with pytest.raises(errors.StateUnavailableError):  # and again on the next call, no stale state
        await store.bucket("x")
    await store.close()


async def test_survives_a_nats_restart(nats_server: NatsServer) -> None:
    store = await JetStreamStore.connect(nats_server.url, settings=_settings())
    try:
        bucket = await store.bucket("restart")
        rev = await bucket.create("k", b"before")
        nats_server.restart()
        entry = None
        for _ in range(600):  # the client reconnects by itself (every 2 s); a call meanwhile is StateUnavailable
            try:
                entry = await bucket.get("k")
                break
            except errors.StateUnavailableError:
                await asyncio.sleep(0.1)
        assert entry == base.Entry(b"before", rev)
        await bucket.update("k", b"after", last=rev)
    finally:
        await store.close()


async def test_nats_down_mid_session_is_state_unavailable(nats_server: NatsServer) -> None:
    store = await JetStreamStore.connect(nats_server.url, settings=_settings())
    try:
        bucket = await store.bucket("down")
        nats_server.stop()
        with pytest.raises(errors.StateUnavailableError):
            await bucket.get("k")
    finally:
        await store.close()


def test_bucket_and_key_names_are_kv_safe_and_distinct() -> None:
    assert base.bucket_name("default", "webhook") == "knevents_default_webhook"
    odd = base.bucket_name("team.a", "my sensor")
    assert odd.startswith("knevents_team_a_my_sensor_") and len(odd) <= 60
    assert base.bucket_name("team.a", "x") != base.bucket_name("team_a", "x")
    assert base.dedupe_bucket_name("ns", "s") != base.bucket_name("ns", "s")
    long = base.bucket_name("ns", "s" * 200)
    assert len(long) <= 60
    assert base.kv_key("trigger-1") == "trigger-1"
    assert base.kv_key("my trigger") != base.kv_key("my_trigger")
    assert all(c.isalnum() or c in "_=-" for c in base.kv_key("a.b/c d*"))


async def test_put_nowait_is_stored_without_waiting_for_an_ack(store: base.StateStore) -> None:
    bucket = await store.bucket("nowait")
    await bucket.put_nowait("event-1", b"done")
    entry = None
    for _ in range(3000):
        entry = await bucket.get("event-1")
        if entry is not None:
            break
        await asyncio.sleep(0.02)
    assert entry is not None and entry.value == b"done"


async def test_a_bucket_whose_stream_vanished_is_created_again(nats_server: NatsServer) -> None:
    import nats as nats_client

    store = await JetStreamStore.connect(nats_server.url, settings=_settings())
    try:
        bucket = await store.bucket("vanishing")
        await bucket.put("k", b"v")
        nc = await nats_client.connect(nats_server.url)
        await nc.jetstream().delete_stream("KV_vanishing")  # as a NATS without persistence restarting would
        await nc.close()
        assert await bucket.get("k") is None  # state lost, but the bucket works again
        await bucket.create("k", b"again")
        assert (await bucket.get("k") or base.Entry(b"", 0)).value == b"again"
    finally:
        await store.close()
