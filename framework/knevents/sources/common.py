"""Pieces the HTTP-fed source types share: ports, header maps, bodies, secrets, Go durations.

Argo Events puts Go's ``http.Header`` into event data, so header names are
canonicalised the way Go does (``x-github-event`` → ``X-Github-Event``) and
values are lists; sensors written for Argo address them with those keys.
Nothing here does network I/O.
"""

from __future__ import annotations

import functools
import hmac
import json
import re
from collections.abc import Iterable
from typing import Any

from knevents import errors, web
from knevents.secrets import SecretResolver

__all__ = [
    "DEFAULT_MAX_PAYLOAD",
    "MASKED_AUTH",
    "bearer_ok",
    "canonical_header",
    "endpoint_path",
    "header_lists",
    "json_text",
    "metadata_member",
    "parse_go_duration",
    "port_number",
    "read_secret",
    "refuse",
    "rejected",
    "too_large",
    "traceparent",
]

DEFAULT_MAX_PAYLOAD = 1024 * 1024
"""Bytes: Argo's ``maxPayloadSize`` default (1 MiB)."""

MASKED_AUTH = "*** Masked Auth Secret ***"
"""What Argo puts in place of an ``Authorization`` header in event data."""


def port_number(port: str | int | None, where: str) -> int | None:
    """A spec port (a string in Argo's schema) as an int, ``None`` when unset; SpecError when invalid."""
    if port is None or port == "":
        return None
    try:
        value = int(port)
    except (TypeError, ValueError):
        raise errors.SpecError(f"{where}.port: {port!r} is not a number") from None
    if not 0 < value < 65536:
        raise errors.SpecError(f"{where}.port: {value} is out of range 1-65535")
    return value


def endpoint_path(endpoint: str | None, where: str) -> str:
    """The endpoint with a leading ``/``; SpecError when missing."""
    if not endpoint:
        raise errors.SpecError(f"{where}.endpoint is required")
    return endpoint if endpoint.startswith("/") else "/" + endpoint


@functools.lru_cache(maxsize=4096)
def canonical_header(name: str) -> str:
    """Go's ``textproto.CanonicalMIMEHeaderKey``: ``content-type`` → ``Content-Type``."""
    if not name or any(not (ch.isalnum() or ch in "-_!#$%&'*+.^`|~") or not ch.isascii() for ch in name):
        return name  # Go leaves names with invalid characters as they are
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def header_lists(pairs: Iterable[tuple[str, str]], *, mask_auth: bool = True) -> dict[str, list[str]]:
    """Headers as Go's ``http.Header`` marshals them: canonical names, list values, auth masked."""
    out: dict[str, list[str]] = {}
    for name, value in pairs:
        key = canonical_header(name)
        out.setdefault(key, []).append(value)
    if mask_auth and "Authorization" in out:
        out["Authorization"] = [MASKED_AUTH]
    return out


def too_large(request: web.Request, limit: int) -> web.Response | None:
    """A 413 answer when the body exceeds ``limit`` bytes, else ``None``."""
    if len(request.body) > limit:
        return web.text_response(413, f"request body too large: limit is {limit} bytes\n")
    return None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_STRICT_JSON = json.JSONDecoder(parse_constant=_reject_constant)
"""``json.loads`` with these options builds a decoder per call; one is enough (it keeps no state)."""


def json_text(raw: bytes) -> str | None:
    """``raw`` as compact-enough JSON text to splice into event data, or ``None`` when it is not JSON.

    The text is kept as sent (number spelling included), only trimmed, as Go's
    ``json.RawMessage`` keeps it; ``NaN``/``Infinity`` (not JSON) are refused.
    """
    try:
        text = raw.decode("utf-8")
        _STRICT_JSON.decode(text)
    except (ValueError, RecursionError):  # RecursionError: JSON nested deeper than Python's stack
        return None
    return text.strip()


def read_secret(secrets: SecretResolver, selector: Any, what: str) -> str:
    """A secret value; SecretError names ``what`` and the Secret, never the value."""
    try:
        return secrets.secret(selector)
    except errors.SecretError as exc:
        raise errors.SecretError(f"{what}: {exc}") from None


def bearer_ok(header: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer <token>`` (constant-time compare)."""
    if not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[len("Bearer ") :].encode(), token.encode())


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$")


def traceparent(value: str | None) -> str | None:
    """``value`` when it is a well-formed W3C ``traceparent`` (normalised), else ``None``."""
    if not value:
        return None
    value = value.strip().lower()
    return value if _TRACEPARENT.match(value) else None


def parse_go_duration(text: str, where: str) -> float:
    """Seconds in a Go duration (``10s``, ``1m30s``, ``1.5h``, ``300ms``); SpecError when invalid."""
    value = text.strip()
    sign = 1.0
    if value[:1] in "+-" and value:
        sign = -1.0 if value[0] == "-" else 1.0
        value = value[1:]
    if value == "0":
        return 0.0
    total = 0.0
    pos = 0
    for match in _DURATION_PART.finditer(value):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if not value or pos != len(value):
        raise errors.SpecError(f"{where}: {text!r} is not a duration (e.g. 10s, 1m30s, 2h)")
    return sign * total


def rejected(event_source: str, event_name: str, reason: str) -> None:
    """Count one message a pull source dropped as bad input (the runtime's ``events_rejected`` counter)."""
    from knevents import metrics

    metrics.counter(
        "knevents_eventsource_events_rejected",
        "Requests or events not published, by reason (auth, too_large, malformed, filtered …).",
        ("eventsource", "event", "reason"),
    ).labels(event_source, event_name, reason).inc()


def refuse(problems: Iterable[tuple[str, str]]) -> None:
    """Raise one SpecError with every ``(path, message)`` of a type's ``check``; nothing when there is none."""
    found = [errors.Problem(message, path=path) for path, message in problems]
    if found:
        raise errors.SpecError(found)


def metadata_member(metadata: dict[str, str] | None) -> str:
    """``,"metadata":{…}`` (keys sorted, as Go marshals a map) to close Argo's event data, ``""`` when unset."""
    if not metadata:
        return ""
    return ',"metadata":' + json.dumps(dict(sorted(metadata.items())), ensure_ascii=False)
