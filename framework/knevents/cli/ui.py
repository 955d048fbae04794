"""``knevents ui PATH...``: the web UI on its own, against a NATS that runners or functions already use.

This is how the UI runs beside a cluster (``knevents render --ui`` deploys
it as a Knative Service): it reads the manifests, follows the bus on
``--nats-url`` (or ``KNEVENTS_NATS_URL``), and is **read-only** unless
``--allow-actions`` is given. Listening beyond loopback needs ``--token``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Register ``ui``."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "ui", help="serve the web UI for manifests against an existing NATS (read-only by default)",
        description="Serve the knevents web UI for the EventSources and Sensors in PATH, following the bus on an "
                    "existing NATS server.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="YAML files or folders of manifests")
    parser.add_argument("--nats-url", default=os.environ.get("KNEVENTS_NATS_URL"),
                        help="the NATS server of the bus (env KNEVENTS_NATS_URL)")
    parser.add_argument("--bus", default=os.environ.get("KNEVENTS_BUS_NAME", "default"),
                        help="EventBus name (env KNEVENTS_BUS_NAME; default 'default')")
    parser.add_argument("--host", default=os.environ.get("KNEVENTS_UI_HOST", "127.0.0.1"),
                        help="listen address (default 127.0.0.1; any other needs --token)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "12100")),
                        help="listen port (env PORT, as on Knative; default 12100)")
    parser.add_argument("--token", default=os.environ.get("KNEVENTS_UI_TOKEN"),
                        help="bearer token asked of every request (env KNEVENTS_UI_TOKEN)")
    parser.add_argument("--allow-actions", action="store_true",
                        help="allow replaying and discarding from the page (read-only otherwise)")
    parser.add_argument("--receive-events", action="store_true",
                        default=os.environ.get("KNEVENTS_UI_RECEIVE_EVENTS", "") == "1",
                        help="beside a Knative cluster: take the Broker's CloudEvents at POST /cloudevents (no token, "
                             "cluster-local addresses only) and keep them in the bus stream (env "
                             "KNEVENTS_UI_RECEIVE_EVENTS=1)")
    parser.add_argument("--broker-url", default=os.environ.get("K_SINK"),
                        help="with --allow-actions, replay by POSTing to this Broker ingress (env K_SINK, which a "
                             "SinkBinding sets) instead of publishing on the bus")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM; exit 1 with a clear message when NATS, the port or the manifests fail."""
    from knevents import errors, validation

    if not args.nats_url:
        print("knevents ui: name the bus's NATS server with --nats-url (or KNEVENTS_NATS_URL)", file=sys.stderr)
        return 2
    try:
        manifests = validation.load_paths(args.paths)
        return asyncio.run(_serve(args, manifests))
    except (OSError, errors.KneventsError) as exc:
        print(f"knevents ui: {exc}", file=sys.stderr)
        return 1


async def _serve(args: argparse.Namespace, manifests: Any) -> int:
    import dataclasses

    from knevents import ui
    from knevents.bus import jetstream
    from knevents.settings import Settings

    settings = Settings.from_env()
    nc = await jetstream.connect(dataclasses.replace(settings.nats, url=args.nats_url))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        server = await ui.serve(nc, args.bus, manifests, host=args.host, port=args.port, token=args.token,
                                read_only=not args.allow_actions, receive_events=args.receive_events,
                                broker_url=args.broker_url)
        print(f"knevents ui: {server.url} ({'read-only' if not args.allow_actions else 'actions allowed'})",
              flush=True)
        await stop.wait()
        await server.stop()
    finally:
        await nc.close()
    return 0
