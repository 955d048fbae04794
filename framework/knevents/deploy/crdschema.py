"""Turn a CustomResourceDefinition's ``openAPIV3Schema`` into a JSON Schema, as the API server applies it.

``knevents render --check`` and the deploy tests validate rendered objects
against Knative's own CRDs rather than against models generated from them:
what a cluster accepts is the structural schema, read with the API server's
rules, which differ from plain OpenAPI in a few places:

* unknown fields: ``kubectl apply`` asks for strict field validation, so a
  field a schema does not declare is an error, except under
  ``x-kubernetes-preserve-unknown-fields: true``;
* ``x-kubernetes-int-or-string``: an integer or a string, whatever ``type`` says;
* ``nullable``: ``null`` is accepted;
* ``metadata`` of the object itself is ObjectMeta, which the CRD leaves as a
  bare ``object`` (the API server checks it, not the schema).

Knative also gates some fields behind feature flags that are off by default
(``kubernetes.podspec-fieldref`` …); its CRDs say so in the field's
description ("behind a feature flag - NAME"). Such a field gets the keyword
``x-knative-feature-flag`` here; :mod:`knevents.deploy.check` reports it as
the admission webhook would reject it. Descriptions are dropped otherwise,
which keeps the schemas vendored in the package small.

Run ``python -m knevents.deploy.crdschema CRD_DIR... -o FILE`` to regenerate
the vendored file from Knative's CRD YAML.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = ["FEATURE_FLAG", "convert", "from_crds", "load_dir", "main"]

FEATURE_FLAG = "x-knative-feature-flag"
"""Keyword marking a field Knative only admits when a feature flag (its value) is turned on."""

_FLAG_TEXT = re.compile(r"behind a feature flag - ([\w.-]+)")
_COPIED = (
    "enum",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "uniqueItems",
    "multipleOf",
    "minProperties",
    "maxProperties",
    "required",
)
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
OBJECT_META: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "maxLength": 253, "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"},
        "namespace": {"type": "string", "maxLength": 63, "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "labels": _STRING_MAP,
        "annotations": _STRING_MAP,
    },
}
"""The part of ObjectMeta knevents renders, strictly (a typo in ``metadata`` is an error too)."""


def convert(node: Mapping[str, Any]) -> dict[str, Any]:
    """One structural-schema node as JSON Schema (strict about unknown fields)."""
    out: dict[str, Any] = {}
    if node.get("x-kubernetes-int-or-string"):
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    elif "type" in node:
        out["type"] = [node["type"], "null"] if node.get("nullable") else node["type"]
    out.update({key: node[key] for key in _COPIED if key in node})
    flag = _FLAG_TEXT.search(str(node.get("description") or ""))
    if flag:
        out[FEATURE_FLAG] = flag.group(1)
    if "properties" in node:
        out["properties"] = {name: convert(child) for name, child in node["properties"].items()}
    if "items" in node:
        out["items"] = convert(node["items"])
    for combinator in ("allOf", "anyOf", "oneOf"):
        if combinator in node:
            out[combinator] = [convert(child) for child in node[combinator]]
    additional = node.get("additionalProperties")
    if isinstance(additional, Mapping):
        out["additionalProperties"] = convert(additional)
    elif additional is not None:
        out["additionalProperties"] = bool(additional)
    elif node.get("type") == "object" and not node.get("x-kubernetes-preserve-unknown-fields"):
        # strict field validation: what the schema does not declare is an unknown field
        out["additionalProperties"] = False
    if node.get("x-kubernetes-embedded-resource"):
        props = out.setdefault("properties", {})
        for key in ("apiVersion", "kind"):
            props.setdefault(key, {"type": "string"})
        props.setdefault("metadata", {"type": "object"})
    return out


def _top(schema: Mapping[str, Any], api_version: str, kind: str) -> dict[str, Any]:
    out = convert(schema)
    props = out.setdefault("properties", {})
    props["apiVersion"] = {"const": api_version}
    props["kind"] = {"const": kind}
    props["metadata"] = OBJECT_META
    out["required"] = sorted({*out.get("required", ()), "apiVersion", "kind", "metadata"})
    return out


def from_crds(docs: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """``{"apiVersion kind": JSON Schema}`` for every served version of every CRD in ``docs``."""
    out: dict[str, dict[str, Any]] = {}
    for doc in docs:
        if not isinstance(doc, Mapping) or doc.get("kind") != "CustomResourceDefinition":
            continue
        spec = doc["spec"]
        kind = spec["names"]["kind"]
        for version in spec["versions"]:
            if not version.get("served", True) or "schema" not in version:
                continue
            api_version = f"{spec['group']}/{version['name']}"
            out[f"{api_version} {kind}"] = _top(version["schema"]["openAPIV3Schema"], api_version, kind)
    return out


def load_dir(*directories: Path) -> dict[str, dict[str, Any]]:
    """The schemas of every CRD in the YAML files directly under ``directories``."""
    out: dict[str, dict[str, Any]] = {}
    for directory in directories:
        for path in sorted(directory.glob("*.yaml")):
            out.update(from_crds(yaml.safe_load_all(path.read_text())))
    return out


def main(argv: list[str] | None = None) -> int:
    """Write the schemas of the CRDs in the given directories to one JSON file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directories", nargs="+", type=Path)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--only", nargs="*", default=None, help="keep only these kinds")
    args = parser.parse_args(argv)
    schemas = load_dir(*args.directories)
    if args.only is not None:
        schemas = {k: v for k, v in schemas.items() if k.split(" ")[1] in args.only}
    args.output.write_text(json.dumps(schemas, sort_keys=True, separators=(",", ":")) + "\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
