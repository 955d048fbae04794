"""``knevents run PATH...``: run a folder's EventSources and Sensors locally with an embedded nats-server.

Flags mirror environment variables (flag > env > default): ``--nats-url`` /
``KNEVENTS_NATS_URL`` is deliberately *not* read from the environment here, so
a stray variable never sends a local run to a shared server; pass the flag.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import os
import signal
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Register ``run``."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "run", help="run EventSources and Sensors locally (embedded NATS JetStream)",
        description="Run every EventSource, Sensor and EventBus found in PATH (files or folders) on this machine.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="YAML files or folders of manifests")
    parser.add_argument("--nats-url", default=None,
                        help="use this NATS server instead of starting one (JetStream must be enabled)")
    parser.add_argument("--state-dir", type=Path, default=Path(os.environ.get("KNEVENTS_STATE_DIR", ".knevents")),
                        help="JetStream store, consumers and runner.json (env KNEVENTS_STATE_DIR; default .knevents)")
    parser.add_argument("--dry-run", action="store_true",
                        help="triggers print what they would do instead of doing it")
    parser.add_argument("--log-format", choices=("text", "json"),
                        default=os.environ.get("KNEVENTS_LOG_FORMAT", "text"),
                        help="console output (env KNEVENTS_LOG_FORMAT)")
    parser.add_argument("--log-level", default=os.environ.get("KNEVENTS_LOG_LEVEL", "warning"),
                        choices=("debug", "info", "warning", "error"), help="library log records shown")
    parser.add_argument("--bus", default=None, help="EventBus name (default: the one in PATH, else 'default')")
    parser.add_argument("--max-deliveries", type=int,
                        default=int(os.environ.get("KNEVENTS_MAX_DELIVERIES", "5")),
                        help="attempts per event and sensor before it is dead-lettered (default 5)")
    parser.add_argument("--retry-backoff", type=float,
                        default=float(os.environ.get("KNEVENTS_RETRY_BACKOFF", "0.5")),
                        help="seconds before the first redelivery, doubled each time (default 0.5)")
    parser.add_argument("--concurrency", type=int,
                        default=int(os.environ.get("KNEVENTS_SENSOR_CONCURRENCY", "16")),
                        help="events handled at once per sensor (env KNEVENTS_SENSOR_CONCURRENCY, default 16)")
    parser.add_argument("--host", default=os.environ.get("KNEVENTS_HOST", "127.0.0.1"),
                        help="address the webhook ports listen on (default 127.0.0.1; 0.0.0.0 for all)")
    parser.add_argument("--metrics-port", type=int, default=int(os.environ.get("KNEVENTS_METRICS_PORT", "7777")),
                        help="port of /metrics for the whole runner, Argo's 7777 by default (env "
                             "KNEVENTS_METRICS_PORT; 0: none)")
    parser.add_argument("--default-port", type=int, default=12000,
                        help="port for push endpoints whose spec names none (SNS, Pub/Sub push)")
    parser.add_argument("--ui-port", type=int, default=None,
                        help="port of the web UI (default 12100; if that one is busy the UI is skipped with a warning)")
    parser.add_argument("--ui-host", default="127.0.0.1",
                        help="address of the web UI (default 127.0.0.1; any other needs --ui-token)")
    parser.add_argument("--ui-token", default=os.environ.get("KNEVENTS_UI_TOKEN"),
                        help="bearer token the UI asks for (env KNEVENTS_UI_TOKEN; needed beyond loopback)")
    parser.add_argument("--no-ui", action="store_true", help="do not serve the web UI")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes serving the runner (env KNEVENTS_WORKERS; default: one per core beyond the "
                             "first, 1 on two cores)")
    parser.add_argument("--worker-index", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--worker-parent", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--no-hooks", action="store_true",
                        help="do not create provider webhooks (github, gitlab, bitbucket, …) at start")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Load, check, start; serve until SIGINT/SIGTERM; stop cleanly."""
    if args.worker_index:
        # A terminal's Ctrl-C reaches every process of the group, and worker 0 then stops its workers with
        # SIGTERM: a worker that took SIGINT too would see that SIGTERM as a second signal and drop its
        # deliveries ("forced stop"), or die in the middle of its imports.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    elif _workers(args) > 1:
        _share_metrics(Path(args.state_dir))  # before anything imports prometheus_client
    from knevents import errors, validation
    from knevents.local import console as console_mod
    from knevents.local import dispatcher, runner

    console = console_mod.Console(args.log_format)
    atexit.register(console.flush)  # routine lines still waiting when the runner ends on any path
    console_mod.install_logging(console, args.log_level)
    if args.max_deliveries < 1 or args.concurrency < 1:
        console.emit("error", "--max-deliveries and --concurrency must be at least 1")
        return 2
    try:
        manifests = validation.load_paths(args.paths)
    except errors.SpecError as exc:
        console.emit("error", f"invalid manifests: {exc}")
        return 1
    except (OSError, errors.KneventsError) as exc:
        console.emit("error", str(exc))
        return 1
    for problem in manifests.warnings:
        console.emit("warning", str(problem))
    for problem in manifests.unsupported:
        console.emit("warning", f"not supported, skipped: {problem}")
    if not manifests.event_sources and not manifests.sensors:
        console.emit("error", f"no EventSource or Sensor found in {' '.join(args.paths)}")
        return 1
    count = _workers(args)
    if count < 1:
        console.emit("error", "--workers must be at least 1")
        return 2
    options = runner.RunOptions(
        paths=args.paths, state_dir=args.state_dir, nats_url=args.nats_url, dry_run=args.dry_run,
        bus=args.bus, host=args.host, default_port=args.default_port, hooks=not args.no_hooks,
        metrics_port=args.metrics_port, workers=count, worker_index=args.worker_index,
        worker_parent=args.worker_parent, worker_flags=_worker_flags(args),
        policy=dispatcher.DeliveryPolicy(max_deliveries=args.max_deliveries, backoff=args.retry_backoff,
                                         concurrency=args.concurrency, workers=count),
    )
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as loop_runner:
            return loop_runner.run(_serve(options, manifests, console, _ui_options(args)))
    except errors.KneventsError as exc:
        console.emit("error", str(exc))
        return 1


def _workers(args: argparse.Namespace) -> int:
    from knevents.local import workers

    if args.workers is not None:
        return int(args.workers)
    env = os.environ.get("KNEVENTS_WORKERS")
    return int(env) if env and env.isdigit() else workers.default_count()


def _share_metrics(state_dir: Path) -> None:
    """``run --workers``: metric values in per-process files that worker 0's ``/metrics`` and UI add up.

    One directory per runner (``<state-dir>/metrics/<pid of worker 0>``); the workers inherit it through the
    environment, and the runner removes those of runners that are gone once it holds the state dir.
    """
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # the user's own choice
        return
    directory = (state_dir / "metrics" / str(os.getpid())).resolve()  # the same for a worker whatever its cwd
    directory.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)


def _worker_flags(args: argparse.Namespace) -> tuple[str, ...]:
    """The flags worker i is started with: the runner's delivery and output settings; no UI, hooks or metrics."""
    flags = ["--state-dir", str(args.state_dir), "--log-format", args.log_format, "--log-level", args.log_level,
             "--max-deliveries", str(args.max_deliveries), "--retry-backoff", str(args.retry_backoff),
             "--concurrency", str(args.concurrency), "--host", args.host, "--default-port", str(args.default_port),
             "--workers", str(_workers(args)), "--no-ui", "--no-hooks", "--metrics-port", "0"]
    return (*flags, "--dry-run") if args.dry_run else tuple(flags)


def _loop_factory() -> Any:
    """uvloop's event loop when installed (about a tenth less CPU per event in the runner), else asyncio's."""
    from knevents.runtime import httpserver

    return httpserver.new_loop


def _ui_options(args: argparse.Namespace) -> dict[str, Any] | None:
    if args.no_ui or args.worker_index:
        return None
    return {"port": args.ui_port, "host": args.ui_host, "token": args.ui_token}


async def _start_ui(ui_options: dict[str, Any] | None, the_runner: Any, manifests: Any, console: Any) -> Any:
    """Serve the web UI next to the runner; a busy default port only costs a warning."""
    if ui_options is None:
        return None
    from knevents import errors, ui

    explicit = ui_options["port"] is not None
    try:
        server = await ui.serve(the_runner.nc, the_runner.bus_name, manifests, host=ui_options["host"],
                                port=ui_options["port"] if explicit else ui.DEFAULT_PORT, token=ui_options["token"],
                                workers=the_runner.workers_info)
    except errors.KneventsError as exc:
        if explicit:
            raise
        console.emit("warning", f"web UI not started: {exc} (choose one with --ui-port, or --no-ui)")
        return None
    console.emit("info", f"web UI: {server.url}", ui=server.url)
    return server


async def _serve(options: Any, manifests: Any, console: Any, ui_options: dict[str, Any] | None = None) -> int:
    from knevents.local import runner

    the_runner = runner.Runner(options, manifests, console)
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if the_runner.stop_event.is_set():  # a second Ctrl-C: stop now, without waiting for work in flight
            console.emit("warning", "forced stop")
            the_runner.kill()
            os._exit(130)
        the_runner.stop_event.set()

    for sig in (signal.SIGTERM,) if options.is_worker else (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    ui_server = None
    try:
        await the_runner.start()
        ui_server = await _start_ui(ui_options, the_runner, manifests, console)
        await the_runner.wait()
    finally:
        refused = not the_runner.holds_state_dir  # another runner has it: nothing of ours to stop, say only why
        if not refused:
            console.emit("info", "stopping")
        if ui_server is not None:
            await ui_server.stop()
        await the_runner.stop()
        if not refused:
            console.emit("info", "stopped")
        sys.stdout.flush()
    return 0
