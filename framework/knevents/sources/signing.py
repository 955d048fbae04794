"""Request signatures of the webhook providers, each checked as its provider documents it.

Every check here is a pure function of the header value, the raw body, the
shared secret and (where the provider stamps one) the current time. Each
returns ``None`` when the request is authentic, or a short reason otherwise;
the reason names what was wrong, never the secret or the expected value.

The algorithm always comes from *which* header (and which provider) the
signature arrived in, never from the value: a ``sha1=`` value in GitHub's
``X-Hub-Signature-256`` is refused, so a forger cannot pick a weaker digest.

* ``hex_hmac`` — ``<prefix><hex HMAC of the body>``: GitHub (``sha256=`` in
  ``X-Hub-Signature-256``, ``sha1=`` in ``X-Hub-Signature``), Bitbucket Server
  and Bitbucket Cloud (``sha256=`` in ``X-Hub-Signature``).
* ``slack_v0`` — ``X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:{ts}:{body}">``
  with ``X-Slack-Request-Timestamp`` at most five minutes from now.
* ``stripe_v1`` — ``Stripe-Signature: t=<ts>,v1=<hex HMAC-SHA256 of "{t}.{body}">``
  (several ``v1`` entries allowed while a secret rolls), five minutes' tolerance.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any

__all__ = ["TOLERANCE", "hex_hmac", "slack_v0", "stripe_v1"]

TOLERANCE = 300.0
"""Seconds a signed timestamp may differ from now (Slack's and Stripe's documented five minutes)."""

Digest = Callable[..., Any]


def _hex(secret: str, message: bytes, digest: Digest) -> str:
    return hmac.new(secret.encode(), message, digest).hexdigest()


def _same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.strip().lower().encode("ascii", "replace"))


def hex_hmac(value: str | None, body: bytes, secret: str, *, prefix: str = "sha256=",
             digest: Digest = hashlib.sha256) -> str | None:
    """``value`` must be ``prefix`` + the hex HMAC of ``body``; ``None`` when it is."""
    if not value:
        return "missing signature"
    if not value.startswith(prefix):
        return f"signature does not start with {prefix!r}"
    if not _same(_hex(secret, body, digest), value[len(prefix):]):
        return "signature mismatch"
    return None


def _fresh(stamp: str, now: float | None, tolerance: float) -> str | None:
    try:
        when = int(stamp)
    except ValueError:
        return "timestamp is not a number"
    current = time.time() if now is None else now
    if abs(current - when) > tolerance:
        return "timestamp is outside the tolerance (stale or replayed request)"
    return None


def slack_v0(signature: str | None, timestamp: str | None, body: bytes, secret: str, *,
             now: float | None = None, tolerance: float = TOLERANCE) -> str | None:
    """Slack's v0 request signature; ``None`` when authentic."""
    if not signature or not timestamp:
        return "missing X-Slack-Signature or X-Slack-Request-Timestamp"
    stale = _fresh(timestamp.strip(), now, tolerance)
    if stale is not None:
        return stale
    if not signature.startswith("v0="):
        return "signature version is not v0"
    base = b"v0:" + timestamp.strip().encode() + b":" + body
    return None if _same(_hex(secret, base, hashlib.sha256), signature[3:]) else "signature mismatch"


def stripe_v1(header: str | None, body: bytes, secret: str, *, now: float | None = None,
              tolerance: float = TOLERANCE) -> str | None:
    """Stripe's ``Stripe-Signature`` header (scheme ``v1`` only); ``None`` when authentic."""
    if not header:
        return "missing Stripe-Signature"
    stamp = ""
    given: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            stamp = value
        elif name == "v1":
            given.append(value)
    if not stamp or not given:
        return "Stripe-Signature has no timestamp or no v1 signature"
    stale = _fresh(stamp, now, tolerance)
    if stale is not None:
        return stale
    expected = _hex(secret, stamp.encode() + b"." + body, hashlib.sha256)
    return None if any(_same(expected, g) for g in given) else "signature mismatch"
