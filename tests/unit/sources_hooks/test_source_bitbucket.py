"""bitbucket (Cloud): X-Event-Key filter, optional X-Hub-Signature, Argo's {"headers", "body"} data."""

from __future__ import annotations

import hashlib
import hmac
import logging

import pytest

from tests.unit.sources_hooks.hookkit import Hook, payload

SECRET = "bb-cloud-hook-secret"
SPEC = {"bitbucket": {"example": {
    "repositories": [{"owner": "name-of-owner", "repositorySlug": "name-of-repository1"}],
    "events": ["repo:push"],
    "webhook": {"endpoint": "/push", "port": "12000", "method": "POST", "url": "http://example.test"},
    "metadata": {"team": "a"},
}}}


def _headers(body: bytes, key: str = "repo:push", secret: str | None = None) -> dict[str, str]:
    out = {"Content-Type": "application/json", "X-Event-Key": key,
           "X-Request-UUID": "afe8e9b4-4b6b-4b1b-b3a4-1c2f3e4d5a6b", "X-Hook-UUID": "{hook}"}
    if secret is not None:
        out["X-Hub-Signature"] = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return out


async def test_push_fires_with_headers_body_and_metadata() -> None:
    hook = Hook(SPEC)
    body = payload("bitbucket-repo-push.json")
    answer = await hook.post("/push", body, _headers(body))
    assert answer.status == 200, answer.body
    data = answer.data()
    assert data["body"]["push"]["changes"][0]["new"]["name"] == "main"
    assert data["headers"]["X-Event-Key"] == ["repo:push"]
    assert data["metadata"] == {"team": "a"}
    assert answer.published[0].type == "bitbucket"


async def test_event_keys_outside_events_are_dropped_with_200() -> None:
    answer = await Hook(SPEC).post("/push", b"{}", _headers(b"{}", key="pullrequest:created"))
    assert answer.status == 200 and answer.published == []


@pytest.mark.parametrize("case", ["valid", "forged", "missing", "sha1-prefix"])
async def test_signature_when_a_webhook_secret_is_set(case: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    spec = {"bitbucket": {"example": {**SPEC["bitbucket"]["example"],
                                      "webhookSecret": {"name": "bb", "key": "secret"}}}}
    hook = Hook(spec, {"bb/secret": SECRET})
    body = payload("bitbucket-repo-push.json")
    headers = _headers(body, secret=SECRET if case != "forged" else "other")
    if case == "missing":
        del headers["X-Hub-Signature"]
    if case == "sha1-prefix":
        headers["X-Hub-Signature"] = "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
    answer = await hook.post("/push", body, headers)
    if case == "valid":
        assert answer.status == 200 and len(answer.published) == 1
        return
    assert answer.status == 400 and answer.published == []
    assert "hmac verification failed" in caplog.text and SECRET not in caplog.text


async def test_a_body_that_is_not_json_is_400() -> None:
    assert (await Hook(SPEC).post("/push", b"<xml/>", _headers(b""))).status == 400
