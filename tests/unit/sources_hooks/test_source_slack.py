"""slack: v0 signatures (Slack's worked example as a known answer), url_verification, Events API, forms."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time

import pytest
from knevents.sources import signing

from tests.unit.sources_hooks.hookkit import Hook, payload

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # Slack's documented example signing secret
TOKEN = "ZZZZZZWSxiZZZ2yIvs3peJ"
SPEC = {"slack": {"example": {
    "webhook": {"endpoint": "/", "port": "12000", "method": "POST"},
    "token": {"name": "slack-secret", "key": "tokenkey"},
    "signingSecret": {"name": "slack-secret", "key": "signingSecret"},
}}}
SECRETS = {"slack-secret/tokenkey": TOKEN, "slack-secret/signingSecret": SECRET}
FORM = "application/x-www-form-urlencoded"


def _signed(body: bytes, content_type: str, *, secret: str = SECRET, age: float = 0) -> dict[str, str]:
    stamp = str(int(time.time() - age))
    mac = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"Content-Type": content_type, "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": "v0=" + mac}


def test_slacks_documented_example_signature_is_accepted_and_others_refused() -> None:
    body = payload("slack-slash-command.form")
    good = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    assert signing.slack_v0(good, "1531420618", body, SECRET, now=1531420618 + 60) is None
    assert signing.slack_v0(good, "1531420618", body + b"x", SECRET, now=1531420618) == "signature mismatch"
    assert "tolerance" in str(signing.slack_v0(good, "1531420618", body, SECRET, now=1531420618 + 301))
    assert signing.slack_v0("v1=" + good[3:], "1531420618", body, SECRET, now=1531420618) is not None


async def test_slash_command_fires_with_slack_gos_field_set() -> None:
    hook = Hook(SPEC, SECRETS)
    body = payload("slack-slash-command.form")
    answer = await hook.post("/", body, _signed(body, FORM))
    assert answer.status == 200, answer.body
    data = answer.data()
    assert data["command"] == "/webhook-collect" and data["team_domain"] == "testteamnow"
    assert data["response_url"].startswith("https://hooks.slack.com/commands/")
    assert data["is_enterprise_install"] is False and data["text"] == ""
    assert (answer.published[0].type, answer.published[0].subject) == ("slack", "example")


async def test_events_api_callback_carries_the_inner_event_as_argo_does() -> None:
    hook = Hook(SPEC, SECRETS)
    body = payload("slack-app-mention.json")
    answer = await hook.post("/", body, _signed(body, "application/json"))
    assert answer.status == 200
    data = answer.data()
    assert data["type"] == "app_mention"
    assert data["Data"]["text"] == "<@U0LAN0Z89> is it everything a river should be?"
    again = await hook.post("/", body, _signed(body, "application/json"))  # Slack's retry: same event_id
    assert again.published[0].id == answer.published[0].id


async def test_url_verification_is_answered_with_the_challenge_and_publishes_nothing() -> None:
    hook = Hook(SPEC, {**SECRETS, "slack-secret/tokenkey": "Jhj5dZrVaK7ZwHHjRyZWjbDl"})
    body = payload("slack-url-verification.json")
    answer = await hook.post("/", body, _signed(body, "application/json"))
    assert (answer.status, answer.body) == (200, b"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P")
    assert answer.published == []


async def test_interactive_payload_is_the_event_data() -> None:
    hook = Hook(SPEC, SECRETS)
    from urllib.parse import urlencode

    body = urlencode({"payload": payload("slack-block-actions.json").decode()}).encode()
    answer = await hook.post("/", body, _signed(body, FORM))
    assert answer.status == 200
    assert answer.data()["actions"][0]["value"] == "click_me_123"


@pytest.mark.parametrize("case", ["forged", "missing", "stale", "other-version"])
async def test_bad_signatures_are_401_with_a_log_line_and_no_secret(
    case: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hook = Hook(SPEC, SECRETS)
    body = payload("slack-app-mention.json")
    headers = {
        "forged": _signed(body, "application/json", secret="not-the-secret"),
        "missing": {"Content-Type": "application/json"},
        "stale": _signed(body, "application/json", age=6 * 60),
        "other-version": {**_signed(body, "application/json"),
                          "X-Slack-Signature": "v1=" + _signed(body, "application/json")["X-Slack-Signature"][3:]},
    }[case]
    answer = await hook.post("/", body, headers)
    assert answer.status == 401 and answer.published == []
    assert "signature validation failed" in caplog.text
    assert SECRET not in caplog.text and SECRET.encode() not in answer.body


async def test_wrong_verification_token_is_refused() -> None:
    hook = Hook(SPEC, {**SECRETS, "slack-secret/tokenkey": "another-token"})
    body = payload("slack-app-mention.json")
    answer = await hook.post("/", body, _signed(body, "application/json"))
    assert answer.status == 401 and answer.published == []


async def test_a_form_that_is_neither_interaction_nor_command_is_400() -> None:
    hook = Hook(SPEC, SECRETS)
    body = b"foo=bar"
    answer = await hook.post("/", body, _signed(body, FORM))
    assert answer.status == 400 and answer.published == []
