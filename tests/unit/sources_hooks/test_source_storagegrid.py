"""storageGrid: SNS-style form-encoded publish bodies, prefix/suffix/bucket filters, PublishResponse answers."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from tests.unit.sources_hooks.hookkit import Hook, payload

SPEC = {"storageGrid": {"example": {
    "webhook": {"port": "8080", "method": "POST", "endpoint": "/"},
    "events": ["s3:ObjectCreated:*"], "topicArn": "urn:sgws:sns:us-east-1:11111111:topic",
    "bucket": "test", "filter": {"prefix": "hello", "suffix": ".txt"},
}}}


def _form(message: bytes, **extra: str) -> bytes:
    fields = {"Action": "Publish", "TopicArn": "urn:sgws:sns:us-east-1:11111111:topic",
              "Message": message.decode(), "Version": "2010-03-31", **extra}
    return urlencode(fields).encode()


def _renamed(key: str) -> bytes:
    doc = json.loads(payload("storagegrid-message.json"))
    doc["Records"][0]["s3"]["object"]["key"] = key
    return json.dumps(doc).encode()


async def test_notification_fires_with_argos_notification_shape() -> None:
    answer = await Hook(SPEC).post("/", _form(payload("storagegrid-message.json")),
                                   {"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status == 200 and b"<PublishResponse" in answer.body
    data = answer.data()
    assert data["notification"]["Action"] == "Publish"
    assert data["notification"]["Message"]["Records"][0]["s3"]["object"]["key"] == "hello-world.txt"
    assert data["notification"]["TopicArn"].startswith("urn:sgws:sns")
    assert answer.published[0].type == "storagegrid"


async def test_prefix_and_suffix_filters_drop_with_200() -> None:
    hook = Hook(SPEC)
    for key in ("other.txt", "hello.csv"):
        answer = await hook.post("/", _form(_renamed(key)))
        assert answer.status == 200 and answer.published == [], key
    assert len((await hook.post("/", _form(_renamed("hello-again.txt")))).published) == 1


async def test_head_probe_and_bad_bodies() -> None:
    hook = Hook(SPEC)
    assert (await hook.post("/", b"", method="HEAD")).status == 200
    assert (await hook.post("/", b"Action=Publish&Message=not-json")).status == 400
    assert (await hook.post("/", b"%%%")).status == 400
