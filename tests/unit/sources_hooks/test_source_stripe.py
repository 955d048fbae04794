"""stripe: Stripe-Signature checked against Stripe's own library, eventFilter, Argo's {"event": …} data."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time

import pytest
import stripe

from tests.unit.sources_hooks.hookkit import Hook, payload

SECRET = "whsec_test_0123456789abcdef"
SPEC = {"stripe": {"example": {
    "webhook": {"endpoint": "/example", "port": "12000", "method": "POST", "url": "http://myfakeurl.fake"},
    "eventFilter": ["payment_intent.succeeded", "charge.failed"],
    "signingSecret": {"name": "stripe", "key": "whsec"},
}}}
SECRETS = {"stripe/whsec": SECRET}


def _header(body: bytes, *, secret: str = SECRET, age: float = 0, scheme: str = "v1") -> str:
    stamp = str(int(time.time() - age))
    mac = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={stamp},{scheme}={mac}"


def test_the_test_signer_is_what_stripes_library_accepts() -> None:
    body = payload("stripe-payment-intent-succeeded.json")
    event = stripe.Webhook.construct_event(body.decode(), _header(body), SECRET)
    assert event["type"] == "payment_intent.succeeded"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body.decode(), _header(body, age=600), SECRET)


async def test_signed_event_fires_with_argos_data_and_dedupes_on_the_event_id() -> None:
    hook = Hook(SPEC, SECRETS)
    body = payload("stripe-payment-intent-succeeded.json")
    answer = await hook.post("/example", body, {"Content-Type": "application/json", "Stripe-Signature": _header(body)})
    assert answer.status == 200, answer.body
    data = answer.data()
    assert data["event"]["id"] == "evt_3MtwBwLkdIwHu7ix28a3tqPa"
    assert data["event"]["data"]["object"]["amount"] == 2000
    retry = await hook.post("/example", body, {"Stripe-Signature": _header(body)})
    assert retry.published[0].id == answer.published[0].id
    assert answer.published[0].type == "stripe"


async def test_several_v1_signatures_while_the_secret_rolls() -> None:
    hook = Hook(SPEC, SECRETS)
    body = payload("stripe-payment-intent-succeeded.json")
    old = _header(body, secret="whsec_old").split(",")[1]
    answer = await hook.post("/example", body, {"Stripe-Signature": _header(body) + "," + old})
    assert answer.status == 200 and len(answer.published) == 1


async def test_event_filter_drops_other_types_with_200() -> None:
    hook = Hook(SPEC, SECRETS)
    body = json.dumps({**json.loads(payload("stripe-payment-intent-succeeded.json")), "type": "customer.created"}).encode()
    answer = await hook.post("/example", body, {"Stripe-Signature": _header(body)})
    assert answer.status == 200 and answer.published == []


@pytest.mark.parametrize("case", ["forged", "missing", "stale", "v0-scheme", "tampered"])
async def test_bad_signatures_are_400_logged_without_the_secret(case: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    hook = Hook(SPEC, SECRETS)
    body = payload("stripe-payment-intent-succeeded.json")
    headers = {
        "forged": {"Stripe-Signature": _header(body, secret="whsec_forged")},
        "missing": {},
        "stale": {"Stripe-Signature": _header(body, age=301)},
        "v0-scheme": {"Stripe-Signature": _header(body, scheme="v0")},
        "tampered": {"Stripe-Signature": _header(body)},
    }[case]
    sent = body.replace(b"2000", b"1") if case == "tampered" else body
    answer = await hook.post("/example", sent, headers)
    assert answer.status == 400 and answer.published == []
    assert "signature validation failed" in caplog.text and SECRET not in caplog.text


async def test_without_a_signing_secret_any_json_event_passes_as_in_argo() -> None:
    spec = {"stripe": {"example": {**SPEC["stripe"]["example"], "signingSecret": None}}}
    del spec["stripe"]["example"]["signingSecret"]
    hook = Hook(spec)
    answer = await hook.post("/example", payload("stripe-payment-intent-succeeded.json"))
    assert answer.status == 200 and len(answer.published) == 1
    assert (await hook.post("/example", b"not json")).status == 400
