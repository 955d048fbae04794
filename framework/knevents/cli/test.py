"""``knevents test SENSOR_FILE --event FILE ...``: see why a sensor fires, or does not, without deploying it.

Each ``--event`` file holds one structured CloudEvent or a JSON array of them
(``{"reset": true}`` is a conditionsReset tick), or is a folder of such files
(read in name order); they are processed in order by
:func:`knevents.testing.simulate`, the deployed sensor function's own pipeline.
A plain request body (no ``specversion``) is wrapped as a webhook-like source
would put it on the bus when ``--source``/``--event-name`` say which event it
is; without them the message shows the CloudEvent shape expected.
Every example folder ships samples under ``examples/<name>/events/``.
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
        help="a JSON file with one CloudEvent or an array of them, or a folder of such files "
        "(repeatable, processed in order)",
    )
    parser.add_argument(
        "--source",
        default=None,
        metavar="EVENTSOURCE",
        help="wrap plain JSON bodies as events of this EventSource (with --event-name)",
    )
    parser.add_argument(
        "--event-name", default=None, metavar="NAME", help="wrap plain JSON bodies as this event of --source"
    )
    parser.add_argument(
        "-o", "--output", choices=("text", "json"), default="text", help="output format (default: text)"
    )
    parser.set_defaults(handler=run)


def _fail(message: str) -> int:
    print(f"knevents test: {message}", file=sys.stderr)
    return 2


SHAPE = """{
  "specversion": "1.0", "id": "<unique id>", "type": "webhook",
  "source": "<EventSource name>", "subject": "<event name>",
  "datacontenttype": "application/json",
  "data": {"header": {"Content-Type": ["application/json"]}, "body": <the request body>}
}"""
"""What a webhook-like source puts on the bus (other sources: their Argo data shape under ``data``)."""

_ATTRIBUTES = frozenset({"id", "source", "subject", "type", "datacontenttype", "data", "time"})
"""CloudEvent attribute names: a document with two or more of them is taken for a (broken) CloudEvent."""



def _wraps_request(key: str) -> bool:
    """Whether a source type's event data is Argo's ``{header, body}`` of the HTTP request."""
    from knevents import sources

    source_type = sources.TYPES.get(key)
    return source_type is not None and source_type.wraps_request


def _paths(files: list[str]) -> list[Path]:
    out: list[Path] = []
    for name in files:
        path = Path(name)
        out.extend(sorted(path.glob("*.json")) if path.is_dir() else [path])
    return out


def _wrap(body: Any, source: str, event_name: str, kind: str, number: int) -> dict[str, Any]:
    """A plain body as a webhook-like source publishes it: Argo's ``{header, body}`` in a CloudEvent."""
    return {
        "specversion": "1.0",
        "id": f"knevents-test-{number}",
        "type": kind,
        "source": source,
        "subject": event_name,
        "datacontenttype": "application/json",
        "data": {"header": {"Content-Type": ["application/json"]}, "body": body},
    }


def _source_type(sensor_file: str, source: str, event_name: str) -> str:
    """The type of ``source`` from the EventSources beside the sensor (``webhook`` when none is there)."""
    from knevents import validation
    from knevents.sources import webhook
    from knevents.spec import crosscheck, support

    folder = Path(sensor_file).parent
    for es in validation.collect([folder]).event_sources:
        if (
            es.metadata is not None
            and es.metadata.name == source
            and event_name in crosscheck.event_names(es)
        ):
            for key, entries in support.source_types(es.spec):
                if isinstance(entries, dict) and event_name in entries:
                    return key
    return webhook.SOURCE.key


def _plain(where: str, element: Any, args: argparse.Namespace, number: int) -> Any:
    """``element`` as a CloudEvent: as given, wrapped (--source/--event-name), or a ValueError showing the shape."""
    if not isinstance(element, dict) or "specversion" in element or element.get("reset") is True:
        return element
    looks_like_an_event = len(_ATTRIBUTES & set(element)) >= 2  # a CloudEvent missing attributes: say which
    if looks_like_an_event and not (args.source and args.event_name):
        return element
    if not (args.source and args.event_name):
        raise ValueError(
            f"{where} is not a CloudEvent (no `specversion`). Give the event as the source puts it on the bus:\n"
            f"{SHAPE}\nor pass --source <EventSource> --event-name <event> to wrap a plain body "
            "(samples: examples/*/events/*.json)"
        )
    kind = _source_type(args.sensor, args.source, args.event_name)
    if not _wraps_request(kind):
        raise ValueError(
            f"{where}: EventSource {args.source} is of type {kind}, whose events are not a request body; "
            f"give a CloudEvent with {kind}'s data (samples: examples/*/events/*.json)"
        )
    return _wrap(element, args.source, args.event_name, kind, number)


def _read_events(files: list[str]) -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for path in _paths(files):
        name = str(path)
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
    if Path(args.sensor).is_dir():
        hint = next((f" (e.g. {p})" for p in sorted(Path(args.sensor).glob("*sensor*.y*ml"))), "")
        return _fail(f"{args.sensor} is a folder: give the Sensor's YAML file{hint}")
    try:
        items = [
            (where, _plain(where, item, args, number))
            for number, (where, item) in enumerate(_read_events(args.event), start=1)
        ]
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
