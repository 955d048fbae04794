"""Resolve ``secretKeySelector`` / ``configMapKeySelector`` references to their values.

On Knative, ``knevents render`` mounts every Secret a spec references as a
volume at ``<secrets_dir>/<name>/<key>`` (ConfigMaps at ``<configmaps_dir>``).
Locally and in tests, an environment variable is the fallback:
``KNEVENTS_SECRET_<NAME>_<KEY>`` (``KNEVENTS_CONFIGMAP_…`` for ConfigMaps), with
the name and key upper-cased and every other character than A–Z and 0–9 turned
into ``_``.

Values are returned to the caller and never logged; errors name the Secret and
key, never the value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from knevents import errors, redact
from knevents.settings import SecretSettings

__all__ = ["KeySelector", "SecretResolver", "env_name"]


class KeySelector(Protocol):
    """Anything with a ``name`` and a ``key`` (the spec models, or a small dataclass)."""

    @property
    def name(self) -> str | None: ...

    @property
    def key(self) -> str: ...


_NOT_ALNUM = re.compile(r"[^A-Z0-9]")


def env_name(kind: str, name: str, key: str) -> str:
    """The fallback environment variable for a Secret/ConfigMap key."""
    return f"KNEVENTS_{kind}_{_NOT_ALNUM.sub('_', name.upper())}_{_NOT_ALNUM.sub('_', key.upper())}"


def _name_key(selector: KeySelector | Mapping[str, Any]) -> tuple[str, str]:
    if isinstance(selector, Mapping):
        name, key = selector.get("name"), selector.get("key")
    else:
        name, key = selector.name, selector.key
    if not name or not key:
        raise errors.SecretError("a secret reference needs both 'name' and 'key'")
    return str(name), str(key)


class SecretResolver:
    """Reads mounted Secret/ConfigMap files, falling back to environment variables."""

    def __init__(self, settings: SecretSettings | None = None, env: Mapping[str, str] | None = None) -> None:
        self._settings = settings or SecretSettings.from_env(os.environ)
        self._env = os.environ if env is None else env

    def secret(self, selector: KeySelector | Mapping[str, Any]) -> str:
        """The value of a Secret key; :class:`errors.SecretError` naming it when missing."""
        value = self._read("SECRET", "secret", self._settings.secrets_dir, selector)
        redact.register(value)  # from now on masked in every log line, answer and record of this process
        return value

    def configmap(self, selector: KeySelector | Mapping[str, Any]) -> str:
        """The value of a ConfigMap key."""
        return self._read("CONFIGMAP", "configmap", self._settings.configmaps_dir, selector)

    def _read(self, kind: str, label: str, root: str, selector: KeySelector | Mapping[str, Any]) -> str:
        name, key = _name_key(selector)
        path = Path(root) / name / key
        try:
            return path.read_text().rstrip("\n") if kind == "CONFIGMAP" else path.read_text().strip()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise errors.SecretError(f"{label} {name}/{key} could not be read from {path}: {exc.strerror}") from None
        variable = env_name(kind, name, key)
        value = self._env.get(variable)
        if value is None:
            raise errors.SecretError(
                f"{label} {name}/{key} not found: mount it at {path} or set {variable}"
            )
        return value
