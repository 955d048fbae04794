"""Issue 12 §8 (signatures): GitHub's algorithm comes from the header; SNS checks dates, host and replays."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from typing import Any

import pytest
from knevents import web
from knevents.sources import aws_sns, base, sns
from knevents.spec import models

from tests.fixtures.aws import SnsSigner
from tests.unit.sources_core import helpers

SECRET = "hook-secret-1"
TOPIC = "arn:aws:sns:us-east-1:123456789012:uploads"
GITHUB = {"github": {"push": {"webhook": {"endpoint": "/gh", "port": "12000", "method": "POST"},
                              "events": ["*"], "repositories": [{"owner": "o", "names": ["r"]}], "webhookSecret": {"name": "gh", "key": "secret"}}}}
BODY = json.dumps({"ref": "refs/heads/main"}).encode()


def _mac(algorithm: str, body: bytes = BODY) -> str:
    return hmac.new(SECRET.encode(), body, getattr(hashlib, algorithm)).hexdigest()


async def _github(header: str, value: str) -> int:
    runtime, memory = helpers.runtime(GITHUB, secrets={"gh/secret": SECRET})
    request = helpers.request("POST", "/gh", BODY, {
        "content-type": "application/json", "x-github-event": "push", "x-github-delivery": "d-1", header: value})
    answer = await runtime.handle(request)
    assert (answer.status == 200) == bool(memory.events)
    return answer.status


@pytest.mark.parametrize(("header", "value", "status"), [
    ("X-Hub-Signature-256", f"sha256={_mac('sha256')}", 200),
    ("X-Hub-Signature", f"sha1={_mac('sha1')}", 200),
    ("X-Hub-Signature-256", f"sha1={_mac('sha1')}", 400),  # a downgrade inside the sha256 header
    ("X-Hub-Signature-256", f"sha512={_mac('sha512')}", 400),
    ("X-Hub-Signature", f"sha256={_mac('sha256')}", 400),
])
async def test_github_algorithm_comes_from_the_header_name(header: str, value: str, status: int) -> None:
    assert await _github(header, value) == status


def _source(fetcher: aws_sns.CertFetcher) -> sns.SnsSource:
    config = models.SNSEventSource(
        topicArn=TOPIC, region="us-east-1", validateSignature=True,
        webhook=models.WebhookContext(endpoint="/sns", port="12000", method="POST"),
    )
    return sns.SnsSource("example", config, base.SourceContext(event_source_name="aws-sns"), cert_fetcher=fetcher)


def _request(message: dict[str, Any]) -> web.Request:
    headers = web.Headers([("x-amz-sns-message-type", message["Type"]), ("Content-Type", "text/plain")])
    return web.Request("POST", "/sns", headers, json.dumps(message).encode())


def _expired(signer: SnsSigner) -> SnsSigner:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(signer.key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=30))
            .not_valid_after(now - dt.timedelta(days=1)).sign(signer.key, hashes.SHA256()))
    return SnsSigner(key=signer.key, cert_pem=cert.public_bytes(serialization.Encoding.PEM))


async def test_sns_expired_certificate_is_refused(sns_signer: SnsSigner) -> None:
    expired = _expired(sns_signer)
    result = await _source(expired.fetcher()).handle(_request(expired.sign(SnsSigner.notification(TOPIC, "x"))))
    assert result.response is not None and result.response.status == 403
    assert b"not valid now" in result.response.body and not result.events


async def test_sns_stale_timestamp_is_refused(sns_signer: SnsSigner) -> None:
    message = SnsSigner.notification(TOPIC, "old")
    message["Timestamp"] = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    result = await _source(sns_signer.fetcher()).handle(_request(sns_signer.sign(message)))
    assert result.response is not None and result.response.status == 403
    assert b"Timestamp" in result.response.body and not result.events
    fresh = await _source(sns_signer.fetcher()).handle(_request(sns_signer.sign(SnsSigner.notification(TOPIC, "x"))))
    assert len(fresh.events) == 1


@pytest.mark.parametrize("host", ["sns.s3.amazonaws.com", "sns.amazonaws.com", "sns.evil-1.amazonaws.com.example",
                                  "sns.us-east-1.amazonaws.com.evil", "sqs.us-east-1.amazonaws.com"])
def test_sns_cert_host_must_be_a_region_host(host: str) -> None:
    with pytest.raises(aws_sns.SnsRejected):
        aws_sns.check_cert_url(f"https://{host}/SimpleNotificationService-x.pem")


@pytest.mark.parametrize("host", ["sns.us-east-1.amazonaws.com", "sns.us-gov-west-1.amazonaws.com",
                                  "sns.cn-north-1.amazonaws.com.cn", "sns.ap-southeast-2.amazonaws.com"])
def test_sns_region_hosts_are_accepted(host: str) -> None:
    url = f"https://{host}/SimpleNotificationService-x.pem"
    assert aws_sns.check_cert_url(url) == url


async def test_sns_certificate_cache_is_bounded(sns_signer: SnsSigner) -> None:
    urls = [f"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-{i}.pem" for i in range(100)]
    fetcher = aws_sns.CertFetcher(lambda url: _pem(sns_signer))
    for url in urls:
        await fetcher.public_key(url)
    assert fetcher.fetches == 100
    await fetcher.public_key(urls[-1])  # recent: cached
    assert fetcher.fetches == 100
    await fetcher.public_key(urls[0])  # the oldest was evicted: fetched again
    assert fetcher.fetches == 101


async def _pem(signer: SnsSigner) -> bytes:
    return signer.cert_pem
