"""The pubSub push source without a network: the envelope, Argo's payload, and OIDC token checks."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from knevents import errors, events, web
from knevents.sources import base, gcp_oidc, pubsub
from knevents.spec import models

CTX = base.SourceContext(event_source_name="gcp-pubsub")
AUDIENCE = "https://events.example.com/orders"
EMAIL = "pusher@proj.iam.gserviceaccount.com"


@pytest.fixture(scope="module")
def google_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Jwks:
    """A stand-in for Google's certs endpoint, injected into GoogleKeys; counts fetches."""

    def __init__(self, key: rsa.RSAPrivateKey, kid: str = "k1") -> None:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        self.document = {"keys": [{**jwk, "kid": kid, "alg": "RS256", "use": "sig"}]}
        self.calls = 0

    async def __call__(self) -> Mapping[str, Any]:
        self.calls += 1
        return self.document


def _token(key: rsa.RSAPrivateKey, kid: str = "k1", **claims: Any) -> str:
    now = int(time.time())
    body = {
        "iss": "https://accounts.google.com",
        "aud": AUDIENCE,
        "email": EMAIL,
        "email_verified": True,
        "iat": now,
        "exp": now + 600,
        "sub": "1234",
        **claims,
    }
    return jwt.encode(
        {k: v for k, v in body.items() if v is not None}, key, algorithm="RS256", headers={"kid": kid}
    )


def _config(**push: Any) -> models.PubSubEventSource:
    return models.PubSubEventSource.model_validate(
        {"projectID": "proj", "subscriptionID": "orders-push", "jsonBody": True, "push": push}
    )


def _envelope(data: bytes = b'{"order": 7}', **message: Any) -> bytes:
    msg = {
        "data": base64.b64encode(data).decode(),
        "attributes": {"kind": "order"},
        "messageId": "136969346945",
        "publishTime": "2024-05-01T10:11:12.345Z",
        **message,
    }
    return json.dumps({"message": msg, "subscription": "projects/proj/subscriptions/orders-push"}).encode()


def _request(body: bytes, token: str | None = None) -> web.Request:
    headers = [("content-type", "application/json")]
    if token is not None:
        headers.append(("authorization", f"Bearer {token}"))
    return web.Request("POST", "/orders", web.Headers(headers), body)


async def test_push_envelope_becomes_argos_payload() -> None:
    source = pubsub.create("orders", _config(), CTX)
    assert isinstance(source, pubsub.PubSubPushSource)
    assert source.routes() == [base.Route(endpoint="/orders", method="POST", port=None)]
    result = await source.handle(_request(_envelope()))
    (event,) = result.events
    assert (event.source, event.subject, event.type) == ("gcp-pubsub", "orders", "pubsub")
    assert events.data_json(event) == {
        "id": "136969346945",
        "body": {"order": 7},
        "attributes": {"kind": "order"},
        "publishTime": "2024-05-01 10:11:12.345 +0000 UTC",
    }
    again = await source.handle(_request(_envelope()))
    assert again.events[0].id == event.id


async def test_without_json_body_the_data_is_base64() -> None:
    config = models.PubSubEventSource.model_validate({"push": {"endpoint": "/x"}})
    result = await pubsub.create("orders", config, CTX).handle(_request(_envelope(b"\x00raw")))  # type: ignore[union-attr]
    assert base64.b64decode(events.data_json(result.events[0])["body"]) == b"\x00raw"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"nope", b"not JSON"),
        (b'{"subscription": "projects/proj/subscriptions/orders-push"}', b"no 'message'"),
        (_envelope(messageId=None), b"no messageId"),
        (_envelope(data=b"not json"), b"not JSON"),
        (_envelope(attributes={"n": 1}), b"attributes"),
        (_envelope(publishTime="yesterday"), b"RFC 3339"),
    ],
)
async def test_malformed_push_is_a_clear_400(body: bytes, reason: bytes) -> None:
    result = await pubsub.create("orders", _config(), CTX).handle(_request(body))  # type: ignore[union-attr]
    assert result.events == ()
    assert result.response is not None and result.response.status == 400
    assert reason in result.response.body


async def test_push_from_another_subscription_is_rejected() -> None:
    body = json.dumps(
        {"message": {"data": "e30=", "messageId": "1"}, "subscription": "projects/proj/subscriptions/other"}
    ).encode()
    result = await pubsub.create("orders", _config(), CTX).handle(_request(body))  # type: ignore[union-attr]
    assert result.response is not None and result.response.status == 403


def _verifying(jwks: Jwks, **push: Any) -> pubsub.PubSubPushSource:
    config = _config(verifyToken=True, audience=AUDIENCE, email=EMAIL, **push)
    return pubsub.PubSubPushSource("orders", config, CTX, google_keys=gcp_oidc.GoogleKeys(jwks))


async def test_valid_google_token_is_accepted_and_keys_are_cached(google_key: rsa.RSAPrivateKey) -> None:
    jwks = Jwks(google_key)
    source = _verifying(jwks)
    for _ in range(3):
        result = await source.handle(_request(_envelope(), _token(google_key)))
        assert len(result.events) == 1
    assert jwks.calls == 1


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"aud": "https://elsewhere.example.com"}, b"another audience"),
        ({"iss": "https://evil.example.com"}, b"not issued by Google"),
        ({"email": "intruder@proj.iam.gserviceaccount.com"}, b"another service account"),
        ({"email_verified": False}, b"another service account"),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, b"expired"),
    ],
)
async def test_bad_claims_are_rejected(
    google_key: rsa.RSAPrivateKey, claims: dict[str, Any], reason: bytes
) -> None:
    result = await _verifying(Jwks(google_key)).handle(_request(_envelope(), _token(google_key, **claims)))
    assert result.events == ()
    assert result.response is not None and result.response.status == 403
    assert reason in result.response.body


async def test_token_signed_by_another_key_is_rejected(google_key: rsa.RSAPrivateKey) -> None:
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = _token(forger)
    result = await _verifying(Jwks(google_key)).handle(_request(_envelope(), token))
    assert result.response is not None and result.response.status == 403
    assert token.encode() not in result.response.body


async def test_unknown_key_id_is_rejected(google_key: rsa.RSAPrivateKey) -> None:
    result = await _verifying(Jwks(google_key)).handle(_request(_envelope(), _token(google_key, kid="k9")))
    assert result.response is not None and result.response.status == 403
    assert b"unknown key" in result.response.body


@pytest.mark.parametrize("header", [None, "Basic abc", "Bearer "])
async def test_missing_token_is_401(google_key: rsa.RSAPrivateKey, header: str | None) -> None:
    headers = [] if header is None else [("authorization", header)]
    request = web.Request("POST", "/orders", web.Headers(headers), _envelope())
    result = await _verifying(Jwks(google_key)).handle(request)
    assert result.response is not None and result.response.status == 401


def test_verify_without_audience_is_a_spec_error() -> None:
    with pytest.raises(errors.SpecError, match="audience is required"):
        pubsub.create("orders", _config(verifyToken=True), CTX)


def test_pull_needs_a_topic_or_a_subscription() -> None:
    with pytest.raises(errors.SpecError, match="topic, subscriptionID"):
        pubsub.create("orders", models.PubSubEventSource(projectID="p"), CTX)


@pytest.mark.parametrize(
    ("when", "nanos", "text"),
    [
        (datetime(2024, 5, 1, 10, 11, 12, tzinfo=UTC), 0, "2024-05-01 10:11:12 +0000 UTC"),
        (datetime(2024, 5, 1, 10, 11, 12, tzinfo=UTC), 120_000_000, "2024-05-01 10:11:12.12 +0000 UTC"),
        (datetime(2024, 5, 1, 10, 11, 12, 5, tzinfo=UTC), None, "2024-05-01 10:11:12.000005 +0000 UTC"),
    ],
)
def test_go_time_format(when: datetime, nanos: int | None, text: str) -> None:
    assert pubsub.go_time(when, nanos) == text
