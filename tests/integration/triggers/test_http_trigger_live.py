"""The http trigger against real local HTTP(S) servers: statuses, retries, auth, TLS, mTLS, timeouts, secrets."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from knevents import errors, triggers
from knevents.secrets import env_name
from knevents.triggers import base

from tests.integration.triggers.http_target import Answer, HttpTarget, Paced, Pki, make_pki
from tests.unit.triggers import trigger_support as support

TOKEN = "s3cr3t-t0ken-value"
PAYLOAD = b'{"project":"kubedojo"}'


@pytest.fixture
async def pools() -> AsyncIterator[None]:
    yield
    await triggers.aclose()


@pytest.fixture
def target(tmp_path: Path, pools: None) -> Iterator[HttpTarget]:
    server = HttpTarget(tmp_path).start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


def http(url: str, **fields: Any) -> dict[str, Any]:
    return {"name": "call", "http": {"url": url, "payload": [], **fields}}


def secret(name: str, key: str, value: str) -> dict[str, str]:
    return {env_name("SECRET", name, key): value}


async def test_posts_the_payload_with_idempotency_and_trace_headers(target: HttpTarget) -> None:
    fired = {"a": support.event(id="id-2"), "b": support.event(id="id-1")}
    resolved = support.resolved(http(target.url(), headers={"X-Team": "ci"}), payload=PAYLOAD, fired=fired)
    result = await triggers.fire(
        resolved, support.context(traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    )
    [seen] = target.seen
    assert (seen.method, seen.path, seen.body) == ("POST", "/hook", PAYLOAD)
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["x-team"] == "ci"
    assert seen.headers[base.EVENT_IDS_HEADER.lower()] == "id-1,id-2"
    assert seen.headers["traceparent"] == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert result.status == 200 and result.attempts == 1


async def test_method_is_honoured(target: HttpTarget) -> None:
    await triggers.fire(support.resolved(http(target.url(), method="PUT"), payload=b"{}"), support.context())
    assert target.seen[0].method == "PUT"


async def test_non_2xx_fails_by_default_and_4xx_is_permanent(target: HttpTarget) -> None:
    target.default = Answer(404, b"no such hook")
    with pytest.raises(errors.TriggerError, match="answered 404, not a 2xx status: no such hook"):
        await triggers.fire(support.resolved(http(target.url()), payload=b"{}"), support.context())


async def test_status_allow_list(target: HttpTarget) -> None:
    target.default = Answer(404)
    resolved = support.resolved(http(target.url()), payload=b"{}", policy={"status": {"allow": [200, 404]}})
    assert (await triggers.fire(resolved, support.context())).status == 404
    target.default = Answer(201)
    with pytest.raises(errors.TriggerError, match=r"not in policy.status.allow \[200, 404\]"):
        await triggers.fire(resolved, support.context())


async def test_server_errors_are_retried_with_backoff_counting_attempts(target: HttpTarget) -> None:
    target.script = [Answer(503), Answer(500)]
    resolved = support.resolved(
        http(target.url()),
        payload=b"{}",
        retryStrategy={"steps": 4, "duration": "5ms", "factor": 2, "jitter": 0},
    )
    result = await triggers.fire(resolved, support.context())
    assert result.attempts == 3 and result.status == 200
    assert len(target.seen) == 3
    assert len({s.headers[base.EVENT_IDS_HEADER.lower()] for s in target.seen}) == 1


async def test_retries_run_out_as_a_retryable_error(target: HttpTarget) -> None:
    target.default = Answer(503, b"busy")
    resolved = support.resolved(
        http(target.url()), payload=b"{}", retryStrategy={"steps": 2, "duration": "1ms"}
    )
    with pytest.raises(errors.TriggerRetryableError, match=r"answered 503.*gave up after 2 attempt"):
        await triggers.fire(resolved, support.context())
    assert len(target.seen) == 2


async def test_basic_auth_from_secrets(target: HttpTarget) -> None:
    auth = {"username": {"name": "creds", "key": "user"}, "password": {"name": "creds", "key": "pass"}}
    env = {**secret("creds", "user", "robot"), **secret("creds", "pass", "pa55word")}
    await triggers.fire(
        support.resolved(http(target.url(), basicAuth=auth), payload=b"{}"), support.context(secrets=env)
    )
    expected = base64.b64encode(b"robot:pa55word").decode()
    assert target.seen[0].headers["authorization"] == f"Basic {expected}"


async def test_secure_header_value_never_appears_in_errors(target: HttpTarget) -> None:
    target.default = Answer(401, f"bad token {TOKEN} rejected".encode())
    headers = [{"name": "Authorization", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}}]
    resolved = support.resolved(http(target.url(), secureHeaders=headers), payload=b"{}")
    with pytest.raises(errors.TriggerError) as caught:
        await triggers.fire(resolved, support.context(secrets=secret("api", "token", TOKEN)))
    assert target.seen[0].headers["authorization"] == TOKEN
    assert TOKEN not in str(caught.value)
    assert "answered 401" in str(caught.value) and "***" in str(caught.value)


async def test_missing_secret_names_it(target: HttpTarget) -> None:
    headers = [{"name": "Authorization", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}}]
    with pytest.raises(errors.TriggerError, match="secret api/token not found"):
        await triggers.fire(
            support.resolved(http(target.url(), secureHeaders=headers), payload=b"{}"), support.context()
        )
    assert target.seen == []


async def test_timeout_is_retryable(target: HttpTarget) -> None:
    target.default = Answer(200, delay=5)
    with pytest.raises(errors.TriggerRetryableError, match="timed out after 1s"):
        await triggers.fire(support.resolved(http(target.url(), timeout=1), payload=b"{}"), support.context())


async def test_connection_refused_is_retryable(pools: None) -> None:
    with pytest.raises(errors.TriggerRetryableError, match=r"POST http://127\.0\.0\.1:9/x failed"):
        await triggers.fire(support.resolved(http("http://127.0.0.1:9/x"), payload=b"{}"), support.context())


async def test_password_in_the_url_is_redacted(pools: None) -> None:
    with pytest.raises(errors.TriggerRetryableError) as caught:
        await triggers.fire(
            support.resolved(http("http://bob:hunter22@127.0.0.1:9/x"), payload=b"{}"), support.context()
        )
    assert "hunter22" not in str(caught.value) and "bob:***@127.0.0.1:9" in str(caught.value)


async def test_dry_run_sends_nothing(target: HttpTarget) -> None:
    result = await triggers.fire(
        support.resolved(http(target.url()), payload=b"{}"), support.context(dry_run=True)
    )
    assert result.detail.startswith("dry run: would send POST") and target.seen == []


def tls_env(pki: Pki, *, ca: str | None = None, client: bool = False) -> dict[str, str]:
    env = secret("tls", "ca.crt", ca or pki.ca.cert)
    if client:
        env |= secret("tls", "tls.crt", pki.client.cert) | secret("tls", "tls.key", pki.client.key)
    return env


CA_REF = {"caCertSecret": {"name": "tls", "key": "ca.crt"}}
CLIENT_REF = {
    "clientCertSecret": {"name": "tls", "key": "tls.crt"},
    "clientKeySecret": {"name": "tls", "key": "tls.key"},
}


async def test_tls_with_a_ca_from_a_secret(tmp_path: Path, pki: Pki, pools: None) -> None:
    server = HttpTarget(tmp_path, pki=pki).start()
    try:
        resolved = support.resolved(http(server.url(), tls=CA_REF), payload=b"{}")
        assert (await triggers.fire(resolved, support.context(secrets=tls_env(pki)))).status == 200
        with pytest.raises(errors.TriggerRetryableError, match="failed"):
            await triggers.fire(resolved, support.context(secrets=tls_env(pki, ca=pki.other_ca.cert)))
        insecure = support.resolved(http(server.url(), tls={"insecureSkipVerify": True}), payload=b"{}")
        assert (await triggers.fire(insecure, support.context())).status == 200
    finally:
        server.close()


async def test_mutual_tls_sends_the_client_certificate(tmp_path: Path, pki: Pki, pools: None) -> None:
    server = HttpTarget(tmp_path, pki=pki, require_client_cert=True).start()
    try:
        with pytest.raises(errors.TriggerRetryableError):
            await triggers.fire(
                support.resolved(http(server.url(), tls=CA_REF), payload=b"{}"),
                support.context(secrets=tls_env(pki)),
            )
        resolved = support.resolved(http(server.url(), tls={**CA_REF, **CLIENT_REF}), payload=b"{}")
        result = await triggers.fire(resolved, support.context(secrets=tls_env(pki, client=True)))
        assert result.status == 200
    finally:
        server.close()


async def test_connections_are_pooled_and_reused(target: HttpTarget) -> None:
    resolved = support.resolved(http(target.url()), payload=b"{}")
    for _ in range(5):
        await triggers.fire(resolved, support.context())
    assert len(target.seen) == 5
    assert len({s.peer for s in target.seen}) == 1  # one keep-alive connection served all five


async def test_dynamic_headers_and_host_come_from_the_spec_and_events(target: HttpTarget) -> None:
    dynamic = [{"src": {"dependencyName": "dep", "dataKey": "body.project"}, "dest": "X-Project"}]
    fired = {"dep": support.event({"header": {}, "body": {"project": "kubedojo"}})}
    resolved = support.resolved(
        http(target.url(), dynamicHeaders=dynamic, host="hooks.example.com"), payload=b"{}", fired=fired
    )
    await triggers.fire(resolved, support.context())
    assert target.seen[0].headers["x-project"] == "kubedojo"
    assert target.seen[0].headers["host"] == "hooks.example.com"


async def test_invalid_ca_pem_is_a_clear_permanent_error(target: HttpTarget) -> None:
    resolved = support.resolved(http(target.url(), tls=CA_REF), payload=b"{}")
    env = secret("tls", "ca.crt", "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----")
    with pytest.raises(errors.TriggerError, match="not valid PEM"):
        await triggers.fire(resolved, support.context(secrets=env))
    assert target.seen == []


async def test_429_keeps_the_retry_after_delay(target: HttpTarget) -> None:
    target.default = Answer(429, b"slow down", headers=(("Retry-After", "7"),))
    with pytest.raises(errors.TriggerRetryableError) as caught:
        await triggers.fire(support.resolved(http(target.url()), payload=b"{}"), support.context())
    assert caught.value.delay == 7.0
    assert "answered 429" in str(caught.value)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
@pytest.mark.parametrize("scheme", ["http", "https"])  # the keep-alive pool, and httpx for TLS
def test_a_loop_that_ends_without_aclose_closes_its_pooled_connections(
        tmp_path: Path, pki: Pki, loop: str, scheme: str) -> None:
    """The pools of a loop that ended without ``triggers.aclose`` used to keep their connections open, and the
    loop, for the life of the process (uvloop closed the sockets itself, warning of unclosed transports)."""
    import gc

    from tests.fixtures.ports import connections_to

    server = HttpTarget(tmp_path, pki=pki if scheme == "https" else None).start()
    try:
        port = int(server.url().split(":")[2].split("/")[0])
        tls = {"tls": {"insecureSkipVerify": True}} if scheme == "https" else {}
        resolved = support.resolved(http(server.url(), **tls), payload=b"{}")
        result, ended, warned = support.fire_on_a_loop_of_its_own(resolved, support.context(), loop)
        assert result.status == 200
        assert connections_to(port) == 0
        assert warned == []
        gc.collect()
        assert ended() is None  # nothing of that loop is kept
    finally:
        server.close()


def test_a_loop_closed_without_shutting_down_is_dropped_when_another_loop_opens_a_pool(tmp_path: Path) -> None:
    """``loop.close()`` alone runs nothing on the loop: its pool cannot close politely. It is dropped when the
    next loop opens a pool, and the garbage collector closes what it held (asyncio warns of each socket)."""
    import asyncio
    import gc
    import warnings
    import weakref
    from concurrent.futures import ThreadPoolExecutor

    from tests.fixtures.ports import connections_to

    server = HttpTarget(tmp_path).start()
    try:
        resolved = support.resolved(http(server.url()), payload=b"{}")

        def by_hand() -> Any:
            loop = asyncio.new_event_loop()
            try:
                assert loop.run_until_complete(triggers.fire(resolved, support.context())).status == 200
            finally:
                loop.close()
            return weakref.ref(loop)

        with ThreadPoolExecutor(1) as worker:
            ended = worker.submit(by_hand).result()
        with warnings.catch_warnings(record=True):  # asyncio warns of each socket the collector closes, whenever
            warnings.simplefilter("always", ResourceWarning)  # it runs after the drop: from here on
            with asyncio.Runner() as runner:  # the next loop to open a pool
                assert runner.run(triggers.fire(resolved, support.context())).status == 200
            gc.collect()
        assert ended() is None
        assert connections_to(int(server.url().split(":")[2].split("/")[0])) == 0
    finally:
        server.close()


async def test_a_keep_alive_pool_pushed_out_by_newer_urls_closes_its_connections(
        target: HttpTarget, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pools per URL are capped per loop; the oldest one used to be dropped with its connection still open."""
    from knevents.triggers import http as http_trigger

    from tests.fixtures.ports import connections_to
    from tests.integration.brokers.kafka_support import until

    monkeypatch.setattr(http_trigger, "_FAST_POOLS_MAX", 1)
    port = int(target.url().split(":")[2].split("/")[0])
    for path in ("/first", "/second"):  # a URL per firing (set by a parameter, say): a pool per URL
        assert (await triggers.fire(support.resolved(http(target.url(path)), payload=b"{}"), support.context())).status == 200
    await until(lambda: connections_to(port) == 1)  # the second URL's kept-alive connection only


@pytest.mark.parametrize("status", [200, 500])
async def test_an_endless_answer_through_httpx_is_cut_and_its_status_decides(status: int, pools: None) -> None:
    """httpx serves URLs with credentials (and TLS, proxies). It used to read the whole answer into memory,
    each read within the timeout, so an endless body held the firing and grew the process for ever."""
    import asyncio

    server = Paced(b"HTTP/1.1 %d X\r\nContent-Type: text/plain\r\n\r\n" % status, b"e" * 16384, 0.02)
    try:
        resolved = support.resolved(http(f"http://bob:pw@127.0.0.1:{server.port}/x", timeout=30), payload=b"{}")
        async with asyncio.timeout(60):
            if status == 200:
                assert (await triggers.fire(resolved, support.context())).status == 200
            else:
                with pytest.raises(errors.TriggerRetryableError, match="500") as caught:
                    await triggers.fire(resolved, support.context())  # no retryStrategy: one attempt
                assert "eeee" in str(caught.value) and len(str(caught.value)) < 1000
        assert await asyncio.to_thread(server.hung_up.wait, 60)
    finally:
        server.close()
