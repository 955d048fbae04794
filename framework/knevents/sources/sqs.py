"""The ``sqs`` event source: long-poll an SQS queue, one event per message.

The payload is Argo's ``{messageId, messageAttributes, body}`` (plus
``metadata`` when the spec has some). As in Argo, ``body`` is the message
itself when ``jsonBody`` is true (it must then be JSON) and otherwise the
message bytes base64-encoded (that is how Go marshals Argo's ``[]byte``
body; sensors written for Argo decode it that way). ``messageAttributes``
keep the shape Argo's Go SDK gives them: ``{name: {DataType, StringValue,
BinaryValue (base64), StringListValues, BinaryListValues}}``, ``null`` when
the message has none.

The CloudEvent id is derived from the SQS MessageId, so a message delivered
twice (SQS is at-least-once) dedupes in the sensor. A pull source runs with
``min-scale: 1`` on Knative.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Iterator
from typing import Any

from knevents import errors, events
from knevents.sources import aws, aws_sqs, base
from knevents.spec import models

__all__ = ["SOURCE", "SqsSource", "create", "message_attributes", "message_data"]

log = logging.getLogger(__name__)


def _b64(value: Any) -> str | None:
    if value is None:
        return None
    raw = value if isinstance(value, bytes | bytearray) else str(value).encode()
    return base64.b64encode(bytes(raw)).decode("ascii")


def message_attributes(message: dict[str, Any]) -> dict[str, Any] | None:
    """SQS message attributes in Argo's (Go SDK) shape, ``None`` when there are none."""
    raw = message.get("MessageAttributes")
    if not raw:
        return None
    out: dict[str, Any] = {}
    for name, attr in raw.items():
        out[name] = {
            "BinaryListValues": [_b64(v) for v in attr["BinaryListValues"]]
            if attr.get("BinaryListValues")
            else None,
            "BinaryValue": _b64(attr.get("BinaryValue")),
            "DataType": attr.get("DataType"),
            "StringListValues": list(attr["StringListValues"]) if attr.get("StringListValues") else None,
            "StringValue": attr.get("StringValue"),
        }
    return out


def message_data(
    message: dict[str, Any], *, json_body: bool, metadata: dict[str, str] | None
) -> dict[str, Any]:
    """Argo's SQS payload for one message; EventError when ``json_body`` and the body is not JSON."""
    body_text = str(message.get("Body", ""))
    body: Any
    if json_body:
        try:
            body = json.loads(body_text)
        except ValueError:
            raise errors.EventError(
                f"SQS message {message.get('MessageId')}: jsonBody is set but the body is not JSON"
            ) from None
    else:
        body = base64.b64encode(body_text.encode()).decode("ascii")
    data: dict[str, Any] = {
        "messageId": message.get("MessageId"),
        "messageAttributes": message_attributes(message),
        "body": body,
    }
    if metadata:
        data["metadata"] = dict(metadata)
    return data


class SqsSource:
    """One ``sqs`` entry: a queue polled with long polling."""

    def __init__(self, event_name: str, config: Any, ctx: base.SourceContext) -> None:
        where = f"sqs.{event_name}"
        if not config.queue:
            raise errors.SpecError(f"{where}.queue is required")
        self.event_name = event_name
        self._ctx = ctx
        self._json_body = bool(config.json_body)
        self._metadata = dict(config.metadata or {})
        queue = aws_sqs.QueueConfig(
            queue=config.queue,
            account_id=config.queue_account_id or None,
            wait_time_seconds=aws_sqs.wait_seconds(config.wait_time_seconds, where),
            keep_malformed=bool(config.dlq),
            aws=aws.AwsConfig(
                region=config.region,
                endpoint=config.endpoint,
                access_key=config.access_key,
                secret_key=config.secret_key,
                session_token=config.session_token,
                role_arn=config.role_arn,
                session_name=f"knevents-{ctx.event_source_name}"[:64],
            ),
        )
        self._poller = aws_sqs.Poller(f"sqs {ctx.event_source_name}/{event_name}", queue, ctx.secrets)

    def convert(self, message: dict[str, Any]) -> list[events.Event]:
        """The event for one received message."""
        data = message_data(message, json_body=self._json_body, metadata=self._metadata)
        event = events.new_event(
            id=aws.message_event_id(
                self._ctx.event_source_name, self.event_name, str(message.get("MessageId"))
            ),
            source=self._ctx.event_source_name,
            subject=self.event_name,
            type=SOURCE.cloudevent_type,
            data=data,
        )
        return [event]

    async def run(self, publish: base.Publish, stop: asyncio.Event) -> None:
        """Poll until ``stop``; a message is deleted only after its event was published."""
        await self._poller.run(self.convert, publish, stop)


def create(event_name: str, config: models.SQSEventSource, ctx: base.SourceContext) -> base.Source:
    """Factory for the ``sqs`` spec key."""
    return SqsSource(event_name, config, ctx)


def _check(config: models.SQSEventSource, path: str) -> Iterator[tuple[str, str]]:
    if not config.queue:
        yield f"{path}.queue", "an sqs event source needs `queue`"
    if not config.region:
        yield f"{path}.region", "an sqs event source needs `region`"
    if config.wait_time_seconds is not None and not 0 <= config.wait_time_seconds <= 20:
        yield f"{path}.waitTimeSeconds", "waitTimeSeconds must be between 0 and 20 (an SQS limit)"


SOURCE = base.SourceType(
    key="sqs",
    model=models.SQSEventSource,
    factory=create,
    knative=base.always(base.Knative.ONE_REPLICA),
    check=_check,
    data='{"messageId": "...", "messageAttributes": {...} | null, "body": <JSON with jsonBody, else base64 text>, '
    '"metadata"?: {...}}',
)
