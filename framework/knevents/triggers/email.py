"""The ``email`` trigger: send the templated mail over SMTP, one message per recipient, as Argo does.

Argo (v1.9) sends through argoproj/notifications-engine (gomail): for each
address of ``to`` that looks like an address (Argo's own pattern), one
message ``From: from``, ``To: <address>``, ``Subject: subject`` with ``body``
as ``text/plain``, over ``host:port`` — implicit TLS on port 465, otherwise
STARTTLS when the server offers it, and ``AUTH`` with ``username`` and the
``smtpPassword`` Secret when a username is set and the server offers AUTH.
``subject``, ``body`` and ``to`` are required; parameters (trigger- or
``email.parameters``) are applied by the engine before this runs.

Outcome: an invalid address fails the trigger after the other recipients were
sent to (Argo joins the errors the same way); an unreachable server, a 4xx
SMTP answer or a timeout is retryable; a 5xx answer is permanent. The password
never appears in an error. ``smtplib`` blocks, so a send runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import re
import smtplib
import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

from knevents import errors
from knevents.spec import models, sensor_rules
from knevents.triggers import base

if TYPE_CHECKING:
    from knevents.sensors import engine

__all__ = ["TRIGGER", "EmailTrigger", "message"]

_VALID = re.compile(r"^[\w\-.]+@([\w-]+\.)+[\w-]{2,4}$")
_TIMEOUT = 30.0


def message(sender: str, to: str, subject: str, body: str) -> EmailMessage:
    """The message for one recipient."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(body)
    return msg


def _connect(host: str, port: int) -> smtplib.SMTP:
    context = ssl.create_default_context()
    if port == 465:
        return smtplib.SMTP_SSL(host, port, timeout=_TIMEOUT, context=context)
    client = smtplib.SMTP(host, port, timeout=_TIMEOUT)
    client.ehlo()
    if client.has_extn("starttls"):
        client.starttls(context=context)
        client.ehlo()
    return client


def _send(spec: Any, password: str | None, messages: list[EmailMessage]) -> None:
    host, port = spec.host or "localhost", int(spec.port or 25)
    try:
        with _connect(host, port) as client:
            if spec.username and client.has_extn("auth"):
                client.login(spec.username, password or "")
            for msg in messages:
                client.send_message(msg)
    except smtplib.SMTPResponseException as exc:
        text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        detail = base.scrub(f"SMTP server {host}:{port} answered {exc.smtp_code} {text}", [password])
        if 400 <= exc.smtp_code < 500:
            raise errors.TriggerRetryableError(detail) from None
        raise errors.TriggerError(detail) from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise errors.TriggerError(f"SMTP server {host}:{port} refused {', '.join(exc.recipients)}") from None
    except ssl.SSLError as exc:
        raise errors.TriggerError(f"TLS with SMTP server {host}:{port} failed: {exc.reason}") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise errors.TriggerRetryableError(
            base.scrub(f"cannot send through SMTP server {host}:{port}: {exc.__class__.__name__}: {exc}", [password])
        ) from None


class EmailTrigger:
    """Sends ``template.email`` to each address of ``to``."""

    async def execute(self, resolved: engine.Resolved, ctx: base.TriggerContext) -> base.TriggerResult:
        spec = resolved.spec.template.email
        if spec is None:
            raise errors.TriggerError("the trigger has no template.email section")
        if not spec.to:
            raise errors.TriggerError("to can't be empty")
        if not spec.body:
            raise errors.TriggerError("body can't be empty")
        if not spec.subject:
            raise errors.TriggerError("subject can't be empty")
        valid = [addr for addr in spec.to if _VALID.match(addr)]
        invalid = [addr for addr in spec.to if not _VALID.match(addr)]
        if ctx.dry_run:
            return base.TriggerResult(resolved.trigger, resolved.kind,
                                      f"dry run: would mail {', '.join(valid)} via {spec.host}:{spec.port}")
        password = ctx.secrets.secret(spec.smtp_password) if spec.smtp_password is not None else None
        messages = [message(spec.from_ or "", addr, spec.subject, spec.body) for addr in valid]
        if messages:
            await asyncio.to_thread(_send, spec, password, messages)
        if invalid:
            raise errors.TriggerError(
                f"to emailId can't be invalid {', '.join(invalid)}"
                + (f" (sent to {', '.join(valid)})" if valid else "")
            )
        return base.TriggerResult(resolved.trigger, resolved.kind,
                                  f"mailed {', '.join(valid)} via {spec.host}:{spec.port}")


def _check(mail: models.EmailTrigger, ctx: base.CheckContext) -> Iterator[tuple[str, str]]:
    yield from sensor_rules.check_parameters(mail.parameters, f"{ctx.path}.parameters", ctx.dependencies)


TRIGGER = base.TriggerKind(
    key="email",
    model=models.EmailTrigger,
    executor=EmailTrigger(),
    summary="sends the templated mail over SMTP, one message per recipient",
    check=_check,
)
