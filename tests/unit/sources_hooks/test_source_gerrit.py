"""gerrit: webhooks-plugin stream events, the `events` filter, Argo's {"headers", "body"} data."""

from __future__ import annotations

import json

from tests.unit.sources_hooks.hookkit import Hook, payload

SPEC = {"gerrit": {"example": {
    "projects": ["argo-webhook"], "hookName": "argo-webhook-example",
    "webhook": {"endpoint": "/push", "port": "13000", "method": "POST", "url": "http://example.test"},
    "events": ["patchset-created"], "gerritBaseURL": "http://gerrit.test/", "metadata": {"k": "v"},
}}}


async def test_patchset_created_fires() -> None:
    body = payload("gerrit-patchset-created.json")
    answer = await Hook(SPEC).post("/push", body, {"Content-Type": "application/json"})
    assert answer.status == 200, answer.body
    data = answer.data()
    assert data["body"]["type"] == "patchset-created" and data["body"]["change"]["project"] == "argo-webhook"
    assert data["headers"]["Content-Type"] == ["application/json"] and data["metadata"] == {"k": "v"}
    assert answer.published[0].type == "gerrit"


async def test_other_event_types_are_dropped() -> None:
    body = json.dumps({**json.loads(payload("gerrit-patchset-created.json")), "type": "ref-updated"}).encode()
    answer = await Hook(SPEC).post("/push", body)
    assert answer.status == 200 and answer.published == []


async def test_bad_bodies_are_400() -> None:
    hook = Hook(SPEC)
    assert (await hook.post("/push", b"nope")).status == 400
    assert (await hook.post("/push", b"[1]")).status == 400


async def test_bearer_auth_secret_guards_the_endpoint() -> None:
    spec = {"gerrit": {"example": {**SPEC["gerrit"]["example"],
                                   "webhook": {**SPEC["gerrit"]["example"]["webhook"],
                                               "authSecret": {"name": "g", "key": "t"}}}}}
    hook = Hook(spec, {"g/t": "tok"})
    body = payload("gerrit-patchset-created.json")
    assert (await hook.post("/push", body)).status == 401
    assert (await hook.post("/push", body, {"Authorization": "Bearer tok"})).status == 200
