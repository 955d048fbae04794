"""How Go's ``encoding/json`` writes the values broker sources put in Argo's event data.

Argo builds each event with ``json.Marshal`` on a Go struct, so a ``[]byte``
body is base64 text, a ``time.Time`` printed with ``String()`` reads
``2006-01-02 15:04:05 +0000 UTC``, and so on. Broker sources (amqp, mqtt …)
share these conversions so their data matches Argo's byte for byte where a
sensor could tell. Pure functions; nothing here does I/O.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import re
from collections.abc import Mapping
from typing import Any

from knevents.sources import common

__all__ = ["base64_json", "go_time", "plain", "raw_json", "trace_extension"]

_GO_ZERO_TIME = "0001-01-01 00:00:00 +0000 UTC"


def base64_json(raw: bytes) -> str:
    """``raw`` as Go marshals a ``[]byte``: a JSON string of its standard base64."""
    return '"' + base64.b64encode(raw).decode("ascii") + '"'


_TOKENS = re.compile(r'("(?:[^"\\]|\\.)*")|[ \t\r\n]+')
_HTML = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_HTML_CHARS = re.compile("[<>&\u2028\u2029]")


def _token(match: re.Match[str]) -> str:
    text = match.group(1)
    return "" if text is None else _HTML_CHARS.sub(lambda m: _HTML[m.group(0)], text)


def raw_json(raw: bytes) -> str | None:
    """A JSON body as Go marshals a ``json.RawMessage``: compacted, ``<>&`` escaped; ``None`` if not JSON.

    Number spellings and key order stay as sent (Go copies them), only the
    whitespace between tokens goes.
    """
    text = common.json_text(raw)
    return None if text is None else _TOKENS.sub(_token, text)


def go_time(value: dt.datetime | int | float | None) -> str:
    """A timestamp as Go's ``time.Time.String()`` prints it in UTC; Go's zero time when absent."""
    if value is None or value == 0:
        return _GO_ZERO_TIME
    if isinstance(value, int | float):
        value = dt.datetime.fromtimestamp(value, dt.UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    value = value.astimezone(dt.UTC)
    fraction = f".{value.microsecond:06d}".rstrip("0") if value.microsecond else ""
    return value.strftime("%Y-%m-%d %H:%M:%S") + fraction + " +0000 UTC"


def plain(value: Any) -> Any:
    """A broker header value (AMQP field table, MQTT user property …) as JSON-ready data."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(raw).decode("ascii")
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.datetime):
        return go_time(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def trace_extension(headers: Mapping[str, Any] | None) -> dict[str, str]:
    """``{"traceparent": …}`` when the message headers carry a well-formed W3C ``traceparent``."""
    raw = (headers or {}).get("traceparent")
    if isinstance(raw, bytes | bytearray):
        raw = bytes(raw).decode("ascii", "replace")
    value = common.traceparent(raw if isinstance(raw, str) else None)
    return {"traceparent": value} if value else {}

