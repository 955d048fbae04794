"""The event envelope: a CloudEvent context plus data bytes, and its wire forms.

Everything here is a pure function over small frozen values (no Flask, no
sockets), so the sensor, the event sources, the local runner and ``knevents
test`` all read and write events the same way. Argo Events' conventions for the
attributes are kept (see ARCHITECTURE.md, "Compatibility contract"):
``source`` is the EventSource name, ``subject`` the event name, ``type`` the
event source type, data is JSON.

This module must not import anything heavy; it is on every cold start. It is
the only module of the framework that may import ``cloudevents``; it does not
need to, since the HTTP binding is a few lines of header mapping.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from knevents import errors

__all__ = [
    "Event",
    "HTTPMessage",
    "data_json",
    "format_time",
    "from_http",
    "from_json",
    "new_event",
    "new_id",
    "parse_time",
    "to_binary",
    "to_json",
    "to_stored",
    "to_structured",
]

JSON_CONTENT_TYPE = "application/json"
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
_REQUIRED = ("id", "source", "specversion", "type")
_CORE = frozenset(
    {"id", "source", "specversion", "type", "subject", "time", "datacontenttype", "dataschema"}
)
_EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")
_FRACTION = re.compile(r"(\.\d{6})\d+")


@dataclass(frozen=True, slots=True)
class Event:
    """A CloudEvent: context attributes plus the data as exact bytes."""

    id: str
    source: str
    type: str
    subject: str | None = None
    time: datetime | None = None
    data: bytes | None = None
    datacontenttype: str | None = JSON_CONTENT_TYPE
    dataschema: str | None = None
    specversion: str = "1.0"
    extensions: Mapping[str, str] = field(default_factory=dict)

    def with_data(self, data: bytes | None) -> Event:
        """A copy with other data (used by transforms)."""
        return replace(self, data=data)


@dataclass(frozen=True, slots=True)
class HTTPMessage:
    """An HTTP request or response reduced to what the binding needs."""

    headers: Mapping[str, str]
    body: bytes


def new_id() -> str:
    """A fresh event id: 32 lowercase hex characters, as Argo Events makes them."""
    return uuid.uuid4().hex


def new_event(
    *,
    source: str,
    subject: str,
    type: str,
    data: bytes | Any,
    id: str | None = None,
    time: datetime | None = None,
    extensions: Mapping[str, str] | None = None,
) -> Event:
    """Build an event by Argo's conventions; non-bytes ``data`` is JSON-encoded."""
    if not isinstance(data, bytes | None):
        data = json.dumps(data, separators=(",", ":")).encode()
    return Event(
        id=id or new_id(),
        source=source,
        subject=subject,
        type=type,
        time=time or datetime.now(UTC),
        data=data,
        datacontenttype=JSON_CONTENT_TYPE,
        extensions=dict(extensions or {}),
    )


def parse_time(value: str) -> datetime:
    """Parse an RFC 3339 timestamp (Go's nanoseconds are cut to microseconds)."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    text = _FRACTION.sub(r"\1", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise errors.EventError(f"time {value!r} is not an RFC 3339 timestamp") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def format_time(value: datetime) -> str:
    """Format as RFC 3339 in UTC with a ``Z`` suffix."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    text = value.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


def data_json(event: Event) -> Any:
    """The data decoded as JSON, or ``None`` when there is none; raises EventError if not JSON."""
    if event.data is None or event.data == b"":
        return None
    try:
        return json.loads(event.data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.EventError(f"event {event.id}: data is not JSON") from exc


# --- the JSON (structured) form ------------------------------------------------


def _is_json_type(content_type: str | None) -> bool:
    if not content_type:
        return True
    base = content_type.split(";", 1)[0].strip().lower()
    return base == JSON_CONTENT_TYPE or base.endswith("+json") or base == "text/json"


def to_json(event: Event) -> dict[str, Any]:
    """The structured-mode JSON object of an event (``data`` or ``data_base64``)."""
    out: dict[str, Any] = {
        "specversion": event.specversion,
        "id": event.id,
        "source": event.source,
        "type": event.type,
    }
    if event.subject is not None:
        out["subject"] = event.subject
    if event.time is not None:
        out["time"] = format_time(event.time)
    if event.datacontenttype is not None:
        out["datacontenttype"] = event.datacontenttype
    if event.dataschema is not None:
        out["dataschema"] = event.dataschema
    out.update(event.extensions)
    if event.data is not None:
        decoded: Any = _NO_JSON
        # Untyped data (binary mode without a content type) stays bytes, so nothing is implied.
        if event.datacontenttype is not None and _is_json_type(event.datacontenttype):
            try:
                decoded = json.loads(event.data)
            except (ValueError, UnicodeDecodeError):
                decoded = _NO_JSON
        if decoded is _NO_JSON:
            out["data_base64"] = base64.b64encode(event.data).decode("ascii")
        else:
            out["data"] = decoded
    return out


_NO_JSON = object()


def _text_attr(obj: Mapping[str, Any], name: str, where: str) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise errors.EventError(f"{where}: attribute {name!r} must be a string, got {type(value).__name__}")
    return value


def to_stored(event: Event) -> dict[str, Any]:
    """The form an event is kept in state and outbox: :func:`to_json`, but byte for byte.

    JSON data stays a nested object when :func:`from_json` gives back the same bytes; any other data
    (spacing, ``1.50``, non-ASCII text, binary) is kept as ``data_base64``, so a saved event fires
    with exactly the data it arrived with.
    """
    out = to_json(event)
    if "data" in out and json.dumps(out["data"], separators=(",", ":")).encode() != event.data:
        del out["data"]
        out["data_base64"] = base64.b64encode(event.data or b"").decode("ascii")
    return out


def from_json(obj: Any, *, where: str = "event") -> Event:
    """Parse the structured JSON form of a CloudEvent (a dict)."""
    if not isinstance(obj, Mapping):
        raise errors.EventError(f"{where}: a CloudEvent must be a JSON object, got {type(obj).__name__}")
    missing = [name for name in _REQUIRED if not obj.get(name)]
    if missing:
        raise errors.EventError(f"{where}: missing required attribute(s): {', '.join(missing)}")
    specversion = _text_attr(obj, "specversion", where)
    if specversion != "1.0":
        raise errors.EventError(f"{where}: unsupported specversion {specversion!r} (only 1.0)")
    if "data" in obj and "data_base64" in obj:
        raise errors.EventError(f"{where}: 'data' and 'data_base64' are mutually exclusive")
    content_type = _text_attr(obj, "datacontenttype", where)
    data: bytes | None = None
    if "data_base64" in obj:
        raw = obj["data_base64"]
        if not isinstance(raw, str):
            raise errors.EventError(f"{where}: 'data_base64' must be a string")
        try:
            data = base64.b64decode(raw, validate=True)
        except ValueError as exc:
            raise errors.EventError(f"{where}: 'data_base64' is not valid base64") from exc
    elif "data" in obj:  # an explicit JSON null is data too (the bytes `null`)
        value = obj["data"]
        if isinstance(value, str) and not _is_json_type(content_type):
            data = value.encode()
        else:
            data = json.dumps(value, separators=(",", ":")).encode()
    time_text = _text_attr(obj, "time", where)
    extensions = {}
    for key, value in obj.items():
        if key in _CORE or key in ("data", "data_base64"):
            continue
        if not _EXTENSION_NAME.match(key):
            raise errors.EventError(f"{where}: invalid extension attribute name {key!r}")
        extensions[key] = value if isinstance(value, str) else json.dumps(value)
    return Event(
        id=str(_text_attr(obj, "id", where)),
        source=str(_text_attr(obj, "source", where)),
        type=str(_text_attr(obj, "type", where)),
        subject=_text_attr(obj, "subject", where),
        time=parse_time(time_text) if time_text else None,
        data=data,
        # A JSON `data` member implies JSON; `data_base64` without a type stays untyped.
        datacontenttype=content_type
        if content_type is not None
        else (JSON_CONTENT_TYPE if data is not None and "data" in obj else None),
        dataschema=_text_attr(obj, "dataschema", where),
        specversion="1.0",
        extensions=extensions,
    )


# --- the HTTP binding ------------------------------------------------------------


def to_binary(event: Event) -> HTTPMessage:
    """Binary content mode: attributes as ``ce-`` headers, data as the body."""
    headers = {
        "ce-specversion": event.specversion,
        "ce-id": event.id,
        "ce-source": event.source,
        "ce-type": event.type,
    }
    if event.subject is not None:
        headers["ce-subject"] = event.subject
    if event.time is not None:
        headers["ce-time"] = format_time(event.time)
    if event.dataschema is not None:
        headers["ce-dataschema"] = event.dataschema
    for key, value in event.extensions.items():
        headers[f"ce-{key}"] = value
    if event.datacontenttype is not None:
        headers["content-type"] = event.datacontenttype
    return HTTPMessage(headers=headers, body=event.data or b"")


def to_structured(event: Event) -> HTTPMessage:
    """Structured content mode: one ``application/cloudevents+json`` document."""
    body = json.dumps(to_json(event), separators=(",", ":")).encode()
    return HTTPMessage(headers={"content-type": STRUCTURED_CONTENT_TYPE}, body=body)


def from_http(headers: Mapping[str, str], body: bytes) -> Event:
    """Parse a CloudEvent from an HTTP request in binary or structured mode.

    Raises :class:`errors.EventError` with the reason when it is not a valid
    CloudEvent; callers answer that with 400.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    content_type = lowered.get("content-type", "")
    base = content_type.split(";", 1)[0].strip().lower()
    if base == BATCH_CONTENT_TYPE:
        raise errors.EventError("batched CloudEvents are not supported; send one event per request")
    if base == STRUCTURED_CONTENT_TYPE:
        try:
            obj = json.loads(body)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than Python's stack
            raise errors.EventError("structured CloudEvent body is not valid JSON (or nests too deeply)") from exc
        return from_json(obj, where="request")
    if "ce-specversion" not in lowered:
        raise errors.EventError(
            "not a CloudEvent: no ce-specversion header and content-type is not application/cloudevents+json"
        )
    attrs: dict[str, Any] = {}
    for key, value in lowered.items():
        if key.startswith("ce-"):
            attrs[key[3:]] = _percent_decode(value)
    if content_type:
        attrs["datacontenttype"] = content_type
    missing = [name for name in _REQUIRED if not attrs.get(name)]
    if missing:
        raise errors.EventError(f"request: missing required header(s): {', '.join('ce-' + m for m in missing)}")
    if attrs["specversion"] != "1.0":
        raise errors.EventError(f"request: unsupported specversion {attrs['specversion']!r} (only 1.0)")
    extensions = {k: v for k, v in attrs.items() if k not in _CORE}
    for key in extensions:
        if not _EXTENSION_NAME.match(key):
            raise errors.EventError(f"request: invalid extension attribute name {key!r}")
    return Event(
        id=attrs["id"],
        source=attrs["source"],
        type=attrs["type"],
        subject=attrs.get("subject"),
        time=parse_time(attrs["time"]) if attrs.get("time") else None,
        data=body if body else None,
        datacontenttype=attrs.get("datacontenttype"),
        dataschema=attrs.get("dataschema"),
        extensions=extensions,
    )


def _percent_decode(value: str) -> str:
    if "%" not in value:
        return value
    from urllib.parse import unquote

    return unquote(value)
