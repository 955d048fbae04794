"""The functions a Go template in an Argo sensor can call: Go's builtins and Masterminds/sprig.

Sprig's semantics are kept where Argo users rely on them: conversions through
spf13/cast (bad input is 0), ``default``/``empty`` on Go zero values, ``split``
returning a ``map[_0:… _1:…]``, ``toJson`` via ``encoding/json``. Functions
that read the clock, randomness or the environment (``now``, ``uuidv4``,
``env``) are left out: a sensor's templates must be pure and must not reach
secrets.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import urllib.parse
from collections.abc import Callable
from typing import Any

from knevents.sensors import govalues

__all__ = ["FUNCS"]

MISSING = govalues.MISSING
TemplateError = govalues.TemplateError


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return "other"


def _eq(first: Any, *others: Any) -> bool:
    if not others:
        raise TemplateError("missing argument for comparison")
    for other in others:
        a = None if first is MISSING else first
        b = None if other is MISSING else other
        if a is None or b is None:
            if a is None and b is None:
                return True
            continue
        ka, kb = _kind(a), _kind(b)
        if ka == "other" or kb == "other":
            if ka == kb and a == b:
                return True
            if ka != kb:
                raise TemplateError("incompatible types for comparison")
            continue
        if ka != kb:
            raise TemplateError("incompatible types for comparison")
        if a == b:
            return True
    return False


def _less(a: Any, b: Any) -> bool:
    ka, kb = _kind(a), _kind(b)
    if ka == "other" or kb == "other" or ka == "bool":
        raise TemplateError("invalid type for comparison")
    if ka != kb:
        raise TemplateError("incompatible types for comparison")
    return bool(a < b)


def _strval(value: Any) -> str:
    if value is MISSING or value is None:
        return "<nil>" if value is None else "<no value>"
    if isinstance(value, str):
        return value
    return govalues.go_print(value, top=False)


def _need_str(value: Any) -> str:
    if not isinstance(value, str):
        if value is MISSING or value is None:
            raise TemplateError("invalid value; expected string")
        raise TemplateError(f"wrong type for value; expected string; got {govalues.type_name(value)}")
    return value


def _to_int(value: Any) -> int:
    """spf13/cast ToInt as sprig's ``int`` uses it: bad input is 0."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else 0
    if isinstance(value, str):
        try:
            return int(value, 0)
        except ValueError:
            return 0
    return 0


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return 0.0
    return 0.0


def _empty(value: Any) -> bool:
    return not govalues.truth(value)


def _len(value: Any) -> int:
    if isinstance(value, str | list | tuple | dict | bytes):
        return len(value.encode() if isinstance(value, str) else value)
    raise TemplateError(f"len of type {govalues.type_name(value)}")


def _index(item: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(item, dict):
            if not isinstance(key, str):
                raise TemplateError(f"value has type {govalues.type_name(key)}; should be string")
            item = item.get(key)
        elif isinstance(item, list | tuple | str):
            if isinstance(key, bool) or not isinstance(key, int):
                raise TemplateError(f"cannot index slice/array with type {govalues.type_name(key)}")
            if not 0 <= key < len(item):
                raise TemplateError(f"index out of range: {key}")
            item = item[key] if not isinstance(item, str) else item.encode()[key]
        elif item is None or item is MISSING:
            raise TemplateError("index of untyped nil")
        else:
            raise TemplateError(f"can't index item of type {govalues.type_name(item)}")
    return item


def _separator(char: str) -> bool:
    # Go's strings.Title: ASCII alphanumerics and '_' join a word, other ASCII separates;
    # beyond ASCII, letters and digits join and only spaces separate.
    if char.isascii():
        return not (char.isalnum() or char == "_")
    return char.isspace()


def _title(text: Any) -> str:
    out: list[str] = []
    previous = " "
    for char in _need_str(text):
        out.append(char.upper() if _separator(previous) else char)
        previous = char
    return "".join(out)


def _b64dec(text: Any) -> str:
    try:
        return base64.b64decode(_need_str(text), validate=True).decode("utf-8", "replace")
    except ValueError as exc:
        return f"illegal base64 data: {exc}"


def _from_json(text: Any) -> Any:
    try:
        return govalues.go_value(_need_str(text))
    except ValueError:
        return {}


def _to_json(value: Any) -> str:
    try:
        return govalues.go_json(value)
    except TemplateError:
        return ""


def _substr(start: Any, end: Any, text: Any) -> str:
    s = _need_str(text)
    a, b = _to_int(start), _to_int(end)
    if a < 0:
        return s[:b]
    if b < 0 or b > len(s):
        return s[a:]
    return s[a:b]


def _trunc(count: Any, text: Any) -> str:
    s, n = _need_str(text), _to_int(count)
    if n < 0:
        return s[max(len(s) + n, 0) :] if len(s) + n > 0 else s
    return s[:n]


def _split(sep: Any, text: Any) -> dict[str, str]:
    return {f"_{i}": part for i, part in enumerate(_strval(text).split(_need_str(sep)))}


def _join(sep: Any, items: Any) -> str:
    if isinstance(items, list | tuple):
        return _need_str(sep).join(_strval(i) for i in items if i is not None)
    return _strval(items)


def _dict(*pairs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i in range(0, len(pairs), 2):
        out[_strval(pairs[i])] = pairs[i + 1] if i + 1 < len(pairs) else ""
    return out


def _get(mapping: Any, key: Any) -> Any:
    if isinstance(mapping, dict):
        return mapping.get(_need_str(key), "")
    return ""


def _list_of(items: Any) -> list[Any]:
    if isinstance(items, list | tuple):
        return list(items)
    raise TemplateError(f"cannot find first on type {govalues.type_name(items)}")


def _int_op(fn: Callable[[int, int], int]) -> Callable[..., int]:
    def apply(*args: Any) -> int:
        values = [_to_int(a) for a in args]
        result = values[0]
        for v in values[1:]:
            result = fn(result, v)
        return result

    return apply


def _div(a: Any, b: Any) -> int:
    x, y = _to_int(a), _to_int(b)
    if y == 0:
        raise TemplateError("integer divide by zero")
    return int(x / y)


def _mod(a: Any, b: Any) -> int:
    x, y = _to_int(a), _to_int(b)
    if y == 0:
        raise TemplateError("integer divide by zero")
    return int(math.fmod(x, y))


def _regex(pattern: Any) -> re.Pattern[str]:
    try:
        return re.compile(_need_str(pattern))
    except re.error as exc:
        raise TemplateError(f"error parsing regexp: {exc}") from None


def _indent(spaces: Any, text: Any) -> str:
    pad = " " * _to_int(spaces)
    return pad + _need_str(text).replace("\n", "\n" + pad)


def _ternary(yes: Any, no: Any, cond: Any) -> Any:
    return yes if cond is True else no


def _coalesce(*values: Any) -> Any:
    for value in values:
        if not _empty(value):
            return value
    return None


def _keys(*maps: Any) -> list[str]:
    return [k for m in maps if isinstance(m, dict) for k in m]


FUNCS: dict[str, Callable[..., Any]] = {
    # Go builtins ("and"/"or" are evaluated lazily in _Exec.logical).
    "and": lambda *a: a[-1],
    "or": lambda *a: a[-1],
    "not": lambda value: not govalues.truth(value),
    "len": _len,
    "index": _index,
    "print": govalues.sprint,
    "printf": govalues.printf,
    "println": lambda *a: " ".join(govalues.go_print(x, top=False) for x in a) + "\n",
    "eq": _eq,
    "ne": lambda a, b: not _eq(a, b),
    "lt": _less,
    "le": lambda a, b: _less(a, b) or _eq(a, b),
    "gt": lambda a, b: not (_less(a, b) or _eq(a, b)),
    "ge": lambda a, b: not _less(a, b),
    "html": lambda *a: re.sub(
        r"[<>&'\"]",
        lambda m: {"<": "&lt;", ">": "&gt;", "&": "&amp;", "'": "&#39;", '"': "&#34;"}[m.group(0)],
        govalues.sprint(*a),
    ),
    "urlquery": lambda *a: urllib.parse.quote_plus(govalues.sprint(*a)),
    # sprig: strings
    "upper": lambda s: _need_str(s).upper(),
    "lower": lambda s: _need_str(s).lower(),
    "title": _title,
    "trim": lambda s: _need_str(s).strip(),
    "trimAll": lambda chars, s: _need_str(s).strip(_need_str(chars)),
    "trimPrefix": lambda prefix, s: _need_str(s).removeprefix(_need_str(prefix)),
    "trimSuffix": lambda suffix, s: _need_str(s).removesuffix(_need_str(suffix)),
    "replace": lambda old, new, s: _need_str(s).replace(_need_str(old), _need_str(new)),
    "contains": lambda sub, s: _need_str(sub) in _need_str(s),
    "hasPrefix": lambda prefix, s: _need_str(s).startswith(_need_str(prefix)),
    "hasSuffix": lambda suffix, s: _need_str(s).endswith(_need_str(suffix)),
    "quote": lambda *a: " ".join(
        govalues.go_quote(_strval(x)) for x in a if x is not None and x is not MISSING
    ),
    "squote": lambda *a: " ".join(f"'{_strval(x)}'" for x in a if x is not None and x is not MISSING),
    "nospace": lambda s: re.sub(r"\s", "", _need_str(s)),
    "repeat": lambda count, s: _need_str(s) * max(_to_int(count), 0),
    "substr": _substr,
    "trunc": _trunc,
    "indent": _indent,
    "nindent": lambda spaces, s: "\n" + _indent(spaces, s),
    "split": _split,
    "splitList": lambda sep, s: _need_str(s).split(_need_str(sep)),
    "join": _join,
    "toString": _strval,
    "b64enc": lambda s: base64.b64encode(_need_str(s).encode()).decode(),
    "b64dec": _b64dec,
    "sha256sum": lambda s: hashlib.sha256(_need_str(s).encode()).hexdigest(),
    "regexMatch": lambda pattern, s: _regex(pattern).search(_need_str(s)) is not None,
    "regexFind": lambda pattern, s: m.group(0) if (m := _regex(pattern).search(_need_str(s))) else "",
    "regexReplaceAll": lambda pattern, s, repl: _regex(pattern).sub(
        re.sub(r"\$\{?(\w+)\}?", r"\\g<\1>", _need_str(repl)), _need_str(s)
    ),
    "snakecase": lambda s: re.sub(
        r"[\s\-]+", "_", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", _need_str(s))
    ).lower(),
    "kebabcase": lambda s: re.sub(
        r"[\s_]+", "-", re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", _need_str(s))
    ).lower(),
    "camelcase": lambda s: "".join(p[:1].upper() + p[1:] for p in re.split(r"[\s_\-]+", _need_str(s)) if p),
    "sha1sum": lambda s: hashlib.sha1(_need_str(s).encode()).hexdigest(),
    "typeOf": govalues.type_name,
    "kindOf": lambda v: {"<nil>": "invalid", "map[string]interface {}": "map", "[]interface {}": "slice"}.get(
        govalues.type_name(v), govalues.type_name(v)
    ),
    # sprig: defaults, conversion, JSON
    "default": lambda default, *given: given[0] if given and not _empty(given[0]) else default,
    "empty": _empty,
    "coalesce": _coalesce,
    "ternary": _ternary,
    "int": _to_int,
    "int64": _to_int,
    "float64": _to_float,
    "atoi": lambda s: _to_int(s) if isinstance(s, str) and re.fullmatch(r"[-+]?\d+", s) else 0,
    "toJson": _to_json,
    "toRawJson": lambda v: govalues.go_json(v, escape_html=False),
    "toPrettyJson": lambda v: govalues.go_json(v, indent="  "),
    "fromJson": _from_json,
    # sprig: lists and dicts
    "list": lambda *a: list(a),
    "first": lambda items: (_list_of(items) or [None])[0],
    "last": lambda items: (_list_of(items) or [None])[-1],
    "has": lambda needle, items: needle in _list_of(items),
    "dict": _dict,
    "get": _get,
    "hasKey": lambda m, key: isinstance(m, dict) and _need_str(key) in m,
    "keys": _keys,
    "values": lambda m: list(m.values()) if isinstance(m, dict) else [],
    # sprig: integer math (sprig converts with cast.ToInt64)
    "add": _int_op(lambda a, b: a + b),
    "add1": lambda a: _to_int(a) + 1,
    "sub": _int_op(lambda a, b: a - b),
    "mul": _int_op(lambda a, b: a * b),
    "div": _div,
    "mod": _mod,
    "max": _int_op(max),
    "min": _int_op(min),
}
