"""The ``nats`` event source: a NATS core subscription, as Argo's.

Each message on ``subject`` (a queue group when ``queue`` is set) becomes one
event with Argo's ``NATSEventData``: ``{"subject", "body", "header"?, "metadata"?}``.
With ``jsonBody: true`` the body is the message's JSON as sent (a message that
is not JSON is dropped and logged, as Argo cannot marshal it); otherwise the
body is the bytes base64-encoded, which is how Go marshals ``[]byte``.
Headers become lists (omitted when the message has none).

Core NATS has no redelivery: a message the bus refuses is logged and counted
as failed, as in Argo. Connecting retries with ``connectionBackoff`` (or 1 s,
doubling, capped at 30 s) until stopped; ``auth`` (basic, token, credentials
file, nkey seed) and ``tls`` are read from Secrets. ``nats`` is imported lazily.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import ssl
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from knevents import errors, events
from knevents.sources import base, common
from knevents.spec import models

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient
    from nats.aio.msg import Msg

__all__ = ["SOURCE", "NatsSource", "create", "message_data"]

log = logging.getLogger(__name__)


def message_data(subject: str, payload: bytes, headers: dict[str, str] | None, *, json_body: bool,
                 metadata: dict[str, str] | None) -> bytes | None:
    """The event data of one message, or ``None`` when ``json_body`` is set and it is not JSON."""
    if json_body:
        text = common.json_text(payload)
        if text is None:
            return None
        body = text
    else:
        body = json.dumps(base64.b64encode(payload).decode("ascii"))
    parts = ['{"subject":', json.dumps(subject, ensure_ascii=False), ',"body":', body]
    if headers:
        lists = {key: [value] for key, value in headers.items()}
        parts += [',"header":', json.dumps(lists, ensure_ascii=False)]
    if metadata:
        parts += [',"metadata":', json.dumps(metadata, ensure_ascii=False)]
    parts.append("}")
    return "".join(parts).encode()


class NatsSource:
    """One ``nats`` entry: subscribe, turn messages into events, publish them."""

    def __init__(self, event_name: str, config: Any, ctx: base.SourceContext) -> None:
        where = f"nats.{event_name}"
        if not config.url:
            raise errors.SpecError(f"{where}.url is required")
        if not config.subject:
            raise errors.SpecError(f"{where}.subject is required")
        self.event_name = event_name
        self._config = config
        self._ctx = ctx
        self._json = bool(config.json_body)
        self._metadata = dict(config.metadata) if config.metadata else None
        backoff = config.connection_backoff
        self._delay = 1.0
        if backoff is not None and backoff.duration is not None:
            duration = backoff.duration
            self._delay = duration / 1e9 if isinstance(duration, int) else common.parse_go_duration(
                str(duration), f"{where}.connectionBackoff.duration")
        self._factor = float(backoff.factor) if backoff is not None and backoff.factor else 2.0
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def _secret_file(self, selector: Any, what: str) -> str:
        """A path holding a secret: the mounted file, else a private temporary copy."""
        name, key = selector.name, selector.key
        mounted = os.path.join(self._ctx.settings.secrets.secrets_dir, str(name), str(key))
        if os.path.exists(mounted):
            return mounted
        value = common.read_secret(self._ctx.secrets, selector, what)
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="knevents-nats-")
        path = os.path.join(self._tmp.name, f"{what}-{name}-{key}")
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
            out.write(value)
        return path

    def _options(self) -> dict[str, Any]:
        config, secrets = self._config, self._ctx.secrets
        options: dict[str, Any] = {"servers": [u.strip() for u in config.url.split(",") if u.strip()],
                                   "max_reconnect_attempts": 1, "allow_reconnect": False}
        auth = config.auth
        if auth is not None:
            if auth.basic is not None:
                options["user"] = common.read_secret(secrets, auth.basic.username, "auth.basic.username")
                options["password"] = common.read_secret(secrets, auth.basic.password, "auth.basic.password")
            elif auth.token is not None:
                options["token"] = common.read_secret(secrets, auth.token, "auth.token")
            elif auth.credential is not None:
                options["user_credentials"] = self._secret_file(auth.credential, "credential")
            elif auth.nkey is not None:
                options["nkeys_seed"] = self._secret_file(auth.nkey, "nkey")
        tls = config.tls
        if tls is not None and (tls.ca_cert_secret or tls.client_cert_secret or tls.insecure_skip_verify):
            context = ssl.create_default_context()
            if tls.insecure_skip_verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            if tls.ca_cert_secret is not None:
                context.load_verify_locations(cafile=self._secret_file(tls.ca_cert_secret, "ca"))
            if tls.client_cert_secret is not None and tls.client_key_secret is not None:
                context.load_cert_chain(self._secret_file(tls.client_cert_secret, "cert"),
                                        self._secret_file(tls.client_key_secret, "key"))
            options["tls"] = context
        return options

    async def _connect(self, stop: asyncio.Event) -> NatsClient | None:
        import nats.errors
        from nats.aio.client import Client

        delay = self._delay
        while not stop.is_set():
            client = Client()
            try:
                await client.connect(**self._options())
            except (nats.errors.Error, TimeoutError, OSError) as exc:
                log.warning("nats %s: cannot connect to %s (%r); retrying in %.1fs", self.event_name,
                            self._config.url, exc, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * self._factor, 30.0)
                continue
            client.options["allow_reconnect"] = True
            client.options["max_reconnect_attempts"] = -1
            return client
        return None

    async def run(self, publish: base.Publish, stop: asyncio.Event) -> None:
        """Subscribe until ``stop`` is set; publish each message as it arrives."""
        client = await self._connect(stop)
        if client is None:
            return

        async def on_message(msg: Msg) -> None:
            data = message_data(msg.subject, msg.data, msg.headers, json_body=self._json, metadata=self._metadata)
            if data is None:
                log.error("nats %s: message on %s is not JSON but jsonBody is set; dropped", self.event_name,
                          msg.subject)
                return
            event = events.new_event(source=self._ctx.event_source_name, subject=self.event_name, type="nats",
                                     data=data, extensions=_trace(msg.headers))
            try:
                await publish(event)
            except errors.BusUnavailableError as exc:
                log.error("nats %s: message on %s lost, the bus refused it: %s", self.event_name, msg.subject, exc)

        try:
            await client.subscribe(self._config.subject, queue=self._config.queue or "", cb=on_message)
            await client.flush()
            await stop.wait()
        finally:
            with contextlib.suppress(Exception):
                await client.drain()
            if self._tmp is not None:
                self._tmp.cleanup()
                self._tmp = None


def _trace(headers: dict[str, str] | None) -> dict[str, str]:
    value = common.traceparent((headers or {}).get("traceparent"))
    return {"traceparent": value} if value else {}


def create(event_name: str, config: models.NATSEventsSource, ctx: base.SourceContext) -> base.Source:
    """Factory for the ``nats`` spec key."""
    return NatsSource(event_name, config, ctx)


def _check(config: models.NATSEventsSource, path: str) -> Iterator[tuple[str, str]]:
    if not config.url:
        yield f"{path}.url", "a nats event source needs `url`"
    if not config.subject:
        yield f"{path}.subject", "a nats event source needs `subject`"


SOURCE = base.SourceType(
    key="nats",
    model=models.NATSEventsSource,
    factory=create,
    # a plain subscription has no queue group in Argo: two replicas would each get every message
    knative=base.always(base.Knative.ONE_REPLICA),
    check=_check,
    data='{"subject": "...", "body": <JSON with jsonBody, else base64>, "header"?: {name: [value]}, '
    '"metadata"?: {...}}',
)
