"""``knevents replay``: re-deliver archived events to one sensor, or (``--dry-run``) explain what they would do.

The archive is the runner's bus stream. Without ``--dry-run`` the events go to
the sensor's replay subject (only that sensor gets them), keep their ids and
carry a ``knreplay`` extension, so deduplication does not drop them and a
trigger fires again only because you asked. ``--dry-run`` runs the sensor's
engine over the window in memory and prints what would have fired and why —
"why didn't my sensor fire yesterday?".
"""

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
    """Register ``replay``."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "replay", help="re-deliver archived events to one sensor (or --dry-run: explain what they would do)",
        description="Read events of a time window from the local runner's bus (its archive) and deliver them "
                    "again to one sensor, or with --dry-run explain what that sensor does with them.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="manifests holding the sensor (default: what the runner was started with)")
    parser.add_argument("--sensor", required=True, help="the sensor that gets the events")
    parser.add_argument("--trigger", default=None, help="only this trigger of the sensor may fire")
    when = parser.add_mutually_exclusive_group(required=True)
    when.add_argument("--since", help="how far back: 30s, 15m, 2h, 7d")
    when.add_argument("--from", dest="start", metavar="T1", help="window start, RFC 3339 (with --to)")
    parser.add_argument("--to", dest="end", metavar="T2", default=None, help="window end, RFC 3339 (default now)")
    parser.add_argument("--source", default=None, help="only events of this EventSource")
    parser.add_argument("--event-name", default=None, help="only events of this event name")
    parser.add_argument("--dry-run", action="store_true", help="explain, deliver nothing")
    parser.add_argument("--limit", type=int, default=10_000, help="at most this many events (default 10000)")
    parser.add_argument("--state-dir", type=Path, default=Path(os.environ.get("KNEVENTS_STATE_DIR", ".knevents")),
                        help="the runner's state directory (default .knevents)")
    parser.add_argument("--output", "-o", choices=("text", "json"), default="text")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Replay or explain; exit 1 with a clear message on a bad window, sensor or state dir."""
    from knevents import errors

    try:
        return asyncio.run(_replay(args))
    except (errors.KneventsError, ValueError) as exc:
        print(f"knevents replay: {exc}", file=sys.stderr)
        return 1


def _sensor(paths: list[str], name: str) -> Any:
    from knevents import errors, validation

    manifests = validation.load_paths(paths)
    for sensor in manifests.sensors:
        if sensor.metadata.name == name:
            return sensor
    known = ", ".join(sorted(str(s.metadata.name) for s in manifests.sensors)) or "none"
    raise errors.KneventsError(f"no sensor {name!r} in {' '.join(paths)} (sensors there: {known})")


async def _replay(args: argparse.Namespace) -> int:
    from knevents.cli import test as test_cmd
    from knevents.local import replay, runnerfile, status
    from knevents.ui import app

    info = runnerfile.read(args.state_dir)
    paths = args.paths or info.paths
    if not paths:
        raise ValueError("name the manifests holding the sensor (this runner state records none)")
    sensor = _sensor(list(paths), args.sensor)
    names = {t.template.name for t in sensor.spec.triggers or [] if t.template is not None and t.template.name}
    if args.trigger and args.trigger not in names:
        raise ValueError(f"sensor {args.sensor} has no trigger {args.trigger!r}")
    start = app.parse_since(args.since) if args.since else app.parse_since(args.start)
    window = replay.Window(start=start, end=app.parse_since(args.end) if args.end else None,
                           source=args.source, event_name=args.event_name, limit=args.limit)
    subjects = replay.sensor_subjects(info.bus, sensor, window)
    async with status.open_store(args.state_dir, info) as nc:
        js = nc.jetstream()
        found = [a.event async for a in replay.archived(js, info.bus, subjects, window)]
        if args.dry_run:
            simulation = replay.explain(sensor, found, args.trigger)
            if args.output == "json":
                print(json.dumps({"events": len(found), "report": simulation.report()}, indent=2, default=str))
            else:
                print(f"{len(found)} archived event(s) for sensor {args.sensor} since {start.isoformat()}")
                test_cmd.print_text(simulation, sys.stdout)
            return 0
        if not info.running or not runnerfile.pid_alive(info.pid):
            print("knevents replay: the runner is stopped; the events are queued for the sensor and delivered "
                  "when it starts", file=sys.stderr)
        replay_id = await replay.replay(js, info.bus, args.sensor, [a for a in found], trigger=args.trigger)
    result = {"sensor": args.sensor, "events": len(found), "replay": replay_id, "trigger": args.trigger}
    if args.output == "json":
        print(json.dumps(result))
    else:
        print(f"replayed {len(found)} event(s) to sensor {args.sensor}"
              f"{' (trigger ' + args.trigger + ' only)' if args.trigger else ''}; replay id {replay_id}")
    return 0
