"""bitbucketserver: HMAC with webhookSecret, event keys, oneEventPerChange on repo:refs_changed."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

import pytest

from tests.unit.sources_hooks.hookkit import Hook, payload

SECRET = "bbs-hook-secret"
ENTRY = {
    "repositories": [{"projectKey": "PROJECTKEY1", "repositorySlug": "name-of-repository1"}],
    "webhook": {"endpoint": "/push", "port": "12000", "method": "POST", "url": "http://example.test"},
    "events": ["repo:refs_changed"],
    "accessToken": {"name": "bitbucketserver-access", "key": "token"},
    "webhookSecret": {"name": "bitbucketserver-access", "key": "secret"},
    "bitbucketserverBaseURL": "https://my-bitbucket-server.com/rest",
}
SECRETS = {"bitbucketserver-access/secret": SECRET, "bitbucketserver-access/token": "t"}


def _headers(body: bytes, secret: str = SECRET, key: str = "repo:refs_changed") -> dict[str, str]:
    mac = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json; charset=utf-8", "X-Event-Key": key, "X-Request-Id": "req-1",
            "X-Hub-Signature": "sha256=" + mac}


async def test_refs_changed_fires_once_with_both_changes() -> None:
    hook = Hook({"bitbucketserver": {"example": ENTRY}}, SECRETS)
    body = payload("bitbucketserver-refs-changed.json")
    answer = await hook.post("/push", body, _headers(body))
    assert answer.status == 200, answer.body
    assert len(answer.published) == 1
    data = answer.data()
    assert len(data["body"]["changes"]) == 2 and data["headers"]["X-Event-Key"] == ["repo:refs_changed"]
    assert answer.published[0].type == "bitbucketserver"


async def test_one_event_per_change_splits_refs_changed() -> None:
    hook = Hook({"bitbucketserver": {"example": {**ENTRY, "oneEventPerChange": True}}}, SECRETS)
    body = payload("bitbucketserver-refs-changed.json")
    answer = await hook.post("/push", body, _headers(body))
    assert answer.status == 200
    refs = [answer.data(i)["body"]["changes"] for i in range(len(answer.published))]
    assert [[c["refId"] for c in changes] for changes in refs] == [["refs/heads/master"], ["refs/heads/feature"]]
    assert answer.data(1)["body"]["repository"]["slug"] == "name-of-repository1"
    assert len({e.id for e in answer.published}) == 2


@pytest.mark.parametrize("case", ["forged", "missing", "tampered"])
async def test_bad_hmac_is_400_and_logged_without_the_secret(case: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    hook = Hook({"bitbucketserver": {"example": ENTRY}}, SECRETS)
    body = payload("bitbucketserver-refs-changed.json")
    headers = _headers(body, secret="other" if case == "forged" else SECRET)
    if case == "missing":
        del headers["X-Hub-Signature"]
    sent = body.replace(b"master", b"main") if case == "tampered" else body
    answer = await hook.post("/push", sent, headers)
    assert answer.status == 400 and answer.published == []
    assert "hmac verification failed" in caplog.text and SECRET not in caplog.text


async def test_diagnostics_ping_is_not_an_event() -> None:
    hook = Hook({"bitbucketserver": {"example": ENTRY}}, SECRETS)
    body = json.dumps({"test": True}).encode()
    answer = await hook.post("/push", body, _headers(body, key="diagnostics:ping"))
    assert answer.status == 200 and answer.published == []


async def test_skip_branch_refs_changed_on_open_pr_asks_the_server_per_changed_branch() -> None:
    from tests.fixtures.provider_api import ProviderApi

    api = ProviderApi("bitbucketserver", "t")
    try:
        api.pull_requests["178864a7d521b6f5e720b386b2c2b0ef8563e0dc"] = [{"id": 7, "state": "OPEN"}]
        api.pull_requests["aaaa000000000000000000000000000000000000"] = [{"id": 8, "state": "MERGED"}]
        entry = {**ENTRY, "skipBranchRefsChangedOnOpenPR": True, "bitbucketserverBaseURL": api.url + "/rest"}
        hook = Hook({"bitbucketserver": {"example": entry}}, SECRETS)
        doc = json.loads(payload("bitbucketserver-refs-changed.json"))
        doc["changes"][1]["toHash"] = "aaaa000000000000000000000000000000000000"
        doc["changes"].append({"ref": {"id": "refs/tags/v1", "displayId": "v1", "type": "TAG"},
                               "refId": "refs/tags/v1", "fromHash": "0" * 40,
                               "toHash": "178864a7d521b6f5e720b386b2c2b0ef8563e0dc", "type": "ADD"})
        body = json.dumps(doc).encode()
        answer = await hook.post("/push", body, _headers(body))
        assert answer.status == 200, answer.body
        kept = [c["refId"] for c in answer.data()["body"]["changes"]]
        assert kept == ["refs/heads/feature", "refs/tags/v1"]  # master has an open PR; a tag is never looked up
        looked_up = [r.path for r in api.requests]
        assert len(looked_up) == 2 and all("/projects/PROJECTKEY1/repos/name-of-repository1/commits/" in p
                                           for p in looked_up)
        assert all(r.headers["authorization"] == "Bearer t" for r in api.requests)
        api.pull_requests["aaaa000000000000000000000000000000000000"] = [{"id": 9, "state": "OPEN"}]
        doc["changes"] = doc["changes"][:2]
        body = json.dumps(doc).encode()
        none_left = await hook.post("/push", body, _headers(body))
        assert none_left.status == 200 and none_left.published == []
        refused = Hook({"bitbucketserver": {"example": entry}}, {**SECRETS, "bitbucketserver-access/token": "x"})
        assert (await refused.post("/push", body, _headers(body))).status == 503  # the server retries
    finally:
        api.close()
