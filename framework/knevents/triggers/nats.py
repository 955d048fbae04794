"""The ``nats`` trigger: publish the firing's payload to a NATS subject.

Argo's NATS trigger: ``url``, ``subject``, ``payload`` and optional ``auth``
(basic, token, nkey seed, credentials file content, all from Secrets) and
``tls``. nats-py is imported on first use. Each firing connects, publishes,
flushes (so the server has the message before we answer) and closes: the
trigger is rare next to the sensor's own NATS traffic, and a connection kept
across scale-to-zero would be stale anyway.

Connection failures and flush timeouts are retryable; a missing subject or
bad auth configuration is permanent. The message carries the
``Knevents-Event-Ids`` header and ``traceparent``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from knevents import errors
from knevents.spec import models, sensor_rules
from knevents.triggers import base, http

if TYPE_CHECKING:
    from knevents.sensors import engine

__all__ = ["TRIGGER", "NatsTrigger", "connect_options"]


def connect_options(spec: Any, ctx: base.TriggerContext) -> tuple[dict[str, Any], list[str]]:
    """nats-py ``connect`` keyword arguments for the trigger's auth/tls, and the secret values used."""
    options: dict[str, Any] = {}
    hidden: list[str] = []
    auth = getattr(spec, "auth", None)
    if auth is not None:
        from nats.aio.client import RawCredentials

        secrets = ctx.secrets
        if getattr(auth, "basic", None) is not None:
            basic = auth.basic
            options["user"] = secrets.secret(basic.username) if basic.username else ""
            options["password"] = secrets.secret(basic.password) if basic.password else ""
            hidden.append(options["password"])
        if getattr(auth, "token", None) is not None:
            options["token"] = secrets.secret(auth.token)
            hidden.append(options["token"])
        if getattr(auth, "nkey", None) is not None:
            options["nkeys_seed_str"] = secrets.secret(auth.nkey)
            hidden.append(options["nkeys_seed_str"])
        if getattr(auth, "credential", None) is not None:
            creds = secrets.secret(auth.credential)
            options["user_credentials"] = RawCredentials(creds)
            hidden.append(creds)
    tls = getattr(spec, "tls", None)
    if tls is not None:
        verify, _, tls_secrets = http.ssl_context(tls, ctx)
        if not isinstance(verify, bool):
            options["tls"] = verify
        hidden.extend(tls_secrets)
    return options, hidden


class NatsTrigger:
    """Publishes ``resolved.payload`` to ``template.nats.subject`` on ``template.nats.url``."""

    async def execute(self, resolved: engine.Resolved, ctx: base.TriggerContext) -> base.TriggerResult:
        spec = resolved.spec.template.nats
        if spec is None:
            raise errors.TriggerError("the trigger has no template.nats section")
        url, subject = str(getattr(spec, "url", "") or ""), str(getattr(spec, "subject", "") or "")
        if not url or not subject:
            raise errors.TriggerError("nats trigger needs both url and subject")
        shown = f"NATS {base.redact_url(url)} subject {subject}"
        options, hidden = connect_options(spec, ctx)
        if ctx.dry_run:
            return base.TriggerResult(resolved.trigger, resolved.kind, f"dry run: would publish to {shown}")
        headers = {base.EVENT_IDS_HEADER: base.event_ids(resolved.events)}
        if ctx.traceparent:
            headers["traceparent"] = ctx.traceparent
        await _publish(url, subject, resolved.payload or b"", headers, options, ctx, shown, hidden)
        return base.TriggerResult(resolved.trigger, resolved.kind, f"published to {shown}")


async def _publish(
    url: str,
    subject: str,
    payload: bytes,
    headers: dict[str, str],
    options: dict[str, Any],
    ctx: base.TriggerContext,
    shown: str,
    hidden: list[str],
) -> None:
    import nats
    import nats.errors

    timeout = ctx.settings.nats.connect_timeout

    async def quiet(_: Exception) -> None:  # errors surface as exceptions below, not as log noise
        return None

    try:
        # max_reconnect_attempts=1: nats-py treats 0 as "forever" and would hang on a dead server.
        connection = await asyncio.wait_for(
            nats.connect(
                servers=[u.strip() for u in url.split(",")],
                connect_timeout=max(1, round(timeout)),
                max_reconnect_attempts=1,
                reconnect_time_wait=0,
                error_cb=quiet,
                **options,
            ),
            timeout + 1,
        )
    except (OSError, TimeoutError, nats.errors.Error) as exc:
        reason = base.scrub(str(exc) or exc.__class__.__name__, hidden)
        raise errors.TriggerRetryableError(f"{shown}: could not connect: {reason}") from None
    try:
        await connection.publish(subject, payload, headers=headers)
        await connection.flush(timeout=max(1, round(ctx.settings.nats.request_timeout)))
    except (OSError, TimeoutError, nats.errors.Error) as exc:
        reason = base.scrub(str(exc) or exc.__class__.__name__, hidden)
        raise errors.TriggerRetryableError(f"{shown}: publish failed: {reason}") from None
    finally:
        await connection.close()


def _check(nats: models.NATSTrigger, ctx: base.CheckContext) -> Iterator[tuple[str, str]]:
    if nats.payload is None:
        yield f"{ctx.path}.payload", "a nats trigger needs a `payload` list"
    yield from sensor_rules.check_parameters(nats.parameters, f"{ctx.path}.parameters", ctx.dependencies)
    yield from sensor_rules.check_parameters(nats.payload, f"{ctx.path}.payload", ctx.dependencies)


TRIGGER = base.TriggerKind(
    key="nats",
    model=models.NATSTrigger,
    executor=NatsTrigger(),
    summary="publishes the payload built from the events to a NATS subject",
    check=_check,
)
