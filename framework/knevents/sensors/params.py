"""Trigger parameters, as argo-events ``pkg/sensors/triggers/params.go`` resolves them.

A parameter takes a value from one dependency's event and writes it at
``dest`` (sjson path) into a JSON document: the trigger template
(``Trigger.parameters``), a Kubernetes resource (``k8s.parameters``,
``argoWorkflow.parameters``), a trigger's own spec (``http.parameters`` …) or
a payload built from nothing (``http.payload``, ``nats.payload`` …).

Resolution order, as Argo's ``ResolveParamValue``: no key and no template →
``value`` or the whole event; ``dataKey``/``dataTemplate`` override
``contextKey``/``contextTemplate``; a template is tried first, then the key,
then ``value``; an absent dependency uses ``value`` or skips the parameter.
``useRawData`` writes JSON blocks, numbers, booleans and null raw; strings and
template results are always written as JSON strings. ``operation``
``append``/``prepend`` concatenate with the current value as a string.

Difference from Argo: a *payload* parameter whose dependency has no event in
the firing and no ``value`` is a :class:`ParamError` naming it (Argo
dereferences a nil pointer and the sensor pod crashes).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pygjson
import yaml

from knevents import errors, events
from knevents.sensors import gotemplate, paths

__all__ = [
    "CompiledParam",
    "ParamError",
    "ParamSpecError",
    "apply_params",
    "compile_params",
    "construct_payload",
]

_STRING = paths.STRING


ParamError = errors.ParamError


ParamSpecError = errors.ParamSpecError


@dataclass(frozen=True)
class CompiledParam:
    """One TriggerParameter with its templates compiled."""

    where: str
    dependency: str
    dest: str
    operation: str
    raw: bool
    default: str | None
    key: str  # dataKey wins over contextKey, as in Argo
    template: gotemplate.Template | None
    from_data: bool  # key/template read the data (else the context)
    whole_event: bool  # no key and no template


def compile_params(
    specs: Sequence[Any] | None, where: str, dependencies: Sequence[str]
) -> tuple[CompiledParam, ...]:
    """Compile a list of TriggerParameter models; raises ParamSpecError."""
    compiled = []
    for index, spec in enumerate(specs or ()):
        at = f"{where}[{index}]"
        src = spec.src
        if src is None:
            raise ParamSpecError(f"{at}.src", "src is required")
        operation = (spec.operation or "overwrite").lower()
        if operation not in ("overwrite", "append", "prepend"):
            raise ParamSpecError(f"{at}.operation", f"unsupported operation {spec.operation!r}")
        if src.dependency_name not in dependencies:
            raise ParamSpecError(f"{at}.src.dependencyName", f"unknown dependency {src.dependency_name!r}")
        from_data = bool(src.data_key or src.data_template)
        key = (src.data_key if from_data else src.context_key) or ""
        template_text = (src.data_template if from_data else src.context_template) or ""
        template = None
        if template_text:
            field = "dataTemplate" if from_data else "contextTemplate"
            try:
                template = gotemplate.compile_template(template_text)
            except gotemplate.TemplateError as exc:
                raise ParamSpecError(f"{at}.src.{field}", str(exc)) from None
        dest = spec.dest or ""
        if dest:
            try:
                paths.split_path(dest)
            except ValueError as exc:
                raise ParamSpecError(f"{at}.dest", str(exc)) from None
        compiled.append(
            CompiledParam(
                where=at,
                dependency=src.dependency_name,
                dest=dest,
                operation=operation,
                raw=bool(src.use_raw_data),
                default=src.value,
                key=key,
                template=template,
                from_data=from_data,
                whole_event=not (key or template),
            )
        )
    return tuple(compiled)


# --- the event as Argo marshals it -----------------------------------------------------------


def _go_string(text: str) -> str:
    return gotemplate.go_json(text)


def context_json(event: events.Event) -> bytes:
    """``json.Marshal(event.Context)`` of Argo's v1alpha1.EventContext (struct field order)."""
    when = "null" if event.time is None else _go_string(events.format_time(event.time.replace(microsecond=0)))
    fields = [
        ("id", _go_string(event.id)),
        ("source", _go_string(event.source)),
        ("specversion", _go_string(event.specversion)),
        ("type", _go_string(event.type)),
        ("datacontenttype", _go_string(event.datacontenttype or "")),
        ("subject", _go_string(event.subject or "")),
        ("time", when),
    ]
    return ("{" + ",".join(f'"{k}":{v}' for k, v in fields) + "}").encode()


def event_json(event: events.Event) -> bytes:
    """``json.Marshal`` of Argo's v1alpha1.Event: the context, and the data as base64."""
    data = "null" if event.data is None else '"' + base64.b64encode(event.data).decode() + '"'
    return b'{"context":' + context_json(event) + b',"data":' + data.encode() + b"}"


def _data_json(event: events.Event) -> bytes:
    content_type = (event.datacontenttype or events.JSON_CONTENT_TYPE).split(";", 1)[0].strip().lower()
    raw = event.data or b""
    if content_type in ("application/x-yaml", "application/yaml", "text/yaml"):
        try:
            return json.dumps(yaml.safe_load(raw)).encode()
        except (yaml.YAMLError, TypeError, ValueError) as exc:
            raise ParamError(f"failed converting yaml event data to JSON: {exc}") from None
    if (
        content_type == events.JSON_CONTENT_TYPE
        or content_type.endswith("+json")
        or content_type == "text/json"
    ):
        if not raw or paths.unsafe_json(raw) is not None or not pygjson.validate(raw):
            raise ParamError("event data is not valid JSON (or nests too deeply)")
        try:  # gjson validates the structure, not the encoding; reading a value would then fail later
            raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ParamError("event data is not valid UTF-8 JSON") from None
        return raw
    raise ParamError(f"unsupported event content type: {event.datacontenttype}")


def resolve_value(param: CompiledParam, fired: Mapping[str, events.Event]) -> tuple[str | None, str]:
    """The parameter's value and its gjson type name (``None`` = skip the parameter)."""
    event = fired.get(param.dependency)
    if event is None:
        if param.default is not None:
            return param.default, _STRING
        return None, _STRING
    if param.whole_event:
        if param.default is not None:
            return param.default, _STRING
        return event_json(event).decode(), _STRING
    try:
        payload = _data_json(event) if param.from_data else context_json(event)
    except ParamError as exc:
        if param.default is not None:
            return param.default, _STRING
        raise ParamError(
            f"{param.where}: unable to resolve '{param.dependency}' parameter value: {exc}"
        ) from None
    problem = ""
    if param.template is not None:
        try:
            out = param.template.render({"Input": gotemplate.go_value(payload)})
        except (gotemplate.TemplateError, ValueError, RecursionError) as exc:
            out, problem = "", f"template failed: {exc}"
        else:
            if out not in ("", "<no value>"):
                return out, _STRING
            problem = f"template {param.template.source!r} evaluated to empty string or no value"
    if param.key:
        found = paths.get(payload, param.key)
        if found is not None:
            if found.type in (paths.JSON, paths.NULL):
                return found.raw, found.type
            return found.text, found.type
        problem = f"key {param.key} does not exist in the event {'data' if param.from_data else 'context'}"
    if param.default is not None:
        return param.default, _STRING
    raise ParamError(f"{param.where}: unable to resolve '{param.dependency}' parameter value: {problem}")


def _write(document: bytes | None, param: CompiledParam, value: str, kind: str) -> bytes:
    try:
        return paths.set_path(document, param.dest, value, raw=kind != _STRING and param.raw)
    except ValueError as exc:
        raise ParamError(f"{param.where}: cannot set {param.dest!r}: {exc}") from None


def apply_params(
    document: bytes, params: Sequence[CompiledParam], fired: Mapping[str, events.Event]
) -> bytes:
    """Argo's ``ApplyParams``: each parameter written into a JSON document, in order."""
    for param in params:
        value, kind = resolve_value(param, fired)
        if value is None:
            continue
        if not param.dest:
            raise ParamError(f"{param.where}: dest is required")
        if param.operation in ("append", "prepend"):
            current = paths.get(document, param.dest)
            if current is not None:
                kind = _STRING
                value = current.text + value if param.operation == "append" else value + current.text
        document = _write(document, param, value, kind)
    return document


def construct_payload(params: Sequence[CompiledParam], fired: Mapping[str, events.Event]) -> bytes | None:
    """Argo's ``ConstructPayload``: a document built from nothing (``None`` when nothing was set)."""
    payload: Any = None
    touched = False
    for param in params:
        value, kind = resolve_value(param, fired)
        if not param.dest:
            if value is not None:
                return value.encode()
            continue
        if value is None:
            raise ParamError(
                f"{param.where}: dependency {param.dependency!r} has no event in this firing "
                f"and the parameter has no default value"
            )
        try:
            payload = paths.set_in(payload, param.dest, value, raw=kind != _STRING and param.raw)
        except ValueError as exc:
            raise ParamError(f"{param.where}: cannot set {param.dest!r}: {exc}") from None
        touched = True
    return paths.dumps(payload).encode() if touched else None
