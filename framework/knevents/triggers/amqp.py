"""The ``amqp`` trigger (a knevents extension): publish the firing's payload to a RabbitMQ exchange.

Argo Events has no AMQP trigger; users ask for one (argo-events#3091). The
template key ``amqp`` sits beside Argo's trigger kinds in ``TriggerTemplate``
(added through :mod:`knevents.spec.extensions`; Argo's CRD keeps unknown
fields, so the manifest still applies to a cluster running Argo, which would
not run this trigger). Fields: ``url`` or ``urlSecret``, ``exchangeName``
(empty: the default exchange, where the routing key names the queue),
``routingKey``, ``auth`` and ``tls`` from Secrets, ``contentType``,
``persistent`` (delivery mode 2; default true), ``mandatory`` (default true),
``headers``, and Argo's ``parameters`` / ``payload``.

The message is published on a channel with **publisher confirms**: the
attempt succeeds only when the broker acked it. A nack, an unroutable message
under ``mandatory`` (basic.return) and every connection failure are
retryable (``retryStrategy``, then the bus redelivers under ``atLeastOnce``);
a missing exchange, refused credentials or a bad spec are permanent. The
message id is the firing's event ids (``Knevents-Event-Ids``, also a header,
with ``traceparent``), so a consumer can drop a re-run. Each firing opens and
closes its own connection, like the nats trigger: firings are rare next to a
sensor's own traffic, and a pooled connection would go stale across
scale-to-zero. aiormq is imported on first use; secret values never appear in
a result, an error or a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from knevents import errors
from knevents.spec import models, sensor_rules
from knevents.triggers import base, http

if TYPE_CHECKING:
    from knevents.sensors import engine

__all__ = ["TRIGGER", "AmqpTrigger", "connection_url"]

CONNECT_TIMEOUT = 10.0
"""Seconds to open the connection and channel; a broker slower than that is treated as down (retryable)."""
CONFIRM_TIMEOUT = 30.0
"""Seconds to wait for the broker's publisher confirm."""


def connection_url(spec: Any, ctx: base.TriggerContext) -> tuple[str, str, list[str]]:
    """The URL to dial (credentials from ``auth`` applied), the URL to show, and the secret values to hide."""
    from yarl import URL

    if bool(spec.url) == (spec.url_secret is not None):
        raise errors.TriggerError("amqp trigger needs exactly one of url and urlSecret")
    raw = str(spec.url or ctx.secrets.secret(spec.url_secret)).strip()
    hidden = [raw] if spec.url_secret is not None else []
    try:
        url = URL(raw)
    except ValueError:
        raise errors.TriggerError("amqp trigger: the url is not a URL") from None
    if url.scheme not in ("amqp", "amqps") or not url.host:
        raise errors.TriggerError(f"amqp trigger: {base.redact_url(raw)} is not an amqp:// or amqps:// URL")
    if url.password:
        hidden.append(url.password)
    shown = str(url.with_user(None).with_password(None))
    auth = spec.auth
    if auth is not None:
        user = ctx.secrets.secret(auth.username) if auth.username else ""
        password = ctx.secrets.secret(auth.password) if auth.password else ""
        hidden.append(password)
        url = url.with_user(user).with_password(password)
    return str(url), shown, hidden


class AmqpTrigger:
    """Publishes ``resolved.payload`` to ``template.amqp.exchangeName`` with ``routingKey``, confirmed."""

    async def execute(self, resolved: engine.Resolved, ctx: base.TriggerContext) -> base.TriggerResult:
        spec = getattr(resolved.spec.template, "amqp", None)
        if spec is None:
            raise errors.TriggerError("the trigger has no template.amqp section")
        url, shown_url, hidden = connection_url(spec, ctx)
        exchange, key = str(spec.exchange_name or ""), str(spec.routing_key or "")
        shown = f"AMQP {shown_url} exchange {exchange or '(default)'} routing key {key!r}"
        context = None
        if spec.tls is not None:
            verify, _, tls_secrets = http.ssl_context(spec.tls, ctx)
            context = verify if not isinstance(verify, bool) else None
            hidden.extend(tls_secrets)
        if ctx.dry_run:
            return base.TriggerResult(resolved.trigger, resolved.kind, f"dry run: would publish to {shown}")
        ids = base.event_ids(resolved.events)
        headers: dict[str, Any] = {**(spec.headers or {}), base.EVENT_IDS_HEADER: ids}
        if ctx.traceparent:
            headers["traceparent"] = ctx.traceparent
        message = _Message(resolved.payload or b"", exchange, key, headers, ids, spec)
        try:
            await _publish(url, context, message)
        except _Failure as failure:
            reason = base.scrub(failure.reason, hidden)
            error = errors.TriggerRetryableError if failure.retryable else errors.TriggerError
            raise error(f"{shown}: {reason}") from None
        return base.TriggerResult(resolved.trigger, resolved.kind, f"published to {shown} (confirmed)")


class _Message:
    """What to publish, with the spec's message options."""

    def __init__(self, body: bytes, exchange: str, key: str, headers: dict[str, Any], ids: str, spec: Any) -> None:
        self.body, self.exchange, self.key, self.headers, self.ids = body, exchange, key, headers, ids
        self.content_type = str(spec.content_type or "application/json")
        self.persistent = spec.persistent is not False
        self.mandatory = spec.mandatory is not False


class _Failure(Exception):
    """A failed publish, already described; ``retryable`` decides the error class."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.reason, self.retryable = reason, retryable


async def _publish(url: str, context: Any, message: _Message) -> None:
    import aiormq
    import aiormq.exceptions as amqp_errors
    from pamqp import commands

    def text(exc: BaseException) -> str:
        return str(exc).replace("\n", " ")[:300] or type(exc).__name__

    try:
        connection = await asyncio.wait_for(aiormq.connect(url, context=context), CONNECT_TIMEOUT)
    except (amqp_errors.AuthenticationError, amqp_errors.ProbableAuthenticationError) as exc:
        raise _Failure(f"the broker refused the credentials ({type(exc).__name__})", retryable=False) from None
    except (amqp_errors.AMQPError, OSError, TimeoutError) as exc:
        raise _Failure(f"could not connect: {type(exc).__name__}: {text(exc)}", retryable=True) from None
    try:
        channel = await asyncio.wait_for(connection.channel(publisher_confirms=True), CONNECT_TIMEOUT)
        properties = commands.Basic.Properties(
            content_type=message.content_type, delivery_mode=2 if message.persistent else 1,
            message_id=message.ids, headers=message.headers)
        answer = await channel.basic_publish(message.body, exchange=message.exchange, routing_key=message.key,
                                             properties=properties, mandatory=message.mandatory,
                                             timeout=CONFIRM_TIMEOUT)
    except amqp_errors.PublishError as exc:
        raise _Failure(f"no queue is bound for the routing key (returned: {text(exc)})", retryable=True) from None
    except (amqp_errors.ChannelNotFoundEntity, amqp_errors.ChannelAccessRefused) as exc:
        raise _Failure(f"refused: {text(exc)}", retryable=False) from None
    except (amqp_errors.AMQPError, OSError, TimeoutError) as exc:
        raise _Failure(f"publish failed: {type(exc).__name__}: {text(exc)}", retryable=True) from None
    finally:
        with contextlib.suppress(Exception):  # closing must not hide the outcome of the publish
            await asyncio.wait_for(connection.close(), 5)
    if not isinstance(answer, commands.Basic.Ack):
        raise _Failure(f"the broker did not confirm the message ({type(answer).__name__})", retryable=True)


def _check(amqp: models.AMQPTrigger, ctx: base.CheckContext) -> Iterator[tuple[str, str]]:
    if bool(amqp.url) == (amqp.url_secret is not None):
        yield ctx.path, "an amqp trigger needs exactly one of `url` and `urlSecret`"
    elif amqp.url and not str(amqp.url).strip().startswith(("amqp://", "amqps://")):
        yield f"{ctx.path}.url", "the url must be amqp://… or amqps://…"
    yield from sensor_rules.check_parameters(amqp.parameters, f"{ctx.path}.parameters", ctx.dependencies)
    yield from sensor_rules.check_parameters(amqp.payload, f"{ctx.path}.payload", ctx.dependencies)


TRIGGER = base.TriggerKind(
    key="amqp",
    model=models.AMQPTrigger,
    executor=AmqpTrigger(),
    summary="publishes the payload built from the events to a RabbitMQ exchange, with publisher confirms",
    check=_check,
)
