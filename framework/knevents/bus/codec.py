"""The wire form of an event on the bus: CloudEvents *binary* mode, over HTTP and NATS alike.

Attributes travel as ``ce-<name>`` headers and the data as the body, untouched.
Binary mode was chosen over the structured JSON form because the data bytes
(often large webhook payloads) are never re-encoded, and because it is what the
Knative broker ingress expects. Header values are percent-encoded outside
printable ASCII (and ``%`` itself), as the CloudEvents HTTP binding asks, so
non-ASCII event names survive NATS and HTTP header rules.

``decode_nats`` is :func:`knevents.events.from_http` on the NATS headers: the
local runner's dispatcher can read a bus message with either.

:func:`header_block` is :func:`encode_nats`'s headers already in their wire
form (the ``NATS/1.0`` block of an ``HPUB``), built in one pass: the batch
publisher writes it as is instead of having nats-py re-check and re-encode
every header of every event (a third of its publish cost).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from knevents import events

__all__ = ["MSG_ID_HEADER", "binary_headers", "decode_nats", "encode_nats", "header_block"]

MSG_ID_HEADER = "Nats-Msg-Id"
"""JetStream drops a second message with the same id inside the stream's duplicate window."""


def _escape(value: str) -> str:
    if value.isascii() and value.isprintable() and "%" not in value:  # the common case, checked in C
        return value
    out: list[str] = []
    for ch in value:
        if " " <= ch <= "~" and ch != "%":
            out.append(ch)
        else:
            out.extend(f"%{byte:02X}" for byte in ch.encode("utf-8"))
    return "".join(out)


def binary_headers(event: events.Event) -> dict[str, str]:
    """The binary-mode headers of ``event``, safe for HTTP and NATS."""
    message = events.to_binary(event)
    return {key: (_escape(value) if key.startswith("ce-") else value) for key, value in message.headers.items()}


def encode_nats(event: events.Event) -> tuple[dict[str, str], bytes]:
    """``(headers, body)`` of the NATS message for ``event``, with ``Nats-Msg-Id`` = the event id."""
    headers = binary_headers(event)
    headers[MSG_ID_HEADER] = event.id
    return headers, event.data or b""


def header_block(event: events.Event) -> bytes:
    """The NATS header block (``NATS/1.0`` line to the blank line) of :func:`encode_nats`'s headers.

    Byte for byte what nats-py writes for those headers. When every value is printable ASCII without
    ``%`` (nothing to escape, no CR/LF to neutralise: the common case, checked in C once for all of
    them) the block is one join; otherwise it is built from :func:`encode_nats` as nats-py would.
    """
    values = [event.specversion, event.id, event.source, event.type]
    names: Sequence[str] = _CORE_NAMES
    if event.subject is not None or event.time is not None or event.dataschema is not None or event.extensions \
            or event.datacontenttype is not None:
        names = more = list(names)
        for name, value in (("ce-subject", event.subject), ("ce-time", event.time),
                            ("ce-dataschema", event.dataschema)):
            if value is not None:
                more.append(name)
                values.append(value if isinstance(value, str) else _time_text(value))
        for key, value in event.extensions.items():
            more.append(f"ce-{key}")
            values.append(value)
        if event.datacontenttype is not None:
            more.append("content-type")
            values.append(event.datacontenttype)
    joined = "".join(values)
    if not (joined.isascii() and joined.isprintable() and "%" not in joined) or (
            " " in joined and any(v != v.strip() for v in values)):
        return _block_of(encode_nats(event)[0])
    lines = [f"{name}: {value}\r\n" for name, value in zip(names, values, strict=True)]
    return f"NATS/1.0\r\n{''.join(lines)}{MSG_ID_HEADER}: {event.id}\r\n\r\n".encode()


_CORE_NAMES = ("ce-specversion", "ce-id", "ce-source", "ce-type")
_last_second: tuple[tuple[int, int, int, int] | None, str] = (None, "")


def _time_text(moment: datetime) -> str:
    """:func:`events.format_time`, with the part up to the second formatted once per second (events of a batch share it)."""
    global _last_second
    if moment.tzinfo is not UTC:
        return events.format_time(moment)
    second = (moment.toordinal(), moment.hour, moment.minute, moment.second)
    key, text = _last_second
    if key != second:
        text = moment.replace(microsecond=0, tzinfo=None).isoformat()
        _last_second = (second, text)
    return f"{text}.{moment.microsecond:06d}Z" if moment.microsecond else f"{text}Z"


def _block_of(headers: Mapping[str, str]) -> bytes:
    # as nats-py encodes headers: key and value stripped, CR/LF in a value made spaces, UTF-8
    lines = [f"{key.strip()}: {value.strip().replace(chr(13), ' ').replace(chr(10), ' ')}\r\n"
             for key, value in headers.items() if key.strip()]
    return f"NATS/1.0\r\n{''.join(lines)}\r\n".encode()


def decode_nats(headers: Mapping[str, str] | None, body: bytes) -> events.Event:
    """The event in a NATS message written by :func:`encode_nats`; raises EventError when it is not one."""
    return events.from_http(dict(headers or {}), body)
