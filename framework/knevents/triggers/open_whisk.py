"""The ``openWhisk`` trigger: invoke an Apache OpenWhisk action through its REST API, as Argo does.

Argo uses openwhisk-client-go's ``Actions.Invoke(actionName, payload, blocking=true, result=true)``:
``POST <host>/api/<version>/namespaces/<namespace>/actions/<actionName>?blocking=true&result=true``
with HTTP basic auth built from the ``authToken`` Secret (``<uuid>:<key>``), ``version`` ``v1`` and
namespace ``_`` (the caller's own) unless set. A ``host`` without a scheme is reached over HTTPS, as the
Go client does. An action name of the form ``/ns/[pkg/]action`` names its own namespace.

Outcome: with ``policy.status.allow`` that list decides; otherwise 2xx is success (``202`` means the
blocking wait timed out and the activation runs on), 5xx, 408 and 429 are retryable, any other status
(401 wrong key, 404 no such action, 502 the action failed) is permanent.

Difference from Argo: the Go client JSON-encodes the payload's bytes, so Argo sends the action a base64
string instead of the payload object (OpenWhisk then refuses it); knevents sends the payload object
itself, as Argo's documentation describes, and ``{}`` when there is none. A host set by a parameter
from event data goes through the outbound guard (:mod:`knevents.triggers.outbound`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import quote

from knevents import errors
from knevents.spec import models, sensor_rules
from knevents.triggers import base, outbound, policy

if TYPE_CHECKING:
    from knevents.sensors import engine

__all__ = ["TRIGGER", "OpenWhiskTrigger", "invoke_url"]

_TIMEOUT = 65.0
"""Seconds: OpenWhisk holds a blocking invocation up to 60 s before answering 202."""


def invoke_url(spec: models.OpenWhiskTrigger) -> str:
    """The invocation URL of the action, as openwhisk-client-go builds it."""
    host = (spec.host or "").rstrip("/")
    if "://" not in host:
        host = f"https://{host}"
    namespace, name = spec.namespace or "_", spec.action_name or ""
    if name.startswith("/"):
        namespace, _, name = name[1:].partition("/")
    return (f"{host}/api/{spec.version or 'v1'}/namespaces/{quote(namespace, safe='')}/actions/"
            f"{quote(name, safe='/')}?blocking=true&result=true")


def _host_from_event(trigger: models.Trigger) -> bool:
    return any(str(p.dest or "").startswith("openWhisk.host") for p in trigger.parameters or [])


class OpenWhiskTrigger:
    """Invokes ``template.openWhisk.actionName`` and waits for its result."""

    async def execute(self, resolved: engine.Resolved, ctx: base.TriggerContext) -> base.TriggerResult:
        import httpx

        spec = resolved.spec.template.open_whisk
        if spec is None:
            raise errors.TriggerError("the trigger has no template.openWhisk section")
        if not spec.host or not spec.action_name:
            raise errors.TriggerError("openWhisk needs host and actionName")
        url = invoke_url(spec)
        shown = f"OpenWhisk action {spec.action_name} at {spec.host}"
        if ctx.dry_run:
            return base.TriggerResult(resolved.trigger, resolved.kind, f"dry run: would invoke {shown}")
        if _host_from_event(resolved.spec) and not ctx.settings.http.allow_internal_targets:
            await outbound.check(url, shown)
        token = ctx.secrets.secret(spec.auth_token) if spec.auth_token is not None else None
        auth = tuple(token.split(":", 1)) if token and ":" in token else None
        headers = {"Content-Type": "application/json", base.EVENT_IDS_HEADER: base.event_ids(resolved.events)}
        try:
            async with httpx.AsyncClient(timeout=_TIMEOUT) as client:
                response = await client.post(url, content=resolved.payload or b"{}", headers=headers,
                                             auth=auth)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            raise errors.TriggerRetryableError(
                base.scrub(f"invoking {shown}: {exc.__class__.__name__}", [token])) from None
        policy.check_status(response.status_code, resolved.spec.policy, f"invoking {shown}")
        return base.TriggerResult(resolved.trigger, resolved.kind, f"invoked {shown} -> {response.status_code}",
                                  status=response.status_code)


def _check(spec: models.OpenWhiskTrigger, ctx: base.CheckContext) -> Iterator[tuple[str, str]]:
    if not spec.host:
        yield f"{ctx.path}.host", "host of the OpenWhisk API is required"
    if not spec.action_name:
        yield f"{ctx.path}.actionName", "action name is required"
    yield from sensor_rules.check_parameters(spec.parameters, f"{ctx.path}.parameters", ctx.dependencies)
    yield from sensor_rules.check_parameters(spec.payload, f"{ctx.path}.payload", ctx.dependencies)
    yield from policy.check_status_policy(ctx.trigger, ctx.path)


TRIGGER = base.TriggerKind(
    key="openWhisk",
    model=models.OpenWhiskTrigger,
    executor=OpenWhiskTrigger(),
    summary="invokes an Apache OpenWhisk action (blocking, result) through its REST API",
    check=_check,
)
