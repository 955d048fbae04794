"""``knevents test SENSOR_FILE --event FILE ...``: see why a sensor fires, or does not, without deploying it.

Each ``--event`` file holds one structured CloudEvent or a JSON array of them
(``{"reset": true}`` is a conditionsReset tick); they are processed in order by
:func:`knevents.testing.simulate`, the same engine the deployed sensor runs.
``--output text`` (default) explains each step for a person; ``--output json``
prints the report. Exit 0 when the simulation ran (whatever passed or fired),
2 with a message on stderr when the sensor or an event is invalid.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    """Register ``test`` on the top-level parser."""
    parser = subparsers.add_parser(
        "test",
        help="dry-run a Sensor over CloudEvents: what matches, passes, is stored, fires",
        description=(
            "Run a Sensor over CloudEvents (structured JSON) in memory and explain each step; "
            "triggers are resolved (parameters applied) but not executed."
        ),
    )
    parser.add_argument("sensor", metavar="SENSOR_FILE", help="a YAML file holding one Sensor")
    parser.add_argument(
        "-e",
        "--event",
        action="append",
        default=[],
        metavar="FILE",
        help="a JSON file with one CloudEvent or an array of them (repeatable, processed in order)",
    )
    parser.add_argument(
        "-o", "--output", choices=("text", "json"), default="text", help="output format (default: text)"
    )
    parser.set_defaults(handler=run)


def _fail(message: str) -> int:
    print(f"knevents test: {message}", file=sys.stderr)
    return 2


def _read_events(files: list[str]) -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for name in files:
        path = Path(name)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValueError(f"{name}: cannot read: {exc.strerror or exc}") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"{name}: not JSON: {exc}") from None
        except RecursionError:
            raise ValueError(f"{name}: JSON nests too deeply") from None
        elements = doc if isinstance(doc, list) else [doc]
        for index, element in enumerate(elements):
            where = f"{name}[{index}]" if isinstance(doc, list) else name
            items.append((where, element))
    return items


def run(args: argparse.Namespace) -> int:
    """Simulate and print; returns the exit code."""
    from knevents import errors, testing

    if not args.event:
        return _fail("give at least one --event FILE")
    try:
        items = _read_events(args.event)
        simulation = testing.Simulation(args.sensor)
    except errors.SpecError as exc:
        return _fail(f"{args.sensor}: invalid sensor:\n{exc}")
    except ValueError as exc:
        return _fail(str(exc))
    for where, item in items:
        try:
            simulation.feed(item)
        except errors.EventError as exc:
            return _fail(f"{where}: invalid CloudEvent: {str(exc).removeprefix('event 0: ')}")
    report = simulation.report()
    if args.output == "json":
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_text(simulation, sys.stdout)
    return 0


def _short(value: Any, limit: int = 300) -> str:
    text = json.dumps(value, separators=(",", ":")) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[:limit] + "…"


def _print_text(simulation: Any, out: TextIO) -> None:
    report = simulation.report()
    out.write(f"sensor {report['sensor']}\n")
    for number, (step, notes) in enumerate(zip(report["steps"], simulation.notes, strict=True), start=1):
        if step["event"] is None:
            out.write(f"\n#{number} conditionsReset tick: saved dependency state cleared\n")
            continue
        out.write(f"\n#{number} event {step['event']}\n")
        if notes.duplicate:
            out.write("  already processed (same event id): ignored\n")
            continue
        if notes.unmatched is not None:
            source, subject = notes.unmatched
            out.write(f"  no dependency has eventSourceName={source!r} and eventName={subject!r}\n")
        for dep in step["dependencies"]:
            if dep["passed"]:
                out.write(f"  dependency {dep['name']}: matched, passed\n")
            else:
                out.write(f"  dependency {dep['name']}: matched, did NOT pass: {dep['error']}\n")
        for fired in step["fired"]:
            deps = ", ".join(f"{d}={i}" for d, i in fired["events"].items())
            action = notes.actions.get(fired["trigger"])
            what = f" ({action})" if action else ""
            out.write(f"  FIRED trigger {fired['trigger']}{what} with {deps}\n")
            if fired["error"]:
                out.write(f"    not executable: {fired['error']}\n")
            if fired["resource"] is not None:
                text = json.dumps(fired["resource"], indent=2).replace("\n", "\n      ")
                out.write(f"    resource:\n      {text}\n")
            if fired["payload_raw"] is not None:
                out.write(f"    payload: {_short(fired['payload_raw'], 2000)}\n")
        for trigger, saved in notes.stored.items():
            if any(d["passed"] for d in step["dependencies"]):
                have = ", ".join(f"{d}={i}" for d, i in saved.items())
                missing = ", ".join(notes.waiting.get(trigger, [])) or "-"
                out.write(f"  stored for trigger {trigger}: {have}; waiting for: {missing}\n")
    pending = report["pending"]
    out.write("\n")
    if pending:
        for trigger, saved in pending.items():
            have = ", ".join(f"{d}={i}" for d, i in saved.items())
            out.write(f"pending: trigger {trigger} holds {have}\n")
    else:
        out.write("pending: nothing saved\n")


print_text = _print_text
"""Print a simulation's steps for a person (also used by ``knevents replay --dry-run``)."""
