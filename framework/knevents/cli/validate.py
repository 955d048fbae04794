"""``knevents validate PATH...``: check Argo Events manifests the way knevents will read them.

Prints every problem of every file (file, document, path, message), then the
parts that are valid Argo but not run by knevents, then one summary line.
Exit codes: 0 valid (not-supported notes alone do not fail), 1 invalid, 2 usage
error (a path that does not exist). ``--output json`` prints one JSON object
instead, for tools.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, TextIO

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    """Register ``validate`` on the top-level parser."""
    parser = subparsers.add_parser(
        "validate",
        help="validate EventSource, Sensor and EventBus manifests",
        description=(
            "Validate Argo Events manifests (files or folders, searched recursively for *.yaml/*.yml): "
            "every problem is listed with its file, document and path."
        ),
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="manifest files or directories")
    parser.add_argument(
        "-o", "--output", choices=("text", "json"), default="text", help="output format (default: text)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print only problems and the summary line")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Validate ``args.paths``; returns the exit code."""
    from knevents.spec import loading

    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        for path in missing:
            print(f"knevents validate: {path}: no such file or directory", file=sys.stderr)
        return 2
    manifests = loading.collect(args.paths)
    if args.output == "json":
        _print_json(manifests, sys.stdout)
    else:
        _print_text(manifests, sys.stdout, quiet=args.quiet)
    return 1 if manifests.problems else 0


_LINE = re.compile(r" \(line (\d+)\)$")


def _problem_dict(problem: Any) -> dict[str, Any]:
    match = _LINE.search(problem.message)
    return {
        "file": problem.file,
        "document": problem.document,
        "line": int(match.group(1)) if match else None,
        "path": problem.path,
        "message": _LINE.sub("", problem.message),
    }


def _print_json(manifests: Any, out: TextIO) -> None:
    report = {
        "valid": not manifests.problems,
        "files": len(manifests.files),
        "checked": manifests.checked,
        "manifests": {
            "EventSource": [m.metadata.name for m in manifests.event_sources],
            "Sensor": [m.metadata.name for m in manifests.sensors],
            "EventBus": [m.metadata.name for m in manifests.event_buses],
        },
        "problems": [_problem_dict(p) for p in manifests.problems],
        "unsupported": [_problem_dict(p) for p in manifests.unsupported],
        "skipped": [_problem_dict(p) for p in manifests.skipped],
    }
    json.dump(report, out, indent=2)
    out.write("\n")


def _print_text(manifests: Any, out: TextIO, *, quiet: bool) -> None:
    for problem in manifests.problems:
        out.write(f"error: {problem}\n")
    if not quiet:
        for note in manifests.unsupported:
            out.write(f"not supported: {note}\n")
        for note in manifests.skipped:
            out.write(f"skipped: {note}\n")
    files = len(manifests.files)
    parts = [
        f"{files} file{'s' if files != 1 else ''}",
        f"{manifests.checked} manifest{'s' if manifests.checked != 1 else ''}",
        f"{len(manifests.problems)} problem{'s' if len(manifests.problems) != 1 else ''}",
        f"{len(manifests.unsupported)} not supported",
    ]
    verdict = "invalid" if manifests.problems else "valid"
    out.write(f"{verdict}: {', '.join(parts)}\n")
