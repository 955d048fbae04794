"""Issue 12 §1: the event-source function's bus connection — oversize refused, fail fast while down, reconnect, /health."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time

from knevents import bus
from knevents.local.natsd import NatsServer
from knevents.settings import Settings

from tests.unit.sources_core import helpers

SPEC = {"webhook": {"hook": {"endpoint": "/hook", "port": "12000", "method": "POST"}}}


def _request(body: bytes, **headers: str) -> object:
    return helpers.request("POST", "/hook", body, {"content-type": "application/json", **headers})


async def _wait(check: object, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_oversize_fail_fast_reconnect_and_health(nats_server: NatsServer) -> None:
    settings = Settings()
    # an ack waited for takes 30 s here: a request that fails in well under that did not wait (a busy machine
    # may take a second or two to answer at all, so the bound is not the few milliseconds it usually takes)
    settings = dataclasses.replace(settings, nats=dataclasses.replace(settings.nats, url=nats_server.url),
                                   bus=dataclasses.replace(settings.bus, publish_timeout=30.0))
    publisher = bus.JetStreamPublisher.lazy(settings)
    runtime, _ = helpers.runtime(SPEC, publisher)
    try:
        assert (await runtime.handle(_request(b'{"n": 1}'))).status == 200
        # near the webhook's limit, over NATS' once headers are added: refused, naming the limit
        big = b'{"pad": "' + b"x" * 1_048_000 + b'"}'
        answer = await runtime.handle(_request(big, **{"x-padding": "p" * 4000}))
        assert answer.status == 413 and b"at most" in answer.body, answer.body
        assert (await runtime.handle(_request(b'{"n": 2}'))).status == 200  # the client is still open
        assert (await runtime.handle(helpers.request("GET", "/health"))).status == 200

        nats_server.kill()
        await _wait(lambda: publisher.connected is False, "the client to notice")
        assert (await runtime.handle(helpers.request("GET", "/health"))).status == 503
        started = time.monotonic()
        assert (await runtime.handle(_request(b'{"n": 3}'))).status == 503
        assert time.monotonic() - started < 10.0, "a request while NATS is down must fail fast"

        nats_server.start()
        await _wait(lambda: publisher.connected is True, "the client to reconnect")
        assert (await runtime.handle(_request(b'{"n": 4}'))).status == 200
        assert (await runtime.handle(helpers.request("GET", "/health"))).status == 200

        client = publisher._nats_client()
        await client.close()  # closed for good, as nats-py does after some server errors
        assert (await runtime.handle(_request(b'{"n": 5}'))).status == 200, "a closed client is replaced"
    finally:
        await publisher.close()
    nc = await bus.connect(settings.nats)
    try:
        info = await nc.jetstream().stream_info(bus.stream_name("default"))
        data = [json.loads((await nc.jetstream().get_msg(info.config.name, seq)).data)
                for seq in range(1, info.state.last_seq + 1)]
        assert [d["body"]["n"] for d in data] == [1, 2, 4, 5]
    finally:
        await nc.close()
