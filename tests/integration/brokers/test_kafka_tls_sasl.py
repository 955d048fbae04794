"""Argo's ``tls`` and ``sasl`` blocks of the kafka source and trigger, end to end against Tansu.

Tansu 0.6.0 cannot log a client in (see tests/fixtures/kafka_front.py), so
the successful logins go through the fixture's TLS/SASL front to the real
broker; Tansu's own ``--authentication`` listener is tested for what it does:
it refuses every SCRAM login and does not offer PLAIN, and knevents says so.
"""

from __future__ import annotations

import json
import logging
import ssl
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from knevents import errors, triggers, validation
from knevents.secrets import env_name

from tests.fixtures.brokers import Tansu
from tests.fixtures.kafka_secure import USERS, SecureKafka
from tests.integration.brokers.kafka_support import Running, first_record, until
from tests.unit.triggers import trigger_support as support

PASSWORD = USERS["alice"]


@pytest.fixture(autouse=True)
async def _close_producers() -> Any:
    yield
    await triggers.aclose()


def _client(kafka: SecureKafka) -> dict[str, Any]:
    """Keywords of a test client that logs in as bob."""
    context = ssl.create_default_context(cadata=kafka.pki.ca) if kafka.tls else None
    return {"bootstrap_servers": kafka.url, "security_protocol": "SASL_SSL" if kafka.tls else "SASL_PLAINTEXT",
            "ssl_context": context, "sasl_mechanism": "SCRAM-SHA-256", "sasl_plain_username": "bob",
            "sasl_plain_password": USERS["bob"]}


async def _topic(kafka: SecureKafka, topic: str) -> None:
    admin = AIOKafkaAdminClient(**_client(kafka))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()


async def _produce(kafka: SecureKafka, topic: str, value: bytes) -> None:
    producer = AIOKafkaProducer(**_client(kafka))
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=b"k", partition=0)
    finally:
        await producer.stop()


def _secrets(kafka: SecureKafka, password: str = PASSWORD) -> dict[str, str]:
    return {"kafka/user": "alice", "kafka/password": password, "kafka/ca": kafka.pki.ca,
            "kafka/other-ca": kafka.pki.other_ca, "kafka/cert": kafka.pki.client_cert, "kafka/key": kafka.pki.client_key}


def _ref(key: str) -> dict[str, str]:
    return {"name": "kafka", "key": key}


def _blocks(mechanism: str, tls: dict[str, Any] | None) -> dict[str, Any]:
    blocks: dict[str, Any] = {"sasl": {"mechanism": mechanism, "userSecret": _ref("user"),
                                       "passwordSecret": _ref("password")}}
    if tls is not None:
        blocks["tls"] = tls
    return blocks


CA_AND_CLIENT_CERT = {"caCertSecret": _ref("ca"), "clientCertSecret": _ref("cert"), "clientKeySecret": _ref("key")}


def _source(kafka: SecureKafka, topic: str, blocks: dict[str, Any], password: str = PASSWORD) -> Running:
    spec = {"kafka": {"secure": {"url": kafka.url, "topic": topic, "partition": "0", "jsonBody": True, **blocks}}}
    return Running(spec, name="kafka", secrets=_secrets(kafka, password))


async def _consumes(kafka: SecureKafka, topic: str, blocks: dict[str, Any]) -> dict[str, Any]:
    await _topic(kafka, topic)
    async with _source(kafka, topic, blocks) as running:
        await until(lambda: running.rt.not_ready() == [])
        await _produce(kafka, topic, b'{"secure": true}')
        await until(lambda: len(running.memory.events) == 1)
    data: dict[str, Any] = running.data()[0]
    return data


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"])
async def test_source_consumes_over_tls_and_sasl(secure_kafka: SecureKafka, mechanism: str) -> None:
    topic = f"tls-{mechanism.lower()}"
    data = await _consumes(secure_kafka, topic, _blocks(mechanism, CA_AND_CLIENT_CERT))
    assert data["topic"] == topic and data["key"] == "k" and data["body"] == {"secure": True}
    assert "knevents-client" in secure_kafka.peers()  # clientCertSecret/clientKeySecret were presented


async def test_source_insecure_skip_verify_and_sasl_without_tls(secure_kafka: SecureKafka,
                                                                 sasl_kafka: SecureKafka) -> None:
    skipped = await _consumes(secure_kafka, "tls-skip", _blocks("SCRAM-SHA-512", {"insecureSkipVerify": True}))
    plain = await _consumes(sasl_kafka, "sasl-only", _blocks("SCRAM-SHA-256", None))
    assert skipped["body"] == plain["body"] == {"secure": True}


async def _not_ready_reason(running: Running) -> str:
    def failed() -> bool:  # past "connecting": the first attempt's reason
        reasons = running.rt.not_ready()
        return bool(reasons) and not all(r.endswith(": connecting") for r in reasons)

    await until(failed)
    return " ".join(running.rt.not_ready())


async def test_source_wrong_password_and_wrong_ca_say_why_without_the_password(
        secure_kafka: SecureKafka, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await _topic(secure_kafka, "refused")
    async with _source(secure_kafka, "refused", _blocks("SCRAM-SHA-512", CA_AND_CLIENT_CERT),
                       password="not-the-pw-123") as running:
        reason = await _not_ready_reason(running)
    assert "SASL SCRAM-SHA-512 login" in reason and "refused" in reason and "invalid credentials" in reason, reason
    wrong_ca = {"caCertSecret": _ref("other-ca")}
    async with _source(secure_kafka, "refused", _blocks("SCRAM-SHA-512", wrong_ca)) as running:
        untrusted = await _not_ready_reason(running)
    assert "TLS: the certificate of" in untrusted and "not trusted" in untrusted, untrusted
    for secret in ("not-the-pw-123", PASSWORD):
        assert secret not in reason + untrusted and secret not in caplog.text


def _fire(kafka: SecureKafka, topic: str, blocks: dict[str, Any], password: str = PASSWORD) -> Any:
    template = {"name": "tell", "kafka": {"url": kafka.url, "topic": topic, "payload": [], **blocks}}
    resolved = support.resolved(template, payload=b'{"sent": "securely"}', retryStrategy={"steps": 3})
    env = {env_name("SECRET", "kafka", k.split("/")[1]): v for k, v in _secrets(kafka, password).items()}
    return triggers.fire(resolved, support.context(secrets=env))


@pytest.mark.parametrize(("mechanism", "tls"), [("SCRAM-SHA-512", CA_AND_CLIENT_CERT),
                                                ("PLAIN", {"insecureSkipVerify": True})])
async def test_trigger_produces_over_tls_and_sasl(secure_kafka: SecureKafka, mechanism: str,
                                                  tls: dict[str, Any]) -> None:
    topic = f"out-{mechanism.lower()}"
    await _topic(secure_kafka, topic)
    secure_kafka.peers_log.write_text("")
    result = await _fire(secure_kafka, topic, _blocks(mechanism, tls))
    assert result.detail.startswith(f"produced to Kafka {secure_kafka.url} topic {topic}")
    assert (await first_record(topic, **_client(secure_kafka))).value == b'{"sent": "securely"}'
    assert ("knevents-client" in secure_kafka.peers()) == ("clientCertSecret" in tls)


async def test_trigger_sasl_without_tls(sasl_kafka: SecureKafka) -> None:
    await _topic(sasl_kafka, "out-plaintext")
    await _fire(sasl_kafka, "out-plaintext", _blocks("SCRAM-SHA-256", None))
    assert (await first_record("out-plaintext", **_client(sasl_kafka))).value == b'{"sent": "securely"}'


async def test_trigger_wrong_password_and_wrong_ca_are_permanent_and_clear(
        secure_kafka: SecureKafka, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await _topic(secure_kafka, "out-refused")
    with pytest.raises(errors.TriggerError) as refused:
        await _fire(secure_kafka, "out-refused", _blocks("SCRAM-SHA-256", {"caCertSecret": _ref("ca")}),
                    password="not-the-pw-456")
    with pytest.raises(errors.TriggerError) as untrusted:
        await _fire(secure_kafka, "out-refused", _blocks("SCRAM-SHA-256", {"caCertSecret": _ref("other-ca")}))
    assert not isinstance(refused.value, errors.TriggerRetryableError)  # configuration: not retried
    assert "SASL SCRAM-SHA-256 login" in str(refused.value) and "(attempt 1)" in str(refused.value)
    assert "TLS: the certificate of" in str(untrusted.value) and "(attempt 1)" in str(untrusted.value)
    for secret in ("not-the-pw-456", PASSWORD):
        assert secret not in str(refused.value) + str(untrusted.value) and secret not in caplog.text


async def test_tansu_own_authentication_refuses_every_login_and_knevents_says_so(
        tansu_authenticating: Tansu) -> None:
    url = tansu_authenticating.url
    template = {"name": "tell", "kafka": {"url": url, "topic": "t", "payload": [], **_blocks("SCRAM-SHA-512", None)}}
    env = {env_name("SECRET", "kafka", "user"): "alice", env_name("SECRET", "kafka", "password"): PASSWORD}
    with pytest.raises(errors.TriggerError, match=r"SASL SCRAM-SHA-512 login .* refused.*unknown-user"):
        await triggers.fire(support.resolved(template, payload=b"{}"), support.context(secrets=env))
    spec = {"kafka": {"tansu": {"url": url, "topic": "t", "partition": "0", **_blocks("PLAIN", None)}}}
    async with Running(spec, secrets={"kafka/user": "alice", "kafka/password": PASSWORD}) as running:
        reason = await _not_ready_reason(running)
    assert "closed the connection during the SASL PLAIN handshake" in reason, reason


def test_tls_and_sasl_blocks_are_validated_as_argo_does() -> None:
    bad = {"tls": {"clientCertSecret": _ref("cert")}, "sasl": {"mechanism": "GSSAPI", "userSecret": _ref("u")}}
    empty_tls = {"tls": {}}
    source = {"apiVersion": "argoproj.io/v1alpha1", "kind": "EventSource", "metadata": {"name": "k"},
              "spec": {"kafka": {"a": {"url": "h:1", "topic": "t", "partition": "0", **bad},
                                 "b": {"url": "h:1", "topic": "t", "partition": "0", **empty_tls}}}}
    sensor = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Sensor", "metadata": {"name": "s"},
              "spec": {"dependencies": [{"name": "d", "eventSourceName": "k", "eventName": "a"}],
                       "triggers": [{"template": {"name": "k", "kafka": {"url": "h:1", "topic": "t", "payload": [],
                                                                         **bad}}}]}}
    manifests = validation.load_text("\n---\n".join(json.dumps(doc) for doc in (source, sensor)))
    problems = [f"{p.path}: {p.message}" for p in manifests.problems]
    text = "\n".join(problems)
    assert text.count("tls needs both clientCertSecret and clientKeySecret") == 2, text
    assert text.count("GSSAPI is not supported") == 2 and text.count("needs both userSecret and passwordSecret") == 2
    assert "kafka.b.tls: tls needs caCertSecret" in text, text
