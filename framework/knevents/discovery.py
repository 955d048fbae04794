"""Find the type modules of a package by what they declare: the one registry style of sources and triggers.

Every event source type is a module of :mod:`knevents.sources` that declares
``SOURCE = base.SourceType(...)``; every trigger kind a module of
:mod:`knevents.triggers` that declares ``TRIGGER = base.TriggerKind(...)``.
A :class:`Registry` finds them with :mod:`pkgutil`, so adding a type is adding
a module: no list to edit, nothing to forget.

Cold start: a function that runs one type must not import the other thirty
(and their clients). :meth:`Registry.get` therefore first tries the module
named after the key (``pubSub`` → ``pubsub`` or ``pub_sub``, ``awsLambda`` →
``aws_lambda``), and scans the whole package only when that module does not
declare the key. The convention is a shortcut, never a rule: the answer is the
same either way. :meth:`Registry.all` (validation, rendering, docs) scans.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable, Iterator, Mapping
from types import ModuleType
from typing import Any, Generic, TypeVar

__all__ = ["DuplicateKeyError", "Registry", "module_names"]

D = TypeVar("D")

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


class DuplicateKeyError(RuntimeError):
    """Two modules declare the same key: a programming error, found by the registry test."""


def module_names(key: str) -> tuple[str, ...]:
    """Module names a key's module is looked for under first (``awsLambda`` → ``aws_lambda``, ``awslambda``)."""
    snake = _CAMEL.sub("_", key).lower()
    return tuple(dict.fromkeys((snake, key.lower())))


class Registry(Generic[D]):
    """The descriptors ``attr`` declared by the modules of ``package``, keyed by ``key_of(descriptor)``."""

    def __init__(self, package: str, attr: str, key_of: Callable[[D], str]) -> None:
        self.package = package
        self.attr = attr
        self._key_of = key_of
        self._found: dict[str, D] = {}
        self._owner: dict[str, str] = {}
        self._scanned = False

    def get(self, key: str) -> D | None:
        """The descriptor of ``key``, or None when no module declares it."""
        found = self._found.get(key)
        if found is not None or self._scanned:
            return found
        for name in module_names(key):
            module = self._import(name)
            if module is not None:
                self._take(module)
                if key in self._found:
                    return self._found[key]
        return self.all().get(key)

    def all(self) -> Mapping[str, D]:
        """Every descriptor of the package (imports every module once)."""
        if not self._scanned:
            package = importlib.import_module(self.package)
            for info in pkgutil.iter_modules(package.__path__):
                if not info.name.startswith("_"):
                    self._take(importlib.import_module(f"{self.package}.{info.name}"))
            self._scanned = True
        return dict(sorted(self._found.items()))

    def keys(self) -> frozenset[str]:
        """Every key of the package."""
        return frozenset(self.all())

    def _import(self, name: str) -> ModuleType | None:
        try:
            return importlib.import_module(f"{self.package}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{self.package}.{name}":
                raise  # the module exists but an import inside it failed: a real error
            return None

    def _take(self, module: ModuleType) -> None:
        for descriptor in _declared(module, self.attr):
            key = self._key_of(descriptor)
            owner = self._owner.setdefault(key, module.__name__)
            if owner != module.__name__:
                raise DuplicateKeyError(f"{key!r} is declared by both {owner} and {module.__name__}")
            self._found[key] = descriptor


def _declared(module: ModuleType, attr: str) -> Iterator[Any]:
    value = getattr(module, attr, None)
    if value is not None:
        yield value
