#!/usr/bin/env python3
"""Generate framework/knevents/spec/models.py from Argo Events' schema.json.

Usage: ``python scripts/gen_spec_models.py [SCHEMA] [OUT]`` (defaults:
``$KNEVENTS_ARGO_EXAMPLES/schema.json`` or ../shared/argo-events/schema.json,
and framework/knevents/spec/models.py). The output is committed; rerun this
when the upstream schema moves, never edit models.py by hand.

What it does: walks every definition reachable from ``Sensor``, ``EventSource``
and ``EventBus``, and writes one pydantic v2 model per definition (named by the
last component of its schema name), snake_case attributes with the camelCase
YAML name as alias, in dependency order so no forward reference needs a
rebuild (annotations are real types, not strings: pydantic builds ~130 classes ~30% faster that
way, which matters on a function's cold start). Kubernetes' own types are kept free-form (``dict[str, Any]``) except
the few knevents reads (``ObjectMeta``, ``SecretKeySelector``,
``ConfigMapKeySelector``, ``LocalObjectReference``). ``status`` blocks are
accepted and not validated. knevents' extensions come from
framework/knevents/spec/extensions.py.

Upstream's ``required`` lists come from Go struct tags and are not enforced by
Argo, so only the fields in ``REQUIRED`` below are required here; the rest are
optional and default to ``None``.
"""

from __future__ import annotations

import importlib.util
import json
import keyword
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ARGO = "io.argoproj.events.v1alpha1."
ROOTS = [ARGO + "Sensor", ARGO + "EventSource", ARGO + "EventBus"]

K8S_MODELS = {
    "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
    "io.k8s.api.core.v1.SecretKeySelector",
    "io.k8s.api.core.v1.ConfigMapKeySelector",
    "io.k8s.api.core.v1.LocalObjectReference",
}
SCALARS = {
    "io.k8s.apimachinery.pkg.apis.meta.v1.Time": "str",
    "io.k8s.apimachinery.pkg.api.resource.Quantity": "int | float | str",
    ARGO + "Int64OrString": "int | str",
    ARGO + "Amount": "int | float | str",
    ARGO + "K8SResource": "dict[str, Any]",
}

# Fields that must be present, by class. Argo's own validation (or plain sense) needs them.
REQUIRED: dict[str, set[str]] = {
    "Sensor": {"metadata", "spec"},
    "EventSource": {"metadata", "spec"},
    "EventBus": {"metadata", "spec"},
    "SensorSpec": {"dependencies", "triggers"},
    "Trigger": {"template"},
    "EventDependency": {"name", "eventSourceName", "eventName"},
    "TriggerTemplate": {"name"},
    "TriggerParameterSource": {"dependencyName"},
    "DataFilter": {"path", "type"},
    "ExprFilter": {"expr"},
    "PayloadField": {"path", "name"},
    "TimeFilter": {"start", "stop"},
    "SecretKeySelector": {"key"},
    "ConfigMapKeySelector": {"key"},
    "S3Bucket": {"name"},
    "HTTPTrigger": {"url"},
    "NATSTrigger": {"url", "subject"},
    "AWSLambdaTrigger": {"functionName"},
    "Selector": {"key"},
}

# Upstream objects whose unknown keys Kubernetes itself tolerates.
EXTRA_ALLOWED = {"ObjectMeta"}


def snake(name: str) -> str:
    """camelCase (with acronyms: apiURL, roleARN, krbCCacheSecret) to snake_case."""
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    text = text.replace("-", "_").lower()
    return text + "_" if keyword.iskeyword(text) else text


def short(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def class_name(defname: str) -> str:
    return defname.rsplit(".", 1)[-1]


def first_sentence(text: str | None) -> str:
    if not text:
        return ""
    text = " ".join(text.split())
    match = re.match(r"(.+?\.)(\s|$)", text)
    sentence = match.group(1) if match else text
    sentence = sentence.replace("\\", "\\\\").replace('"""', "'''")
    return sentence + " " if sentence.endswith('"') else sentence


class Generator:
    def __init__(self, schema: dict[str, Any], extensions: Any) -> None:
        self.defs: dict[str, dict[str, Any]] = dict(schema["definitions"])
        for name, definition in extensions.DEFINITIONS.items():
            self.defs[name] = definition
        for name, props in extensions.PATCHES.items():
            definition = json.loads(json.dumps(self.defs[name]))
            definition.setdefault("properties", {}).update(props)
            self.defs[name] = definition
        self.order: list[str] = []
        self.visiting: set[str] = set()

    # -- types -------------------------------------------------------------------

    def is_model(self, name: str) -> bool:
        if name in SCALARS:
            return False
        if name.startswith("io.k8s."):
            return name in K8S_MODELS
        return True

    def type_of(self, prop: dict[str, Any]) -> str:
        if "$ref" in prop:
            name = short(prop["$ref"])
            if name in SCALARS:
                return SCALARS[name]
            if not self.is_model(name):
                return "dict[str, Any]"
            self.visit(name)
            return class_name(name)
        kind = prop.get("type")
        if isinstance(kind, list):
            return " | ".join(self.type_of({"type": k}) for k in kind)
        if kind == "string":
            return "str"
        if kind == "integer":
            return "int"
        if kind == "number":
            return "float"
        if kind == "boolean":
            return "bool"
        if kind == "array":
            return f"list[{self.type_of(prop.get('items', {}))}]"
        if kind == "object" or kind is None:
            extra = prop.get("additionalProperties")
            if isinstance(extra, dict) and extra:
                return f"dict[str, {self.type_of(extra)}]"
            return "dict[str, Any]"
        raise ValueError(f"unhandled schema type {prop!r}")

    # -- walking -----------------------------------------------------------------

    def visit(self, name: str) -> None:
        if name in self.order or name in self.visiting:
            return
        self.visiting.add(name)
        definition = self.defs[name]
        base = definition.get("x-knevents-base")
        if base:
            self.visit(base)
        for prop_name, prop in sorted(definition.get("properties", {}).items()):
            if prop_name == "status" and name in ROOTS:
                continue
            self.type_of(prop)
        self.visiting.discard(name)
        self.order.append(name)

    # -- output ------------------------------------------------------------------

    def forward(self, annotation: str, current: str) -> bool:
        """Whether ``annotation`` names a class not defined before ``current``."""
        defined = [class_name(n) for n in self.order]
        before = set(defined[: defined.index(current)])
        names = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", annotation)) & set(defined)
        return bool(names - before)

    def render_class(self, name: str) -> str:
        definition = self.defs[name]
        cls = class_name(name)
        base_name = definition.get("x-knevents-base")
        base = class_name(base_name) if base_name else "_Model"
        if cls in EXTRA_ALLOWED:
            base = "_OpenModel"
        doc = first_sentence(definition.get("description")) or f"{cls}."
        if name.startswith("io.knevents."):
            doc = doc if "knevents extension" in doc else f"{doc} (knevents extension)"
        lines = [f"class {cls}({base}):", f'    """{doc}"""', ""]
        required = REQUIRED.get(cls, set())
        for prop_name, prop in sorted(definition.get("properties", {}).items()):
            attr = snake(prop_name)
            if prop_name == "status" and name in ROOTS:
                annotation = "dict[str, Any] | None"
                lines.append(f'    {attr}: {annotation} = Field(default=None, alias="{prop_name}")')
                lines.append('    """Written by the controller; accepted and ignored."""')
                continue
            annotation = self.type_of(prop)
            if prop_name not in required:
                annotation += " | None"
            if self.forward(annotation, cls):
                annotation = f'"{annotation}"'  # a class defined later (or this one): resolved on first use
            if prop_name in required:
                lines.append(f'    {attr}: {annotation} = Field(alias="{prop_name}")')
            else:
                lines.append(f'    {attr}: {annotation} = Field(default=None, alias="{prop_name}")')
            text = first_sentence(prop.get("description"))
            if text:
                lines.append(f'    """{text}"""')
        if len(lines) == 3:
            lines.append("    pass")
        return "\n".join(lines)

    def render(self, source: str) -> str:
        for root in ROOTS:
            self.visit(root)
        for name in self.defs:
            if name.startswith("io.knevents."):
                self.visit(name)
        classes = [class_name(n) for n in self.order]
        dupes = {c for c in classes if classes.count(c) > 1}
        if dupes:
            raise SystemExit(f"class name collision: {sorted(dupes)}")
        exports = ["CLASSES", *sorted(classes)]
        head = textwrap.dedent(
            f'''\
            """Argo Events manifests (argoproj.io/v1alpha1) as pydantic models.

            GENERATED by scripts/gen_spec_models.py from {source}
            plus framework/knevents/spec/extensions.py. DO NOT EDIT: change the generator and rerun it.

            Attributes are the snake_case of the YAML's camelCase names, which are the aliases. Absent optional
            fields are ``None``; free-form Kubernetes objects are ``dict[str, Any]``. Load manifests through
            ``knevents.spec`` (which reports every problem with its path), not by calling these directly.
            """

            from typing import Any

            from pydantic import BaseModel, ConfigDict, Field

            __all__ = @ALL@


            class _Model(BaseModel):
                """Common configuration: aliases as in YAML, no unknown keys, immutable."""

                model_config = ConfigDict(
                    populate_by_name=True,
                    extra="forbid",
                    frozen=True,
                    coerce_numbers_to_str=True,
                    defer_build=True,
                )


            class _OpenModel(_Model):
                """Kubernetes metadata: unknown keys (uid, resourceVersion …) are kept, not rejected."""

                model_config = ConfigDict(extra="allow")
            '''
        )
        names = "".join(f'    "{e}",\n' for e in exports)
        head = head.replace("@ALL@", "[\n" + names + "]")
        body = "\n\n\n".join(self.render_class(n) for n in self.order)
        registry = ",\n".join(f'    "{class_name(n)}": {class_name(n)}' for n in self.order)
        tail = f"\n\nCLASSES: dict[str, type[BaseModel]] = {{\n{registry},\n}}\n"
        tail += '"""Every generated model by class name."""\n'
        return head + "\n\n" + body + tail


def load_extensions() -> Any:
    path = ROOT / "framework" / "knevents" / "spec" / "extensions.py"
    spec = importlib.util.spec_from_file_location("_knevents_spec_extensions", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str]) -> int:
    default_root = os.environ.get("KNEVENTS_ARGO_EXAMPLES") or str(ROOT.parent / "shared" / "argo-events")
    schema_path = Path(argv[1]) if len(argv) > 1 else Path(default_root) / "schema.json"
    out = Path(argv[2]) if len(argv) > 2 else ROOT / "framework" / "knevents" / "spec" / "models.py"
    schema = json.loads(schema_path.read_text())
    text = Generator(schema, load_extensions()).render("argo-events' schema.json (argoproj.io/v1alpha1)")
    out.write_text(text)
    ruff = Path(sys.executable).parent / "ruff"
    subprocess.run([str(ruff), "format", "--quiet", str(out)], check=False)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
