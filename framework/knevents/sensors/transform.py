"""Dependency transforms (``transform.jq`` / ``transform.script``), applied before filters.

As argo-events ``pkg/sensors/dependencies/transform.go``: the event data must
be a JSON object; ``jq`` takes the first output, which must be an object;
``script`` (Lua) gets the object as the global ``event`` and must return a
table. The new data is JSON as Go's ``json.Marshal`` writes it (sorted keys)
and the content type becomes ``application/json``. An event without data is
passed through unchanged. When both are set, ``jq`` wins, as in Argo.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import jq

from knevents import errors, events
from knevents.sensors import gotemplate, lua

__all__ = ["CompiledTransform", "TransformError", "TransformSpecError", "compile_transform"]


TransformError = errors.TransformError


TransformSpecError = errors.TransformSpecError


class CompiledTransform:
    """A dependency's transform, compiled once."""

    def __init__(self, jq_program: str | None, script: str | None, where: str = "transform") -> None:
        self.jq: Any = None
        self.script: lua.LuaScript | None = None
        if jq_program:
            try:
                self.jq = jq.compile(jq_program)
            except ValueError as exc:
                raise TransformSpecError(f"{where}.jq", str(exc).splitlines()[0]) from None
        elif script:
            try:
                self.script = lua.LuaScript(script, "transform.script")
            except lua.LuaError as exc:
                raise TransformSpecError(f"{where}.script", str(exc)) from None

    def apply(self, event: events.Event) -> events.Event:
        """The event with transformed data; raises TransformError."""
        if (self.jq is None and self.script is None) or not event.data:
            return event
        try:
            payload = json.loads(event.data)
        except (ValueError, RecursionError):
            raise TransformError("event data is not valid JSON (or nests too deeply)") from None
        if not isinstance(payload, dict):
            raise TransformError("event data is not a JSON object")
        if self.jq is not None:
            try:
                outputs = iter(self.jq.input_value(payload))
                result = next(outputs)
            except StopIteration:
                raise TransformError("no output available from the jq command execution") from None
            except ValueError as exc:
                raise TransformError(f"jq: {exc}") from None
            if not isinstance(result, dict):
                raise TransformError("jq transformation output must be a JSON object")
        else:
            assert self.script is not None
            try:
                result = self.script.call(payload)
            except lua.LuaError as exc:
                raise TransformError(str(exc)) from None
            if not isinstance(result, dict | list):
                raise TransformError("transformation script output type is not of lua table")
        try:
            data = gotemplate.go_json(result).encode()
        except (gotemplate.TemplateError, RecursionError) as exc:
            raise TransformError(str(exc)) from None
        return replace(event, data=data, datacontenttype=events.JSON_CONTENT_TYPE)


def compile_transform(spec: Any, where: str = "transform") -> CompiledTransform | None:
    """Compile a dependency's ``transform`` (``None`` when absent or empty)."""
    if spec is None:
        return None
    jq_program = getattr(spec, "jq", None)
    script = getattr(spec, "script", None)
    if not jq_program and not script:
        return None
    return CompiledTransform(jq_program, script, where)
