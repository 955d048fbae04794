"""EventSource and EventBus admission rules, and the knevents S3 / Pub/Sub extensions."""

from __future__ import annotations

from typing import Any

import pytest
from knevents import errors, validation
from knevents.spec import models

from tests.unit.spec.helpers import DELETE, event_source, patch

W = "spec.webhook.a"

CASES: list[tuple[str, str, Any, str, str]] = [
    ("endpoint-slash", f"{W}.endpoint", "a", "spec.webhook.a.endpoint", "must start with `/`"),
    ("endpoint-missing", f"{W}.endpoint", DELETE, "spec.webhook.a.endpoint", "an endpoint is needed"),
    ("port-text", f"{W}.port", "http", "spec.webhook.a.port", "port `http` is not a number"),
    ("port-range", f"{W}.port", "70000", "spec.webhook.a.port", "out of range"),
    ("port-missing", f"{W}.port", DELETE, "spec.webhook.a.port", "a port is needed"),
    ("method", f"{W}.method", "FETCH", "spec.webhook.a.method", "not an HTTP method"),
    ("calendar-empty", "spec.calendar.tick", {}, "spec.calendar.tick", "either `schedule` or `interval`"),
    ("calendar-cron", "spec.calendar.tick", {"schedule": "every day"}, "spec.calendar.tick.schedule", "cron"),
    (
        "calendar-interval",
        "spec.calendar.tick",
        {"interval": "10 sec"},
        "spec.calendar.tick.interval",
        "duration",
    ),
    (
        "calendar-zone",
        "spec.calendar.tick",
        {"schedule": "* * * * *", "timezone": "Atlantis"},
        "spec.calendar.tick.timezone",
        "unknown time zone",
    ),
    ("duplicate-event-name", "spec.calendar.a", {"interval": "1m"}, "spec.webhook.a", "more than once"),
    ("sqs-queue", "spec.sqs", {"q": {"region": "us-east-1"}}, "spec.sqs.q.queue", "needs `queue`"),
    (
        "sqs-wait",
        "spec.sqs",
        {"q": {"region": "us-east-1", "queue": "x", "waitTimeSeconds": 30}},
        "spec.sqs.q.waitTimeSeconds",
        "between 0 and 20",
    ),
    (
        "sns-topic",
        "spec.sns",
        {"t": {"region": "r", "webhook": {"endpoint": "/t", "port": "1"}}},
        "spec.sns.t.topicArn",
        "topicArn",
    ),
    (
        "s3-bucket",
        "spec.s3",
        {"b": {"events": ["s3:ObjectCreated:*"]}},
        "spec.s3.b.bucket.name",
        "bucket name",
    ),
    (
        "s3-both-deliveries",
        "spec.s3",
        {"b": {"bucket": {"name": "x"}, "sns": {}, "sqs": {"queue": "q"}}},
        "spec.s3.b",
        "either `sns` or `sqs`",
    ),
    (
        "s3-sqs-queue",
        "spec.minio",
        {"b": {"bucket": {"name": "x"}, "sqs": {}}},
        "spec.minio.b.sqs.queue",
        "queue",
    ),
    (
        "s3-sns-endpoint",
        "spec.s3",
        {"b": {"bucket": {"name": "x"}, "sns": {"endpoint": "hook"}}},
        "spec.s3.b.sns.endpoint",
        "must start with `/`",
    ),
    (
        "pubsub-topic",
        "spec.pubSub",
        {"p": {"projectID": "x"}},
        "spec.pubSub.p",
        "`topic` or `subscriptionID`",
    ),
    (
        "pubsub-push-port",
        "spec.pubSub",
        {"p": {"topic": "t", "push": {"endpoint": "/p", "port": "x"}}},
        "spec.pubSub.p.push.port",
        "not a number",
    ),
    ("nats-subject", "spec.nats", {"n": {"url": "nats://x"}}, "spec.nats.n.subject", "needs `subject`"),
    ("amqp-url", "spec.amqp", {"a": {"exchangeType": "fanout", "routingKey": "k"}}, "spec.amqp.a",
     "exactly one of `url` and `urlSecret`"),
    ("amqp-key", "spec.amqp", {"a": {"url": "amqp://x", "exchangeType": "fanout"}}, "spec.amqp.a.routingKey",
     "needs `routingKey`"),
    ("mqtt-client", "spec.mqtt", {"m": {"url": "tcp://x:1883", "topic": "t"}}, "spec.mqtt.m.clientId",
     "needs `clientId`"),
    ("amqp-type", "spec.amqp", {"a": {"url": "amqp://x", "routingKey": "k"}}, "spec.amqp.a.exchangeType",
     "needs `exchangeType`"),
    (
        "github-webhook",
        "spec.github",
        {"g": {"repositories": [{"owner": "o", "names": ["r"]}]}},
        "spec.github.g.webhook",
        "webhook",
    ),
    (
        "github-repos",
        "spec.github",
        {"g": {"webhook": {"endpoint": "/g", "port": "1"}}},
        "spec.github.g",
        "`repositories` or `organizations`",
    ),
    (
        "github-enterprise-pair",
        "spec.github",
        {
            "g": {
                "organizations": ["o"],
                "githubBaseURL": "https://ghe",
                "webhook": {"endpoint": "/g", "port": "1"},
            }
        },
        "spec.github.g",
        "both `githubBaseURL` and `githubUploadURL`",
    ),
    (
        "github-events-for-hooks",
        "spec.github",
        {
            "g": {
                "organizations": ["o"],
                "apiToken": {"name": "t", "key": "k"},
                "webhook": {"endpoint": "/g", "port": "1"},
            }
        },
        "spec.github.g.events",
        "GitHub events",
    ),
    (
        "gitlab-base-url",
        "spec.gitlab",
        {"g": {"events": ["PushEvents"], "webhook": {"endpoint": "/g", "port": "1"}}},
        "spec.gitlab.g.gitlabBaseURL",
        "needs `gitlabBaseURL`",
    ),
    (
        "same-route-twice",
        "spec.webhook.b",
        {"port": "12000", "endpoint": "/a", "method": "POST"},
        "spec.webhook.b.endpoint",
        "endpoint `/a` on port 12000 is also used by spec.webhook.a",
    ),
    ("nothing", "spec", {}, "spec", "no event source"),
    ("no-name", "metadata", {"namespace": "x"}, "metadata.name", "a name is needed"),
    ("bad-name", "metadata.name", "My_Hooks", "metadata.name", "not a valid Kubernetes name"),
]


@pytest.mark.parametrize(
    ("field", "value", "path", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_rule(field: str, value: Any, path: str, fragment: str) -> None:
    with pytest.raises(errors.SpecError) as info:
        validation.parse_event_source(patch(event_source(), field, value))
    found = [(p.path, p.message) for p in info.value.problems]
    assert any(p == path and fragment in m for p, m in found), found


def test_s3_extensions_load_typed() -> None:
    obj = patch(
        event_source(),
        "spec.s3",
        {
            "uploads": {
                "bucket": {"name": "b"},
                "events": ["s3:ObjectCreated:*"],
                "sqs": {"queue": "q", "queueAccountId": "123", "waitTimeSeconds": 5, "region": "eu-west-1"},
            },
            "pushed": {
                "bucket": {"name": "b"},
                "sns": {"endpoint": "/s3", "port": 12000, "validateSignature": True},
            },
        },
    )
    source = validation.parse_event_source(obj)
    assert source.spec.s3 is not None
    uploads, pushed = source.spec.s3["uploads"], source.spec.s3["pushed"]
    assert isinstance(uploads, models.S3EventSource) and isinstance(uploads, models.S3Artifact)
    assert (
        uploads.sqs is not None
        and uploads.sqs.queue_account_id == "123"
        and uploads.sqs.wait_time_seconds == 5
    )
    assert pushed.sns is not None and pushed.sns.port == "12000" and pushed.sns.validate_signature is True


def test_pubsub_push_extension() -> None:
    obj = patch(
        event_source(),
        "spec.pubSub",
        {"p": {"topic": "t", "push": {"endpoint": "/push", "audience": "aud", "verifyToken": True}}},
    )
    config = validation.parse_event_source(obj).spec.pub_sub
    assert config is not None
    push = config["p"].push
    assert isinstance(push, models.PubSubPush) and push.audience == "aud" and push.verify_token is True


@pytest.mark.parametrize("key", sorted(validation.supported_source_types()))
def test_supported_types_are_spec_fields(key: str) -> None:
    aliases = {f.alias for f in models.EventSourceSpec.model_fields.values()}
    assert key in aliases


def test_unsupported_type_is_a_note_not_an_error() -> None:
    obj = patch(event_source(), "spec.nsq", {"n": {"hostAddress": "nsq:4161", "topic": "t", "channel": "c"}})
    manifests = validation.load_text(_yaml(obj))
    assert manifests.problems == []
    assert [(p.path, p.unsupported) for p in manifests.unsupported] == [("spec.nsq", True)]
    assert "`nsq` is not supported by knevents" in manifests.unsupported[0].message


BUSES: list[tuple[str, dict[str, Any], str | None]] = [
    ("jetstream", {"jetstream": {"version": "latest"}}, None),
    ("none", {}, "needs a bus type"),
    ("two", {"jetstream": {"version": "latest"}, "kafka": {"url": "k:9092"}}, "exactly one bus type"),
]


@pytest.mark.parametrize(("spec", "fragment"), [b[1:] for b in BUSES], ids=[b[0] for b in BUSES])
def test_event_bus(spec: dict[str, Any], fragment: str | None) -> None:
    obj = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "EventBus",
        "metadata": {"name": "default"},
        "spec": spec,
    }
    if fragment is None:
        bus = validation.parse_event_bus(obj)
        assert bus.spec.jetstream is not None and bus.spec.jetstream.version == "latest"
        return
    with pytest.raises(errors.SpecError, match=fragment):
        validation.parse_event_bus(obj)


def test_kafka_bus_is_reported_as_rendered_only() -> None:
    obj = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "EventBus",
        "metadata": {"name": "k"},
        "spec": {"kafka": {"url": "k:9092"}},
    }
    manifests = validation.load_text(_yaml(obj))
    assert manifests.problems == [] and len(manifests.event_buses) == 1
    assert (
        manifests.unsupported[0].path == "spec.kafka"
        and "Kafka-backed Knative Broker" in manifests.unsupported[0].message
    )


def _yaml(obj: dict[str, Any]) -> str:
    import json

    return json.dumps(obj)  # JSON is YAML


def test_same_endpoint_on_other_port_or_method_is_fine() -> None:
    obj = patch(event_source(), "spec.webhook.b", {"port": "12001", "endpoint": "/a", "method": "POST"})
    obj = patch(obj, "spec.webhook.c", {"port": "12000", "endpoint": "/a", "method": "GET"})
    assert validation.parse_event_source(obj).spec.webhook is not None
