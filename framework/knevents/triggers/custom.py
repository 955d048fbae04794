"""The ``custom`` trigger: Argo's gRPC ``Trigger`` service, for a trigger server the user writes.

As Argo's custom trigger (v1.9), against ``serverURL``:

1. ``FetchResource{resource: <spec as YAML>}`` — the server answers the resource to trigger;
2. ``custom.parameters`` are applied to that resource, which must then be JSON;
3. ``Execute{resource, payload}`` — the payload is built from ``custom.payload``;
4. ``ApplyPolicy{request: resource}`` — its ``{success, message}`` is reported (Argo logs it and does not
   fail the trigger on ``success: false``; neither does knevents).

``secure: true`` dials TLS with the CA in ``certSecret`` (required then) and ``serverNameOverride``;
otherwise plaintext. UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED and ABORTED answers are
retryable, every other status permanent. Messages are encoded by :mod:`knevents.protowire`; ``grpc``
is imported on first use and channels are reused per (server, TLS settings).

Argo dials with ``WithBlock`` and a 5-step backoff at trigger creation; knevents dials on first use
with a 10 s deadline per call. The sensor engine applies a kind's ``parameters`` to its own object;
for ``custom`` Argo applies them to the fetched resource, so this executor re-applies them there.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import yaml

from knevents import errors, protowire
from knevents.sensors import params
from knevents.spec import models, sensor_rules
from knevents.triggers import base

if TYPE_CHECKING:
    from knevents.sensors import engine

__all__ = ["TRIGGER", "CustomTrigger"]

SERVICE = "/triggers.Trigger/"
_RETRYABLE = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED"})
_TIMEOUT = 10.0


def spec_yaml(spec: dict[str, str] | None) -> bytes:
    """The spec map as Argo sends it (ghodss/yaml: keys sorted, block style)."""
    return yaml.safe_dump(dict(spec or {}), sort_keys=True, default_flow_style=False).encode()


class CustomTrigger:
    """Calls the user's trigger server; one channel per server and TLS setting, per event loop."""

    def __init__(self) -> None:
        self._channels: dict[tuple[Any, ...], Any] = {}

    def _channel(self, spec: models.CustomTrigger, ctx: base.TriggerContext) -> Any:
        import grpc

        cert = ctx.secrets.secret(spec.cert_secret) if spec.secure and spec.cert_secret is not None else None
        key = (asyncio.get_running_loop(), spec.server_url, bool(spec.secure), cert, spec.server_name_override)
        channel = self._channels.get(key)
        if channel is None:
            if spec.secure:
                options = [("grpc.ssl_target_name_override", spec.server_name_override)] \
                    if spec.server_name_override else []
                credentials = grpc.ssl_channel_credentials(root_certificates=cert.encode() if cert else None)
                channel = grpc.aio.secure_channel(spec.server_url, credentials, options=options)
            else:
                channel = grpc.aio.insecure_channel(spec.server_url)
            self._channels[key] = channel
        return channel

    async def _call(self, channel: Any, method: str, request: dict[int, str | bytes | bool | None]) -> dict[int, Any]:
        import grpc

        call = channel.unary_unary(SERVICE + method, request_serializer=bytes, response_deserializer=bytes)
        try:
            answer = await call(protowire.encode(request), timeout=_TIMEOUT)
        except grpc.aio.AioRpcError as exc:
            message = f"{method} failed: {exc.code().name}: {exc.details()}"
            if exc.code().name in _RETRYABLE:
                raise errors.TriggerRetryableError(message) from None
            raise errors.TriggerError(message) from None
        try:
            return protowire.decode(answer)
        except protowire.ProtoError as exc:
            raise errors.TriggerError(f"{method}: the server's answer is not a {method} response: {exc}") from None

    def _parameterised(self, resource: bytes, spec: models.CustomTrigger, resolved: engine.Resolved) -> bytes:
        if not spec.parameters:
            return resource
        try:
            json.loads(resource)
        except ValueError as exc:
            raise errors.TriggerError(f"fetched resource body is not valid JSON: {exc}") from None
        try:
            compiled = params.compile_params(spec.parameters, "custom.parameters", sorted(resolved.events))
            return params.apply_params(resource, compiled, resolved.events)
        except (params.ParamError, params.ParamSpecError) as exc:
            raise errors.TriggerError(f"applying custom.parameters to the fetched resource: {exc}") from None

    async def execute(self, resolved: engine.Resolved, ctx: base.TriggerContext) -> base.TriggerResult:
        spec = resolved.spec.template.custom
        if spec is None:
            raise errors.TriggerError("the trigger has no template.custom section")
        if not spec.server_url:
            raise errors.TriggerError("custom.serverURL is required")
        if spec.secure and spec.cert_secret is None:
            raise errors.TriggerError("invalid config, CERT secret not defined")
        if ctx.dry_run:
            return base.TriggerResult(resolved.trigger, resolved.kind, f"dry run: would call {spec.server_url}")
        channel = self._channel(spec, ctx)
        fetched = await self._call(channel, "FetchResource", {1: spec_yaml(spec.spec)})
        resource = self._parameterised(bytes(fetched.get(1, b"")), spec, resolved)
        executed = await self._call(channel, "Execute", {1: resource, 2: resolved.payload or b""})
        policy = await self._call(channel, "ApplyPolicy", {1: resource})
        success = bool(policy.get(1, 0))
        message = bytes(policy.get(2, b"")).decode("utf-8", "replace")
        response = bytes(executed.get(1, b"")).decode("utf-8", "replace")
        return base.TriggerResult(
            resolved.trigger, resolved.kind,
            f"executed on {spec.server_url} ({len(response)} bytes answered); policy success={str(success).lower()}"
            + (f": {message}" if message else ""),
        )


def _check(custom: models.CustomTrigger, ctx: base.CheckContext) -> Iterator[tuple[str, str]]:
    if not custom.server_url:
        yield f"{ctx.path}.serverURL", "custom trigger needs `serverURL` (host:port of the trigger server)"
    if custom.secure and custom.cert_secret is None:
        yield f"{ctx.path}.certSecret", "invalid config, CERT secret not defined (needed with secure: true)"
    yield from sensor_rules.check_parameters(custom.parameters, f"{ctx.path}.parameters", ctx.dependencies)
    yield from sensor_rules.check_parameters(custom.payload, f"{ctx.path}.payload", ctx.dependencies)


TRIGGER = base.TriggerKind(
    key="custom",
    model=models.CustomTrigger,
    executor=CustomTrigger(),
    summary="calls the user's gRPC trigger server (FetchResource, Execute, ApplyPolicy), as Argo's custom trigger",
    check=_check,
    fetches_resource=True,
)
