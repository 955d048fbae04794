"""``knevents validate PATH...``: check Argo Events manifests the way knevents will read them.

Prints every problem of every file (file, document, path, message), then the
warnings (unknown fields knevents ignores as Argo does; dependencies naming no
EventSource event of their folder), the parts that are valid Argo but not run
by knevents, then one summary line. Exit codes: 0 valid (warnings and
not-supported notes alone do not fail, unless ``--strict``), 1 invalid or no
manifest found, 2 usage error (a path that does not exist). ``--output json``
prints one JSON object instead, for tools.
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
    parser.add_argument(
        "--strict", action="store_true", help="treat warnings (unknown fields, unmatched dependencies) as errors"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Validate ``args.paths``; returns the exit code."""
    from knevents import validation

    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        for path in missing:
            print(f"knevents validate: {path}: no such file or directory", file=sys.stderr)
        return 2
    manifests = validation.collect(args.paths)
    if args.strict:
        manifests.problems.extend(_warnings(manifests))
        manifests.warnings, manifests.crosscheck = [], []
    if args.output == "json":
        _print_json(manifests, sys.stdout)
    else:
        _print_text(manifests, sys.stdout, quiet=args.quiet)
    return 1 if manifests.problems or not manifests.checked else 0


def _warnings(manifests: Any) -> list[Any]:
    return [*manifests.warnings, *manifests.crosscheck]


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
        "valid": not manifests.problems and manifests.checked > 0,
        "files": len(manifests.files),
        "checked": manifests.checked,
        "manifests": {
            "EventSource": [m.metadata.name for m in manifests.event_sources],
            "Sensor": [m.metadata.name for m in manifests.sensors],
            "EventBus": [m.metadata.name for m in manifests.event_buses],
        },
        "problems": [_problem_dict(p) for p in manifests.problems],
        "warnings": [_problem_dict(p) for p in _warnings(manifests)],
        "unsupported": [_problem_dict(p) for p in manifests.unsupported],
        "skipped": [_problem_dict(p) for p in manifests.skipped],
        "notes": [_problem_dict(p) for p in manifests.notes],
    }
    json.dump(report, out, indent=2)
    out.write("\n")


def _print_text(manifests: Any, out: TextIO, *, quiet: bool) -> None:
    for problem in manifests.problems:
        out.write(f"error: {problem}\n")
    for warning in _warnings(manifests):
        out.write(f"warning: {warning}\n")
    if not quiet:
        for note in manifests.notes:
            out.write(f"note: {note}\n")
        for note in manifests.unsupported:
            out.write(f"not supported: {note}\n")
        for note in manifests.skipped:
            out.write(f"skipped: {note}\n")
    files = len(manifests.files)
    parts = [
        f"{files} file{'s' if files != 1 else ''}",
        f"{manifests.checked} manifest{'s' if manifests.checked != 1 else ''}",
        f"{len(manifests.problems)} problem{'s' if len(manifests.problems) != 1 else ''}",
        f"{len(_warnings(manifests))} warning{'s' if len(_warnings(manifests)) != 1 else ''}",
        f"{len(manifests.unsupported)} not supported",
    ]
    if not manifests.checked and not manifests.problems:
        out.write(f"no manifest: {', '.join(parts[:2])} (no EventSource, Sensor or EventBus found)\n")
        return
    verdict = "invalid" if manifests.problems else "valid"
    out.write(f"{verdict}: {', '.join(parts)}\n")
