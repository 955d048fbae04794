"""Verify the OIDC token Google attaches to authenticated Pub/Sub push requests.

A push subscription with authentication sends ``Authorization: Bearer <JWT>``,
an ID token signed by Google (RS256) whose ``iss`` is
``https://accounts.google.com`` (or ``accounts.google.com``), whose ``aud``
is the audience configured on the subscription, and whose ``email`` is the
push service account (``email_verified`` true). Anyone can reach a public
Knative URL, so this check is what makes a push endpoint trustworthy.

Google's signing keys (a JWKS document) are fetched through an injectable
:data:`JwksFetch` and cached for an hour; an unknown ``kid`` triggers at most
one refresh per minute (Google rotates keys, attackers invent ``kid`` values).
Tokens are never logged or echoed in errors.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from knevents import errors

__all__ = ["GOOGLE_CERTS_URL", "GoogleKeys", "TokenRejected", "verify"]

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v3/certs"
ISSUERS = frozenset({"https://accounts.google.com", "accounts.google.com"})
_CACHE_SECONDS = 3600.0
_REFRESH_MIN_INTERVAL = 60.0

JwksFetch = Callable[[], Awaitable[Mapping[str, Any]]]
"""Return Google's current JWKS document (``{"keys": [...]}``)."""


class TokenRejected(errors.EventError):
    """The push request's token is missing or invalid; ``status`` is 401 (missing) or 403 (invalid)."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


async def _fetch_google_certs() -> Mapping[str, Any]:
    import httpx

    try:
        async with httpx.AsyncClient(timeout=5.0, follow_redirects=False) as http:
            answer = await http.get(GOOGLE_CERTS_URL)
            answer.raise_for_status()
            document: Mapping[str, Any] = answer.json()
            return document
    except (httpx.HTTPError, ValueError) as exc:
        raise errors.TemporaryError(
            f"could not fetch Google's token signing keys: {type(exc).__name__}"
        ) from exc


class GoogleKeys:
    """Google's public signing keys by ``kid``, fetched lazily and cached."""

    def __init__(
        self, fetch: JwksFetch | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._fetch = fetch or _fetch_google_certs
        self._clock = clock
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0
        """How many times the JWKS document was fetched."""

    async def _refresh(self) -> None:
        import jwt

        document = await self._fetch()
        keys: dict[str, Any] = {}
        for jwk in document.get("keys", []):
            if not isinstance(jwk, Mapping) or jwk.get("kty") != "RSA" or not jwk.get("kid"):
                continue
            try:
                keys[str(jwk["kid"])] = jwt.PyJWK(dict(jwk), algorithm="RS256").key
            except jwt.PyJWTError:
                continue
        self.fetches += 1
        self._keys = keys
        self._fetched_at = self._clock()

    async def key(self, kid: str) -> Any:
        """The public key for ``kid``; TokenRejected when Google has no such key."""
        async with self._lock:
            now = self._clock()
            stale = self._fetched_at is None or now - self._fetched_at > _CACHE_SECONDS
            may_refresh = self._fetched_at is None or now - self._fetched_at > _REFRESH_MIN_INTERVAL
            if stale or (kid not in self._keys and may_refresh):
                await self._refresh()
            if kid not in self._keys:
                raise TokenRejected("push token is signed with an unknown key")
            return self._keys[kid]


def bearer(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer`` header; TokenRejected (401) when there is none."""
    if not authorization:
        raise TokenRejected("push request has no Authorization header", 401)
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenRejected("push request's Authorization header is not a Bearer token", 401)
    return token.strip()


async def verify(token: str, keys: GoogleKeys, *, audience: str, email: str | None) -> Mapping[str, Any]:
    """Check signature, expiry, issuer, audience and (when given) the service account email."""
    import jwt

    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise TokenRejected("push token is not a JWT") from None
    if header.get("alg") != "RS256" or not header.get("kid"):
        raise TokenRejected("push token is not an RS256 token with a key id")
    key = await keys.key(str(header["kid"]))
    try:
        claims: Mapping[str, Any] = jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            audience=audience,
            options={"require": ["exp", "iat", "iss", "aud"]},
            leeway=30,
        )
    except jwt.ExpiredSignatureError:
        raise TokenRejected("push token has expired") from None
    except jwt.InvalidAudienceError:
        raise TokenRejected("push token is for another audience") from None
    except jwt.PyJWTError as exc:
        raise TokenRejected(f"push token is invalid: {type(exc).__name__}") from None
    if claims.get("iss") not in ISSUERS:
        raise TokenRejected("push token was not issued by Google")
    if email is not None and (claims.get("email") != email or claims.get("email_verified") is not True):
        raise TokenRejected("push token is for another service account")
    return claims
