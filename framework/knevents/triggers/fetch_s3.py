"""Read a k8s / argoWorkflow resource from an S3-compatible store (Argo's ``source.s3``, an S3Artifact).

Argo's sensor reads ``bucket.key`` from ``bucket.name`` with the minio-go client:
``endpoint`` is ``host[:port]`` without a scheme, ``insecure: true`` means plain
HTTP, ``region`` is passed on when set, the access/secret keys come from Secrets,
and at most 1,224 KiB of the object is read (:mod:`.fetch_http` bounds the GET). This module makes the same GetObject
call as one path-style GET signed with SigV4 (:mod:`knevents.sigv4`) over httpx,
which costs no boto3 import on a function's first firing. Differences from Argo:

* without ``region`` the request is signed for ``us-east-1`` (minio-go asks the
  bucket's location first); set ``region`` for an AWS bucket elsewhere;
* ``caCertificate`` (ignored by Argo's reader) is honoured: the PEM in that Secret key is
  the CA the endpoint's certificate must chain to;
* with neither ``accessKey`` nor ``secretKey`` the request is anonymous (a public
  bucket); Argo refuses it. Setting only one of them is refused by :func:`check`;
* an object larger than the limit is refused by name instead of being cut short;
* a key with a ``.`` or ``..`` path segment (or a bucket name with ``/``) is refused: the
  URL would be resolved to another object (minio-go sends such a path as it is).

Errors never carry the secret key: it only enters the signature.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from knevents import errors, sigv4
from knevents.triggers import base, fetch_http

__all__ = ["check", "describe", "read"]


_CODE = re.compile(rb"<Code>([A-Za-z0-9.]{1,64})</Code>")
_ENDPOINT = re.compile(r"(?:[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
"""``host[:port]`` (a name, an IPv4 or a bracketed IPv6 address), as minio-go accepts an endpoint."""


def describe(spec: Any) -> str:
    """``source.s3 <endpoint>/<bucket>/<key>`` for errors (no credentials in it)."""
    bucket = spec.bucket.name if spec.bucket is not None else ""
    key = spec.bucket.key if spec.bucket is not None else ""
    return f"source.s3 {spec.endpoint}/{bucket}/{key}"


def check(spec: Any, path: str) -> Iterator[tuple[str, str]]:
    """What makes ``spec`` (an S3Artifact) unreadable; validate reports it, :func:`read`'s caller refuses it."""
    endpoint = spec.endpoint or ""
    if not endpoint:
        yield f"{path}.endpoint", "source.s3 needs an `endpoint` (host[:port], e.g. s3.amazonaws.com)"
    elif not _ENDPOINT.fullmatch(endpoint):  # a user:password@, ?query or #fragment would change the URL
        yield (
            f"{path}.endpoint",
            "the endpoint is host[:port] without a scheme or path (as in Argo); `insecure: true` selects http",
        )
    name = spec.bucket.name if spec.bucket is not None else None
    key = spec.bucket.key if spec.bucket is not None else None
    if not name:
        yield f"{path}.bucket.name", "source.s3 needs `bucket.name`"
    elif "/" in name or name in (".", ".."):
        yield f"{path}.bucket.name", "a bucket name has no `/` and is not `.` or `..`"
    if not key:
        yield f"{path}.bucket.key", "source.s3 needs `bucket.key` (the object holding the resource)"
    elif any(part in (".", "..") for part in key.split("/")):  # the HTTP client would resolve them away
        yield f"{path}.bucket.key", "a key with a `.` or `..` path segment cannot be read (it would name another object)"
    if (spec.access_key is None) != (spec.secret_key is None):
        yield path, "set both `accessKey` and `secretKey`, or neither (anonymous read of a public bucket)"


def _verify(spec: Any, ctx: base.TriggerContext) -> Any:
    """httpx's ``verify``: the default trust store, or an SSL context trusting ``caCertificate``."""
    if spec.insecure or spec.ca_certificate is None:
        return True
    import ssl

    pem = ctx.secrets.secret(spec.ca_certificate)
    try:
        return ssl.create_default_context(cadata=pem)
    except (ssl.SSLError, ValueError):
        raise errors.TriggerError(f"{describe(spec)}: caCertificate is not a PEM certificate") from None


def _request(spec: Any, ctx: base.TriggerContext) -> tuple[str, dict[str, str]]:
    """The URL and headers of the GetObject call (path style, signed when keys are set)."""
    path = f"/{spec.bucket.name}/{spec.bucket.key}"
    # encoded once, with the safe set sign_get uses for the canonical URI, so both name the same object
    url = f"{'http' if spec.insecure else 'https'}://{spec.endpoint}{quote(path, safe='/-_.~')}"
    if spec.access_key is None:
        return url, {}
    access = ctx.secrets.secret(spec.access_key)
    secret = ctx.secrets.secret(spec.secret_key)
    headers = sigv4.sign_get(spec.endpoint, path, [], access, secret, region=spec.region or "us-east-1")
    return url, headers


async def read(spec: Any, ctx: base.TriggerContext) -> str:
    """The object's text; TriggerRetryableError when the store is unreachable or failing, else TriggerError."""
    where = describe(spec)
    url, headers = _request(spec, ctx)
    status, body = await fetch_http.get(url, headers, _verify(spec, ctx), ctx.settings.http.timeout, where)
    if status >= 500 or status in (408, 429):
        raise errors.TriggerRetryableError(f"{where} answered {status}{_code(body)}")
    if status >= 300:
        raise errors.TriggerError(f"{where} answered {status}{_code(body)}")
    try:
        return body.decode()
    except UnicodeDecodeError:
        raise errors.TriggerError(f"{where}: the object is not UTF-8 text") from None


def _code(body: bytes) -> str:
    """`` (NoSuchKey)``: the S3 error code of an error answer, when it has one."""
    found = _CODE.search(body[:4096])
    return f" ({found.group(1).decode()})" if found else ""
