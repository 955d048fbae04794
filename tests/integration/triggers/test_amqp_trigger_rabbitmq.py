"""The amqp trigger (knevents extension) against a real RabbitMQ node (the session's ``rabbitmq`` fixture).

A sensor YAML through the engine (parameters, payload) to a confirmed
publish; retryable vs permanent failures under ``retryStrategy``; secrets
never in an error or a log line.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import aiormq
import pytest
import yaml
from knevents import errors, events, spec, triggers, validation
from knevents.secrets import env_name
from knevents.sensors import engine
from knevents.triggers import base

from tests.fixtures.rabbitmq import RabbitMQ, free_port
from tests.unit.triggers import trigger_support as support

SENSOR = """\
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata:
  name: orders-sensor
spec:
  dependencies:
    - name: order
      eventSourceName: webhook
      eventName: orders
  triggers:
    - template:
        name: forward
        amqp:
          urlSecret: {name: rabbit, key: url}
          exchangeName: EXCHANGE
          routingKey: placeholder
          headers: {origin: knevents}
          parameters:
            - src: {dependencyName: order, dataKey: body.region}
              dest: routingKey
          payload:
            - src: {dependencyName: order, dataKey: body.id}
              dest: orderId
      retryStrategy: {steps: 2, duration: 10ms}
"""


async def _queue(url: str, exchange: str, key: str) -> str:
    queue = f"q-{uuid.uuid4().hex[:8]}"
    connection = await aiormq.connect(url)
    try:
        channel = await connection.channel()
        await channel.exchange_declare(exchange, exchange_type="direct")
        await channel.queue_declare(queue)
        await channel.queue_bind(queue, exchange, routing_key=key)
    finally:
        await connection.close()
    return queue


async def _get(url: str, queue: str) -> Any:
    connection = await aiormq.connect(url)
    try:
        channel = await connection.channel()
        return await channel.basic_get(queue, no_ack=True)
    finally:
        await connection.close()


def _resolved(exchange: str) -> engine.Resolved:
    sensor = spec.parse_sensor(yaml.safe_load(SENSOR.replace("EXCHANGE", exchange)))
    machine = engine.SensorEngine(sensor)
    event = events.new_event(source="webhook", subject="orders", type="webhook", time=datetime.now(UTC),
                             data={"header": {}, "body": {"id": 42, "region": "eu"}})
    [matched] = machine.match(event)
    return machine.resolve("forward", {matched.name: matched.event})


async def test_sensor_publishes_the_payload_with_confirms(rabbitmq: RabbitMQ) -> None:
    exchange = f"orders-{uuid.uuid4().hex[:6]}"
    queue = await _queue(rabbitmq.url, exchange, "eu")
    resolved = _resolved(exchange)
    assert resolved.error is None and resolved.kind == "amqp"
    ctx = support.context(secrets={env_name("SECRET", "rabbit", "url"): rabbitmq.url},
                          traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    result = await triggers.fire(resolved, ctx)
    message = await _get(rabbitmq.url, queue)
    assert message.body == b'{"orderId":"42"}'  # Argo's payload parameters are strings
    props = message.header.properties
    [event] = resolved.events.values()
    assert props.message_id == event.id and props.headers[base.EVENT_IDS_HEADER] == event.id
    assert props.headers["traceparent"].startswith("00-4bf92f") and props.headers["origin"] == "knevents"
    assert (props.delivery_mode, props.content_type) == (2, "application/json")
    assert result.detail == f"published to AMQP amqp://127.0.0.1:{rabbitmq.port}/ exchange {exchange} " \
                            "routing key 'eu' (confirmed)"
    assert "guest" not in result.detail


def _template(url: str, **fields: Any) -> dict[str, Any]:
    return {"name": "forward", "amqp": {"url": url, "exchangeName": "amq.direct", "routingKey": "k", **fields}}


async def test_tls_with_a_client_certificate(rabbitmq: RabbitMQ) -> None:
    exchange = f"tls-{uuid.uuid4().hex[:6]}"
    queue = await _queue(rabbitmq.url, exchange, "tls-k")
    tls = {"caCertSecret": {"name": "tls", "key": "ca"}, "clientCertSecret": {"name": "tls", "key": "cert"},
           "clientKeySecret": {"name": "tls", "key": "key"}}
    pki = rabbitmq.pki
    secrets = {env_name("SECRET", "tls", "ca"): pki.ca.cert, env_name("SECRET", "tls", "cert"): pki.client.cert,
               env_name("SECRET", "tls", "key"): pki.client.key}
    url = f"amqps://guest:guest@127.0.0.1:{rabbitmq.tls_port}/"
    resolved = support.resolved(_template(url, exchangeName=exchange, routingKey="tls-k", tls=tls),
                                payload=b'{"over": "tls"}')
    result = await triggers.fire(resolved, support.context(secrets=secrets))
    assert result.detail.endswith("(confirmed)")
    assert (await _get(rabbitmq.url, queue)).body == b'{"over": "tls"}'
    without = support.resolved(_template(url, routingKey="tls-k", tls={"caCertSecret": tls["caCertSecret"]}),
                               payload=b"{}")
    with pytest.raises(errors.TriggerRetryableError, match="could not connect") as info:  # the broker refuses
        await triggers.fire(without, support.context(secrets=secrets))
    assert "guest" not in str(info.value)


async def test_unroutable_message_is_retried_then_gives_up(rabbitmq: RabbitMQ) -> None:
    resolved = support.resolved(_template(rabbitmq.url, routingKey=f"nobody-{uuid.uuid4().hex}"), payload=b"{}",
                                retryStrategy={"steps": 2, "duration": "10ms"})
    with pytest.raises(errors.TriggerRetryableError, match=r"no queue is bound.*gave up after 2 attempt"):
        await triggers.fire(resolved, support.context())


async def test_unroutable_is_fine_without_mandatory(rabbitmq: RabbitMQ) -> None:
    resolved = support.resolved(_template(rabbitmq.url, mandatory=False), payload=b"{}")
    result = await triggers.fire(resolved, support.context())
    assert result.detail.endswith("(confirmed)")


async def test_missing_exchange_is_permanent_and_not_retried(rabbitmq: RabbitMQ) -> None:
    resolved = support.resolved(_template(rabbitmq.url, exchangeName="no-such-exchange"), payload=b"{}",
                                retryStrategy={"steps": 3, "duration": "10ms"})
    with pytest.raises(errors.TriggerError, match=r"refused: NOT_FOUND.*\(attempt 1\)"):
        await triggers.fire(resolved, support.context())


async def test_wrong_password_is_permanent_and_never_shown(rabbitmq: RabbitMQ,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    auth = {"username": {"name": "rabbit", "key": "user"}, "password": {"name": "rabbit", "key": "password"}}
    secrets = {env_name("SECRET", "rabbit", "user"): "guest", env_name("SECRET", "rabbit", "password"): "wr0ng-pa55"}
    resolved = support.resolved(_template(f"amqp://127.0.0.1:{rabbitmq.port}/", auth=auth), payload=b"{}",
                                retryStrategy={"steps": 3, "duration": "10ms"})
    with pytest.raises(errors.TriggerError, match="refused the credentials") as info:
        await triggers.fire(resolved, support.context(secrets=secrets))
    assert not isinstance(info.value, errors.TriggerRetryableError)
    assert "wr0ng-pa55" not in str(info.value) and "wr0ng-pa55" not in caplog.text


async def test_unreachable_broker_is_retryable_and_the_url_secret_hidden(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"amqp://admin:s3cr3t-pw@127.0.0.1:{free_port()}/"
    resolved = support.resolved({"name": "t", "amqp": {"urlSecret": {"name": "rabbit", "key": "url"},
                                                       "exchangeName": "x", "routingKey": "k"}}, payload=b"{}",
                                retryStrategy={"steps": 2, "duration": "10ms"})
    with pytest.raises(errors.TriggerRetryableError, match="could not connect") as info:
        await triggers.fire(resolved, support.context(secrets={env_name("SECRET", "rabbit", "url"): url}))
    assert "s3cr3t" not in str(info.value) and "s3cr3t" not in caplog.text


async def test_bad_spec_is_permanent_and_dry_run_does_not_connect() -> None:
    both = support.resolved(_template("amqp://h/", urlSecret={"name": "s", "key": "k"}), payload=b"{}")
    with pytest.raises(errors.TriggerError, match="exactly one of url and urlSecret"):
        await triggers.fire(both, support.context())
    wrong = support.resolved(_template("http://h/"), payload=b"{}")
    with pytest.raises(errors.TriggerError, match="not an amqp:// or amqps:// URL"):
        await triggers.fire(wrong, support.context())
    dry = support.resolved(_template(f"amqp://u:p4ss@127.0.0.1:{free_port()}/"), payload=b"{}")
    result = await triggers.fire(dry, support.context(dry_run=True))
    assert result.detail.startswith("dry run: would publish to AMQP amqp://127.0.0.1:") and "p4ss" not in result.detail


def test_validate_checks_the_url_and_the_parameters() -> None:
    good = SENSOR.replace("EXCHANGE", "orders")
    assert validation.load_text(good).problems == []
    both = good.replace("urlSecret: {name: rabbit, key: url}", "urlSecret: {name: rabbit, key: url}\n          url: amqp://h/")
    http = good.replace("urlSecret: {name: rabbit, key: url}", "url: http://h/")
    ghost = good.replace("dependencyName: order, dataKey: body.id", "dependencyName: nobody, dataKey: body.id")
    found = {name: [f"{p.path}: {p.message}" for p in validation.load_text(text).problems]
             for name, text in (("both", both), ("http", http), ("ghost", ghost))}
    assert found["both"] == [
        "spec.triggers[0].template.amqp: an amqp trigger needs exactly one of `url` and `urlSecret` (line 13)"]
    assert found["http"] == ["spec.triggers[0].template.amqp.url: the url must be amqp://… or amqps://… (line 14)"]
    assert len(found["ghost"]) == 1 and "nobody" in found["ghost"][0]
