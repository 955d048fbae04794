"""Read Argo's JetStream ``streamConfig`` values exactly as Argo's Go code reads them.

Argo Events parses ``spec.jetstream.streamConfig`` with viper
(``pkg/eventbus/jetstream/base/jetstream.go``): ``GetInt64("maxMsgs")``,
``GetInt64("maxBytes")``, ``GetInt("replicas")``, ``GetInt("retention")``,
``GetInt("discard")``, ``GetDuration("maxAge")``, ``GetDuration("duplicates")``.
Those go through spf13/cast, whose rules are reproduced here:

* integers: a YAML number is truncated to an integer; a string goes through
  ``strconv.ParseInt(s, 0, 64)`` (``0x``/``0o``/``0b`` prefixes, a leading
  ``0`` is octal, ``_`` separators) after a trailing ``.0…`` is dropped.
  Anything else — ``"1GB"`` included — is **0**: cast returns 0 on error and
  viper swallows the error. JetStream then reads 0 as "no limit".
* durations: a YAML number is a count of **nanoseconds**; a string holding
  any of ``n s u µ m h`` goes through ``time.ParseDuration``, any other string
  gets ``ns`` appended first. An unparsable string is 0.

Each reader returns the value and, when cast would have failed, the reason;
the renderer turns that into a warning, since what Argo does (no limit) is
rarely what the author of ``maxBytes: 1GB`` meant.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

__all__ = ["go_duration", "parse_duration", "to_duration", "to_int"]

_INT64 = 2**63
_OCTAL = re.compile(r"^[+-]?0[0-7_]+$")
_DIGITS = re.compile(r"^[+-]?(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|[0-9][0-9_]*)$")
_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 micro sign
    "μs": 1_000,  # U+03BC Greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_COMPONENT = re.compile(r"(\d*)(?:\.(\d*))?([^\d.]+)")


def _trim_zero_decimal(text: str) -> str:
    # cast.trimZeroDecimal: "12.000" -> "12"; "12." and "12.5" are left alone
    head, dot, tail = text.rpartition(".")
    return head if dot and tail and set(tail) == {"0"} else text


def _parse_int(text: str) -> int | None:
    """Go's ``strconv.ParseInt(text, 0, 64)``; None where Go returns an error."""
    if not _DIGITS.match(text) or text.strip("+-").startswith("_") or "__" in text or text.endswith("_"):
        return None
    body = text.lstrip("+-")
    if _OCTAL.match(text):
        body = "0o" + body[1:]
    try:
        value = int(body, 0)
    except ValueError:
        return None
    value = -value if text.startswith("-") else value
    return value if -_INT64 <= value < _INT64 else None


def to_int(value: Any) -> tuple[int, str | None]:
    """cast.ToInt64: (the integer Argo reads, why it read 0 when it could not parse ``value``)."""
    if value is None:
        return 0, None
    if isinstance(value, bool):
        return int(value), None
    if isinstance(value, int | float):
        return int(value), None
    if isinstance(value, str):
        parsed = _parse_int(_trim_zero_decimal(value))
        if parsed is None:
            return 0, f"{value!r} is not an integer to Go's strconv.ParseInt"
        return parsed, None
    return 0, f"{value!r} is not a number"


def parse_duration(text: str) -> int | None:
    """Go's ``time.ParseDuration`` in nanoseconds; None where Go returns an error."""
    sign = -1 if text.startswith("-") else 1
    rest = text[1:] if text[:1] in "+-" else text
    if rest == "0":
        return 0
    if not rest:
        return None
    total = Fraction(0)
    position = 0
    while position < len(rest):
        match = _COMPONENT.match(rest, position)
        if match is None:
            return None
        whole, frac, unit = match.groups()
        if (not whole and not frac) or unit not in _UNITS:
            return None
        number = Fraction(int(whole or "0")) + (Fraction(int(frac), 10 ** len(frac)) if frac else 0)
        total += number * _UNITS[unit]
        position = match.end()
    nanos = sign * int(total)  # Go truncates fractions of a nanosecond
    return nanos if -_INT64 <= nanos < _INT64 else None


def to_duration(value: Any) -> tuple[int, str | None]:
    """cast.ToDuration in nanoseconds: (what Argo reads, why it read 0 when it could not parse ``value``)."""
    if value is None:
        return 0, None
    if isinstance(value, bool):
        return 0, f"{value!r} is not a duration"
    if isinstance(value, int | float):
        return int(value), None  # a bare number is nanoseconds to Go
    if isinstance(value, str):
        text = value if any(c in value for c in "nsuµmh") else value + "ns"
        parsed = parse_duration(text)
        if parsed is None:
            return 0, f"{value!r} is not a Go duration (like 72h or 30s)"
        return parsed, None
    return 0, f"{value!r} is not a duration"


def go_duration(nanos: int) -> str:
    """A duration string Go's ``time.ParseDuration`` reads back as exactly ``nanos``."""
    if nanos % 1_000_000_000:
        return f"{nanos}ns"
    seconds = nanos // 1_000_000_000
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    # as Go's Duration.String() writes whole seconds: 72h0m0s, 5m0s, 30s
    if hours:
        return f"{sign}{hours}h{minutes}m{secs}s"
    return f"{sign}{minutes}m{secs}s" if minutes else f"{sign}{secs}s"
