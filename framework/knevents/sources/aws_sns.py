"""SNS HTTP(S) deliveries: parse the envelope, verify its signature, confirm subscriptions.

Shared by the ``sns`` source and the ``s3`` source in SNS-push mode. It follows
the AWS specification ("Verifying the signatures of Amazon SNS messages"),
not Argo Events' implementation, which only checks SHA1 (SignatureVersion 1)
and so rejects every SignatureVersion 2 message, and fetches the certificate
on every request:

* SignatureVersion ``1`` is SHA1withRSA, ``2`` is SHA256withRSA; anything else
  is rejected.
* The string to sign is ``"<Key>\\n<value>\\n"`` for, in this order,
  Message, MessageId, Subject (only when present), Timestamp, TopicArn, Type for
  a ``Notification``, and Message, MessageId, SubscribeURL, Timestamp, Token,
  TopicArn, Type for ``SubscriptionConfirmation`` / ``UnsubscribeConfirmation``.
* ``SigningCertURL`` must be ``https`` on ``sns.<region>.amazonaws.com`` (or
  ``.amazonaws.com.cn``); otherwise the message is rejected before anything is
  fetched (the region part must look like a region: ``sns.s3.amazonaws.com`` is
  refused). The certificate is fetched once per URL and kept in a small LRU cache;
  it must be within its validity dates at every use.
* The message ``Timestamp`` must be within an hour of now (a captured message
  cannot be replayed later).

A ``SubscribeURL`` is fetched (that is how a subscription is confirmed) only
after the signature check when it is enabled, and only when it is ``https`` on
an SNS host or on the very origin the source's ``endpoint`` override names (a
local SNS such as moto): the URL comes from the request body, so anything else
would let a caller make us GET arbitrary internal URLs (SSRF).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import json
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from knevents import errors

__all__ = [
    "CertFetcher",
    "HttpCertFetcher",
    "SnsMessage",
    "SnsRejected",
    "check_cert_url",
    "check_subscribe_url",
    "confirm_subscription",
    "parse",
    "string_to_sign",
    "verify",
]

log = logging.getLogger(__name__)

NOTIFICATION = "Notification"
SUBSCRIPTION_CONFIRMATION = "SubscriptionConfirmation"
UNSUBSCRIBE_CONFIRMATION = "UnsubscribeConfirmation"
_TYPES = (NOTIFICATION, SUBSCRIPTION_CONFIRMATION, UNSUBSCRIBE_CONFIRMATION)

_SNS_HOST = re.compile(r"^sns\.[a-z]{2}(?:-[a-z]+)+-\d{1,2}\.amazonaws\.com(?:\.cn)?$")
"""``sns.<region>.amazonaws.com[.cn]`` where region is AWS-shaped (``us-east-1``, ``us-gov-west-1``, ``cn-north-1``)."""
_CERT_CACHE_SIZE = 32
"""Certificates kept; SNS signs with a handful per region, so a bound keeps a flood of URLs from growing memory."""
_MAX_CLOCK_SKEW = dt.timedelta(hours=1)
"""How far a message ``Timestamp`` may be from now: replays of captured messages are refused after that."""
_MAX_CERT_BYTES = 64 * 1024
_NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_CONFIRMATION_KEYS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")


class SnsRejected(errors.EventError):
    """An SNS delivery is malformed or fails verification; ``status`` is the HTTP answer to give."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class SnsMessage:
    """One SNS delivery (the JSON envelope SNS posts), with the fields knevents reads."""

    type: str
    message_id: str
    topic_arn: str
    message: str
    timestamp: str
    fields: Mapping[str, Any]
    """Every field as sent (Subject, Token, SubscribeURL, Signature …)."""

    def get(self, key: str) -> str | None:
        """A string field of the envelope, ``None`` when absent."""
        value = self.fields.get(key)
        return value if isinstance(value, str) else None


def parse(body: bytes) -> SnsMessage:
    """Parse an SNS delivery body; :class:`SnsRejected` (400) says what is wrong."""
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SnsRejected("not an SNS message: the body is not JSON") from exc
    if not isinstance(obj, dict):
        raise SnsRejected("not an SNS message: the body is not a JSON object")
    kind = obj.get("Type")
    if kind not in _TYPES:
        raise SnsRejected(f"not an SNS message: Type is {kind!r}, expected one of {', '.join(_TYPES)}")
    missing = [
        k for k in ("MessageId", "TopicArn", "Message", "Timestamp") if not isinstance(obj.get(k), str)
    ]
    if missing:
        raise SnsRejected(f"SNS {kind} lacks field(s): {', '.join(missing)}")
    return SnsMessage(
        type=str(kind),
        message_id=obj["MessageId"],
        topic_arn=obj["TopicArn"],
        message=obj["Message"],
        timestamp=obj["Timestamp"],
        fields=obj,
    )


def string_to_sign(msg: SnsMessage) -> bytes:
    """The canonical string AWS signs for this message type."""
    keys = _NOTIFICATION_KEYS if msg.type == NOTIFICATION else _CONFIRMATION_KEYS
    parts: list[str] = []
    for key in keys:
        value = msg.get(key)
        if value is None:
            if key == "Subject":
                continue
            raise SnsRejected(f"SNS {msg.type} lacks {key}, which its signature covers")
        parts.append(f"{key}\n{value}\n")
    return "".join(parts).encode()


def check_cert_url(url: str | None) -> str:
    """Reject a SigningCertURL that is not https on an SNS host; returns the URL."""
    if not url:
        raise SnsRejected("SNS message has no SigningCertURL", 403)
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or not _SNS_HOST.match(host) or parts.username or parts.password:
        raise SnsRejected(
            f"SigningCertURL {url!r} is not https on sns.<region>.amazonaws.com; not fetched", 403
        )
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port not in (None, 443):
        raise SnsRejected(f"SigningCertURL {url!r} uses a non-standard port; not fetched", 403)
    return url


CertFetch = Callable[[str], Awaitable[bytes]]
"""Fetch the PEM bytes at a URL (already checked by :func:`check_cert_url`)."""


class CertFetcher:
    """Fetches and caches SNS signing certificates; give it another ``fetch`` to serve test certificates."""

    def __init__(self, fetch: CertFetch) -> None:
        self._fetch = fetch
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._lock = asyncio.Lock()
        self.fetches = 0
        """How many times a certificate was actually fetched (the rest came from the cache)."""

    async def public_key(self, url: str) -> Any:
        """The public key of the certificate at ``url`` (fetched once, then cached), if valid now."""
        cert = self._cache.get(url)
        if cert is None:
            async with self._lock:
                cert = self._cache.get(url)
                if cert is None:
                    self.fetches += 1
                    cert = _load_cert(await self._fetch(url), url)
                    self._cache[url] = cert
                    while len(self._cache) > _CERT_CACHE_SIZE:
                        self._cache.popitem(last=False)
        self._cache.move_to_end(url)
        now = dt.datetime.now(dt.UTC)
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise SnsRejected(f"signing certificate at {url} is not valid now (valid "
                              f"{cert.not_valid_before_utc:%Y-%m-%d} to {cert.not_valid_after_utc:%Y-%m-%d})", 403)
        return cert.public_key()


def _check_timestamp(msg: SnsMessage) -> None:
    try:
        sent = dt.datetime.fromisoformat(msg.timestamp.replace("Z", "+00:00"))
    except ValueError:
        raise SnsRejected(f"SNS Timestamp {msg.timestamp[:40]!r} is not an ISO 8601 time", 400) from None
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=dt.UTC)
    if abs(dt.datetime.now(dt.UTC) - sent) > _MAX_CLOCK_SKEW:
        raise SnsRejected(f"SNS message {msg.message_id}: Timestamp {msg.timestamp} is more than an hour "
                          "from now (replayed or clock skew)", 403)


def _load_cert(pem: bytes, url: str) -> Any:
    from cryptography import x509

    if len(pem) > _MAX_CERT_BYTES:
        raise SnsRejected(f"signing certificate at {url} is larger than {_MAX_CERT_BYTES} bytes", 403)
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise SnsRejected(f"signing certificate at {url} is not a PEM X.509 certificate", 403) from exc
    return cert


class HttpCertFetcher(CertFetcher):
    """The production fetcher: HTTPS GET with certificate verification, no redirects."""

    def __init__(self, timeout: float = 5.0) -> None:
        super().__init__(self._get)
        self._timeout = timeout

    async def _get(self, url: str) -> bytes:
        import httpx

        try:
            async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=False) as http:
                answer = await http.get(url)
        except httpx.HTTPError as exc:
            raise errors.TemporaryError(f"could not fetch the SNS signing certificate {url}: {exc}") from exc
        if answer.status_code != 200:
            raise errors.TemporaryError(
                f"could not fetch the SNS signing certificate {url}: HTTP {answer.status_code}"
            )
        return answer.content


_default_fetcher: CertFetcher | None = None


def default_fetcher() -> CertFetcher:
    """The process-wide fetcher, so the certificate cache is shared by every source."""
    global _default_fetcher
    if _default_fetcher is None:
        _default_fetcher = HttpCertFetcher()
    return _default_fetcher


async def verify(msg: SnsMessage, fetcher: CertFetcher) -> None:
    """Verify the message signature by the AWS spec; :class:`SnsRejected` (403) when it fails."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    version = msg.get("SignatureVersion")
    algorithms: dict[str, Any] = {"1": hashes.SHA1(), "2": hashes.SHA256()}
    if version not in algorithms:
        raise SnsRejected(f"unsupported SNS SignatureVersion {version!r} (expected 1 or 2)", 403)
    url = check_cert_url(msg.get("SigningCertURL"))
    _check_timestamp(msg)
    try:
        signature = base64.b64decode(msg.get("Signature") or "", validate=True)
    except (ValueError, binascii.Error) as exc:
        raise SnsRejected("SNS Signature is not base64", 403) from exc
    if not signature:
        raise SnsRejected("SNS message has no Signature", 403)
    payload = string_to_sign(msg)
    key = await fetcher.public_key(url)
    if not isinstance(key, rsa.RSAPublicKey):
        raise SnsRejected(f"signing certificate at {url} does not hold an RSA key", 403)
    try:
        key.verify(signature, payload, padding.PKCS1v15(), algorithms[str(version)])
    except InvalidSignature:
        raise SnsRejected(f"SNS message {msg.message_id}: signature does not match", 403) from None


def check_subscribe_url(url: str | None, allowed_origin: tuple[str, str, int] | None) -> str:
    """Allow only an https SNS host, or exactly the configured endpoint's origin (a local SNS)."""
    if not url:
        raise SnsRejected("SubscriptionConfirmation has no SubscribeURL")
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise SnsRejected(f"SubscribeURL {url!r} has an invalid port; not fetched", 403) from None
    if parts.username or parts.password:
        raise SnsRejected("SubscribeURL carries credentials; not fetched", 403)
    if parts.scheme == "https" and _SNS_HOST.match(host) and port == 443:
        return url
    if allowed_origin is not None and (parts.scheme.lower(), host, port) == allowed_origin:
        return url
    raise SnsRejected(
        f"SubscribeURL host {host!r} is neither an AWS SNS endpoint (https) nor this source's endpoint; "
        "not fetched",
        403,
    )


async def confirm_subscription(url: str, *, timeout: float = 10.0) -> None:
    """GET the SubscribeURL (already checked); TemporaryError when SNS did not accept it."""
    import httpx

    try:
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as http:
            answer = await http.get(url)
    except httpx.HTTPError as exc:
        raise errors.TemporaryError(f"confirming the SNS subscription failed: {type(exc).__name__}") from exc
    if not 200 <= answer.status_code < 300:
        raise errors.TemporaryError(f"confirming the SNS subscription failed: HTTP {answer.status_code}")


@dataclass(frozen=True)
class Endpoint:
    """What a source checks on every SNS delivery it receives."""

    topic_arn: str | None = None
    """When set, messages from any other topic are rejected."""
    validate_signature: bool = False
    allowed_origin: tuple[str, str, int] | None = None
    """The ``endpoint`` override's origin: a SubscribeURL there may be plain http (a local SNS)."""
    max_payload: int = 1024 * 1024
    """Bytes; Argo's webhook default."""


async def receive(body: bytes, endpoint: Endpoint, fetcher: CertFetcher | None = None) -> SnsMessage | None:
    """Check one delivery; a Notification comes back, a confirmation is handled here (``None``).

    Raises :class:`SnsRejected` with the status to answer, or TemporaryError
    when the certificate or the SubscribeURL could not be reached (answer 5xx:
    SNS retries).
    """
    if len(body) > endpoint.max_payload:
        raise SnsRejected(f"request body is larger than {endpoint.max_payload} bytes", 413)
    msg = parse(body)
    if endpoint.topic_arn and msg.topic_arn != endpoint.topic_arn:
        raise SnsRejected(
            f"message from topic {msg.topic_arn!r}, this source expects {endpoint.topic_arn!r}", 403
        )
    if endpoint.validate_signature:
        await verify(msg, fetcher or default_fetcher())
    if msg.type == SUBSCRIPTION_CONFIRMATION:
        url = check_subscribe_url(msg.get("SubscribeURL"), endpoint.allowed_origin)
        await confirm_subscription(url)
        log.info("confirmed the SNS subscription to %s", msg.topic_arn)
        return None
    if msg.type == UNSUBSCRIBE_CONFIRMATION:
        log.info("SNS subscription to %s was removed", msg.topic_arn)
        return None
    return msg
