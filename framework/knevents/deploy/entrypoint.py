"""The container's entry point: pick the function from ``KNEVENTS_FUNCTION`` and serve it on ``$PORT``.

The image (``functions/Dockerfile``) and the buildpack ``Procfile`` both start
``python -m knevents.deploy.entrypoint``. It reads nothing but the
environment, as Knative starts a container: ``KNEVENTS_FUNCTION``
(``sensor`` or ``eventsource``, required) chooses the function, and
``KNEVENTS_SERVER`` the server:

* ``knevents`` (default) — the thin entry: the function's app
  (:mod:`knevents.runtime.sensor_app` / :mod:`~knevents.runtime.source_app`)
  served by one process (:mod:`knevents.runtime.serve`) through knevents' own
  HTTP server (:mod:`knevents.runtime.httpserver`) — no gunicorn arbiter, no
  ASGI layer, no Starlette, no Flask.
  It keeps functions-framework's contract (``$PORT``, ``$HOST``, ``GET
  /robots.txt`` and ``/favicon.ico`` 404, its seven methods, 405 for others)
  and adds the runner's connection guards (header size and timeouts). Chosen
  as the default by measurement: less CPU per request and a faster cold start
  (docs/benchmarks.md, "Function entry").
* ``functions-framework`` — ``functions/<name>/main.py`` served by
  functions-framework, as ``functions-framework --target … --asgi`` does:
  its variables (``FUNCTION_SOURCE``, ``FUNCTION_TARGET``,
  ``FUNCTION_SIGNATURE_TYPE``, ``FUNCTION_USE_ASGI``) are filled in with that
  function's defaults unless already set, and ``python -m functions_framework``
  runs in this same process (no second interpreter start on a cold start;
  signals from the kubelet reach the server directly).

A missing or wrong setting is one line on stderr and exit code 64
(``EX_USAGE``), a port the thin entry cannot listen on one line and 69
(``EX_UNAVAILABLE``); never a traceback. ``KNEVENTS_FUNCTIONS_DIR`` (default
``./functions``; ``/app/functions`` in the image) is where the function
sources are (functions-framework only).
"""

from __future__ import annotations

import os
import runpy
import sys
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from knevents import errors

__all__ = ["DEFAULT_SERVER", "FUNCTIONS", "SERVERS", "Function", "main", "prepare"]

EX_USAGE = 64
EX_UNAVAILABLE = 69
"""The thin entry cannot listen on ``$HOST:$PORT`` (sysexits' ``EX_UNAVAILABLE``)."""
SERVER_ENV = "KNEVENTS_SERVER"
SERVERS = ("knevents", "functions-framework")
DEFAULT_SERVER = "knevents"
"""The thin entry: less CPU per request, half the memory and a faster cold start than functions-framework
(interleaved pairs in docs/benchmarks.md, "Function entry")."""


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


def prepare(env: MutableMapping[str, str]) -> str:
    """Check ``env`` and fill functions-framework's variables for ``KNEVENTS_FUNCTION``; the server to run.

    Raises UsageError. The functions-framework variables are filled for either server, so switching
    is one variable; only functions-framework needs the function source.
    """
    name = env.get("KNEVENTS_FUNCTION", "")
    function = FUNCTIONS.get(name)
    if function is None:
        choices = " or ".join(sorted(FUNCTIONS))
        raise UsageError(f"KNEVENTS_FUNCTION must be {choices}, got {name!r}")
    server = env.get(SERVER_ENV) or DEFAULT_SERVER
    if server not in SERVERS:
        raise UsageError(f"{SERVER_ENV} must be {' or '.join(SERVERS)}, got {server!r}")
    if not env.get("KNEVENTS_SPEC"):
        raise UsageError(f"KNEVENTS_SPEC is not set: the path (or inline YAML) of the {name}'s manifest")
    directory = Path(env.get("KNEVENTS_FUNCTIONS_DIR") or Path.cwd() / "functions")
    source = env.setdefault("FUNCTION_SOURCE", str(directory / name / "main.py"))
    if server == "functions-framework" and not Path(source).is_file():
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
    return server


def main() -> int:
    """Prepare the environment and run the chosen server until it is stopped (SIGTERM: graceful)."""
    try:
        server = prepare(os.environ)
        if server == "knevents":
            from knevents.runtime import serve  # its imports are the function's, not functions-framework's

            serve.serve(os.environ["KNEVENTS_FUNCTION"], os.environ)
            return 0
    except UsageError as exc:
        print(f"knevents: {exc}", file=sys.stderr)
        return EX_USAGE
    except errors.KneventsError as exc:  # the port is taken or the host unknown: say which, no traceback
        print(f"knevents: {exc}", file=sys.stderr)
        return EX_UNAVAILABLE
    sys.argv = ["functions-framework"]  # everything is in the environment; no flags to parse
    runpy.run_module("functions_framework", run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
