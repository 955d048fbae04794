"""The sns source without a network: envelope checks, signatures (v1/v2), the cert URL rule, caching."""

from __future__ import annotations

import json
from typing import Any

import pytest
from knevents import events, web
from knevents.sources import aws_sns, base, sns
from knevents.spec import models

from tests.fixtures.aws import SnsSigner

TOPIC = "arn:aws:sns:us-east-1:123456789012:uploads"


def _source(fetcher: aws_sns.CertFetcher | None, **extra: Any) -> sns.SnsSource:
    config = models.SNSEventSource(
        topicArn=TOPIC,
        region="us-east-1",
        validateSignature=True,
        webhook=models.WebhookContext(endpoint="/sns", port="12000", method="POST"),
        **extra,
    )
    return sns.SnsSource(
        "example", config, base.SourceContext(event_source_name="aws-sns"), cert_fetcher=fetcher
    )


def _request(message: dict[str, Any]) -> web.Request:
    headers = web.Headers([("x-amz-sns-message-type", message["Type"]), ("Content-Type", "text/plain")])
    return web.Request("POST", "/sns", headers, json.dumps(message).encode())


@pytest.mark.parametrize("version", ["1", "2"])
async def test_signed_notification_becomes_one_argo_shaped_event(sns_signer: SnsSigner, version: str) -> None:
    fetcher = sns_signer.fetcher()
    message = sns_signer.sign(SnsSigner.notification(TOPIC, "hello", subject="greeting"), version)
    result = await _source(fetcher).handle(_request(message))
    assert result.response is None
    (event,) = result.events
    assert (event.source, event.subject, event.type) == ("aws-sns", "example", "sns")
    data = events.data_json(event)
    assert data["body"]["Message"] == "hello"
    assert data["header"]["X-Amz-Sns-Message-Type"] == ["Notification"]
    assert fetcher.requested == [sns_signer.cert_url]


async def test_event_id_is_stable_for_a_redelivered_message(sns_signer: SnsSigner) -> None:
    source = _source(sns_signer.fetcher())
    message = sns_signer.sign(SnsSigner.notification(TOPIC, "again"))
    first = await source.handle(_request(message))
    second = await source.handle(_request(message))
    assert first.events[0].id == second.events[0].id
    other = await source.handle(_request(sns_signer.sign(SnsSigner.notification(TOPIC, "again"))))
    assert other.events[0].id != first.events[0].id


async def test_certificate_is_fetched_once(sns_signer: SnsSigner) -> None:
    fetcher = sns_signer.fetcher()
    source = _source(fetcher)
    for text in ("a", "b", "c"):
        result = await source.handle(_request(sns_signer.sign(SnsSigner.notification(TOPIC, text))))
        assert len(result.events) == 1
    assert fetcher.requested == [sns_signer.cert_url]


async def test_tampered_message_is_rejected(sns_signer: SnsSigner) -> None:
    message = sns_signer.sign(SnsSigner.notification(TOPIC, "original"))
    message["Message"] = "tampered"
    result = await _source(sns_signer.fetcher()).handle(_request(message))
    assert result.events == ()
    assert result.response is not None and result.response.status == 403
    assert b"signature does not match" in result.response.body


async def test_subject_is_part_of_the_signed_string(sns_signer: SnsSigner) -> None:
    message = sns_signer.sign(SnsSigner.notification(TOPIC, "x", subject="one"))
    message["Subject"] = "two"
    result = await _source(sns_signer.fetcher()).handle(_request(message))
    assert result.response is not None and result.response.status == 403


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example.com/SimpleNotificationService-x.pem",
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem",
        "https://sns.us-east-1.amazonaws.com.evil.example/x.pem",
        "https://sns.us-east-1.amazonaws.com:8443/x.pem",
        "https://user@sns.us-east-1.amazonaws.com/x.pem",
    ],
)
async def test_foreign_signing_cert_url_is_rejected_without_fetching(sns_signer: SnsSigner, url: str) -> None:
    fetcher = sns_signer.fetcher()
    message = sns_signer.sign({**SnsSigner.notification(TOPIC, "x"), "SigningCertURL": url})
    result = await _source(fetcher).handle(_request(message))
    assert result.events == ()
    assert result.response is not None and result.response.status == 403
    assert b"not fetched" in result.response.body
    assert fetcher.requested == []


def test_china_region_cert_host_is_accepted() -> None:
    url = "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-x.pem"
    assert aws_sns.check_cert_url(url) == url


async def test_unknown_signature_version_is_rejected(sns_signer: SnsSigner) -> None:
    message = {**sns_signer.sign(SnsSigner.notification(TOPIC, "x")), "SignatureVersion": "3"}
    result = await _source(sns_signer.fetcher()).handle(_request(message))
    assert result.response is not None and result.response.status == 403
    assert b"SignatureVersion" in result.response.body


async def test_message_from_another_topic_is_rejected(sns_signer: SnsSigner) -> None:
    other = "arn:aws:sns:us-east-1:123456789012:someone-else"
    result = await _source(sns_signer.fetcher()).handle(
        _request(sns_signer.sign(SnsSigner.notification(other, "x")))
    )
    assert result.response is not None and result.response.status == 403
    assert other.encode() in result.response.body


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", b"not JSON"),
        (b"[1]", b"not a JSON object"),
        (b'{"Type": "Other"}', b"Type is 'Other'"),
        (b'{"Type": "Notification"}', b"lacks field(s)"),
    ],
)
async def test_malformed_delivery_is_a_clear_400(body: bytes, reason: bytes) -> None:
    result = await _source(None).handle(web.Request("POST", "/sns", web.Headers(), body))
    assert result.response is not None and result.response.status == 400
    assert reason in result.response.body


async def test_oversized_body_is_413() -> None:
    config = models.SNSEventSource(
        topicArn=TOPIC,
        region="us-east-1",
        webhook=models.WebhookContext(endpoint="/sns", port="12000", method="POST", maxPayloadSize=64),
    )
    source = sns.SnsSource("example", config, base.SourceContext(event_source_name="aws-sns"))
    result = await source.handle(web.Request("POST", "/sns", web.Headers(), b"{" + b" " * 100 + b"}"))
    assert result.response is not None and result.response.status == 413


async def test_confirmation_to_a_foreign_host_is_not_fetched(sns_signer: SnsSigner) -> None:
    message = sns_signer.sign(SnsSigner.confirmation(TOPIC, "http://169.254.169.254/latest/meta-data/"))
    result = await _source(sns_signer.fetcher()).handle(_request(message))
    assert result.response is not None and result.response.status == 403
    assert b"not fetched" in result.response.body


@pytest.mark.parametrize(
    ("url", "origin", "allowed"),
    [
        ("https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=t", None, True),
        ("http://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription", None, False),
        ("https://example.com/?Action=ConfirmSubscription", None, False),
        ("http://127.0.0.1:5000/?Action=ConfirmSubscription", None, False),
        ("http://127.0.0.1:5000/?Action=ConfirmSubscription", ("http", "127.0.0.1", 5000), True),
        ("http://127.0.0.1:5001/?Action=ConfirmSubscription", ("http", "127.0.0.1", 5000), False),
        ("https://127.0.0.1:5000/?Action=ConfirmSubscription", ("http", "127.0.0.1", 5000), False),
    ],
)
def test_subscribe_url_rule(url: str, origin: tuple[str, str, int] | None, allowed: bool) -> None:
    if allowed:
        assert aws_sns.check_subscribe_url(url, origin) == url
    else:
        with pytest.raises(aws_sns.SnsRejected):
            aws_sns.check_subscribe_url(url, origin)


def test_routes_come_from_the_webhook_context() -> None:
    assert _source(None).routes() == [base.Route(endpoint="/sns", method="POST", port=12000)]


def test_missing_webhook_is_a_spec_error() -> None:
    from knevents import errors

    config = models.SNSEventSource(topicArn=TOPIC, region="us-east-1")
    with pytest.raises(errors.SpecError, match=r"sns\.example\.webhook is required"):
        sns.create("example", config, base.SourceContext(event_source_name="aws-sns"))


async def test_authorization_header_is_masked_in_event_data() -> None:
    message = SnsSigner.notification(TOPIC, "x")
    request = web.Request(
        "POST", "/sns", web.Headers([("authorization", "Bearer s3cr3t")]), json.dumps(message).encode()
    )
    config = models.SNSEventSource(
        topicArn=TOPIC, region="us-east-1", webhook=models.WebhookContext(endpoint="/sns")
    )
    source = sns.SnsSource("example", config, base.SourceContext(event_source_name="aws-sns"))
    (event,) = (await source.handle(request)).events
    assert b"s3cr3t" not in (event.data or b"")
    assert events.data_json(event)["header"]["Authorization"] == ["*** Masked Auth Secret ***"]
