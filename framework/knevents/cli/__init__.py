"""The ``knevents`` command: one subcommand per module in this package.

Each subcommand module exposes ``add_parser(subparsers)`` and ``run(args) -> int``
and imports whatever it needs inside ``run`` so that ``knevents --help`` and the
cheap commands stay fast. Exit codes: 0 success, 1 the input is invalid (or the
command failed), 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from knevents import __version__

__all__ = ["main"]

# Modules under knevents.cli, one per subcommand, in the order --help lists them.
COMMANDS: tuple[str, ...] = ("validate", "test", "run", "send", "status", "replay", "ui", "render", "hooks")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every available subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="knevents",
        description="Argo Events EventSources and Sensors as Knative functions.",
    )
    parser.add_argument("--version", action="version", version=f"knevents {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMANDS:
        try:
            module = importlib.import_module(f"knevents.cli.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"knevents.cli.{module_name}":
                raise
            continue  # not built yet
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``knevents`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        code: int = args.handler(args)
        sys.stdout.flush()
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `knevents status | head`: the reader left; nothing more to say, no traceback
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not fail again
        return 0
    return code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
