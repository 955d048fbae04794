"""The wire form of an event on the bus: CloudEvents *binary* mode, over HTTP and NATS alike.

Attributes travel as ``ce-<name>`` headers and the data as the body, untouched.
Binary mode was chosen over the structured JSON form because the data bytes
(often large webhook payloads) are never re-encoded, and because it is what the
Knative broker ingress expects. Header values are percent-encoded outside
printable ASCII (and ``%`` itself), as the CloudEvents HTTP binding asks, so
non-ASCII event names survive NATS and HTTP header rules.

``decode_nats`` is :func:`knevents.events.from_http` on the NATS headers: the
local runner's dispatcher can read a bus message with either.
"""

from __future__ import annotations

from collections.abc import Mapping

from knevents import events

__all__ = ["MSG_ID_HEADER", "binary_headers", "decode_nats", "encode_nats"]

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


def decode_nats(headers: Mapping[str, str] | None, body: bytes) -> events.Event:
    """The event in a NATS message written by :func:`encode_nats`; raises EventError when it is not one."""
    return events.from_http(dict(headers or {}), body)
