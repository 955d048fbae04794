"""Small value checks shared by the admission rules: durations, time zones, ports, condition syntax.

Cron schedules are not checked here: :mod:`knevents.sensors.cron` is the one parser, used by
validation, the engine and the calendar source alike.

Each returns an error message (``str``) or ``None``, so a rule reads as
``if (msg := checks.port(value)): yield path, msg``. They follow the formats
Argo Events' Go code accepts (Go durations, IANA
zone names, ``15:04:05`` times), because the same YAML must mean the same thing.
"""

from __future__ import annotations

import re
from functools import cache

__all__ = [
    "HTTP_METHODS",
    "condition_names",
    "data_value",
    "duration",
    "jq_program",
    "lua_chunk",
    "normalise_dependency",
    "port",
    "time_of_day",
    "timezone",
]

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"})

_DURATION = re.compile(r"^[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+$")
_TIME = re.compile(r"^(\d{2}):(\d{2}):(\d{2})$")
_TOKEN = re.compile(r"\s*(?:(&&)|(\|\|)|(\()|(\))|([A-Za-z0-9_\-.]+)|(\S))")


def duration(value: str | int) -> str | None:
    """A Go duration (``30s``, ``1m30s``) or a plain integer of nanoseconds / seconds."""
    if isinstance(value, int) or str(value).strip().lstrip("-+").isdigit():
        return None
    if value == "0" or _DURATION.match(value):
        return None
    return f"`{value}` is not a duration (use a number with a unit: 500ms, 30s, 5m, 1h)"


def port(value: str | int) -> str | None:
    """A TCP port number 1-65535 (Argo keeps ports as strings)."""
    text = str(value).strip()
    if not text.isdigit():
        return f"port `{value}` is not a number"
    if not 0 < int(text) < 65536:
        return f"port {text} is out of range (1-65535)"
    return None


@cache
def timezone(name: str) -> str | None:
    """An IANA time zone name; empty means UTC."""
    if not name:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone `{name}` (use an IANA name such as Europe/Paris or UTC)"
    return None


def time_of_day(value: str) -> str | None:
    """``HH:MM:SS`` on a 24-hour clock."""
    match = _TIME.match(value)
    if not match or int(match[1]) > 23 or int(match[2]) > 59 or int(match[3]) > 59:
        return f"`{value}` is not a time of day in the form HH:MM:SS"
    return None


def jq_program(program: str) -> str | None:
    """A jq program that compiles (transform ``jq``)."""
    import jq

    try:
        jq.compile(program)
    except ValueError as exc:
        detail = str(exc).splitlines()[0].removeprefix("jq: error: ")
        return f"jq program does not compile: {detail}"
    return None


def lua_chunk(script: str) -> str | None:
    """A Lua chunk that compiles (filter and transform ``script``); it is not run."""
    import lupa

    runtime = lupa.LuaRuntime()
    load = runtime.eval("load")
    result = load(script)
    error = result[1] if isinstance(result, tuple) else None
    if error is None:
        return None
    return "Lua script does not compile: " + str(error).replace('[string "', "").split('"]:', 1)[-1].strip()


_BOOLS = frozenset({"1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"})


def data_value(kind: str, value: str) -> str | None:
    """A data filter value parses as its filter's ``type`` (Go's ParseFloat / ParseBool)."""
    if kind == "number":
        try:
            float(value)
        except ValueError:
            return f"value `{value}` is not a number"
    if kind == "bool" and value not in _BOOLS:
        return f"value `{value}` is not a boolean (true or false)"
    return None


def normalise_dependency(name: str) -> str:
    """Argo treats ``-`` and ``_`` in dependency names alike inside conditions."""
    return name.replace("-", "_")


def condition_names(expression: str) -> tuple[list[str], str | None]:
    """The dependency names of a ``conditions`` expression, and a syntax error if there is one.

    The grammar is Argo's: names joined by ``&&`` and ``||``, grouped with parentheses.
    """
    tokens: list[tuple[str, str]] = []
    for match in _TOKEN.finditer(expression):
        if match.group(0).strip() == "":
            continue
        kind = ("and", "or", "(", ")", "name", "bad")[match.lastindex - 1 if match.lastindex else 5]
        tokens.append((kind, match.group(match.lastindex or 0)))
    names = [text for kind, text in tokens if kind == "name"]
    bad = [text for kind, text in tokens if kind == "bad"]
    if bad:
        return names, f"unexpected `{bad[0]}` (conditions use dependency names, &&, || and parentheses)"
    if not tokens:
        return names, "the expression is empty"
    position, error = _expression(tokens, 0)
    if error is None and position != len(tokens):
        error = f"unexpected `{tokens[position][1]}`"
    return names, error


def _expression(tokens: list[tuple[str, str]], position: int) -> tuple[int, str | None]:
    position, error = _term(tokens, position)
    while error is None and position < len(tokens) and tokens[position][0] in ("and", "or"):
        position, error = _term(tokens, position + 1)
    return position, error


def _term(tokens: list[tuple[str, str]], position: int) -> tuple[int, str | None]:
    if position >= len(tokens):
        return position, "the expression ends too early"
    kind, text = tokens[position]
    if kind == "name":
        return position + 1, None
    if kind == "(":
        position, error = _expression(tokens, position + 1)
        if error is not None:
            return position, error
        if position >= len(tokens) or tokens[position][0] != ")":
            return position, "unbalanced parentheses"
        return position + 1, None
    return position, f"unexpected `{text}`"
