"""``knevents send``: post to a running source, or publish a CloudEvent straight onto the bus.

    knevents send --url http://localhost:12000/example --data '{"message": "hi"}'
    knevents send --eventsource webhook --event example --data @payload.json
    knevents send --bus --source webhook --subject example --data '{"body": {"message": "hi"}}'
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Register ``send``."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "send", help="send an event to a running `knevents run`",
        description="Post to an EventSource endpoint (--url, or --eventsource/--event looked up in runner.json), "
        "or publish a CloudEvent onto the bus (--bus --source --subject).",
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="the endpoint to POST to")
    target.add_argument("--eventsource", help="EventSource name (with --event): its URL is read from runner.json")
    target.add_argument("--bus", action="store_true", help="publish a CloudEvent on the bus instead")
    parser.add_argument("--event", help="event name in the EventSource (with --eventsource)")
    parser.add_argument("--source", help="CloudEvent source = EventSource name (with --bus)")
    parser.add_argument("--subject", help="CloudEvent subject = event name (with --bus)")
    parser.add_argument("--type", dest="ce_type", help="CloudEvent type (with --bus; default: the source's type)")
    parser.add_argument("--id", dest="ce_id", help="CloudEvent id (with --bus; default: a new one)")
    parser.add_argument("--data", "-d", help="body: text, @file, or - for stdin")
    parser.add_argument("--content-type", default="application/json", help="default application/json")
    parser.add_argument("--header", "-H", action="append", default=[], metavar="NAME: VALUE",
                        help="extra request header (repeatable)")
    parser.add_argument("--method", "-X", default="POST", help="HTTP method (default POST)")
    parser.add_argument("--state-dir", type=Path, default=Path(os.environ.get("KNEVENTS_STATE_DIR", ".knevents")),
                        help="where the runner keeps runner.json (default .knevents)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Send and print the answer; exit 0 on a 2xx answer (or an accepted publish), 1 otherwise."""
    from knevents import errors
    from knevents.local import runnerfile, send

    try:
        body = send.read_data(args.data, args.content_type)
        if args.bus:
            if not args.source or not args.subject:
                raise errors.KneventsError("--bus needs --source (EventSource name) and --subject (event name)")
            info = runnerfile.read(args.state_dir)
            result = asyncio.run(send.publish(info, source=args.source, subject=args.subject, data=body,
                                              type=args.ce_type, id=args.ce_id, content_type=args.content_type))
        else:
            url = args.url
            if url is None:
                if not args.event:
                    raise errors.KneventsError("--eventsource needs --event")
                url = runnerfile.read(args.state_dir).source_url(args.eventsource, args.event)
            headers = {"content-type": args.content_type}
            for item in args.header:
                name, sep, value = item.partition(":")
                if not sep or not name.strip():
                    raise errors.KneventsError(f"--header {item!r} is not 'Name: value'")
                headers[name.strip()] = value.strip()
            result = asyncio.run(send.post(url, body, method=args.method.upper(), headers=headers))
    except errors.KneventsError as exc:
        print(f"knevents send: {exc}", file=sys.stderr)
        return 1
    print(result.detail)
    return 0 if result.ok else 1
