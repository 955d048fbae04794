"""The event bus seen from an event source: publish a CloudEvent and know it was accepted.

Two adapters: :class:`HttpSinkPublisher` (the Knative broker ingress at
``$K_SINK``) and :class:`JetStreamPublisher` (the embedded/local JetStream bus),
plus :class:`MemoryPublisher` for tests. :func:`from_settings` picks one:
``K_SINK`` set → HTTP sink, else JetStream at ``KNEVENTS_NATS_URL``.

Subject and stream naming (:mod:`knevents.bus.naming`) and the NATS wire form
(:mod:`knevents.bus.codec`) are shared with the local runner's dispatcher, which
reads the bus back. This package never imports sources, triggers or state.
"""

from __future__ import annotations

from knevents.bus.base import BatchPublisher, Publisher
from knevents.bus.codec import MSG_ID_HEADER, binary_headers, decode_nats, encode_nats
from knevents.bus.http import HttpSinkPublisher
from knevents.bus.jetstream import DEFAULT_DUPLICATE_WINDOW, JetStreamPublisher, connect, ensure_stream
from knevents.bus.memory import MemoryPublisher
from knevents.bus.naming import decode_token, encode_token, stream_name, subject, subject_filter
from knevents.settings import Settings

__all__ = [
    "DEFAULT_DUPLICATE_WINDOW",
    "MSG_ID_HEADER",
    "BatchPublisher",
    "HttpSinkPublisher",
    "JetStreamPublisher",
    "MemoryPublisher",
    "Publisher",
    "binary_headers",
    "connect",
    "decode_nats",
    "decode_token",
    "encode_nats",
    "encode_token",
    "ensure_stream",
    "from_settings",
    "stream_name",
    "subject",
    "subject_filter",
]


def from_settings(settings: Settings) -> HttpSinkPublisher | JetStreamPublisher:
    """The publisher a function uses: the HTTP sink when ``K_SINK`` is set, else JetStream (lazily)."""
    if settings.bus.sink:
        return HttpSinkPublisher(settings.bus.sink, settings=settings.bus, http=settings.http)
    return JetStreamPublisher.lazy(settings)
