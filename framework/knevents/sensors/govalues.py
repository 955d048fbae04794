"""Go's view of values, as text/template and sprig print and encode them.

Templates in Argo sensors run on Go ``interface{}`` values decoded from JSON:
every number a float64, objects ``map[string]interface{}``, a missing map key
an invalid reflect.Value. This module holds that value model (``MISSING``),
how ``fmt`` prints it (``%v``: ``1e+06``, ``map[a:1]``, ``<no value>``),
``printf``'s verbs, and ``encoding/json`` as sprig's ``toJson`` writes it
(sorted keys, HTML characters escaped). Pure; shared by :mod:`gotemplate`
and :mod:`sprig`.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any

from knevents import errors

__all__ = [
    "MISSING",
    "TemplateError",
    "go_float",
    "go_json",
    "go_print",
    "go_quote",
    "go_value",
    "printf",
    "sprint",
    "truth",
    "type_name",
]


TemplateError = errors.TemplateError


class _Missing:
    """Go's invalid reflect.Value: a missing map key. Prints ``<no value>``."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


# --- printing values as Go's fmt %v does -------------------------------------------------


def go_float(value: float) -> str:
    """``strconv.FormatFloat(v, 'g', -1, 64)`` as fmt's %v prints a float64."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    point = len(text) + exponent  # position of the decimal point
    exp = point - 1
    prefix = "-" if sign else ""
    # %v is %g with the shortest digits: an exponent when exp < -4 or exp >= 6 (Go's eprec).
    if exp < -4 or exp >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{text}"
    if point >= len(text):
        return prefix + text + "0" * (point - len(text))
    return f"{prefix}{text[:point]}.{text[point:]}"


def go_print(value: Any, top: bool = True) -> str:
    """A value as ``fmt.Sprint`` prints it (what ``{{ x }}`` writes)."""
    if value is MISSING or (value is None and top):
        return "<no value>"
    if value is None:
        return "<nil>"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, dict):
        inner = " ".join(f"{go_print(k, False)}:{go_print(value[k], False)}" for k in sorted(value, key=str))
        return f"map[{inner}]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_print(v, False) for v in value) + "]"
    if isinstance(value, bytes):
        return "[" + " ".join(str(b) for b in value) + "]"
    return str(value)


def go_value(data: bytes | str) -> Any:
    """JSON decoded as Go's ``interface{}`` (every number a float64)."""
    return json.loads(data, parse_int=float)


# --- encoding/json, as sprig's toJson uses it -------------------------------------------


def _json_float(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        raise TemplateError(f"json: unsupported value: {go_float(value)}")
    absolute = abs(value)
    if absolute != 0 and (absolute < 1e-6 or absolute >= 1e21):
        text = go_float(value)
        return re.sub(r"e([+-])0(\d)$", r"e\1\2", text)
    text = format(Decimal(repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


_HTML_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def go_json(value: Any, *, escape_html: bool = True, indent: str | None = None, level: int = 0) -> str:
    """``json.Marshal`` of a Go interface{} value (sorted keys, Go number format)."""
    if value is None or value is MISSING:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _json_float(value)
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        if escape_html:
            text = re.sub("[<>&\u2028\u2029]", lambda m: _HTML_ESCAPES[m.group(0)], text)
        return text
    pad = "" if indent is None else "\n" + indent * (level + 1)
    end = "" if indent is None else "\n" + indent * level
    colon = ":" if indent is None else ": "
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [
            f"{pad}{go_json(str(k), escape_html=escape_html)}{colon}"
            f"{go_json(value[k], escape_html=escape_html, indent=indent, level=level + 1)}"
            for k in sorted(value, key=str)
        ]
        return "{" + ",".join(items) + end + "}"
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        items = [f"{pad}{go_json(v, escape_html=escape_html, indent=indent, level=level + 1)}" for v in value]
        return "[" + ",".join(items) + end + "]"
    raise TemplateError(f"json: unsupported type {type(value).__name__}")


def truth(value: Any) -> bool:
    if value is MISSING or value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str | list | tuple | dict | bytes):
        return len(value) > 0
    return True


def type_name(value: Any) -> str:
    if value is MISSING or value is None:
        return "<nil>"
    return {
        bool: "bool",
        int: "int",
        float: "float64",
        str: "string",
        dict: "map[string]interface {}",
        list: "[]interface {}",
    }.get(type(value), type(value).__name__)


# --- fmt.Sprintf -----------------------------------------------------------------------------


_VERB = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d+))?([a-zA-Z%])")


def go_quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _format_one(flags: str, width: str | None, prec: str | None, verb: str, arg: Any) -> str:
    if verb in ("v", "s") and isinstance(arg, str):
        text = arg if prec is None else arg[: int(prec)]
    elif verb == "v" or (verb == "s" and isinstance(arg, list | dict)):
        text = go_print(arg, top=False)
    elif verb == "d" and isinstance(arg, int) and not isinstance(arg, bool):
        text = str(arg)
    elif verb in "feEgG" and isinstance(arg, float | int) and not isinstance(arg, bool):
        text = (
            go_float(float(arg))
            if verb == "g" and prec is None
            else f"%{'.' + prec if prec else ''}{verb}" % arg
        )
        if verb == "f" and prec is None:
            text = f"{float(arg):f}"
    elif verb == "q" and isinstance(arg, str):
        text = go_quote(arg)
    elif verb == "t" and isinstance(arg, bool):
        text = "true" if arg else "false"
    elif verb in "xX" and isinstance(arg, int | str) and not isinstance(arg, bool):
        text = arg.encode().hex() if isinstance(arg, str) else format(arg, "x")
        text = text.upper() if verb == "X" else text
    else:
        return f"%!{verb}({type_name(arg)}={go_print(arg, top=False)})"
    if width and width != "*":
        text = (
            text.ljust(int(width)) if "-" in flags else text.rjust(int(width), "0" if "0" in flags else " ")
        )
    return text


def printf(fmt: Any, *args: Any) -> str:
    if not isinstance(fmt, str):
        raise TemplateError("invalid value; expected string")
    pattern = fmt
    remaining = list(args)
    out: list[str] = []
    last = 0
    for match in _VERB.finditer(pattern):
        out.append(pattern[last : match.start()])
        last = match.end()
        flags, width, prec, verb = match.groups()
        if verb == "%":
            out.append("%")
            continue
        if not remaining:
            out.append(f"%!{verb}(MISSING)")
            continue
        out.append(_format_one(flags, width, prec, verb, remaining.pop(0)))
    out.append(pattern[last:])
    if remaining:
        out.append(
            "%!(EXTRA " + ", ".join(f"{type_name(a)}={go_print(a, top=False)}" for a in remaining) + ")"
        )
    return "".join(out)


def sprint(*args: Any) -> str:
    # fmt.Sprint adds spaces between operands when neither is a string.
    out: list[str] = []
    for i, arg in enumerate(args):
        if i and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(go_print(arg, top=False))
    return "".join(out)
