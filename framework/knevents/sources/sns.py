"""The ``sns`` event source: AWS SNS pushes notifications to an HTTP endpoint.

Argo Events subscribes to the topic when its pod starts; a function that
scales to zero cannot, so the subscription is created by the deployment
(``terraform/``, or ``aws sns subscribe``) and this source *confirms* it by
fetching the ``SubscribeURL`` SNS sends first (see :mod:`aws_sns` for the
checks made before that fetch). Each ``Notification`` becomes one event with
Argo's payload ``{header, body}`` (``body`` is the SNS envelope as posted,
``metadata`` added when the spec has some). The event id is derived from the
SNS ``MessageId``, so SNS retries of the same message dedupe in the sensor.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from knevents import errors, events, web
from knevents.sources import aws, aws_sns, base, common, webhook
from knevents.spec import models

__all__ = ["SOURCE", "SnsSource", "create"]

log = logging.getLogger(__name__)


def rejection(exc: errors.KneventsError) -> web.Response:
    """The HTTP answer for a delivery that failed a check or could not be completed."""
    if isinstance(exc, aws_sns.SnsRejected):
        return web.text_response(exc.status, str(exc))
    if isinstance(exc, errors.TemporaryError):
        return web.text_response(503, str(exc))
    return web.text_response(400, str(exc))


class SnsSource:
    """One ``sns`` entry: a push endpoint for an SNS topic subscription."""

    def __init__(
        self,
        event_name: str,
        config: Any,
        ctx: base.SourceContext,
        *,
        cert_fetcher: aws_sns.CertFetcher | None = None,
    ) -> None:
        where = f"sns.{event_name}"
        hook = config.webhook
        if hook is None:
            raise errors.SpecError(f"{where}.webhook is required")
        self.event_name = event_name
        self._ctx = ctx
        self._metadata = dict(config.metadata or {})
        self._route = base.Route(
            endpoint=common.endpoint_path(hook.endpoint, f"{where}.webhook"),
            method=(hook.method or "POST").upper(),
            port=common.port_number(hook.port, f"{where}.webhook"),
        )
        self._endpoint = aws_sns.Endpoint(
            topic_arn=config.topic_arn or None,
            validate_signature=bool(config.validate_signature),
            allowed_origin=aws.endpoint_origin(config.endpoint),
            max_payload=hook.max_payload_size or common.DEFAULT_MAX_PAYLOAD,
        )
        self._fetcher = cert_fetcher

    def routes(self) -> list[base.Route]:
        """The webhook's endpoint, method and port."""
        return [self._route]

    async def handle(self, request: web.Request) -> base.PushResult:
        """Confirm a subscription, or turn a Notification into one event."""
        try:
            msg = await aws_sns.receive(request.body, self._endpoint, self._fetcher)
        except errors.KneventsError as exc:
            log.warning("sns %s/%s: %s", self._ctx.event_source_name, self.event_name, exc)
            return base.PushResult(response=rejection(exc))
        if msg is None:
            return base.PushResult(response=web.text_response(200, "ok"))
        data: dict[str, Any] = {
            "header": common.header_lists(request.headers.items_all()),
            "body": dict(msg.fields),
        }
        if self._metadata:
            data["metadata"] = self._metadata
        event = events.new_event(
            id=aws.message_event_id(self._ctx.event_source_name, self.event_name, msg.message_id),
            source=self._ctx.event_source_name,
            subject=self.event_name,
            type=SOURCE.cloudevent_type,
            data=data,
        )
        return base.PushResult(events=(event,))


def create(event_name: str, config: models.SNSEventSource, ctx: base.SourceContext) -> base.Source:
    """Factory for the ``sns`` spec key."""
    return SnsSource(event_name, config, ctx)


def _check(config: models.SNSEventSource, path: str) -> Iterator[tuple[str, str]]:
    if not config.topic_arn:
        yield f"{path}.topicArn", "an sns event source needs `topicArn`"
    yield from webhook.check_context(config.webhook, f"{path}.webhook")


SOURCE = base.SourceType(
    key="sns",
    model=models.SNSEventSource,
    factory=create,
    knative=base.always(base.Knative.SERVICE),
    check=_check,
    endpoints=lambda _name, config: webhook.context_endpoints(config.webhook),
    data='{"header": {<Canonical-Name>: [values]}, "body": <the SNS Notification envelope>, "metadata"?: {...}}',
)
