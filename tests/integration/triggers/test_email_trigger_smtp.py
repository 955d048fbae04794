"""The email trigger against aiosmtpd (tests/fixtures/smtp.py): STARTTLS, AUTH, one message per recipient."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from knevents import errors, events, spec, triggers
from knevents.local.natsd import free_port
from knevents.secrets import env_name
from knevents.sensors import engine

from tests import upstream
from tests.fixtures.smtp import PASSWORD, USER, SmtpServer
from tests.integration.sources_more import local_run
from tests.unit.triggers import trigger_support as support

SECRETS = {env_name("SECRET", "smtp-secret", "password"): PASSWORD}


def _email(port: int, **fields: Any) -> dict[str, Any]:
    base = {"username": USER, "smtpPassword": {"name": "smtp-secret", "key": "password"}, "host": "127.0.0.1",
            "port": port, "from": "argo@example.com", "subject": "Build", "body": "done", "to": ["a@example.com"]}
    return {"name": "mail", "email": {**base, **fields}}


async def test_upstream_sensor_mails_the_templated_body(smtp_server: SmtpServer) -> None:
    doc = yaml.safe_load(upstream.example("sensors", "email-trigger.yaml").read_text())
    doc["spec"]["triggers"][0]["template"]["email"].update({"host": "127.0.0.1", "port": smtp_server.port,
                                                             "username": USER})
    machine = engine.SensorEngine(spec.parse_sensor(doc))
    event = events.new_event(source="webhook", subject="example", type="webhook", time=datetime.now(UTC),
                             data={"header": {}, "body": {"to": "dev@example.com", "name": "Anakin"}})
    [matched] = machine.match(event)
    resolved = machine.resolve(machine.triggers_for(matched.name)[0], {matched.name: matched.event})
    assert resolved.error is None
    result = await triggers.fire(resolved, support.context(secrets=SECRETS))
    [(sender, rcpts, msg)] = smtp_server.received
    assert (sender, rcpts) == ("example@email.com", ["dev@example.com"])
    assert (msg["From"], msg["To"], msg["Subject"]) == ("example@email.com", "dev@example.com", "Hello There")
    assert msg.get_content_type() == "text/plain"
    assert msg.get_payload(decode=True).decode().replace("\r\n", "\n") == "Hi Anakin,\n\n\tHello There.\n\nThanks,\nObi\n"
    assert smtp_server.logins == [USER]
    assert result.detail == f"mailed dev@example.com via 127.0.0.1:{smtp_server.port}"


async def test_one_message_per_recipient_and_invalid_addresses_fail_after_the_rest(smtp_server: SmtpServer) -> None:
    template = _email(smtp_server.port, to=["a@example.com", "not-an-address", "b@example.org"])
    with pytest.raises(errors.TriggerError, match="to emailId can't be invalid not-an-address"):
        await triggers.fire(support.resolved(template), support.context(secrets=SECRETS))
    assert [(r[1], r[2]["To"]) for r in smtp_server.received] == [
        (["a@example.com"], "a@example.com"), (["b@example.org"], "b@example.org")]


@pytest.mark.parametrize(("fields", "match"), [({"to": []}, "to can't be empty"), ({"body": ""}, "body can't be"),
                                               ({"subject": ""}, "subject can't be empty")])
async def test_missing_fields_are_permanent(smtp_server: SmtpServer, fields: dict[str, Any], match: str) -> None:
    with pytest.raises(errors.TriggerError, match=match):
        await triggers.fire(support.resolved(_email(smtp_server.port, **fields)), support.context(secrets=SECRETS))
    assert smtp_server.received == []


async def test_wrong_password_is_permanent_and_never_shown(smtp_server: SmtpServer,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = {env_name("SECRET", "smtp-secret", "password"): "wrong-pa55word"}
    with pytest.raises(errors.TriggerError, match="535") as info:
        await triggers.fire(support.resolved(_email(smtp_server.port)), support.context(secrets=wrong))
    assert "pa55word" not in str(info.value) and "pa55word" not in caplog.text


async def test_temporary_rejection_is_retryable(smtp_server: SmtpServer) -> None:
    smtp_server.reject_next = ["451 try again later"]
    with pytest.raises(errors.TriggerRetryableError, match="451"):
        await triggers.fire(support.resolved(_email(smtp_server.port)), support.context(secrets=SECRETS))
    await triggers.fire(support.resolved(_email(smtp_server.port)), support.context(secrets=SECRETS))
    assert len(smtp_server.received) == 1


async def test_untrusted_certificate_and_unreachable_server(smtp_server: SmtpServer,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE")
    with pytest.raises(errors.TriggerError, match="TLS with SMTP server"):
        await triggers.fire(support.resolved(_email(smtp_server.port)), support.context(secrets=SECRETS))
    with pytest.raises(errors.TriggerRetryableError, match="cannot send through SMTP server"):
        await triggers.fire(support.resolved(_email(9)), support.context(secrets=SECRETS))
    assert smtp_server.received == []


def test_upstream_email_sensor_under_knevents_run(smtp_server: SmtpServer, tmp_path: Path) -> None:
    port = free_port()
    doc = yaml.safe_load(upstream.example("sensors", "email-trigger.yaml").read_text())
    doc["spec"]["triggers"][0]["template"]["email"].update({"host": "127.0.0.1", "port": smtp_server.port,
                                                             "username": USER})
    with local_run.running(tmp_path, local_run.upstream_webhook(port), yaml.safe_dump(doc), SECRETS) as runner:
        local_run.post(runner, port, {"to": "dev@example.com", "name": "Leia"}, tmp_path)
        runner.wait_for(lambda r: r.get("tag") == "fired", "the email firing")
    [(_, rcpts, msg)] = smtp_server.received
    assert rcpts == ["dev@example.com"] and msg["Subject"] == "Hello There"
    assert msg.get_payload(decode=True).decode().startswith("Hi Leia,")
