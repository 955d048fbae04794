"""The boto3 adapter shared by the AWS sources (sqs, s3 via SQS, sns confirmation checks).

It exists so that credentials, endpoints and error translation are written
once: ``accessKey``/``secretKey``/``sessionToken`` secrets or the default
credential chain, ``roleARN`` through STS AssumeRole, an ``endpoint`` override
(moto, LocalStack, MinIO), and ``botocore`` exceptions turned into knevents'
Permanent/Temporary errors at this boundary. Nothing else imports boto3 or
botocore, and this module imports them lazily: a push source that never polls
must not pay boto3's ~0.3 s import on a cold start.

Blocking boto3 calls are run with :func:`call`, which moves them to a worker
thread (``asyncio.to_thread``) and translates their errors.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from knevents import errors
from knevents.secrets import KeySelector, SecretResolver

__all__ = [
    "AwsConfig",
    "call",
    "client",
    "endpoint_origin",
    "endpoint_url",
    "translate",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_REGION = "us-east-1"
"""Used when a spec names no region (S3 artifacts may omit it); it is the region AWS defaults to as well."""

_PERMANENT_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
        "InvalidParameterValue",
        "InvalidAddress",
        "NotFound",
        "NoSuchBucket",
        "AuthorizationError",
        "ValidationError",
    }
)
"""Error codes a retry cannot fix without someone changing the configuration."""


@dataclass(frozen=True)
class AwsConfig:
    """How to reach one AWS service: what the spec says, reduced to what boto3 needs."""

    region: str | None = None
    endpoint: str | None = None
    """``https://host:port`` or a bare ``host:port`` (then ``https``, or ``http`` when ``insecure``)."""
    access_key: KeySelector | None = None
    secret_key: KeySelector | None = None
    session_token: KeySelector | None = None
    role_arn: str | None = None
    insecure: bool = False
    session_name: str = "knevents"
    """``RoleSessionName`` for AssumeRole; shows up in CloudTrail."""


def endpoint_url(endpoint: str | None, *, insecure: bool = False) -> str | None:
    """The endpoint as a URL boto3 accepts; a bare ``host[:port]`` gets a scheme."""
    if not endpoint:
        return None
    text = endpoint.strip()
    if "://" not in text:
        text = ("http://" if insecure else "https://") + text
    return text.rstrip("/")


def endpoint_origin(endpoint: str | None, *, insecure: bool = False) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an endpoint override, to compare URLs against it."""
    url = endpoint_url(endpoint, insecure=insecure)
    if url is None:
        return None
    parts = urlsplit(url)
    if not parts.hostname:
        return None
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    return parts.scheme.lower(), parts.hostname.lower(), port


def _static_credentials(config: AwsConfig, secrets: SecretResolver) -> dict[str, str]:
    if config.access_key is None and config.secret_key is None:
        return {}
    if config.access_key is None or config.secret_key is None:
        raise errors.SecretError("AWS credentials need both accessKey and secretKey (or neither)")
    creds = {
        "aws_access_key_id": secrets.secret(config.access_key),
        "aws_secret_access_key": secrets.secret(config.secret_key),
    }
    if config.session_token is not None:
        creds["aws_session_token"] = secrets.secret(config.session_token)
    return creds


def _client_config(read_timeout: float) -> Any:
    from botocore.config import Config

    return Config(
        connect_timeout=5,
        read_timeout=read_timeout,
        retries={"mode": "standard", "max_attempts": 3},
    )


def _sts_endpoint(endpoint: str | None) -> str | None:
    # An override naming an AWS host is specific to one service (a VPC endpoint): STS keeps its default.
    # Anything else is a local stand-in (moto, LocalStack) that serves STS on the same endpoint.
    if endpoint is None:
        return None
    host = (urlsplit(endpoint).hostname or "").lower()
    return None if host.endswith((".amazonaws.com", ".amazonaws.com.cn")) else endpoint


def client(service: str, config: AwsConfig, secrets: SecretResolver, *, read_timeout: float = 30.0) -> Any:
    """A boto3 client for ``service``; blocking (call it through :func:`call` or a thread)."""
    import boto3.session

    region = config.region or DEFAULT_REGION
    endpoint = endpoint_url(config.endpoint, insecure=config.insecure)
    session = boto3.session.Session(region_name=region, **_static_credentials(config, secrets))
    if config.role_arn:
        sts = session.client("sts", endpoint_url=_sts_endpoint(endpoint), config=_client_config(30.0))
        try:
            answer = sts.assume_role(RoleArn=config.role_arn, RoleSessionName=config.session_name)
        except Exception as exc:
            raise translate(exc, f"assume role {config.role_arn}") from exc
        creds = answer["Credentials"]
        session = boto3.session.Session(
            region_name=region,
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )
    return session.client(service, endpoint_url=endpoint, config=_client_config(read_timeout))


def translate(exc: BaseException, what: str) -> errors.KneventsError:
    """A botocore/boto3 exception as a knevents error; ``what`` says which call failed."""
    if isinstance(exc, errors.KneventsError):
        return exc
    if isinstance(exc, ImportError) and (missing := errors.missing_extra(exc)) is not None:
        return missing  # boto3 is not installed: no retry can help
    import botocore.exceptions as bex

    if isinstance(exc, bex.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        message = str(error.get("Message", "")).strip()
        text = f"{what}: {code}" + (f": {message}" if message else "")
        if code in _PERMANENT_CODES:
            return errors.PermanentError(text)
        return errors.TemporaryError(text)
    if isinstance(exc, bex.NoCredentialsError | bex.PartialCredentialsError):
        return errors.SecretError(
            f"{what}: no AWS credentials (set accessKey/secretKey or the default chain)"
        )
    if isinstance(exc, bex.NoRegionError):
        return errors.PermanentError(f"{what}: no AWS region configured")
    if isinstance(exc, bex.ParamValidationError):
        return errors.PermanentError(f"{what}: {exc}")
    if isinstance(exc, bex.BotoCoreError | OSError):
        return errors.TemporaryError(f"{what}: {type(exc).__name__}: {exc}")
    return errors.TemporaryError(f"{what}: unexpected {type(exc).__name__}: {exc}")


async def call(what: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run a blocking boto3 call in a thread; its errors come back translated."""
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except Exception as exc:
        raise translate(exc, what) from exc


def message_event_id(source: str, event_name: str, message_id: str, index: int | None = None) -> str:
    """A deterministic CloudEvent id for an upstream message, so a redelivery carries the same id.

    The EventSource and event names are mixed in: two sources reading the same
    queue or topic must not make each other's events look like duplicates.
    """
    import hashlib

    text = f"{source}\x00{event_name}\x00{message_id}" + ("" if index is None else f"\x00{index}")
    return hashlib.sha256(text.encode()).hexdigest()[:32]
