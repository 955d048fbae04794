"""The ``storageGrid`` event source: NetApp StorageGRID bucket notifications.

StorageGRID's notification endpoints speak SNS's *publish* API: each
notification is a POST whose body is form-encoded
(``Action=Publish&TopicArn=…&Message=<S3 event JSON>&Version=…``), and the
endpoint answers an SNS ``PublishResponse`` XML document. As Argo does, the
body is URL-decoded and turned into JSON (a value that is itself JSON, such as
``Message``, is kept as JSON), and the event data is
``{"notification": {"Action", "Message": {"Records": [...]}, "TopicArn", "Version"},
"metadata"?: {...}}``.

Filters, applied to the first record as Argo does: ``filter.prefix`` and
``filter.suffix`` on ``s3.object.key`` (``bucket`` names where the notification
is configured, as in Argo; it is not compared with the record). A notification that does not pass is
answered 200 and dropped. A ``HEAD`` on the endpoint (StorageGRID's
reachability test) is answered 200 with no body.

Differences from Argo, on purpose: Argo answers 200 *before* publishing and
never reports a failure; knevents answers after the bus accepted the event
(5xx otherwise, so StorageGRID retries), and a body that is not a
notification is 400. Registering the endpoint with the StorageGRID API
(``apiURL``, ``authToken``, ``topicArn``) is a deployment step, not done here.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

from knevents import web
from knevents.sources import base, hooked
from knevents.spec import models

__all__ = ["SOURCE", "StorageGridSource", "create", "notification"]


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def notification(body: bytes) -> dict[str, Any] | None:
    """The form-encoded SNS publish body as a JSON object; ``None`` when it is not one."""
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        return None
    out = {key: _value(value) for key, value in pairs}
    message = out.get("Message")
    if not isinstance(message, dict) or not isinstance(message.get("Records"), list):
        return None
    return out


def _publish_response() -> web.Response:
    body = (
        '<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
        f"<PublishResult><MessageId>{uuid.uuid4()}</MessageId></PublishResult>"
        f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></PublishResponse>\n"
    )
    return web.Response(200, body.encode(), {"content-type": "text/xml"})


class StorageGridSource(hooked.HookedSource):
    """One ``storageGrid`` entry."""

    type_key = "storageGrid"

    def routes(self) -> list[base.Route]:
        """The webhook route, plus HEAD for StorageGRID's endpoint test."""
        route = self.hook.route
        return [route, base.Route(endpoint=route.endpoint, method="HEAD", port=route.port)]

    def passes(self, document: dict[str, Any]) -> bool:
        """Argo's prefix/suffix filter on the first record's object key."""
        records = document["Message"]["Records"]
        flt = self.config.filter
        if flt is None:
            return True
        if not records or not isinstance(records[0], dict):
            return False
        key = str(((records[0].get("s3") or {}).get("object") or {}).get("key", ""))
        return key.startswith(flt.prefix or "") and key.endswith(flt.suffix or "")

    def receive(self, request: web.Request) -> base.PushResult:
        """Decode, filter, and build one event; answer like SNS's Publish."""
        if request.method.upper() == "HEAD":
            return base.PushResult(response=web.Response(200))
        document = notification(request.body)
        if document is None:
            return self.refuse(400, "body is not a form-encoded StorageGRID notification with Message.Records")
        if not self.passes(document):
            return base.PushResult(response=_publish_response())
        data: dict[str, Any] = {"notification": document}
        if self.metadata:
            data["metadata"] = self.metadata
        return base.PushResult(events=(self.event(data),), response=_publish_response())


def create(event_name: str, config: models.StorageGridEventSource, ctx: base.SourceContext) -> base.Source:
    """Factory for the ``storageGrid`` spec key."""
    return StorageGridSource(event_name, config, ctx)


def _rules(config: models.StorageGridEventSource, path: str) -> Iterator[tuple[str, str]]:
    if not config.events:
        yield f"{path}.events", "list at least one bucket event (e.g. s3:ObjectCreated:*)"


SOURCE = hooked.declare(
    "storageGrid",
    models.StorageGridEventSource,
    create,
    '{"notification": {"Action", "Message": {"Records": [...]}, "TopicArn", "Version"}, "metadata"?: {...}}',
    _rules,
)
