"""Read Kubernetes-style YAML the way the Kubernetes API server would.

PyYAML's defaults differ from Go's YAML (sigs.k8s.io/yaml) in ways that break
manifests silently: ``10:30:00`` becomes the integer 37800 (YAML 1.1
sexagesimal), ``2024-01-01`` becomes a ``date``, and a repeated key keeps the
last value without a word. This loader keeps those as strings and reports
duplicate keys, and every error carries the line and column. Nothing here knows
about Argo; :mod:`knevents.spec.loading` does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

__all__ = ["Document", "YamlProblem", "documents", "lines"]

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class _Loader(_BaseLoader):  # type: ignore[misc,valid-type]
    """SafeLoader without timestamps and base-60 numbers, failing on duplicate keys."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_INT, _FLOAT, _TIMESTAMP)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _INT,
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain value", key_node.start_mark
            ) from None
        if duplicate:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping",
                node.start_mark,
                f"duplicate key {key!r} (first at line {seen[key].start_mark.line + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


@dataclass(frozen=True)
class Document:
    """One YAML document of a stream: its 1-based index and its content (``None`` when empty)."""

    index: int
    content: Any
    line: int
    """1-based line where the document starts."""
    node: yaml.Node | None = None
    """The composed node tree, for :func:`lines`."""


@dataclass(frozen=True)
class YamlProblem:
    """The stream could not be read past this point."""

    index: int
    message: str
    line: int | None
    column: int | None


def _describe(exc: yaml.YAMLError) -> tuple[str, int | None, int | None]:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "malformed YAML"
        context = f" ({exc.context})" if exc.context and exc.problem else ""
        if mark is not None:
            return f"malformed YAML: {problem}{context}", mark.line + 1, mark.column + 1
        return f"malformed YAML: {problem}{context}", None, None
    return f"malformed YAML: {exc}", None, None


def _tab_at(text: str, line: int | None, column: int | None) -> bool:
    """Whether the (1-based) position PyYAML stopped at holds a tab, or only tabs and spaces lead to it."""
    if line is None or column is None:
        return False
    lines = text.splitlines()
    if not 0 < line <= len(lines):
        return False
    row = lines[line - 1]
    return "\t" in row[:column] and not row[: column - 1].strip(" \t")


def documents(text: str) -> Iterator[Document | YamlProblem]:
    """Every document of ``text`` in order; a :class:`YamlProblem` ends the stream at the first bad one."""
    loader = _Loader(text)
    index = current = 0
    try:
        while True:
            current = index + 1
            if not loader.check_node():
                break
            index = current
            node = loader.get_node()
            line = node.start_mark.line + 1 if node is not None else 1
            trouble = _alias_trouble(node)
            if trouble is not None:
                yield YamlProblem(index=index, message=trouble, line=line, column=None)
                return
            content = loader.construct_document(node) if node is not None else None
            yield Document(index=index, content=content, line=line, node=node)
    except yaml.YAMLError as exc:
        message, line, column = _describe(exc)
        if _tab_at(text, line, column):
            message = "malformed YAML: a tab character; YAML indents with spaces only (replace the tabs)"
        yield YamlProblem(index=current, message=message, line=line, column=column)
    finally:
        loader.dispose()


MAX_EXPANDED_NODES = 200_000
"""A document may hold at most this many values once aliases are expanded (a "billion laughs" guard,
like the one in the Go YAML library Kubernetes uses)."""


def _alias_trouble(root: yaml.Node | None) -> str | None:
    """Why the aliases of a document make it unusable (a cycle, or too big once expanded), else None."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise _Cycle
        active.add(key)
        children: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        total = 1
        for child in children:
            total += size(child)
            if total > MAX_EXPANDED_NODES:
                break
        active.discard(key)
        sizes[key] = total
        return total

    if root is None:
        return None
    try:
        total = size(root)
    except _Cycle:
        return "malformed YAML: an alias refers to a value that contains it (a cycle)"
    except RecursionError:
        return "malformed YAML: the document is nested too deeply"
    if total > MAX_EXPANDED_NODES:
        return f"malformed YAML: more than {MAX_EXPANDED_NODES} values once aliases are expanded"
    return None


class _Cycle(Exception):
    pass


def lines(node: yaml.Node | None) -> dict[tuple[str | int, ...], int]:
    """1-based line of every key and list item under ``node``, by path (``("spec", "triggers", 0)``)."""
    out: dict[tuple[str | int, ...], int] = {}
    stack: list[tuple[tuple[str | int, ...], yaml.Node]] = [((), node)] if node is not None else []
    while stack:
        path, current = stack.pop()
        if isinstance(current, yaml.MappingNode):
            for key_node, value_node in current.value:
                if isinstance(key_node, yaml.ScalarNode):
                    child = (*path, str(key_node.value))
                    out[child] = key_node.start_mark.line + 1
                    stack.append((child, value_node))
        elif isinstance(current, yaml.SequenceNode):
            for index, item in enumerate(current.value):
                child = (*path, index)
                out[child] = item.start_mark.line + 1
                stack.append((child, item))
    return out
