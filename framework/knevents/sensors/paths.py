"""JSON paths as Argo Events evaluates them: gjson to read, sjson to write.

Argo reads event data with tidwall/gjson (data filters, expr filter fields,
``dataKey`` parameters) and writes trigger parameters with tidwall/sjson.
Reading is delegated to ``pygjson`` (bindings to gjson.rs, the same path
syntax: ``a.b``, ``a.#``, ``a.#(k=="v")``, ``a.#(k>1)#``, ``*``/``?``,
``\\.``, ``@reverse`` …); this module adapts its results to what Go's
``gjson.Result`` methods return (``String()``, ``Raw``, ``Value()``), because
those strings are what filters compare and what parameters inject.

Writing is our own small sjson: dotted paths, numeric segments index or create
arrays, ``-1`` appends, ``\\.`` escapes a dot, a value set as a JSON string or
as raw JSON. Numbers of the input document keep their exact text.

Pure functions, no I/O.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from json.encoder import encode_basestring as _encode_basestring
from typing import Any

import pygjson

__all__ = [
    "Found",
    "RawJSON",
    "compile_path",
    "dumps",
    "get",
    "go_float_string",
    "loads_preserving",
    "set_in",
    "set_path",
    "split_path",
    "unsafe_json",
]

# gjson type names, as Go's gjson.Type.String() spells them (Argo compares them).
NULL, FALSE, TRUE, NUMBER, STRING, JSON = "Null", "False", "True", "Number", "String", "JSON"


@dataclass(frozen=True, slots=True)
class Found:
    """A gjson result reduced to what Argo uses: its type, raw text and Go ``String()``."""

    type: str
    text: str
    raw_text: str | None = None  # None for strings: encoded on demand (rarely needed)

    @property
    def raw(self) -> str:
        """The value's JSON text (gjson's ``Raw``)."""
        return self.raw_text if self.raw_text is not None else _go_string(self.text)

    def value(self) -> Any:
        """Go's ``Result.Value()``: numbers as float, objects/arrays decoded (numbers as float)."""
        if self.type == NUMBER:
            return float(self.text)
        if self.type == STRING:
            return self.text
        if self.type == TRUE:
            return True
        if self.type == FALSE:
            return False
        if self.type == NULL:
            return None
        return json.loads(self.raw, parse_int=float)

    def to_float(self) -> float:
        """Go's ``Result.Float()``: strings are parsed, anything unparsable is 0."""
        if self.type == NUMBER:
            return float(self.text)
        if self.type == TRUE:
            return 1.0
        if self.type == STRING:
            try:
                return float(self.text)
            except ValueError:
                return 0.0
        return 0.0

    def to_bool(self) -> bool:
        """Go's ``Result.Bool()``: true, a non-zero number, or a string ``strconv.ParseBool`` accepts as true."""
        if self.type == TRUE:
            return True
        if self.type == NUMBER:
            return float(self.text) != 0
        if self.type == STRING:
            return self.text in ("1", "t", "T", "TRUE", "true", "True")
        return False


_NULL = Found(NULL, "", "null")
_TRUE = Found(TRUE, "true", "true")
_FALSE = Found(FALSE, "false", "false")


_CHEAP_BRACKETS = 1000


def unsafe_json(data: bytes) -> str | None:
    """Why ``data`` must not reach gjson, or ``None``.

    gjson.rs recurses per nesting level and overflows the native stack (a
    segfault, not an exception) on inputs nested about a million levels deep.
    Few brackets cannot nest deeply, so the common case is two ``count`` calls;
    otherwise Python's own decoder (which stops at its recursion limit) decides.
    """
    if data.count(b"[") + data.count(b"{") <= _CHEAP_BRACKETS:
        return None
    try:
        json.loads(data)
    except RecursionError:
        return "event data nests too deeply"
    except ValueError:
        return "event data not valid JSON"
    return None


@functools.lru_cache(maxsize=4096)
def compile_path(path: str) -> pygjson.Path:
    """A compiled gjson path (cached: sensors reuse a handful of paths)."""
    return pygjson.compile(path)


def go_float_string(value: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'f', -1, 64)``: shortest digits, never an exponent."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    text = format(Decimal(repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _number_text(raw: str) -> str:
    body = raw[1:] if raw.startswith("-") else raw
    if body.isdigit():
        return raw
    return go_float_string(float(raw))


def get(data: bytes, path: str | pygjson.Path) -> Found | None:
    """The value at a gjson path in JSON ``data``; ``None`` when it does not exist."""
    compiled = compile_path(path) if isinstance(path, str) else path
    result = pygjson.get_bytes(data, compiled)
    if not result.exists():
        return None
    kind = result.type_
    text = result.to_str()
    if kind is str:
        return Found(STRING, text)
    if kind is None:
        return _NULL
    if kind is bool:
        return _TRUE if text == "true" else _FALSE
    if kind is int or kind is float:
        return Found(NUMBER, _number_text(text), text)
    return Found(JSON, text, text)


# --- sjson ------------------------------------------------------------------------


class RawJSON(str):
    """Text written verbatim into a JSON document (a raw value or a number's exact text)."""

    __slots__ = ()


def loads_preserving(data: bytes | str) -> Any:
    """Decode JSON keeping every number's exact text (as :class:`RawJSON`)."""
    return json.loads(data, parse_int=RawJSON, parse_float=RawJSON, parse_constant=RawJSON)


def dumps(value: Any) -> str:
    """Encode compactly as sjson writes (no spaces, no HTML escaping); RawJSON verbatim."""
    parts: list[str] = []
    _encode(value, parts.append)
    return "".join(parts)


_PLAIN = re.compile(r'[^\x00-\x1f"\\\x7f-\U0010ffff]*')
_HTML = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_HTML_CHARS = re.compile("[<>&\u2028\u2029]")


def _go_string(text: str) -> str:
    """A JSON string as sjson writes it: verbatim when plain ASCII, else as Go's json.Marshal."""
    if _PLAIN.fullmatch(text):
        return '"' + text + '"'
    encoded = _encode_basestring(text)
    return _HTML_CHARS.sub(lambda m: _HTML[m.group(0)], encoded)


def _encode(value: Any, out: Callable[[str], None]) -> None:
    if isinstance(value, RawJSON):
        out(str(value))
    elif isinstance(value, str):
        out(_go_string(value))
    elif value is None:
        out("null")
    elif value is True:
        out("true")
    elif value is False:
        out("false")
    elif isinstance(value, int):
        out(str(value))
    elif isinstance(value, float):
        out(go_float_string(value) if value.is_integer() else repr(value))
    elif isinstance(value, dict):
        out("{")
        first = True
        for key, item in value.items():
            if not first:
                out(",")
            first = False
            out(_go_string(str(key)))
            out(":")
            _encode(item, out)
        out("}")
    elif isinstance(value, list | tuple):
        out("[")
        for index, item in enumerate(value):
            if index:
                out(",")
            _encode(item, out)
        out("]")
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as JSON")


@functools.lru_cache(maxsize=4096)
def split_path(path: str) -> tuple[str, ...]:
    """Split an sjson path on unescaped dots (``\\.`` is a literal dot)."""
    if path == "":
        raise ValueError("path cannot be empty")
    parts: list[str] = []
    current: list[str] = []
    index = 0
    while index < len(path):
        char = path[index]
        if char == "\\" and index + 1 < len(path):
            current.append(path[index + 1])
            index += 2
            continue
        if char == ".":
            parts.append("".join(current))
            current = []
        elif char in "*?":
            raise ValueError(f"path {path!r}: wildcards cannot be used to set a value")
        else:
            current.append(char)
        index += 1
    parts.append("".join(current))
    return tuple(parts)


def _is_index(key: str) -> bool:
    return key == "-1" or key.isdigit()


def set_path(document: bytes | None, path: str, value: str, *, raw: bool = False) -> bytes:
    """sjson ``SetBytes`` (``raw=False``: a JSON string) or ``SetRawBytes`` (``raw=True``).

    ``document`` empty or ``None`` starts from nothing, as sjson does. Raises
    ValueError for an invalid path, invalid JSON input or an invalid raw value.
    """
    root: Any = None
    if document and document.strip():
        try:
            root = loads_preserving(document)
        except ValueError:
            raise ValueError("the document to set a value in is not valid JSON") from None
    return dumps(set_in(root, path, value, raw=raw)).encode()


def set_in(root: Any, path: str, value: str, *, raw: bool = False) -> Any:
    """:func:`set_path` on a decoded document (from :func:`loads_preserving`); returns the new root."""
    keys = split_path(path)
    if raw:
        if not pygjson.validate(value):
            raise ValueError(f"raw value for {path!r} is not valid JSON")
        return _set(root, keys, RawJSON(value.strip()))
    return _set(root, keys, value)


def _set(node: Any, keys: tuple[str, ...], new: Any) -> Any:
    key, rest = keys[0], keys[1:]
    if isinstance(node, list) and _is_index(key):
        items = list(node)
        if key == "-1":
            items.append(_set(None, rest, new) if rest else new)
            return items
        index = int(key)
        while len(items) <= index:
            items.append(None)
        items[index] = _set(items[index], rest, new) if rest else new
        return items
    if isinstance(node, dict):
        obj = dict(node)
        obj[key] = _set(obj.get(key), rest, new) if rest else new
        return obj
    # Nothing (or a scalar) here: create the container the key asks for.
    if _is_index(key):
        return _set([], keys, new)
    return _set({}, keys, new)
