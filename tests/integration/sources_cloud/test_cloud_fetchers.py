"""The production fetchers (SNS signing certificate, SubscribeURL confirmation, Google JWKS) over real HTTP.

The URL rules that guard them are unit-tested; here the fetch itself runs
against a local server: success, HTTP errors become TemporaryError (the
caller answers 5xx so SNS retries), and a non-certificate is rejected.
"""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from knevents import errors, web
from knevents.sources import aws_sns

from tests.integration.sources_cloud import cloud_harness as harness


def _pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


async def test_http_cert_fetcher_fetches_once_and_maps_failures() -> None:
    pem = _pem()
    hits: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(request.path)
        if request.path == "/cert.pem":
            return web.Response(200, pem)
        if request.path == "/garbage.pem":
            return web.Response(200, b"not a certificate")
        return web.text_response(404, "no")

    fetcher = aws_sns.HttpCertFetcher(timeout=harness.WAIT)
    async with harness.serve(handler) as url:
        first = await fetcher.public_key(f"{url}/cert.pem")
        again = await fetcher.public_key(f"{url}/cert.pem")
        assert first is again and hits == ["/cert.pem"]
        with pytest.raises(errors.TemporaryError, match="HTTP 404"):
            await fetcher.public_key(f"{url}/missing.pem")
        with pytest.raises(aws_sns.SnsRejected, match="not a PEM"):
            await fetcher.public_key(f"{url}/garbage.pem")


async def test_confirmation_failures_are_temporary() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.text_response(500 if "fail" in request.query_string else 200, "")

    async with harness.serve(handler) as url:
        await aws_sns.confirm_subscription(f"{url}/?Action=ConfirmSubscription")
        with pytest.raises(errors.TemporaryError, match="HTTP 500"):
            await aws_sns.confirm_subscription(f"{url}/?Action=ConfirmSubscription&fail=1")
    with pytest.raises(errors.TemporaryError, match="failed"):
        await aws_sns.confirm_subscription(url)  # the server is gone now
