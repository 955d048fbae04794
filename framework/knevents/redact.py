"""One redaction function for everything knevents prints, logs, stores or answers.

Secrets leak in shapes other than their own: an HTTP target that echoes its
request puts ``Authorization: Basic <base64 of user:password>`` into an error
body; a URL carries ``user:password@``; a query string carries the secret
URL-encoded. :func:`redact` masks, in any text:

* every secret value registered with :func:`register` (the secret resolver
  registers each value it reads), and its base64 (standard and URL-safe, with
  and without padding) and URL-encoded forms;
* the credentials of ``Authorization`` / ``Proxy-Authorization`` headers and of
  ``Basic`` / ``Bearer`` schemes wherever they appear;
* the user information of URLs (``scheme://user:password@host``).

It is deliberately conservative about short values (under 4 characters): masking
every ``"a"`` in a log would destroy the log and protect nothing.
"""

from __future__ import annotations

import base64
import re
import threading
from typing import Any
from urllib.parse import quote, quote_plus

__all__ = ["MASK", "clear", "redact", "redact_bytes", "redact_values", "register"]

MASK = "***"
_MIN_SECRET = 4
_lock = threading.Lock()
_forms: set[str] = set()
_pattern: re.Pattern[str] | None = None

_AUTH_HEADER = re.compile(r"(?i)\b((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?(?:\[\s*[\"'])?)"
                          r"((?:basic|bearer|token|digest)\s+)?[^\s\"',\]}]+")
_SCHEME_CRED = re.compile(r"(?i)\b(basic|bearer)\s+[A-Za-z0-9._~+/=-]{8,}")
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@\"']+@")


def _variants(value: str) -> set[str]:
    raw = value.encode()
    out = {value, quote(value, safe=""), quote_plus(value), quote(value)}
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        text = encode(raw).decode()
        out.update({text, text.rstrip("=")})
    return {v for v in out if len(v) >= _MIN_SECRET}


def register(*values: str | None) -> None:
    """Remember secret values so that :func:`redact` masks them (and their encoded forms) from now on."""
    global _pattern
    added = set()
    for value in values:
        if value and len(value) >= _MIN_SECRET:
            added |= _variants(value)
    with _lock:
        if not added - _forms:
            return
        _forms.update(added)
        ordered = sorted(_forms, key=len, reverse=True)  # longest first: a secret inside another's form
        _pattern = re.compile("|".join(re.escape(v) for v in ordered))


def clear() -> None:
    """Forget every registered value (tests)."""
    global _pattern
    with _lock:
        _forms.clear()
        _pattern = None


def redact(text: str) -> str:
    """``text`` with secrets, their encodings, auth header credentials and URL user information masked."""
    if not text:
        return text
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    # each pattern needs a literal word to match: look for it first (every answer passes here; most have none)
    lowered = text.lower()
    if "authorization" in lowered:
        text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{m.group(2) or ''}{MASK}", text)
    if "basic" in lowered or "bearer" in lowered:
        text = _SCHEME_CRED.sub(lambda m: f"{m.group(1)} {MASK}", text)
    if "@" in text:
        text = _USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    return text


def redact_bytes(body: bytes) -> bytes:
    """:func:`redact` over bytes (an HTTP answer), keeping bytes that are not UTF-8 as they were."""
    if not body:
        return body
    text = body.decode("utf-8", "surrogateescape")
    cleaned = redact(text)
    return body if cleaned == text else cleaned.encode("utf-8", "surrogateescape")


def redact_values(value: Any) -> Any:
    """Every string inside ``value`` (dicts, lists, tuples) redacted; other values as they are."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_values(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_values(v) for v in value)
    return value
