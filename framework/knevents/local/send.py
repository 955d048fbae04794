"""What ``knevents send`` does: post to a running source's endpoint, or publish a CloudEvent onto the bus.

Posting goes through the source, exactly as an outside caller would (so the
source's auth, filters and event shape apply); publishing on the bus skips the
source and hands the sensors an event with the attributes given, which is how to
replay or hand-craft events. Both need only ``runner.json`` to find the runner.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from knevents import errors, events
from knevents.local import natsauth, runnerfile

__all__ = ["Sent", "post", "publish", "read_data"]


@dataclass(frozen=True)
class Sent:
    """The outcome of one send."""

    ok: bool
    detail: str
    status: int | None = None
    event_id: str | None = None


def read_data(value: str | None, content_type: str) -> bytes:
    """``--data`` as bytes: literal text, ``@file`` or ``-`` (stdin); JSON is checked when the type says JSON."""
    import sys

    if value is None:
        return b""
    if value == "-":
        raw = sys.stdin.buffer.read()
    elif value.startswith("@"):
        try:
            with open(value[1:], "rb") as handle:
                raw = handle.read()
        except OSError as exc:
            raise errors.KneventsError(f"cannot read {value[1:]}: {exc.strerror}") from None
    else:
        raw = value.encode()
    if content_type.split(";")[0].strip().lower().endswith("json") and raw:
        try:
            json.loads(raw)
        except ValueError as exc:
            raise errors.KneventsError(
                f"--data is not valid JSON ({exc}); pass --content-type text/plain to send it as is"
            ) from None
    return raw


async def post(url: str, body: bytes, *, method: str = "POST", headers: Mapping[str, str] | None = None,
               timeout: float = 10.0) -> Sent:
    """Send one HTTP request to a source endpoint; any answer is reported, a connection error is a clear error."""
    import httpx

    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.request(method, url, content=body, headers=dict(headers or {}))
    except httpx.HTTPError as exc:
        raise errors.KneventsError(f"cannot reach {url}: {type(exc).__name__}: {exc}") from None
    text = response.text.strip()
    return Sent(ok=200 <= response.status_code < 300, status=response.status_code,
                detail=f"{response.status_code} {response.reason_phrase}" + (f": {text[:300]}" if text else ""))


async def publish(info: runnerfile.RunnerInfo, *, source: str, subject: str, data: bytes,
                  type: str | None = None, id: str | None = None, content_type: str = "application/json") -> Sent:
    """Publish one CloudEvent on the runner's bus (the sensors see it as if a source had sent it)."""
    from knevents.bus import jetstream
    from knevents.settings import NatsSettings

    kind = type or next((s.type for s in info.sources if s.eventsource == source and s.event == subject), "")
    event = events.Event(
        id=id or events.new_id(), source=source, subject=subject, type=_ce_type(kind),
        time=events.parse_time(_now()), data=data or None, datacontenttype=content_type,
    )
    nc = await jetstream.connect(NatsSettings(url=natsauth.client_url(Path(info.state_dir), info.nats_url)))
    try:
        await jetstream.JetStreamPublisher(nc.jetstream(), info.bus).publish(event)
    finally:
        await nc.close()
    return Sent(ok=True, detail=f"published event {event.id} on bus {info.bus!r} ({source}/{subject})",
                event_id=event.id)


def _ce_type(kind: str) -> str:
    """The CloudEvent type a source of spec key ``kind`` publishes (a webhook's when it is not known)."""
    from knevents import sources
    from knevents.sources import webhook

    found = sources.TYPES.get(kind) if kind else webhook.SOURCE
    return found.cloudevent_type if found is not None else kind.lower()


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat()
