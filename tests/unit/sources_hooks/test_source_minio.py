"""minio: ListenBucketNotification against a stand-in that follows MinIO's wire format; the webhook push option."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from knevents import events, sources
from knevents.sources import base, minio
from knevents.spec import models

from tests.fixtures.minio_listen import MinioListen
from tests.unit.sources_core.helpers import runtime
from tests.unit.sources_hooks.hookkit import Hook, payload

ACCESS, SECRET = "minio-access-key", "minio-secret-key-0123456789"
ENTRY = {
    "bucket": {"name": "input"},
    "endpoint": "minio-service.argo-events:9000",
    "events": ["s3:ObjectCreated:Put", "s3:ObjectRemoved:Delete"],
    "insecure": True,
    "accessKey": {"key": "accesskey", "name": "artifacts-minio"},
    "secretKey": {"key": "secretkey", "name": "artifacts-minio"},
}
SECRETS = {"artifacts-minio/accesskey": ACCESS, "artifacts-minio/secretkey": SECRET}


def _record(name: str = "s3:ObjectCreated:Put", key: str = "gopher.jpg") -> dict[str, Any]:
    record: dict[str, Any] = json.loads(payload("minio-event-docs.json"))["Records"][0]
    return {**record, "eventName": name, "s3": {**record["s3"], "object": {**record["s3"]["object"], "key": key}}}


@pytest.fixture
def minio_server() -> Iterator[MinioListen]:
    server = MinioListen({"input"}, {ACCESS: SECRET}).start()
    yield server
    server.stop()


async def _until(predicate: Any, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def _listen(entry: dict[str, Any], secrets: dict[str, str]) -> tuple[Any, list[events.Event], asyncio.Event]:
    rt, _ = runtime({"minio": {"example": entry}}, secrets=secrets)
    published: list[events.Event] = []

    async def publish(event: events.Event) -> None:
        published.append(event)

    (source,) = [e.source for e in rt._entries]  # the built source of the only entry
    assert isinstance(source, minio.MinioListenSource)
    stop = asyncio.Event()
    task = asyncio.create_task(source.run(publish, stop))
    return task, published, stop


async def test_upstream_example_listens_and_publishes_argos_minio_data(minio_server: MinioListen) -> None:
    task, published, stop = await _listen({**ENTRY, "endpoint": minio_server.endpoint,
                                           "filter": {"prefix": "", "suffix": ".jpg"}}, SECRETS)
    await _until(lambda: minio_server.listeners == 1)
    path, query = minio_server.requests[-1]
    assert path == "/input" and query["events"] == ENTRY["events"] and query["suffix"] == [".jpg"]
    await asyncio.sleep(0.5)  # a few keep-alive lines go by first: they must produce nothing
    assert published == []
    assert minio_server.emit(_record()) == 1
    assert minio_server.emit(_record("s3:ObjectAccessed:Get")) == 0  # MinIO filters server-side
    await _until(lambda: len(published) == 1)
    data = events.data_json(published[0])
    assert data["notification"][0]["s3"]["object"]["key"] == "gopher.jpg"
    assert data["notification"][0]["eventSource"] == "minio:s3"
    assert (published[0].type, published[0].subject) == ("minio", "example")
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_a_wrong_secret_key_is_refused_by_the_signature_check_and_logged_without_it(
    minio_server: MinioListen, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = {**SECRETS, "artifacts-minio/secretkey": "not-the-secret-key"}
    task, published, stop = await _listen({**ENTRY, "endpoint": minio_server.endpoint}, wrong)
    await _until(lambda: "SignatureDoesNotMatch" in caplog.text)
    assert minio_server.listeners == 0 and published == []
    assert "not-the-secret-key" not in caplog.text
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_the_stream_is_reopened_after_the_server_drops_it(minio_server: MinioListen) -> None:
    task, published, stop = await _listen({**ENTRY, "endpoint": minio_server.endpoint}, SECRETS)
    await _until(lambda: minio_server.listeners == 1)
    for _, q in list(minio_server.streams):
        q.put(None)  # end the chunked answer: a restarted MinIO looks like this
    await _until(lambda: len(minio_server.requests) >= 2 and minio_server.listeners == 1)
    minio_server.emit(_record())
    await _until(lambda: len(published) == 1)
    stop.set()
    await asyncio.wait_for(task, 10)


def test_keepalive_and_recordless_lines_produce_nothing() -> None:
    assert minio.stream_records("   ") is None
    assert minio.stream_records('{"Records": null}') is None
    assert minio.stream_records('{"Records": [{"a": 1}]}') == [{"a": 1}]


async def test_webhook_target_push_option() -> None:
    entry = {**ENTRY, "bucket": {"name": "images"}, "webhook": {"endpoint": "/minio", "port": "12000"},
             "filter": {"prefix": "", "suffix": ".jpg"}}
    hook = Hook({"minio": {"example": entry}})
    body = payload("minio-event-docs.json")
    answer = await hook.post("/minio", body, {"Content-Type": "application/json"})
    assert answer.status == 200, answer.body
    assert answer.data()["notification"][0]["s3"]["object"]["key"] == "gopher.jpg"
    other = json.loads(body)
    other["Records"][0]["s3"]["object"]["key"] = "gopher.png"
    assert (await hook.post("/minio", json.dumps(other).encode())).published == []
    assert (await hook.post("/minio", b'{"no": "records"}')).status == 400


def test_factory_picks_the_delivery_mode() -> None:
    factory = sources.load("minio")
    ctx = base.SourceContext(event_source_name="es")
    listen = models.S3EventSource.model_validate(ENTRY)
    assert isinstance(factory("e", listen, ctx), minio.MinioListenSource)
    pushed = models.S3EventSource.model_validate({**ENTRY, "webhook": {"endpoint": "/m", "port": "1"}})
    assert isinstance(factory("e", pushed, ctx), minio.MinioPushSource)
    sns = models.S3EventSource.model_validate({**ENTRY, "sns": {}})
    assert type(factory("e", sns, ctx)).__name__ == "S3SnsSource"


def _tls_pair() -> tuple[str, str]:
    import ipaddress
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "minio-test")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


async def test_tls_with_a_private_ca_certificate(tmp_path: Any) -> None:
    import ssl

    cert, key = _tls_pair()
    (tmp_path / "c.pem").write_text(cert)
    (tmp_path / "k.pem").write_text(key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    server = MinioListen({"input"}, {ACCESS: SECRET}, tls=context).start()
    try:
        entry = {**ENTRY, "endpoint": server.endpoint, "insecure": False,
                 "caCertificate": {"name": "artifacts-minio", "key": "ca"}}
        task, published, stop = await _listen(entry, {**SECRETS, "artifacts-minio/ca": cert})
        await _until(lambda: server.listeners == 1)
        server.emit(_record())
        await _until(lambda: len(published) == 1)
        stop.set()
        await asyncio.wait_for(task, 10)
    finally:
        server.stop()
