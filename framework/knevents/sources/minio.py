"""The ``minio`` event source: MinIO bucket notifications, as Argo receives them and as MinIO pushes them.

Three ways in, chosen by the entry's fields:

* **Argo's way (default): ListenBucketNotification.** A pull source that
  keeps one HTTP stream open on MinIO's S3 API:
  ``GET /{bucket}?events=…&prefix=…&suffix=…`` signed with AWS SigV4
  (``accessKey``/``secretKey``; ``insecure: true`` means plain HTTP, as in
  minio-go). MinIO writes one JSON object ``{"Records": [...]}`` per line and
  blank (whitespace) lines as keep-alives. Each object with records becomes
  one event whose data is Argo's ``MinioEventData``:
  ``{"notification": [records], "metadata"?: {...}}``, the records exactly as
  MinIO sent them, so ``notification.0.s3.object.key`` resolves. A dropped
  stream is reopened with a capped backoff; MinIO keeps no backlog for a
  listener, so notifications sent while it is closed are lost (as with Argo).
* **Push (knevents extension ``webhook``).** MinIO's *webhook notification
  target* POSTs ``{"EventName", "Key", "Records": [...]}`` to the endpoint;
  records passing ``bucket``/``events``/``filter`` become one event with the
  same data as above. ``webhook.authSecret`` checks the target's
  ``auth_token`` (``Authorization: Bearer``). Scales to zero.
* **Through AWS-style SNS/SQS (knevents extension ``sns``/``sqs``).** As for
  ``s3``: :mod:`knevents.sources.s3`.

MinIO's listen stream has nothing to acknowledge, so a notification whose
publish fails is retried until the bus takes it or the source stops.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from knevents import errors, events, sigv4, web
from knevents.sources import aws, base, common, hooked, s3, webhook
from knevents.spec import models

__all__ = ["SOURCE", "MinioListenSource", "MinioPushSource", "create", "stream_records"]

log = logging.getLogger(__name__)
_BACKOFF_CAP = 30.0
"""Seconds: the longest wait before reopening a failed stream."""


def stream_records(line: str) -> list[Any] | None:
    """The records of one stream line; ``None`` for a keep-alive or a record-less object."""
    text = line.strip()
    if not text:
        return None
    document = json.loads(text)
    found = document.get("Records") if isinstance(document, dict) else None
    return list(found) if isinstance(found, list) and found else None


def _data(records: list[Any], metadata: dict[str, str] | None) -> dict[str, Any]:
    data: dict[str, Any] = {"notification": records}
    if metadata:
        data["metadata"] = metadata
    return data


class MinioListenSource:
    """One ``minio`` entry listening with ListenBucketNotification."""

    def __init__(self, event_name: str, config: Any, ctx: base.SourceContext) -> None:
        where = f"minio.{event_name}"
        if config.bucket is None or not config.bucket.name:
            raise errors.SpecError(f"{where}.bucket.name is required")
        if not config.endpoint:
            raise errors.SpecError(f"{where}.endpoint is required (MinIO's host:port)")
        if config.access_key is None or config.secret_key is None:
            raise errors.SpecError(f"{where}: accessKey and secretKey are required")
        self.event_name = event_name
        self._config = config
        self._ctx = ctx
        self._base = aws.endpoint_url(config.endpoint, insecure=bool(config.insecure)) or ""
        flt = config.filter
        self._params = [("prefix", (flt.prefix or "") if flt else ""), ("suffix", (flt.suffix or "") if flt else "")]
        self._params += [("events", name) for name in config.events or []]
        self._metadata = dict(config.metadata) if config.metadata else None

    def _tls(self) -> ssl.SSLContext | bool:
        if self._config.ca_certificate is None:
            return True
        pem = common.read_secret(self._ctx.secrets, self._config.ca_certificate, "caCertificate")
        return ssl.create_default_context(cadata=pem)

    def _request(self) -> tuple[str, dict[str, str]]:
        parts = urlsplit(self._base)
        path = f"{parts.path.rstrip('/')}/{self._config.bucket.name}"
        access = common.read_secret(self._ctx.secrets, self._config.access_key, "accessKey")
        secret = common.read_secret(self._ctx.secrets, self._config.secret_key, "secretKey")
        headers = sigv4.sign_get(parts.netloc, path, self._params, access, secret,
                                 region=self._config.region or "us-east-1")
        return f"{parts.scheme}://{parts.netloc}{path}?{sigv4.canonical_query(self._params)}", headers

    async def run(self, publish: base.Publish, stop: asyncio.Event) -> None:
        """Listen until ``stop``; reopen the stream with backoff when it fails or ends."""
        delay = 1.0
        while not stop.is_set():
            listening = asyncio.create_task(self._listen(publish, stop))
            stopping = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait({listening, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if listening not in done:
                listening.cancel()
                return
            failure = listening.exception()
            if failure is None:
                delay = 1.0
            else:
                log.warning("minio %s/%s: listen stream failed: %s; reopening in %.0fs",
                            self._ctx.event_source_name, self.event_name, failure, delay)
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except TimeoutError:
                delay = min(delay * 2, _BACKOFF_CAP)

    async def _listen(self, publish: base.Publish, stop: asyncio.Event) -> None:
        import httpx  # lazily: only a minio listener needs a streaming client

        url, headers = self._request()
        timeout = httpx.Timeout(10.0, read=None)
        try:
            async with httpx.AsyncClient(verify=self._tls(), timeout=timeout) as client, \
                    client.stream("GET", url, headers=headers) as response:
                if response.status_code != 200:
                    text = (await response.aread()).decode("utf-8", "replace")[:300]
                    raise errors.EventError(f"MinIO answered {response.status_code}: {text}")
                log.info("minio %s/%s: listening on bucket %s", self._ctx.event_source_name,
                         self.event_name, self._config.bucket.name)
                async for line in response.aiter_lines():
                    await self._line(line, publish, stop)
        except httpx.HTTPError as exc:
            raise errors.EventError(f"MinIO stream: {type(exc).__name__}: {exc}") from exc

    async def _line(self, line: str, publish: base.Publish, stop: asyncio.Event) -> None:
        try:
            records = stream_records(line)
        except ValueError:
            log.warning("minio %s/%s: a stream line is not JSON; skipped", self._ctx.event_source_name,
                        self.event_name)
            return
        if records is None:
            return
        event = events.new_event(source=self._ctx.event_source_name, subject=self.event_name, type="minio",
                                 data=_data(records, self._metadata))
        delay = 0.5
        while True:
            try:
                await publish(event)
                return
            except errors.BusUnavailableError:
                if stop.is_set():
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, _BACKOFF_CAP)


class MinioPushSource(hooked.HookedSource):
    """One ``minio`` entry fed by MinIO's webhook notification target."""

    type_key = "minio"

    def __init__(self, event_name: str, config: Any, ctx: base.SourceContext) -> None:
        super().__init__(event_name, config, ctx)
        self._filter = s3.RecordFilter.from_config(config)

    def receive(self, request: web.Request) -> base.PushResult:
        """Keep the records that pass the filters; one event per request."""
        document = self.json_object(request.body, "the MinIO notification")
        if isinstance(document, base.PushResult):
            return document
        found = document.get("Records")
        if not isinstance(found, list):
            return self.refuse(400, "not a MinIO notification: no 'Records' list")
        kept = [record for record in found if self._filter.matches(record)]
        if not kept:
            return self.ignore("no record passes the bucket/events/filter settings")
        return self.emit(_data(kept, self.metadata))


def create(event_name: str, config: models.S3EventSource, ctx: base.SourceContext) -> base.Source:
    """Factory for the ``minio`` spec key: sns/sqs (knevents), webhook push (knevents), else Argo's listener."""
    if config.sns is not None or config.sqs is not None:
        return s3.create_for("minio", event_name, config, ctx)
    if config.webhook is not None:
        return MinioPushSource(event_name, config, ctx)
    return MinioListenSource(event_name, config, ctx)


def _check(config: models.S3EventSource, path: str) -> Iterator[tuple[str, str]]:
    yield from s3.check(config, path)
    hook = config.webhook
    if hook is not None:
        if config.sns is not None or config.sqs is not None:
            yield path, "set one delivery: `webhook`, `sns` or `sqs`"
        yield from webhook.check_context(hook, f"{path}.webhook")
    elif config.sns is None and config.sqs is None:
        if not config.endpoint:
            yield f"{path}.endpoint", "MinIO's `endpoint` (host:port) is needed to listen for notifications"
        if config.access_key is None or config.secret_key is None:
            yield path, "`accessKey` and `secretKey` are needed to listen for notifications"


def _knative(config: models.S3EventSource) -> base.Knative:
    # pushed by SNS or MinIO's webhook target: scale to zero; SQS or Argo's listen stream: one replica
    pushed = config.webhook is not None or (config.sns is not None and config.sqs is None)
    return base.Knative.SERVICE if pushed else base.Knative.ONE_REPLICA


def _endpoints(event_name: str, config: models.S3EventSource) -> Iterator[base.Endpoint]:
    if config.webhook is not None:
        yield from webhook.context_endpoints(config.webhook)
    elif config.sns is not None:
        yield from s3.endpoints(event_name, config)


SOURCE = base.SourceType(
    key="minio",
    model=models.S3EventSource,
    factory=create,
    knative=_knative,
    check=_check,
    endpoints=_endpoints,
    data=s3.DATA,
)
