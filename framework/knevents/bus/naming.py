"""NATS subject and stream names for the JetStream bus.

An event lands on the subject ``<bus>.<eventsource>.<event>``. Names come from
user YAML and may hold characters NATS gives a meaning to (``.`` separates
tokens, ``*`` and ``>`` are wildcards, white space ends a subject), so every
token is escaped *reversibly*: characters other than ``A–Z a–z 0–9 _ -`` become
``%XX`` per UTF-8 byte (like URL encoding, ``%`` itself included), and an empty
name becomes ``%``. ``decode_token`` undoes it. A dispatcher can therefore
subscribe to exactly one EventSource (``<bus>.<eventsource>.>``) or one event.
"""

from __future__ import annotations

import functools
import hashlib
import re

__all__ = ["MAX_SUBJECT", "decode_token", "encode_token", "foreign_subject", "stream_name", "subject", "subject_filter"]

MAX_SUBJECT = 3072
"""Bytes of a subject knevents publishes on. nats-server refuses a protocol line longer than its
``max_control_line`` (4096 by default) and closes the connection, and nats-py then closes its client for good;
the other 1 KiB of the line is the reply inbox and the sizes."""
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_ESCAPE = re.compile(r"%([0-9A-F]{2})")
_STREAM_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@functools.lru_cache(maxsize=4096)
def encode_token(name: str) -> str:
    """One subject token for ``name``; reversible with :func:`decode_token` (cached: names repeat per event)."""
    if name == "":
        return "%"
    if all(ch in _SAFE for ch in name):
        return name
    out: list[str] = []
    for ch in name:
        if ch in _SAFE:
            out.append(ch)
        else:
            out.extend(f"%{byte:02X}" for byte in ch.encode("utf-8"))
    return "".join(out)


def decode_token(token: str) -> str:
    """The name a token was made from."""
    if token == "%":
        return ""
    if "%" not in token:
        return token
    raw = bytearray()
    pos = 0
    for match in _ESCAPE.finditer(token):
        raw += token[pos : match.start()].encode()
        raw.append(int(match.group(1), 16))
        pos = match.end()
    raw += token[pos:].encode()
    return raw.decode("utf-8", errors="replace")


def subject(bus_name: str, source: str, event_name: str | None) -> str:
    """The subject an event of EventSource ``source`` named ``event_name`` is published on."""
    return ".".join((encode_token(bus_name), encode_token(source), encode_token(event_name or "")))


def foreign_subject(bus_name: str, source: str, event_name: str | None) -> str | None:
    """:func:`subject` for names that come from outside (a Broker's events), or None when it would pass
    :data:`MAX_SUBJECT`. Encoded uncached: such names do not repeat, and the cache must not keep them."""
    if len(source) + len(event_name or "") + len(bus_name) + 2 > MAX_SUBJECT:  # encoding only lengthens
        return None
    encode = encode_token.__wrapped__
    found = ".".join((encode(bus_name), encode(source), encode(event_name or "")))
    return found if len(found) <= MAX_SUBJECT else None


def subject_filter(bus_name: str, source: str | None = None, event_name: str | None = None) -> str:
    """A subscription filter: the whole bus, one EventSource, or one event."""
    if source is None:
        return f"{encode_token(bus_name)}.>"
    if event_name is None:
        return f"{encode_token(bus_name)}.{encode_token(source)}.*"
    return subject(bus_name, source, event_name)


def stream_name(bus_name: str) -> str:
    """The JetStream stream of a bus: ``KNEVENTS-<bus>``; a short hash keeps unsafe names unique."""
    cleaned = _STREAM_UNSAFE.sub("_", bus_name) or "_"
    if cleaned != bus_name:
        cleaned += "-" + hashlib.sha256(bus_name.encode()).hexdigest()[:8]
    return f"KNEVENTS-{cleaned}"
