"""The ``pubSub`` event source: Google Cloud Pub/Sub messages, pushed or pulled.

* **push** (the knevents extension ``push:``): a push subscription posts
  ``{message: {data, attributes, messageId, publishTime}, subscription}`` to
  ``push.endpoint`` (default ``/<event name>``); with ``verifyToken`` (or an
  ``audience``/``email``) the Google OIDC token is checked (:mod:`gcp_oidc`).
  Scales to zero; Pub/Sub retries until the event is on the bus (2xx).
* **pull** (Argo's behaviour, the default): the subscription (created with
  its topic when missing) is pulled and each message acknowledged only after
  its event was published; on a bus failure it is nacked for redelivery.

Both produce Argo's payload ``{id, body, attributes, publishTime}`` (plus
``metadata``): ``body`` is the message JSON with ``jsonBody``, otherwise the
bytes base64-encoded (Go's marshalling of Argo's ``[]byte``);
``publishTime`` is in Go's ``time.Time.String()`` form, as Argo writes it
(``2024-05-01 10:11:12.345 +0000 UTC``). The CloudEvent id is derived from
the messageId, so redeliveries dedupe.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import json
import logging
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from knevents import errors, events, web
from knevents.sources import base, common, gcp_oidc, gcp_pubsub, webhook
from knevents.spec import models

__all__ = ["SOURCE", "PubSubPullSource", "PubSubPushSource", "create", "go_time", "message_data"]

log = logging.getLogger(__name__)

MAX_PUSH_BODY = 10 * 1024 * 1024 + 64 * 1024
"""Bytes: Pub/Sub's 10 MB message limit, base64 overhead aside, plus the envelope."""
MAX_BACKOFF = 30.0
"""Seconds; the longest pause between pull attempts after failures."""

_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$")


def go_time(when: datetime, nanos: int | None = None) -> str:
    """A UTC time as Go's ``time.Time.String()`` prints it (trailing zeros of the fraction dropped)."""
    when = when.astimezone(UTC)
    nanos = when.microsecond * 1000 if nanos is None else nanos
    fraction = f".{nanos:09d}".rstrip("0") if nanos else ""
    return when.strftime("%Y-%m-%d %H:%M:%S") + fraction + " +0000 UTC"


def _parse_rfc3339(value: str) -> str:
    match = _RFC3339.match(value.strip())
    if not match:
        raise errors.EventError(f"publishTime {value!r} is not an RFC 3339 timestamp")
    whole, fraction, zone = match.groups()
    base_time = datetime.fromisoformat(whole + ("+00:00" if zone == "Z" else zone))
    nanos = int((fraction or "0").ljust(9, "0"))
    return go_time(base_time, nanos)


def message_data(
    *,
    message_id: str,
    data: bytes,
    attributes: Mapping[str, str],
    publish_time: str,
    json_body: bool,
    metadata: Mapping[str, str] | None,
) -> dict[str, Any]:
    """Argo's Pub/Sub payload; EventError when ``json_body`` and the data is not JSON."""
    body: Any
    if json_body:
        try:
            body = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise errors.EventError(
                f"Pub/Sub message {message_id}: jsonBody is set but the data is not JSON"
            ) from None
    else:
        body = base64.b64encode(data).decode("ascii")
    out: dict[str, Any] = {
        "id": message_id,
        "body": body,
        "attributes": dict(attributes),
        "publishTime": publish_time,
    }
    if metadata:
        out["metadata"] = dict(metadata)
    return out


def _event_id(source: str, event_name: str, message_id: str) -> str:
    # Mixed with the source and event names: two sources on one topic must not dedupe each other.
    return hashlib.sha256(f"{source}\x00{event_name}\x00{message_id}".encode()).hexdigest()[:32]


class _Common:
    def __init__(self, event_name: str, config: Any, ctx: base.SourceContext) -> None:
        self.event_name = event_name
        self._ctx = ctx
        self._config = config
        self._json_body = bool(config.json_body)
        self._metadata = dict(config.metadata or {})

    def _event(
        self, message_id: str, data: bytes, attributes: Mapping[str, str], publish_time: str
    ) -> events.Event:
        payload = message_data(
            message_id=message_id,
            data=data,
            attributes=attributes,
            publish_time=publish_time,
            json_body=self._json_body,
            metadata=self._metadata,
        )
        return events.new_event(
            id=_event_id(self._ctx.event_source_name, self.event_name, message_id),
            source=self._ctx.event_source_name,
            subject=self.event_name,
            type=SOURCE.cloudevent_type,
            data=payload,
        )


class PubSubPushSource(_Common):
    """Receives Pub/Sub push deliveries."""

    def __init__(
        self,
        event_name: str,
        config: Any,
        ctx: base.SourceContext,
        *,
        google_keys: gcp_oidc.GoogleKeys | None = None,
    ) -> None:
        super().__init__(event_name, config, ctx)
        push = config.push
        where = f"pubSub.{event_name}.push"
        endpoint = push.endpoint or f"/{event_name}"
        self._route = base.Route(
            endpoint=endpoint if endpoint.startswith("/") else "/" + endpoint,
            method=(push.method or "POST").upper(),
            port=common.port_number(push.port, where),
        )
        verify = push.verify_token if push.verify_token is not None else bool(push.audience or push.email)
        if verify and not push.audience:
            raise errors.SpecError(
                f"{where}.audience is required to verify push tokens (the audience set on the push subscription)"
            )
        self._audience: str | None = push.audience if verify else None
        self._email: str | None = push.email
        self._keys = google_keys
        self._expected = self._expected_subscription(config)

    @staticmethod
    def _expected_subscription(config: Any) -> str | None:
        if not config.subscription_id:
            return None
        if config.project_id:
            return f"projects/{config.project_id}/subscriptions/{config.subscription_id}"
        return f"/subscriptions/{config.subscription_id}"

    def routes(self) -> list[base.Route]:
        """Where the push subscription posts."""
        return [self._route]

    async def _authenticate(self, request: web.Request) -> None:
        if self._audience is None:
            return
        if self._keys is None:
            self._keys = gcp_oidc.GoogleKeys()
        token = gcp_oidc.bearer(request.headers.get("authorization"))
        await gcp_oidc.verify(token, self._keys, audience=self._audience, email=self._email)

    def _parse(self, body: bytes) -> events.Event:
        if len(body) > MAX_PUSH_BODY:
            raise gcp_oidc.TokenRejected(f"push body is larger than {MAX_PUSH_BODY} bytes", 413)
        try:
            envelope = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise errors.EventError("not a Pub/Sub push request: the body is not JSON") from None
        message = envelope.get("message") if isinstance(envelope, dict) else None
        if not isinstance(message, dict):
            raise errors.EventError("not a Pub/Sub push request: no 'message' object")
        subscription = envelope.get("subscription")
        if self._expected and not (isinstance(subscription, str) and subscription.endswith(self._expected)):
            raise gcp_oidc.TokenRejected(f"push from subscription {subscription!r}, not this source's", 403)
        message_id = message.get("messageId") or message.get("message_id")
        if not isinstance(message_id, str) or not message_id:
            raise errors.EventError("Pub/Sub push message has no messageId")
        try:
            data = base64.b64decode(message.get("data") or "", validate=True)
        except (ValueError, binascii.Error):
            raise errors.EventError(f"Pub/Sub message {message_id}: data is not base64") from None
        attributes = message.get("attributes") or {}
        if not isinstance(attributes, dict) or not all(isinstance(v, str) for v in attributes.values()):
            raise errors.EventError(f"Pub/Sub message {message_id}: attributes must map strings to strings")
        published = message.get("publishTime") or message.get("publish_time")
        publish_time = _parse_rfc3339(published) if isinstance(published, str) else go_time(datetime.now(UTC))
        return self._event(message_id, data, attributes, publish_time)

    async def handle(self, request: web.Request) -> base.PushResult:
        """Authenticate and convert one push delivery."""
        try:
            await self._authenticate(request)
            event = self._parse(request.body)
        except gcp_oidc.TokenRejected as exc:
            log.warning("pubSub %s/%s: %s", self._ctx.event_source_name, self.event_name, exc)
            return base.PushResult(response=web.text_response(exc.status, str(exc)))
        except errors.TemporaryError as exc:
            return base.PushResult(response=web.text_response(503, str(exc)))
        except errors.EventError as exc:
            log.warning("pubSub %s/%s: %s", self._ctx.event_source_name, self.event_name, exc)
            return base.PushResult(response=web.text_response(400, str(exc)))
        return base.PushResult(events=(event,))


class PubSubPullSource(_Common):
    """Pulls a subscription; acks after publishing."""

    def __init__(self, event_name: str, config: Any, ctx: base.SourceContext) -> None:
        super().__init__(event_name, config, ctx)
        if not config.subscription_id and not config.topic:
            raise errors.SpecError(f"pubSub.{event_name}: set topic, subscriptionID, or both")
        self._what = f"pubSub {ctx.event_source_name}/{event_name}"

    def _spec(self) -> gcp_pubsub.SubscriptionSpec:
        config = self._config
        project = config.project_id or _default_project()
        if not project:
            raise errors.PermanentError(
                f"{self._what}: projectID is not set and no default project is configured (GOOGLE_CLOUD_PROJECT)"
            )
        subscription = config.subscription_id or self._default_subscription()
        return gcp_pubsub.SubscriptionSpec(
            project_id=project,
            subscription_id=subscription,
            topic=config.topic or None,
            topic_project_id=config.topic_project_id or None,
            credential=config.credential_secret,
        )

    def _default_subscription(self) -> str:
        # Argo hashes the whole spec; a hash of the names and topic keeps the backlog across spec edits.
        digest = _event_id(self._ctx.event_source_name, self.event_name, self._config.topic or "")
        return f"{self.event_name}-{digest[:16]}"

    def _convert(self, pulled: gcp_pubsub.Pulled) -> events.Event:
        nanos = getattr(pulled.publish_time, "nanosecond", None)
        published = go_time(pulled.publish_time, nanos) if isinstance(pulled.publish_time, datetime) else ""
        return self._event(pulled.message_id, pulled.data, pulled.attributes, published)

    async def _drain(
        self, client: gcp_pubsub.Client, batch: list[gcp_pubsub.Pulled], publish: base.Publish
    ) -> None:
        for index, pulled in enumerate(batch):
            try:
                event = self._convert(pulled)
            except errors.EventError as exc:
                log.error("%s: %s; nacked", self._what, exc)
                await asyncio.to_thread(client.nack, [pulled.ack_id])
                continue
            try:
                await publish(event)
            except errors.KneventsError:
                rest = [p.ack_id for p in batch[index:]]
                with contextlib.suppress(errors.KneventsError):
                    await asyncio.to_thread(client.nack, rest)
                raise
            await asyncio.to_thread(client.ack, [pulled.ack_id])

    async def run(self, publish: base.Publish, stop: asyncio.Event) -> None:
        """Pull until ``stop``; never raises for upstream or bus failures (logs and backs off)."""
        client: gcp_pubsub.Client | None = None
        failures = 0
        try:
            while not stop.is_set():
                try:
                    if client is None:
                        client = await self._connect()
                    batch = await asyncio.to_thread(client.pull)
                    await self._drain(client, batch, publish)
                    failures = 0
                except Exception as raw:  # google-auth / grpc errors too: the loop must survive them
                    exc = gcp_pubsub.translate(raw, self._what)
                    failures += 1
                    if isinstance(exc, errors.PermanentError) and client is not None:
                        await asyncio.to_thread(client.close)
                        client = None
                    delay = min(MAX_BACKOFF, 2.0 ** min(failures, 6) / 2)
                    log.error("%s: %s (retrying in %.1fs)", self._what, exc, delay)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=delay)
        finally:
            if client is not None:
                await self._finish(client)

    async def _connect(self) -> gcp_pubsub.Client:
        client = await asyncio.to_thread(gcp_pubsub.Client, self._spec(), self._ctx.secrets)
        try:
            await asyncio.to_thread(client.prepare)
        except BaseException:
            await asyncio.to_thread(client.close)
            raise
        return client

    async def _finish(self, client: gcp_pubsub.Client) -> None:
        if self._config.delete_subscription_on_finish:
            try:
                await asyncio.to_thread(client.delete_subscription)
            except errors.KneventsError as exc:
                log.error("%s: %s", self._what, exc)
        await asyncio.to_thread(client.close)


def _default_project() -> str | None:
    import os

    return os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("PUBSUB_PROJECT_ID") or None


def create(event_name: str, config: models.PubSubEventSource, ctx: base.SourceContext) -> base.Source:
    """Factory for the ``pubSub`` spec key: push when ``push`` is set, else pull."""
    if config.push is not None:
        return PubSubPushSource(event_name, config, ctx)
    return PubSubPullSource(event_name, config, ctx)


def _check(config: models.PubSubEventSource, path: str) -> Iterator[tuple[str, str]]:
    if not config.topic and not config.subscription_id:
        yield path, "a pubSub event source needs `topic` or `subscriptionID`"
    if config.topic_project_id and not config.topic:
        yield f"{path}.topicProjectID", "topicProjectID is only meaningful with `topic`"
    push = config.push
    if push is not None:
        yield from webhook.check_route(push.endpoint, push.port, push.method, f"{path}.push", required=False)


def _knative(config: models.PubSubEventSource) -> base.Knative:
    # push: Pub/Sub posts to the Service (scale to zero); pull: one subscriber loop
    return base.Knative.SERVICE if config.push is not None else base.Knative.ONE_REPLICA


def _endpoints(_event_name: str, config: models.PubSubEventSource) -> Iterator[base.Endpoint]:
    push = config.push
    if push is not None:
        yield base.Endpoint("push", push.endpoint or "", push.port or "", push.method)


SOURCE = base.SourceType(
    key="pubSub",
    model=models.PubSubEventSource,
    factory=create,
    knative=_knative,
    check=_check,
    endpoints=_endpoints,
    data='{"id": "...", "body": <JSON with jsonBody, else base64>, "attributes": {...}, "publishTime": "...", '
    '"metadata"?: {...}}',
)
