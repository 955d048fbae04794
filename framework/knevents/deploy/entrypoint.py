"""The container's entry point: pick the function from ``KNEVENTS_FUNCTION`` and run functions-framework.

The image (``functions/Dockerfile``) and the buildpack ``Procfile`` both start
``python -m knevents.deploy.entrypoint``. It reads nothing but the
environment, as Knative starts a container: ``KNEVENTS_FUNCTION``
(``sensor`` or ``eventsource``, required) chooses ``functions/<name>/main.py``;
functions-framework's own variables (``FUNCTION_SOURCE``, ``FUNCTION_TARGET``,
``FUNCTION_SIGNATURE_TYPE``, ``FUNCTION_USE_ASGI``, ``PORT``) are filled in
with that function's defaults unless already set, and functions-framework's
own ``python -m functions_framework`` entry then runs in this same process (no
second interpreter start on a cold start; signals from the kubelet reach the
server directly). A missing or wrong setting is one line on stderr
and exit code 64 (``EX_USAGE``), never a traceback.

``KNEVENTS_FUNCTIONS_DIR`` (default ``./functions``; ``/app/functions`` in
the image) is where the function sources are.
"""

from __future__ import annotations

import os
import runpy
import sys
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FUNCTIONS", "Function", "main", "prepare"]

EX_USAGE = 64


@dataclass(frozen=True)
class Function:
    """One deployable function and how functions-framework serves it."""

    target: str
    """The name in ``functions/<name>/main.py`` functions-framework calls."""
    asgi: bool
    """Serve with uvicorn (ASGI) rather than gunicorn (WSGI)."""


FUNCTIONS: Mapping[str, Function] = {
    # ASGI: requests run on the server's own event loop (the async runtimes), no thread hop per request
    "sensor": Function(target="sensor_async", asgi=True),
    "eventsource": Function(target="handle_async", asgi=True),
}


class UsageError(Exception):
    """The environment does not say what to run."""


def prepare(env: MutableMapping[str, str]) -> None:
    """Fill functions-framework's variables in ``env`` for ``KNEVENTS_FUNCTION``; raise UsageError."""
    name = env.get("KNEVENTS_FUNCTION", "")
    function = FUNCTIONS.get(name)
    if function is None:
        choices = " or ".join(sorted(FUNCTIONS))
        raise UsageError(f"KNEVENTS_FUNCTION must be {choices}, got {name!r}")
    if not env.get("KNEVENTS_SPEC"):
        raise UsageError(f"KNEVENTS_SPEC is not set: the path (or inline YAML) of the {name}'s manifest")
    directory = Path(env.get("KNEVENTS_FUNCTIONS_DIR") or Path.cwd() / "functions")
    source = env.setdefault("FUNCTION_SOURCE", str(directory / name / "main.py"))
    if not Path(source).is_file():
        raise UsageError(
            f"function source {source} not found (set KNEVENTS_FUNCTIONS_DIR or FUNCTION_SOURCE)"
        )
    env.setdefault("FUNCTION_TARGET", function.target)
    env.setdefault("FUNCTION_SIGNATURE_TYPE", "http")
    if function.asgi:
        env.setdefault("FUNCTION_USE_ASGI", "true")
    port = env.setdefault("PORT", "8080")
    if not port.isdigit():
        raise UsageError(f"PORT must be a port number, got {port!r}")


def main() -> int:
    """Prepare the environment and run functions-framework; returns only on a usage error."""
    try:
        prepare(os.environ)
    except UsageError as exc:
        print(f"knevents: {exc}", file=sys.stderr)
        return EX_USAGE
    sys.argv = ["functions-framework"]  # everything is in the environment; no flags to parse
    runpy.run_module("functions_framework", run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
