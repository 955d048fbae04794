"""The AWS sources against a real moto_server and a real JetStream bus.

S3 notifies SNS, SNS posts over HTTP to the s3 source served on a local port,
and the event lands on JetStream where the seed documents' parameter path
``notification.0.s3.object.key`` resolves to the object key. S3 also notifies
SQS, polled by the s3 (SQS mode) and sqs sources. moto neither signs
subscription confirmations nor confirms them, so those messages are signed
with the ``sns_signer`` test key and confirmed against a local stand-in.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import boto3
import pytest
from knevents import events, validation, web
from knevents.local.natsd import NatsServer
from knevents.runtime import source as source_runtime
from knevents.secrets import SecretResolver
from knevents.sensors import paths
from knevents.settings import Settings
from knevents.sources import aws_sns, aws_sqs, base, s3, sns, sqs
from knevents.spec import models

from tests.fixtures.aws import SnsSigner
from tests.integration.sources_cloud import cloud_harness as harness
from tests.unit.sources_core.helpers import QuotaBus, runtime

pytestmark = pytest.mark.usefixtures("aws_credentials")


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def aws(moto_server: str) -> Iterator[Callable[[str], Any]]:
    """``aws("s3")`` → a boto3 client on moto (fake credentials come from the environment); closed afterwards."""
    made: list[Any] = []

    def make(service: str) -> Any:
        made.append(boto3.client(service, endpoint_url=moto_server, region_name="us-east-1"))
        return made[-1]

    yield make
    for client in made:
        client.close()


@pytest.fixture
async def jetstream(nats_url: str) -> AsyncIterator[harness.Bus]:
    bus = await harness.Bus.connect(nats_url)
    yield bus
    await bus.close()


def _s3_config(bucket: str, moto_server: str, **extra: Any) -> models.S3EventSource:
    return models.S3EventSource.model_validate(
        {
            "bucket": {"name": bucket},
            "events": ["s3:ObjectCreated:*"],
            "filter": {"prefix": "uploads/", "suffix": ".csv"},
            "endpoint": moto_server,
            "region": "us-east-1",
            **extra,
        }
    )


def _runtime(document: dict[str, Any], bus: harness.Bus) -> source_runtime.SourceRuntime:
    """The event source runtime for one EventSource manifest, publishing to the test's JetStream bus."""
    event_source = validation.parse_event_source(
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "EventSource", **document}
    )
    return source_runtime.SourceRuntime(
        event_source, bus.publisher, settings=Settings(), secrets=SecretResolver()
    )


async def test_s3_put_object_reaches_the_bus_through_sns_push(
    aws: Callable[[str], Any], moto_server: str, jetstream: harness.Bus
) -> None:
    bucket, topic = _name("bucket"), _name("topic")
    runtime = _runtime(
        {
            "metadata": {"name": "s3-events"},
            "spec": {
                "s3": {
                    "data-upload": _s3_config(bucket, moto_server).model_dump(
                        by_alias=True, exclude_none=True
                    )
                }
            },
        },
        jetstream,
    )
    assert runtime.routes() == [(None, "/data-upload", "POST")]
    async with harness.serve(runtime.handle) as url:
        s3c, snsc = aws("s3"), aws("sns")
        arn = (await harness.to_thread(snsc.create_topic, Name=topic))["TopicArn"]
        await harness.to_thread(snsc.subscribe, TopicArn=arn, Protocol="http", Endpoint=f"{url}/data-upload")
        await harness.to_thread(s3c.create_bucket, Bucket=bucket)
        await harness.to_thread(
            s3c.put_bucket_notification_configuration,
            Bucket=bucket,
            NotificationConfiguration={
                "TopicConfigurations": [{"TopicArn": arn, "Events": ["s3:ObjectCreated:*"]}]
            },
        )
        await harness.to_thread(s3c.put_object, Bucket=bucket, Key="other/skipped.csv", Body=b"no")
        await harness.to_thread(s3c.put_object, Bucket=bucket, Key="uploads/data.csv", Body=b"a,b\n1,2\n")
        event = await jetstream.next_event()
    await runtime.close()
    assert (event.source, event.subject, event.type) == ("s3-events", "data-upload", "s3")
    found = paths.get(event.data or b"", "notification.0.s3.object.key")
    assert found is not None and found.text == "uploads/data.csv"
    assert await jetstream.count() == 1  # the test event and the filtered key produced nothing


async def _poll_until(source: Any, bus: harness.Bus, count: int) -> list[events.Event]:
    stop = asyncio.Event()
    task = asyncio.create_task(source.run(bus.publisher.publish, stop))
    try:
        return [await bus.next_event() for _ in range(count)]
    finally:
        stop.set()
        await asyncio.wait_for(task, harness.WAIT)


async def _queue_depth(client: Any, queue_url: str) -> int:
    attrs = await harness.to_thread(
        client.get_queue_attributes,
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )
    values = attrs["Attributes"]
    return int(values["ApproximateNumberOfMessages"]) + int(values["ApproximateNumberOfMessagesNotVisible"])


async def test_s3_notifications_polled_from_sqs(
    aws: Callable[[str], Any], moto_server: str, jetstream: harness.Bus
) -> None:
    bucket, queue = _name("bucket"), _name("queue")
    s3c, sqsc = aws("s3"), aws("sqs")
    queue_url = (await harness.to_thread(sqsc.create_queue, QueueName=queue))["QueueUrl"]
    queue_arn = (
        await harness.to_thread(sqsc.get_queue_attributes, QueueUrl=queue_url, AttributeNames=["QueueArn"])
    )["Attributes"]["QueueArn"]
    await harness.to_thread(s3c.create_bucket, Bucket=bucket)
    await harness.to_thread(
        s3c.put_bucket_notification_configuration,
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    await harness.to_thread(s3c.put_object, Bucket=bucket, Key="uploads/report.csv", Body=b"x")
    config = _s3_config(bucket, moto_server, sqs={"queue": queue, "waitTimeSeconds": 1})
    runtime = _runtime(
        {
            "metadata": {"name": "s3-events"},
            "spec": {"s3": {"csv-upload": config.model_dump(by_alias=True, exclude_none=True)}},
        },
        jetstream,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run_pull(stop))
    try:
        event = await jetstream.next_event()
    finally:
        stop.set()
        await asyncio.wait_for(task, harness.WAIT)
        await runtime.close()
    assert (event.source, event.subject, event.type) == ("s3-events", "csv-upload", "s3")
    found = paths.get(event.data or b"", "notification.0.s3.object.key")
    assert found is not None and found.text == "uploads/report.csv"
    assert await _queue_depth(sqsc, queue_url) == 0  # the test event and the notification were deleted


async def test_sqs_source_carries_body_and_attributes_then_deletes(
    aws: Callable[[str], Any], moto_server: str, jetstream: harness.Bus
) -> None:
    queue = _name("queue")
    sqsc = aws("sqs")
    queue_url = (await harness.to_thread(sqsc.create_queue, QueueName=queue))["QueueUrl"]
    sent = await harness.to_thread(
        sqsc.send_message,
        QueueUrl=queue_url,
        MessageBody=json.dumps({"order": 42}),
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "order"}},
    )
    config = models.SQSEventSource(
        queue=queue, region="us-east-1", waitTimeSeconds=1, jsonBody=True, endpoint=moto_server
    )
    source = sqs.create("example", config, base.SourceContext(event_source_name="aws-sqs"))
    (event,) = await _poll_until(source, jetstream, 1)
    data = events.data_json(event)
    assert data["messageId"] == sent["MessageId"]
    assert data["body"] == {"order": 42}
    assert data["messageAttributes"]["kind"]["StringValue"] == "order"
    assert (event.source, event.subject, event.type) == ("aws-sqs", "example", "sqs")
    assert await _queue_depth(sqsc, queue_url) == 0


async def test_sqs_message_stays_in_the_queue_when_the_bus_is_down(
    aws: Callable[[str], Any], moto_server: str, nats_server: NatsServer
) -> None:
    queue = _name("queue")
    sqsc = aws("sqs")
    queue_url = (await harness.to_thread(sqsc.create_queue, QueueName=queue))["QueueUrl"]
    await harness.to_thread(sqsc.send_message, QueueUrl=queue_url, MessageBody="hello")
    bus = await harness.Bus.connect(nats_server.url)
    nats_server.kill()
    observed = harness.ObservedPublisher(bus.publisher)
    config = models.SQSEventSource(queue=queue, region="us-east-1", waitTimeSeconds=1, endpoint=moto_server)
    source = sqs.SqsSource("example", config, base.SourceContext(event_source_name="aws-sqs"))
    stop = asyncio.Event()
    task = asyncio.create_task(source.run(observed.publish, stop))
    try:
        await asyncio.wait_for(observed.failed.wait(), harness.WAIT)
    finally:
        stop.set()
        await asyncio.wait_for(task, harness.WAIT)
        await bus.close()
    assert observed.published == []
    assert await _queue_depth(sqsc, queue_url) == 1


async def test_sqs_burst_published_per_receive_and_each_message_deleted_only_after_acceptance(
    aws: Callable[[str], Any], moto_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aws_sqs, "VISIBILITY_TIMEOUT", 2)  # refused messages come back in 2 s, not Argo's 120
    queue = _name("queue")
    sqsc = aws("sqs")
    queue_url = (await harness.to_thread(sqsc.create_queue, QueueName=queue))["QueueUrl"]
    for start in range(0, 25, 5):
        entries = [{"Id": str(n), "MessageBody": json.dumps({"n": n})} for n in range(start, start + 5)]
        await harness.to_thread(sqsc.send_message_batch, QueueUrl=queue_url, Entries=entries)
    spec = {"sqs": {"e": {"queue": queue, "region": "us-east-1", "waitTimeSeconds": 1, "jsonBody": True,
                          "endpoint": moto_server}}}

    async def run_until(bus: QuotaBus, done: Callable[[], bool]) -> None:
        rt, _ = runtime(spec, bus)
        stop = asyncio.Event()
        task = asyncio.create_task(rt.run_pull(stop))
        try:
            async with asyncio.timeout(harness.WAIT):
                while not done():
                    await asyncio.sleep(0.05)
        finally:
            stop.set()
            await asyncio.wait_for(task, harness.WAIT)

    down = QuotaBus(12)  # accepts 12 events of the burst, then refuses
    await run_until(down, lambda: len(down.events) == 12 and down.refusals >= 2)
    assert max(down.batches) > 1  # a receive's messages were published as one batch
    assert await _queue_depth(sqsc, queue_url) == 13  # exactly the accepted ones were deleted
    up = QuotaBus(None)
    await run_until(up, lambda: len({e.id for e in up.events}) == 13)
    numbers = [events.data_json(e)["body"]["n"] for e in down.events + up.events]
    assert sorted(set(numbers)) == list(range(25)) and len(set(numbers[:12])) == 12
    assert set(numbers[:12]).isdisjoint(numbers[12:])  # an accepted (deleted) message never came again
    assert await _queue_depth(sqsc, queue_url) == 0


class _Recorder:
    """Stands in for SNS's confirmation endpoint: records the GETs it receives."""

    def __init__(self) -> None:
        self.requests: list[web.Request] = []

    async def __call__(self, request: web.Request) -> web.Response:
        self.requests.append(request)
        return web.text_response(200, "<ConfirmSubscriptionResponse/>")


async def test_sns_subscription_is_confirmed_then_notifications_flow(
    aws: Callable[[str], Any], sns_signer: SnsSigner, jetstream: harness.Bus
) -> None:
    snsc = aws("sns")
    arn = (await harness.to_thread(snsc.create_topic, Name=_name("topic")))["TopicArn"]
    recorder = _Recorder()
    async with harness.serve(recorder) as sns_endpoint:
        config = models.SNSEventSource(
            topicArn=arn,
            region="us-east-1",
            endpoint=sns_endpoint,
            validateSignature=True,
            webhook=models.WebhookContext(endpoint="/sns", port="12000", method="POST"),
        )
        source = sns.SnsSource(
            "example",
            config,
            base.SourceContext(event_source_name="aws-sns"),
            cert_fetcher=sns_signer.fetcher(),
        )
        async with harness.serve(harness.push_handler(source, jetstream.publisher)) as url:
            subscribe_url = f"{sns_endpoint}/?Action=ConfirmSubscription&TopicArn={arn}&Token=t0k3n"
            confirmation = sns_signer.sign(SnsSigner.confirmation(arn, subscribe_url))
            async with _http() as http:
                answer = await http.post(f"{url}/sns", content=json.dumps(confirmation))
                assert answer.status_code == 200
                assert [r.query["Token"] for r in recorder.requests] == [["t0k3n"]]

                forged = SnsSigner.confirmation(arn, subscribe_url)
                forged = {**sns_signer.sign(forged), "Token": "other"}
                answer = await http.post(f"{url}/sns", content=json.dumps(forged))
                assert answer.status_code == 403
                assert len(recorder.requests) == 1  # not fetched: the signature failed first

                notification = sns_signer.sign(SnsSigner.notification(arn, "hello"))
                answer = await http.post(f"{url}/sns", content=json.dumps(notification))
                assert answer.status_code == 200
    event = await jetstream.next_event()
    assert events.data_json(event)["body"]["Message"] == "hello"


async def test_bad_sns_signature_and_foreign_cert_url_are_rejected_over_http(
    sns_signer: SnsSigner, jetstream: harness.Bus
) -> None:
    arn = "arn:aws:sns:us-east-1:123456789012:uploads"
    fetcher = sns_signer.fetcher()
    config = models.SNSEventSource(
        topicArn=arn,
        region="us-east-1",
        validateSignature=True,
        webhook=models.WebhookContext(endpoint="/sns", port="12000", method="POST"),
    )
    source = sns.SnsSource(
        "example", config, base.SourceContext(event_source_name="aws-sns"), cert_fetcher=fetcher
    )
    async with harness.serve(harness.push_handler(source, jetstream.publisher)) as url, _http() as http:
        foreign = sns_signer.sign(
            {**SnsSigner.notification(arn, "x"), "SigningCertURL": "https://attacker.example.com/cert.pem"}
        )
        answer = await http.post(f"{url}/sns", content=json.dumps(foreign))
        assert answer.status_code == 403
        assert fetcher.requested == []

        tampered = {**sns_signer.sign(SnsSigner.notification(arn, "pay 1")), "Message": "pay 1000"}
        answer = await http.post(f"{url}/sns", content=json.dumps(tampered))
        assert answer.status_code == 403
        assert fetcher.requested == [sns_signer.cert_url]
    assert await jetstream.count() == 0


def _http() -> Any:
    import httpx

    return httpx.AsyncClient(timeout=harness.WAIT)


async def test_sqs_with_secret_credentials_and_an_assumed_role(
    aws: Callable[[str], Any], moto_server: str, jetstream: harness.Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    from knevents.secrets import SecretResolver, env_name

    monkeypatch.setenv(env_name("SECRET", "aws-secret", "accesskey"), "AKIDEXAMPLE")
    monkeypatch.setenv(env_name("SECRET", "aws-secret", "secretkey"), "not-a-real-secret")
    monkeypatch.setenv("KNEVENTS_SECRETS_DIR", str(uuid.uuid4()))  # nothing mounted: the env fallback is used
    queue = _name("queue")
    sqsc = aws("sqs")
    queue_url = (await harness.to_thread(sqsc.create_queue, QueueName=queue))["QueueUrl"]
    await harness.to_thread(sqsc.send_message, QueueUrl=queue_url, MessageBody="raw text")
    config = models.SQSEventSource.model_validate(
        {
            "queue": queue,
            "region": "us-east-1",
            "waitTimeSeconds": 1,
            "endpoint": moto_server,
            "roleARN": "arn:aws:iam::123456789012:role/reader",
            "accessKey": {"name": "aws-secret", "key": "accesskey"},
            "secretKey": {"name": "aws-secret", "key": "secretkey"},
        }
    )
    ctx = base.SourceContext(event_source_name="aws-sqs", secrets=SecretResolver())
    (event,) = await _poll_until(sqs.create("example", config, ctx), jetstream, 1)
    assert events.data_json(event)["body"] == "cmF3IHRleHQ="  # base64, as Argo marshals a []byte body


@pytest.mark.parametrize(("dlq", "left"), [(False, 0), (True, 1)])
async def test_unconvertible_message_is_deleted_unless_a_dlq_is_configured(
    aws: Callable[[str], Any], moto_server: str, jetstream: harness.Bus, dlq: bool, left: int
) -> None:
    queue = _name("queue")
    sqsc = aws("sqs")
    queue_url = (await harness.to_thread(sqsc.create_queue, QueueName=queue))["QueueUrl"]
    await harness.to_thread(sqsc.send_message, QueueUrl=queue_url, MessageBody="not json")
    await harness.to_thread(sqsc.send_message, QueueUrl=queue_url, MessageBody='{"ok": true}')
    config = models.SQSEventSource(
        queue=queue, region="us-east-1", waitTimeSeconds=1, jsonBody=True, dlq=dlq, endpoint=moto_server
    )
    source = sqs.create("example", config, base.SourceContext(event_source_name="aws-sqs"))
    (event,) = await _poll_until(source, jetstream, 1)  # the good one: the bad one came first and was handled
    assert events.data_json(event)["body"] == {"ok": True}
    assert await _queue_depth(sqsc, queue_url) == left


def _moto_cert_fetcher(moto_server: str) -> aws_sns.CertFetcher:
    """Fetches the certificates moto signs SNS messages with: moto serves them for the AWS URL's path.

    The source still checks the real ``SigningCertURL`` (https on sns.<region>.amazonaws.com) before
    asking; only the transport is redirected to moto. A fake SigV4 header tells moto it is an SNS call.
    """
    import httpx

    async def fetch(url: str) -> bytes:
        path = url.split(".amazonaws.com", 1)[1]
        scope = "Credential=testing/20240101/us-east-1/sns/aws4_request, SignedHeaders=host, Signature=0"
        async with httpx.AsyncClient(timeout=harness.WAIT) as http:
            answer = await http.get(
                moto_server + path, headers={"Authorization": f"AWS4-HMAC-SHA256 {scope}"}
            )
        answer.raise_for_status()
        return answer.content

    return aws_sns.CertFetcher(fetch)


async def test_moto_signed_s3_notifications_pass_signature_validation(
    aws: Callable[[str], Any], moto_server: str, jetstream: harness.Bus
) -> None:
    bucket, topic = _name("bucket"), _name("topic")
    config = _s3_config(bucket, moto_server, sns={"validateSignature": True})
    fetcher = _moto_cert_fetcher(moto_server)
    source = s3.S3SnsSource(
        "s3", "signed", config, base.SourceContext(event_source_name="s3-events"), cert_fetcher=fetcher
    )
    async with harness.serve(harness.push_handler(source, jetstream.publisher)) as url:
        s3c, snsc = aws("s3"), aws("sns")
        arn = (await harness.to_thread(snsc.create_topic, Name=topic))["TopicArn"]
        await harness.to_thread(snsc.subscribe, TopicArn=arn, Protocol="http", Endpoint=f"{url}/signed")
        await harness.to_thread(s3c.create_bucket, Bucket=bucket)
        await harness.to_thread(
            s3c.put_bucket_notification_configuration,
            Bucket=bucket,
            NotificationConfiguration={
                "TopicConfigurations": [{"TopicArn": arn, "Events": ["s3:ObjectCreated:*"]}]
            },
        )
        await harness.to_thread(s3c.put_object, Bucket=bucket, Key="uploads/signed.csv", Body=b"x")
        event = await jetstream.next_event()
    found = paths.get(event.data or b"", "notification.0.s3.object.key")
    assert found is not None and found.text == "uploads/signed.csv"
    assert fetcher.fetches >= 1  # the signature was really checked against moto's certificate


async def test_sns_topic_publish_reaches_the_bus_through_the_runtime(
    aws: Callable[[str], Any], moto_server: str, jetstream: harness.Bus
) -> None:
    snsc = aws("sns")
    arn = (await harness.to_thread(snsc.create_topic, Name=_name("topic")))["TopicArn"]
    runtime = _runtime(
        {
            "metadata": {"name": "aws-sns"},
            "spec": {
                "sns": {
                    "example": {
                        "topicArn": arn,
                        "region": "us-east-1",
                        "endpoint": moto_server,
                        "webhook": {"endpoint": "/sns", "port": "12000", "method": "POST"},
                        "metadata": {"team": "ops"},
                    }
                }
            },
        },
        jetstream,
    )
    assert runtime.routes() == [(12000, "/sns", "POST")]
    async with harness.serve(lambda request: runtime.handle(request, 12000)) as url:
        await harness.to_thread(snsc.subscribe, TopicArn=arn, Protocol="http", Endpoint=f"{url}/sns")
        sent = await harness.to_thread(
            snsc.publish, TopicArn=arn, Message='{"alarm": "disk"}', Subject="alert"
        )
        event = await jetstream.next_event()
    await runtime.close()
    data = events.data_json(event)
    assert (event.source, event.subject, event.type) == ("aws-sns", "example", "sns")
    assert data["body"]["MessageId"] == sent["MessageId"]
    assert json.loads(data["body"]["Message"]) == {"alarm": "disk"}
    assert data["body"]["Subject"] == "alert"
    assert data["metadata"] == {"team": "ops"}
    found = paths.get(event.data or b"", "header.Content-Type.0")
    assert found is not None and found.text.startswith("text/plain")
