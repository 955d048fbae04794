"""The ``awsLambda`` trigger: invoke a Lambda function with the firing's payload.

As Argo: ``functionName``, ``region``, ``invocationType`` (RequestResponse by
default, Event, DryRun), credentials from ``accessKey``/``secretKey`` Secrets
or the default AWS chain (IRSA, env, profile), optional ``roleARN`` assumed
through STS. The answer's status goes through ``policy.status`` like an HTTP
status. boto3 is imported on first use and clients are cached per
(region, credentials); calls run in a worker thread because boto3 blocks.
``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_LAMBDA`` point it elsewhere (tests use moto_server).

A function error (the function ran and raised) is permanent: the event was
delivered; Lambda's own retry settings govern re-running it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from knevents import errors
from knevents.spec import models, sensor_rules
from knevents.triggers import base, policy

if TYPE_CHECKING:
    from knevents.sensors import engine

__all__ = ["TRIGGER", "AwsLambdaTrigger"]

_INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")
_RETRYABLE_CODES = frozenset(
    {
        "TooManyRequestsException",
        "ServiceException",
        "ResourceNotReadyException",
        "EC2ThrottledException",
        "ThrottlingException",
        "RequestLimitExceeded",
    }
)
_CLIENTS: dict[tuple[str, ...], Any] = {}
_LOCK = threading.Lock()


def _client(region: str, access: str | None, secret: str | None, role_arn: str | None) -> Any:
    endpoint = os.environ.get("AWS_ENDPOINT_URL_LAMBDA") or os.environ.get("AWS_ENDPOINT_URL") or ""
    key = (
        region,
        access or "",
        hashlib.sha256((secret or "").encode()).hexdigest(),
        role_arn or "",
        endpoint,
    )
    with _LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            import boto3
            from botocore.config import Config

            session = boto3.session.Session(
                aws_access_key_id=access, aws_secret_access_key=secret, region_name=region
            )
            if role_arn:
                credentials = session.client("sts").assume_role(
                    RoleArn=role_arn, RoleSessionName="knevents-trigger"
                )["Credentials"]
                session = boto3.session.Session(
                    aws_access_key_id=credentials["AccessKeyId"],
                    aws_secret_access_key=credentials["SecretAccessKey"],
                    aws_session_token=credentials["SessionToken"],
                    region_name=region,
                )
            # Few SDK retries: fire()'s retryStrategy and the broker's redelivery do the retrying.
            config = Config(
                retries={"mode": "standard", "max_attempts": 2}, connect_timeout=5, read_timeout=300
            )
            client = _CLIENTS[key] = session.client("lambda", config=config)
        return client


def _invoke(spec: Any, ctx: base.TriggerContext, payload: bytes, invocation: str) -> dict[str, Any]:
    from botocore import exceptions as aws

    access = ctx.secrets.secret(spec.access_key) if getattr(spec, "access_key", None) else None
    secret = ctx.secrets.secret(spec.secret_key) if getattr(spec, "secret_key", None) else None
    name = spec.function_name
    try:
        client = _client(spec.region, access, secret, getattr(spec, "role_arn", None))
        response: dict[str, Any] = client.invoke(
            FunctionName=name, InvocationType=invocation, Payload=payload
        )
        return response
    except aws.ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "ClientError"))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        message = base.scrub(f"invoking Lambda {name} failed: {code}: {error.get('Message', '')}", [secret])
        if code in _RETRYABLE_CODES or status >= 500 or status == 429:
            raise errors.TriggerRetryableError(message) from None
        raise errors.TriggerError(message) from None
    except aws.NoCredentialsError:
        raise errors.TriggerError(
            f"invoking Lambda {name}: no AWS credentials (set accessKey/secretKey or the pod's AWS identity)"
        ) from None
    except (aws.EndpointConnectionError, aws.ConnectionError, aws.ReadTimeoutError) as exc:
        raise errors.TriggerRetryableError(f"invoking Lambda {name}: {exc.__class__.__name__}") from None
    except aws.BotoCoreError as exc:
        raise errors.TriggerError(f"invoking Lambda {name}: {base.scrub(str(exc), [secret])}") from None


class AwsLambdaTrigger:
    """Invokes ``template.awsLambda.functionName`` in ``region``."""

    async def execute(self, resolved: engine.Resolved, ctx: base.TriggerContext) -> base.TriggerResult:
        spec = resolved.spec.template.aws_lambda
        if spec is None:
            raise errors.TriggerError("the trigger has no template.awsLambda section")
        invocation = getattr(spec, "invocation_type", None) or "RequestResponse"
        if invocation not in _INVOCATION_TYPES:
            raise errors.TriggerError(
                f"awsLambda.invocationType {invocation!r} is not one of {', '.join(_INVOCATION_TYPES)}"
            )
        if not getattr(spec, "function_name", None) or not getattr(spec, "region", None):
            raise errors.TriggerError("awsLambda needs functionName and region")
        shown = f"Lambda {spec.function_name} ({spec.region}, {invocation})"
        if ctx.dry_run:
            return base.TriggerResult(resolved.trigger, resolved.kind, f"dry run: would invoke {shown}")
        response = await asyncio.to_thread(_invoke, spec, ctx, resolved.payload or b"", invocation)
        status = int(response.get("StatusCode", 0))
        policy.check_status(status, getattr(resolved.spec, "policy", None), f"invoking {shown}")
        if response.get("FunctionError"):
            raise errors.TriggerError(f"{shown} ran and failed: {response['FunctionError']}")
        return base.TriggerResult(
            resolved.trigger, resolved.kind, f"invoked {shown} -> {status}", status=status
        )


def _check(lam: models.AWSLambdaTrigger, ctx: base.CheckContext) -> Iterator[tuple[str, str]]:
    if not lam.region:
        yield f"{ctx.path}.region", "an awsLambda trigger needs a `region`"
    if lam.payload is None:
        yield f"{ctx.path}.payload", "an awsLambda trigger needs a `payload` list"
    yield from sensor_rules.check_parameters(lam.parameters, f"{ctx.path}.parameters", ctx.dependencies)
    yield from sensor_rules.check_parameters(lam.payload, f"{ctx.path}.payload", ctx.dependencies)
    yield from policy.check_status_policy(ctx.trigger, ctx.trigger_path)


TRIGGER = base.TriggerKind(
    key="awsLambda",
    model=models.AWSLambdaTrigger,
    executor=AwsLambdaTrigger(),
    summary="invokes an AWS Lambda function with the payload built from the events",
    check=_check,
)
