"""Turn pydantic's validation errors into plain problems a YAML author can act on.

Users write YAML, not Python: a problem names the YAML path
(``spec.triggers[1].template.http.url``), says what was expected and what was
found by *type* only (values may be secrets), and for an unknown key suggests
the field that was probably meant, including case-only slips (``openwhisk`` →
``openWhisk``), snake_case spellings and fields put one level too deep
(``atLeastOnce`` under ``template``). No pydantic wording leaks out.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterator, Sequence
from typing import Any

import pydantic

from knevents.spec import models

__all__ = ["format_path", "from_validation_error", "type_name", "unknown_fields"]

_SCALAR_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def type_name(value: Any) -> str:
    """How a YAML author would call the type of ``value``."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_\-]+$")


def format_path(loc: Sequence[str | int]) -> str:
    """``("spec", "triggers", 1, "template")`` → ``spec.triggers[1].template``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out


# -- walking the model classes along an error location ----------------------------------------------------


def _members(annotation: Any) -> list[Any]:
    """The types a field accepts, ``None`` left out; forward references (``"Trigger | None"``) resolved."""
    if isinstance(annotation, typing.ForwardRef):
        annotation = annotation.__forward_arg__
    if isinstance(annotation, str):  # the generator quotes only unions of generated class names
        names = [part.strip() for part in annotation.split("|")]
        return [models.CLASSES[n] for n in names if n in models.CLASSES]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [m for a in typing.get_args(annotation) if a is not type(None) for m in _members(a)]
    return [annotation]


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, pydantic.BaseModel)


def _by_alias(cls: type[pydantic.BaseModel]) -> dict[str, Any]:
    return {(field.alias or name): field.annotation for name, field in cls.model_fields.items()}


def _walk(root: type[pydantic.BaseModel], loc: Sequence[str | int]) -> tuple[list[str | int], list[Any]]:
    """Follow ``loc`` through the model types; returns the YAML path and the types expected at its end.

    Union member tags pydantic inserts into locations (``int``, ``str``, ``function-after[...]``)
    are dropped from the path.
    """
    path: list[str | int] = []
    current: list[Any] = [root]
    for part in loc:
        nxt: list[Any] = []
        matched = False
        for tp in current:
            origin = typing.get_origin(tp)
            if _is_model(tp) and isinstance(part, str) and part in _by_alias(tp):
                nxt.extend(_members(_by_alias(tp)[part]))
                matched = True
            elif origin is list and isinstance(part, int):
                nxt.extend(_members(typing.get_args(tp)[0]))
                matched = True
            elif origin is dict and isinstance(part, str):
                nxt.extend(_members(typing.get_args(tp)[1]))
                matched = True
        if matched:
            path.append(part)
            current = nxt
        elif any(_is_model(tp) for tp in current):
            path.append(part)  # an unknown key: reported at its own path
            current = []
        # else: a union tag; keep the path as it is
    return path, current


def _expected(types_: list[Any]) -> str:
    names: list[str] = []
    for tp in types_:
        origin = typing.get_origin(tp)
        if tp in _SCALAR_NAMES:
            name = _SCALAR_NAMES[tp]
        elif origin is list:
            name = "a list"
        elif origin is dict or _is_model(tp):
            name = "a mapping"
        else:
            name = "a value"
        if name not in names:
            names.append(name)
    if not names:
        return "a value"
    return " or ".join(names)


# -- suggestions ------------------------------------------------------------------------------------------


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _suggest(key: str, candidates: list[str]) -> str | None:
    for candidate in candidates:
        if candidate.lower() == key.lower():
            return f"did you mean `{candidate}`? (field names are case-sensitive)"
    if "_" in key and _camel(key) in candidates:
        return f"did you mean `{_camel(key)}`? (YAML field names are camelCase)"
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    if close:
        return f"did you mean `{close[0]}`?"
    return None


LEGACY: dict[tuple[str, str], str] = {
    (
        "EventSourceSpec",
        "type",
    ): "`spec.type` was removed from Argo Events; the type is the key (webhook:, minio: …)",
    ("HTTPTrigger", "serverURL"): "`serverURL` was renamed `url` in Argo Events",
    **{
        ("StandardK8STrigger", key): f"`{key}` was removed from Argo Events' k8s trigger; "
        "the resource's own `apiVersion` and `kind` say what it is"
        for key in ("group", "version", "resource")
    },
    ("URLArtifact", "verifycert"): "did you mean `verifyCert`? (field names are case-sensitive)",
    (
        "ConfigMapKeySelector",
        "namespace",
    ): "a ConfigMap is read from the sensor's own namespace; drop `namespace`",
}
"""Fields older Argo Events versions had, with what to write instead: (class, key) → hint."""


def _unknown_field(root: type[pydantic.BaseModel], path: list[str | int]) -> str:
    key = str(path[-1])
    _, parents = _walk(root, path[:-1])
    models_here = [tp for tp in parents if _is_model(tp)]
    candidates = sorted({alias for tp in models_here for alias in _by_alias(tp)})
    message = f"unknown field `{key}`"
    legacy = [LEGACY[(tp.__name__, key)] for tp in models_here if (tp.__name__, key) in LEGACY]
    hint = legacy[0] if legacy else _suggest(key, candidates)
    if hint is None and len(path) >= 2:
        _, grandparents = _walk(root, path[:-2])
        upper = sorted({alias for tp in grandparents if _is_model(tp) for alias in _by_alias(tp)})
        if key in upper:
            hint = f"`{key}` belongs one level up, beside `{path[-2]}`"
    if hint is None and candidates and len(candidates) <= 12:
        hint = "expected one of: " + ", ".join(f"`{c}`" for c in candidates)
    return f"{message}; {hint}" if hint else message


# -- the translation --------------------------------------------------------------------------------------


def _message(root: type[pydantic.BaseModel], error: Any, path: list[str | int], expected: list[Any]) -> str:
    kind = error["type"]
    got = type_name(error.get("input"))
    if kind == "extra_forbidden":
        return _unknown_field(root, path)
    if kind == "missing":
        return f"missing required field `{path[-1]}`" if path else "missing required field"
    if kind in ("int_from_float",):
        return "expected a whole number, got a fraction"
    if kind in ("too_short", "too_long"):
        return "wrong number of items"
    return f"expected {_expected(expected)}, got {got}"


def from_validation_error(
    root: type[pydantic.BaseModel], exc: pydantic.ValidationError
) -> Iterator[tuple[str, str]]:
    """``(path, message)`` for every error, one per path (union alternatives are merged)."""
    seen: dict[str, str] = {}
    for error in exc.errors(include_url=False):
        path, expected = _walk(root, error["loc"])
        if error["type"] == "missing":
            expected = []
        text = format_path(path)
        if text in seen and error["type"] not in ("extra_forbidden", "missing"):
            continue  # the other members of a union: already reported
        message = _message(root, error, path, expected or _expected_at(root, path))
        key = f"{text}\0{message}"
        if key in seen:
            continue
        seen[text] = message
        seen[key] = message
        yield text, message


def unknown_fields(
    root: type[pydantic.BaseModel], exc: pydantic.ValidationError
) -> list[tuple[list[str | int], str]]:
    """``(YAML path, message with a "did you mean …?")`` of every unknown field among the errors, once each."""
    out: dict[str, tuple[list[str | int], str]] = {}
    for error in exc.errors(include_url=False):
        if error["type"] == "extra_forbidden":
            path, _ = _walk(root, error["loc"])
            out.setdefault(format_path(path), (path, _unknown_field(root, path)))
    return list(out.values())


def _expected_at(root: type[pydantic.BaseModel], path: list[str | int]) -> list[Any]:
    _, expected = _walk(root, path)
    return expected
