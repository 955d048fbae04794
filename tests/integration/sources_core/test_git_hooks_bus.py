"""webhook, github and gitlab sources against a real JetStream bus (nats-server) and a real HTTP sink."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from urllib.parse import urlencode

import pytest
from knevents import bus, events
from knevents.local.natsd import NatsServer

from tests.integration.sources_core.harness import DOWN, FAST, jetstream_bus
from tests.integration.sources_core.sink import http_sink
from tests.unit.sources_core.helpers import request, runtime

SECRET = "gh-hook-secret-value-123"
GITHUB = {"github": {"push": {
    "repositories": [{"owner": "argoproj", "names": ["argo-events"]}],
    "webhook": {"endpoint": "/push", "port": "12000", "method": "POST"},
    "events": ["push", "pull_request"],
    "webhookSecret": {"name": "github-access", "key": "secret"},
    "contentType": "json",
}}}
GITLAB = {"gitlab": {"example": {
    "projects": ["3"],
    "webhook": {"endpoint": "/gl", "port": "12000", "method": "POST"},
    "events": ["PushEvents", "MergeRequestsEvents"],
    "secretToken": {"name": "gitlab-secret", "key": "token"},
    "accessToken": {"name": "gitlab-access", "key": "token"},
    "gitlabBaseURL": "https://gitlab.com",
}}}


def _signed(body: bytes, secret: str = SECRET, algo: str = "sha256") -> str:
    digest = hashlib.sha256 if algo == "sha256" else hashlib.sha1
    return f"{algo}=" + hmac.new(secret.encode(), body, digest).hexdigest()


def _gh_headers(body: bytes, event: str = "push", **extra: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-GitHub-Event": event,
            "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
            "X-Hub-Signature-256": _signed(body), **extra}


async def test_github_signed_push_reaches_the_bus(nats_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with jetstream_bus(nats_url) as jbus:
        rt = jbus.runtime(GITHUB, secrets={"github-access/secret": SECRET})
        body = json.dumps({"ref": "refs/heads/main", "repository": {"name": "argo-events"}}).encode()
        answer = await rt.handle(request("POST", "/push", body, _gh_headers(body)))
        assert answer.status == 200
        again = await rt.handle(request("POST", "/push", body, _gh_headers(body)))  # GitHub redelivery
        assert again.status == 200
        assert await jbus.count() == 1  # same delivery id -> same event id -> stored once
        (event,) = await jbus.read(1)
    assert (event.source, event.subject, event.type) == ("es", "push", "github")
    data = events.data_json(event)
    assert data["body"]["ref"] == "refs/heads/main"
    assert data["body"]["X-GitHub-Event"] == "push"
    assert data["body"]["X-GitHub-Delivery"] == "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    assert data["headers"]["X-Github-Event"] == ["push"]
    assert SECRET not in caplog.text


@pytest.mark.parametrize("mutate", ["missing", "wrong-secret", "tampered", "bad-format"])
async def test_github_bad_signature_is_400_and_nothing_published(
    nats_url: str, mutate: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with jetstream_bus(nats_url) as jbus:
        rt = jbus.runtime(GITHUB, secrets={"github-access/secret": SECRET})
        body = b'{"ref": "x"}'
        headers = _gh_headers(body)
        if mutate == "missing":
            del headers["X-Hub-Signature-256"]
        elif mutate == "wrong-secret":
            headers["X-Hub-Signature-256"] = _signed(body, "other")
        elif mutate == "tampered":
            body = b'{"ref": "y"}'
        else:
            headers["X-Hub-Signature-256"] = "md5=abc"
        answer = await rt.handle(request("POST", "/push", body, headers))
        assert answer.status == 400
        assert await jbus.count() == 0
    assert SECRET not in caplog.text
    assert SECRET.encode() not in answer.body


async def test_github_sha1_fallback_form_payload_and_event_filter(nats_url: str) -> None:
    async with jetstream_bus(nats_url) as jbus:
        rt = jbus.runtime(GITHUB, secrets={"github-access/secret": SECRET})
        payload = json.dumps({"action": "opened", "number": 7})
        body = urlencode({"payload": payload}).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", "X-GitHub-Event": "pull_request",
                   "X-GitHub-Delivery": "d-2", "X-Hub-Signature": _signed(body, algo="sha1")}
        assert (await rt.handle(request("POST", "/push", body, headers))).status == 200
        issue = b'{"action": "opened"}'
        dropped = await rt.handle(request("POST", "/push", issue, _gh_headers(issue, event="issues")))
        assert dropped.status == 200  # not configured: acknowledged, dropped, as Argo
        plain = await rt.handle(request("POST", "/push", issue, {**_gh_headers(issue), "Content-Type": "text/plain"}))
        assert plain.status == 400
        assert await jbus.count() == 1
        (event,) = await jbus.read(1)
    assert events.data_json(event)["body"]["number"] == 7


async def test_gitlab_token_and_events(nats_url: str) -> None:
    token = "gl-token-value-xyz"
    async with jetstream_bus(nats_url) as jbus:
        rt = jbus.runtime(GITLAB, secrets={"gitlab-secret/token": token})
        body = b'{"object_kind": "push"}'
        base = {"Content-Type": "application/json", "X-Gitlab-Event": "Push Hook"}
        assert (await rt.handle(request("POST", "/gl", body, base))).status == 400
        assert (await rt.handle(request("POST", "/gl", body, {**base, "X-Gitlab-Token": "nope"}))).status == 400
        ok = {**base, "X-Gitlab-Token": token, "Idempotency-Key": "k-1"}
        assert (await rt.handle(request("POST", "/gl", body, ok))).status == 200
        assert (await rt.handle(request("POST", "/gl", body, ok))).status == 200  # a GitLab retry
        note = {**ok, "X-Gitlab-Event": "Note Hook", "Idempotency-Key": "k-2"}
        assert (await rt.handle(request("POST", "/gl", body, note))).status == 200  # not configured
        assert (await rt.handle(request("POST", "/gl", b"nope", {**ok, "Idempotency-Key": "k-3"}))).status == 400
        assert await jbus.count() == 1
        (event,) = await jbus.read(1)
    data = events.data_json(event)
    assert event.type == "gitlab"
    assert data["body"] == {"object_kind": "push"}
    assert data["headers"]["X-Gitlab-Event"] == ["Push Hook"]
    assert data["headers"]["X-Gitlab-Token"] == ["*** Masked Secret Token ***"]  # Argo would carry the token
    assert token.encode() not in (event.data or b"")


async def test_bus_down_answers_503(nats_server: NatsServer) -> None:
    async with jetstream_bus(nats_server.url, DOWN) as jbus:
        rt = jbus.runtime({"webhook": {"e": {"port": "12000", "endpoint": "/e", "method": "POST"}}})
        assert (await rt.handle(request("POST", "/e", b"{}"))).status == 200
        nats_server.stop()
        answer = await rt.handle(request("POST", "/e", b"{}"))
        assert answer.status == 503


async def test_webhook_to_http_sink_and_sink_down() -> None:
    spec = {"webhook": {"e": {"port": "12000", "endpoint": "/e", "method": "POST"}}}
    with http_sink() as sink:
        publisher = bus.HttpSinkPublisher(sink.url, settings=FAST)
        rt, _ = runtime(spec, publisher)
        assert (await rt.handle(request("POST", "/e", b'{"x": 1}'))).status == 200
        sink.status = 500
        assert (await rt.handle(request("POST", "/e", b'{"x": 2}'))).status == 503
        await publisher.close()
    assert len(sink.requests) == 1
    got = events.from_http(sink.requests[0].headers, sink.requests[0].body)
    assert got.subject == "e"
    assert events.data_json(got)["body"] == {"x": 1}
