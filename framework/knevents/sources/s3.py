"""The ``s3`` event source (and ``minio``'s sns/sqs modes): bucket notifications, pushed by SNS or polled from SQS.

Argo Events has no ``s3`` type; knevents adds it (the seed documents use it)
and receives the notifications the way AWS delivers them to serverless code.
``minio`` entries with ``sns``/``sqs`` come here too (:mod:`minio` for the rest):

* **SNS push** (the default, and ``sns:``): the bucket notifies an SNS topic,
  the topic posts to ``/<event name>`` (or ``sns.endpoint``); the envelope's
  ``Message`` is the S3 event JSON. Subscription confirmation and signature
  checks are those of :mod:`aws_sns`. Scales to zero.
* **SQS poll** (``sqs: {queue}``): the bucket notifies a queue (directly, or
  through SNS without raw delivery: both bodies are understood).

Records are kept when they match ``bucket.name``, ``events`` (``*`` is a
wildcard, as in ``s3:ObjectCreated:*``) and ``filter.prefix``/``suffix`` (on
the URL-decoded key). Each matching record becomes **one event** whose data is
``{"notification": [record]}``: the shape of Argo's minio payload, so
``notification.0.s3.object.key`` resolves. The key is URL-decoded in the
record (S3 sends ``my+file.csv`` for ``my file.csv``; MinIO and moto also
encode ``/``), so a trigger parameter gets the object key a workflow can use;
Argo passes the encoded form through. Each object gets its own
trigger even when S3 batches records (Argo's minio sends one event per
MinIO notification, which carries one record in practice). ``s3:TestEvent``
(sent when a notification is configured) produces nothing. Event ids derive
from the SNS/SQS MessageId and the record's index, so redeliveries dedupe.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from knevents import errors, events, web
from knevents.sources import aws, aws_sns, aws_sqs, base, common, sns, webhook
from knevents.spec import models

__all__ = [
    "DATA",
    "SOURCE",
    "RecordFilter",
    "S3SnsSource",
    "S3SqsSource",
    "check",
    "create_for",
    "decoded_key",
    "endpoints",
    "records",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecordFilter:
    """Which S3 event records a source keeps."""

    bucket: str | None = None
    events: tuple[str, ...] = ()
    prefix: str = ""
    suffix: str = ""

    @classmethod
    def from_config(cls, config: Any) -> RecordFilter:
        """Read ``bucket``, ``events`` and ``filter`` of an S3 spec entry."""
        flt = config.filter
        return cls(
            bucket=config.bucket.name if config.bucket is not None else None,
            events=tuple(config.events or ()),
            prefix=(flt.prefix or "") if flt is not None else "",
            suffix=(flt.suffix or "") if flt is not None else "",
        )

    def matches(self, record: Any) -> bool:
        """True when the record is about this bucket, one of the events, and a key in range."""
        if not isinstance(record, dict):
            return False
        s3 = _dict(record.get("s3"))
        bucket = _dict(s3.get("bucket")).get("name")
        if self.bucket and bucket != self.bucket:
            return False
        name = str(record.get("eventName", ""))
        if self.events and not any(_event_pattern(p).match(_qualified(name)) for p in self.events):
            return False
        key = unquote_plus(str(_dict(s3.get("object")).get("key") or ""))
        return key.startswith(self.prefix) and key.endswith(self.suffix)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _qualified(event_name: str) -> str:
    # S3 records say "ObjectCreated:Put"; specs say "s3:ObjectCreated:Put".
    return event_name if event_name.startswith("s3:") else "s3:" + event_name


def _event_pattern(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(part) for part in _qualified(pattern).split("*")) + "$")


def decoded_key(record: dict[str, Any]) -> dict[str, Any]:
    """A copy of the record whose ``s3.object.key`` is URL-decoded (S3 and MinIO send it encoded)."""
    s3 = _dict(record.get("s3"))
    obj = _dict(s3.get("object"))
    if not isinstance(obj.get("key"), str):
        return record
    return {**record, "s3": {**s3, "object": {**obj, "key": unquote_plus(obj["key"])}}}


def records(document: Any) -> list[Any] | None:
    """The records of an S3 notification document; ``None`` for ``s3:TestEvent``; EventError otherwise."""
    if isinstance(document, dict) and document.get("Event") == "s3:TestEvent":
        return None
    if isinstance(document, dict) and isinstance(document.get("Records"), list):
        return list(document["Records"])
    raise errors.EventError("not an S3 event notification: no 'Records' list")


def _decode(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise errors.EventError(f"{what} is not JSON") from None


class _Converter:
    """Shared by both delivery modes: records → events."""

    def __init__(self, key: str, event_name: str, config: Any, ctx: base.SourceContext) -> None:
        if config.bucket is None or not config.bucket.name:
            raise errors.SpecError(f"{key}.{event_name}.bucket.name is required")
        self.event_name = event_name
        self._type = key.lower()  # the CloudEvent type is the spec key, as for every type
        self._ctx = ctx
        self._filter = RecordFilter.from_config(config)
        self._metadata = dict(config.metadata or {})

    def events_for(self, document: Any, message_id: str) -> list[events.Event]:
        """One event per matching record of an S3 notification document."""
        found = records(document)
        if found is None:
            log.info("%s/%s: ignored s3:TestEvent", self._ctx.event_source_name, self.event_name)
            return []
        out = []
        for index, record in enumerate(found):
            if not self._filter.matches(record):
                continue
            data: dict[str, Any] = {"notification": [decoded_key(record)]}
            if self._metadata:
                data["metadata"] = self._metadata
            out.append(
                events.new_event(
                    id=aws.message_event_id(self._ctx.event_source_name, self.event_name, message_id, index),
                    source=self._ctx.event_source_name,
                    subject=self.event_name,
                    type=self._type,
                    data=data,
                )
            )
        return out


def _role_arn(config: Any) -> str | None:
    # The seed documents put roleARN on S3 entries; the upstream S3Artifact has no such field.
    value = getattr(config, "role_arn", None)
    return str(value) if value else None


class S3SnsSource:
    """S3 notifications pushed by an SNS subscription (HTTP)."""

    def __init__(
        self,
        key: str,
        event_name: str,
        config: Any,
        ctx: base.SourceContext,
        *,
        cert_fetcher: aws_sns.CertFetcher | None = None,
    ) -> None:
        self.event_name = event_name
        self._converter = _Converter(key, event_name, config, ctx)
        self._ctx = ctx
        opts = config.sns
        endpoint = (opts.endpoint if opts is not None else None) or f"/{event_name}"
        self._route = base.Route(
            endpoint=endpoint if endpoint.startswith("/") else "/" + endpoint,
            method=((opts.method if opts is not None else None) or "POST").upper(),
            port=common.port_number(opts.port if opts is not None else None, f"{key}.{event_name}.sns"),
        )
        self._endpoint = aws_sns.Endpoint(
            validate_signature=bool(opts.validate_signature) if opts is not None else False,
            allowed_origin=aws.endpoint_origin(config.endpoint, insecure=bool(config.insecure)),
        )
        self._fetcher = cert_fetcher

    def routes(self) -> list[base.Route]:
        """Where SNS posts."""
        return [self._route]

    async def handle(self, request: web.Request) -> base.PushResult:
        """Confirm the subscription, or turn the notification's matching records into events."""
        try:
            msg = await aws_sns.receive(request.body, self._endpoint, self._fetcher)
            if msg is None:
                return base.PushResult(response=web.text_response(200, "ok"))
            found = self._converter.events_for(_decode(msg.message, "SNS Message"), msg.message_id)
        except errors.KneventsError as exc:
            log.warning("%s/%s: %s", self._ctx.event_source_name, self.event_name, exc)
            return base.PushResult(response=sns.rejection(exc))
        if not found:
            return base.PushResult(response=web.text_response(200, "no matching records"))
        return base.PushResult(events=tuple(found))


class S3SqsSource:
    """S3 notifications polled from an SQS queue."""

    def __init__(self, key: str, event_name: str, config: Any, ctx: base.SourceContext) -> None:
        self.event_name = event_name
        self._converter = _Converter(key, event_name, config, ctx)
        opts = config.sqs
        if not opts.queue:
            raise errors.SpecError(f"{key}.{event_name}.sqs.queue is required")
        queue = aws_sqs.QueueConfig(
            queue=opts.queue,
            account_id=opts.queue_account_id or None,
            wait_time_seconds=aws_sqs.wait_seconds(opts.wait_time_seconds, f"{key}.{event_name}.sqs"),
            aws=aws.AwsConfig(
                region=opts.region or config.region,
                endpoint=opts.endpoint or config.endpoint,
                access_key=config.access_key,
                secret_key=config.secret_key,
                role_arn=_role_arn(config),
                insecure=bool(config.insecure),
                session_name=f"knevents-{ctx.event_source_name}"[:64],
            ),
        )
        self._poller = aws_sqs.Poller(f"{key} {ctx.event_source_name}/{event_name}", queue, ctx.secrets)

    def convert(self, message: dict[str, Any]) -> Sequence[events.Event]:
        """Events for one SQS message: an S3 notification, or an SNS envelope around one."""
        document = _decode(str(message.get("Body", "")), f"SQS message {message.get('MessageId')}")
        if isinstance(document, dict) and document.get("Type") == "Notification" and "Message" in document:
            document = _decode(str(document["Message"]), "SNS Message inside the SQS message")
        return self._converter.events_for(document, str(message.get("MessageId")))

    async def run(self, publish: base.Publish, stop: asyncio.Event) -> None:
        """Poll until ``stop``; a message is deleted only after all its events were published."""
        await self._poller.run(self.convert, publish, stop)


def create_for(key: str, event_name: str, config: Any, ctx: base.SourceContext) -> base.Source:
    """An SNS-push or SQS-poll source for spec key ``key`` (``s3``, or ``minio`` with ``sns``/``sqs``)."""
    if config.sns is not None and config.sqs is not None:
        raise errors.SpecError(f"{key}.{event_name}: set either sns or sqs, not both")
    if config.sqs is not None:
        return S3SqsSource(key, event_name, config, ctx)
    return S3SnsSource(key, event_name, config, ctx)


def create(event_name: str, config: models.S3EventSource, ctx: base.SourceContext) -> base.Source:
    """Factory for the ``s3`` spec key (the seed documents' name)."""
    return create_for("s3", event_name, config, ctx)


def check(config: models.S3EventSource, path: str) -> Iterator[tuple[str, str]]:
    """The rules of SNS/SQS delivery (``s3``, and ``minio`` with ``sns``/``sqs``)."""
    if config.bucket is None or not config.bucket.name:
        yield f"{path}.bucket.name", "the bucket name is needed"
    if config.sns is not None and config.sqs is not None:
        yield path, "set either `sns` or `sqs` delivery, not both"
    if config.sns is not None:
        opts = config.sns
        yield from webhook.check_route(opts.endpoint, opts.port, opts.method, f"{path}.sns", required=False)
    if config.sqs is not None:
        if not config.sqs.queue:
            yield f"{path}.sqs.queue", "sqs delivery needs the `queue` the bucket notifies"
        wait = config.sqs.wait_time_seconds
        if wait is not None and not 0 <= wait <= 20:
            yield f"{path}.sqs.waitTimeSeconds", "waitTimeSeconds must be between 0 and 20 (an SQS limit)"


def endpoints(_event_name: str, config: models.S3EventSource) -> Iterator[base.Endpoint]:
    """Where SNS posts (``/<event name>`` unless ``sns.endpoint``); nothing for SQS delivery."""
    if config.sqs is None:
        opts = config.sns
        if opts is None:
            yield base.Endpoint("sns", "")
        else:
            yield base.Endpoint("sns", opts.endpoint or "", opts.port or "", opts.method)


def _knative(config: models.S3EventSource) -> base.Knative:
    # SNS pushes (scale to zero); an SQS queue is polled by one replica
    return base.Knative.ONE_REPLICA if config.sqs is not None else base.Knative.SERVICE


DATA = '{"notification": [<one S3 event record, key URL-decoded>], "metadata"?: {...}}'

SOURCE = base.SourceType(
    key="s3",
    model=models.S3EventSource,
    factory=create,
    knative=_knative,
    check=check,
    endpoints=endpoints,
    data=DATA,
)
