"""``knevents status``: what a local runner holds — sources, sensors, pending AND-state, firings, dead letters."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Register ``status``."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "status", help="show the state of a local runner (works when it is stopped too)",
    )
    parser.add_argument("--state-dir", type=Path, default=Path(os.environ.get("KNEVENTS_STATE_DIR", ".knevents")),
                        help="the runner's state directory (default .knevents)")
    parser.add_argument("--output", "-o", choices=("text", "json"), default="text")
    parser.add_argument("--firings", type=int, default=5, help="last firings shown per sensor (default 5)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the status; exit 1 with a clear message when there is no runner state."""
    from knevents import errors
    from knevents.local import status

    try:
        result = asyncio.run(status.collect(args.state_dir, args.firings))
    except errors.KneventsError as exc:
        print(f"knevents status: {exc}", file=sys.stderr)
        return 1
    if args.output == "json":
        print(json.dumps(result, indent=2))
    else:
        print(status.format_text(result))
    return 0
