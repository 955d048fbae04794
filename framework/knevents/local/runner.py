"""``knevents run``: every EventSource and Sensor of a folder on one machine, with an embedded nats-server.

The runner wires the same runtimes a Knative deployment runs, in one process:
EventSources publish to a JetStream stream (the bus), one durable consumer per
Sensor feeds the sensor function's HTTP entry point (:mod:`.dispatcher`), and
sensor state lives in JetStream KV in the same server. Everything persistent
is under ``--state-dir``, so stopping and starting again resumes: pending AND
state, undelivered events and consumer positions survive.

It must not contain event-source, sensor or trigger logic: those belong to the
runtimes; the runner only starts, routes, observes and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from knevents import errors, events, redact, web
from knevents.bus import codec, naming
from knevents.local import console as console_mod
from knevents.local import (
    dispatcher,
    httpserve,
    natsauth,
    natsd,
    observer,
    replay,
    routes,
    runnerfile,
    streams,
    workers,
)
from knevents.secrets import SecretResolver
from knevents.settings import Settings

__all__ = ["RunOptions", "Runner", "kubeconfig_in_use"]

log = logging.getLogger("knevents.local.runner")

@dataclass(frozen=True)
class RunOptions:
    """The flags of ``knevents run``."""

    paths: Sequence[str]
    state_dir: Path = Path(".knevents")
    nats_url: str | None = None
    dry_run: bool = False
    bus: str | None = None
    host: str = "127.0.0.1"
    default_port: int = 12000
    """Port for push routes whose spec names none (SNS/Pub/Sub push endpoints)."""
    policy: dispatcher.DeliveryPolicy = field(default_factory=dispatcher.DeliveryPolicy)
    hooks: bool = True
    """Apply provider webhooks at start (``--no-hooks`` turns it off); see :mod:`knevents.local.hookrun`."""
    metrics_port: int = 7777
    """Port of ``/metrics`` for the whole runner (Argo's metrics port); 0 serves none."""
    workers: int = 1
    """Processes serving this runner (:mod:`knevents.local.workers`); worker 0 starts the others."""
    worker_index: int = 0
    """0 for the runner itself; 1..N-1 for a worker it started (then ``nats_url`` is the runner's, stripped)."""
    worker_parent: int = 0
    """In a worker: the pid of the worker 0 that started it (the worker leaves when that process is gone)."""
    worker_flags: tuple[str, ...] = ()
    """The command-line flags a worker is started with (the runner's own, minus what only worker 0 does)."""

    @property
    def is_worker(self) -> bool:
        """A process started by the runner, not the runner itself."""
        return self.worker_index > 0


def kubeconfig_in_use(settings: Settings, home: Path | None = None) -> str | None:
    """The kubeconfig the triggers will use: ``KUBECONFIG`` (or ``KNEVENTS_KUBECONFIG``), else ``~/.kube/config``."""
    if settings.kube.kubeconfig:
        files = [p for p in settings.kube.kubeconfig.split(os.pathsep) if p and Path(p).exists()]
        return files[0] if files else None
    default = (home or Path.home()) / ".kube" / "config"
    return str(default) if default.exists() else None


class _ConsolePublisher:
    """Prints one line per event, then hands it to the bus publisher."""

    def __init__(self, inner: Any, console: console_mod.Console) -> None:
        self.inner = inner
        self.console = console

    @property
    def connected(self) -> bool | None:
        """The bus connection's state, for ``/health``."""
        return getattr(self.inner, "connected", None)

    async def publish(self, event: events.Event) -> None:
        await self.inner.publish(event)
        self.console.emit(
            "event", f"{event.source}/{event.subject} id={event.id} type={event.type}",
            eventsource=event.source, event=event.subject, id=event.id, type=event.type,
        )


class Runner:
    """Start, serve and stop everything of one ``knevents run``."""

    def __init__(self, options: RunOptions, manifests: Any, console: console_mod.Console,
                 settings: Settings | None = None, secrets: SecretResolver | None = None) -> None:
        self.options = options
        self.manifests = manifests
        self.console = console
        self.bus_name = self._pick_bus()
        base = settings or Settings.from_env()
        self.settings = base
        self.secrets = secrets or SecretResolver(base.secrets)
        self.kubeconfig = kubeconfig_in_use(base)
        if self.kubeconfig and not base.kube.kubeconfig:
            self.settings = dataclasses.replace(
                base, kube=dataclasses.replace(base.kube, kubeconfig=self.kubeconfig))
        self.nats: natsd.NatsServer | None = None
        self.retention: Any = None
        self.nc: Any = None
        self.store: Any = None
        self.stop_event = asyncio.Event()
        self._servers: list[httpserve.PortServer] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self._sources_info: list[runnerfile.SourceInfo] = []
        self._tls_ports: set[int] = set()
        self._sensors_info: list[runnerfile.SensorInfo] = []
        self._hooks: Any = None
        self._lock_fd: int | None = None
        self._pool: workers.WorkerPool | None = None
        self._metrics_url: str | None = None
        self._started_at = observer.now()

    # --- configuration -------------------------------------------------------------

    def _pick_bus(self) -> str:
        if self.options.bus:
            return self.options.bus
        buses = [b.metadata.name for b in self.manifests.event_buses if b.metadata and b.metadata.name]
        if len(buses) > 1 and "default" not in buses:
            raise errors.KneventsError(
                f"several EventBuses ({', '.join(buses)}): choose one with --bus")
        return "default" if (not buses or "default" in buses) else buses[0]

    def _retention(self) -> Any:
        """The bus stream limits of the chosen EventBus (Argo's streamConfig names), else the defaults."""
        from knevents.bus import retention

        chosen = [b for b in self.manifests.event_buses if b.metadata and b.metadata.name == self.bus_name]
        return retention.from_event_bus(chosen[0]) if chosen else retention.DEFAULT

    def check(self) -> None:
        """Refuse what the runner cannot serve, with every reason at once."""
        problems = []
        for es in self.manifests.event_sources:
            if es.metadata.name == streams.RESERVED_SOURCE:
                problems.append(f"EventSource name {es.metadata.name!r} is reserved for dead letters; rename it")
        if problems:
            raise errors.KneventsError("cannot run:\n" + "\n".join(f"  - {p}" for p in problems))

    # --- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Start nats-server (unless --nats-url), the bus, the sensors' consumers, then the sources."""
        self.check()
        if self.options.is_worker:
            await self._start_worker()
            return
        if self._lock_fd is None:  # refuse before touching the nats-server or store of a running runner
            self._lock_fd = runnerfile.lock(self.options.state_dir)
        if self.options.workers > 1:
            _remove_stale_metrics(self.options.state_dir)
        from knevents.bus import jetstream

        js = await self._connect(await self._start_nats())
        self.retention = self._retention()
        # A duplicate window as long as the dedupe TTL: then a message delivered for the first time cannot be an
        # event the sensors already took, and they skip the dedupe read for it.
        await jetstream.ensure_stream(js, self.bus_name, limits=self.retention, duplicate_window=max(
            jetstream.DEFAULT_DUPLICATE_WINDOW, self.settings.state.dedupe_ttl))
        await streams.ensure(js, self.bus_name)
        await self._start_sensors(js)
        await self._start_sources(js)
        if self.options.hooks and self.manifests.event_sources:
            from knevents.local import hookrun

            self._hooks = hookrun.HookLifecycle(list(self.manifests.event_sources), self.secrets, self.console)
            self._hooks.start()
        await self._start_metrics()
        self._write_runner_file(running=True)
        self._banner()
        if self.options.workers > 1:
            self._start_pool()

    async def _start_worker(self) -> None:
        """Worker i: the runner's NATS (its credentials from the state dir), its consumers and webhook ports."""
        self.console.origin["worker"] = self.options.worker_index
        # Worker 0 may die while this one starts: then it is no longer our parent, and we must not serve (no one
        # would stop us). Checked now, then every second (the parent's pid, not whoever adopted us).
        parent = self.options.worker_parent or os.getppid()
        if os.getppid() != parent:
            raise errors.KneventsError(f"worker 0 (pid {parent}) is gone; worker {self.options.worker_index} "
                                       "does not start")
        js = await self._connect(natsauth.client_url(self.options.state_dir, self.options.nats_url or ""))
        await self._start_sensors(js)
        await self._start_sources(js)
        self._tasks.append(asyncio.create_task(workers.watch_parent(self.stop_event, parent),
                                               name="parent-watch"))
        self.console.emit("info", f"worker {self.options.worker_index} ready (pid {os.getpid()})",
                          worker=self.options.worker_index, pid=os.getpid())

    async def _connect(self, url: str) -> Any:
        """Point the settings at the bus's NATS (``url``) and connect; the JetStream context."""
        from knevents.bus import jetstream

        self.settings = dataclasses.replace(
            self.settings,
            nats=dataclasses.replace(self.settings.nats, url=url),
            bus=dataclasses.replace(self.settings.bus, bus_name=self.bus_name, sink=None),
        )
        self.nc = await jetstream.connect(self.settings.nats)
        return self.nc.jetstream()

    def _start_pool(self) -> None:
        flags = [*self.options.worker_flags, "--nats-url", natsauth.strip(self.settings.nats.url),
                 "--bus", self.bus_name, "--worker-parent", str(os.getpid())]
        paths = [str(p) for p in self.options.paths]
        self._pool = workers.WorkerPool(lambda i: workers.worker_command(i, paths, flags), self.options.workers,
                                        lambda line: self.console.emit("warning", line),
                                        started=self._workers_started)
        self._pool.start()
        from knevents import metrics

        metrics.watch_workers(self._worker_pids)
        self._tasks.append(asyncio.create_task(self._pool.supervise(self.stop_event), name="workers"))

    def _workers_started(self) -> None:
        """Workers were started or restarted: list their pids in runner.json, drop the live gauges of dead ones."""
        from knevents import metrics

        self._write_runner_file(running=True)
        metrics.forget_processes({os.getpid(), *(p.pid for p in self._pool.procs.values())} if self._pool else set())

    async def _start_nats(self) -> str:
        if self.options.nats_url:
            natsauth.remember(self.options.state_dir, self.options.nats_url)
            return self.options.nats_url
        port = 0
        with contextlib.suppress(errors.KneventsError):  # no (readable) runner.json: a first run
            recorded = runnerfile.read(self.options.state_dir).nats_port()
            if recorded and _port_free(recorded):
                port = recorded
        store = (self.options.state_dir / "jetstream").resolve()
        if await asyncio.to_thread(natsd.stop_stale, store):
            self.console.emit("warning", "stopped a nats-server left running on this state dir by a previous run")
        # Only the holder of the state dir's credentials may connect (forged events, state rewrites)
        credentials = natsauth.ensure(self.options.state_dir)
        config = natsauth.server_config(self.options.state_dir, credentials)
        self.nats = natsd.NatsServer(store_dir=store, port=port, name="knevents-run", config_file=config,
                                     threads=natsd.default_threads(), batch=True)
        await asyncio.to_thread(self.nats.start)
        # Watched: a nats-server that dies is restarted on the same port and store; the clients reconnect.
        self._tasks.append(asyncio.create_task(natsd.supervise(
            self.nats, self.stop_event, lambda line: self.console.emit("warning", line)), name="nats-supervisor"))
        return natsauth.with_credentials(self.nats.url, credentials)

    async def _start_sensors(self, js: Any) -> None:
        if not self.manifests.sensors:
            return
        from knevents import triggers
        from knevents.runtime import sensor as sensor_runtime
        from knevents.state import jetstream as state_jetstream

        self.store = await state_jetstream.JetStreamStore.connect(self.settings.nats.url, settings=self.settings)
        self._closers.append(self.store.close)
        self._closers.append(triggers.aclose)  # pooled trigger clients (HTTP, kafka producers) of this loop
        bus_stream = naming.stream_name(self.bus_name)
        for sensor in self.manifests.sensors:
            name = sensor.metadata.name
            namespace = sensor.metadata.namespace or "default"
            runtime = sensor_runtime.SensorRuntime(
                sensor, self.store, settings=self.settings, secrets=self.secrets,
                dry_run=self.options.dry_run, fire=self._observed_fire(triggers.fire, name),
            )
            deps = list(sensor.spec.dependencies or [])
            subjects = [naming.subject(self.bus_name, d.event_source_name, d.event_name) for d in deps]
            if subjects:  # `knevents replay` re-delivers archived events to this sensor only, on its own subject
                subjects.append(replay.replay_subject(self.bus_name, name))
            if not subjects:
                self.console.emit("warning", f"sensor {name} has no dependencies; it will never fire")
                continue

            async def handle(event: events.Event, runtime: Any = runtime) -> web.Response:
                # Straight to the runtime: no HTTP request built and parsed back; the answer is the same.
                response: web.Response = await runtime.answer(event, first_delivery=dispatcher.DELIVERIES.get() == 1)
                # what the dispatcher prints and keeps in dead-letter headers must not carry secrets
                return web.Response(response.status, redact.redact_bytes(response.body), response.headers)

            dispatch = dispatcher.Dispatcher(
                js, stream=bus_stream, bus=self.bus_name, sensor=name, subjects=subjects, handler=handle,
                decode=lambda msg: codec.decode_nats(msg.headers, msg.data), console=self.console,
                policy=self.options.policy,
            )
            await dispatch.ensure_consumer()
            self._tasks.append(asyncio.create_task(dispatch.run(self.stop_event), name=f"sensor-{name}"))
            close = getattr(runtime, "close", None)
            if close is not None:
                self._closers.append(close)
            self._sensors_info.append(runnerfile.SensorInfo(
                name=name, namespace=namespace,
                triggers=[t.template.name for t in sensor.spec.triggers or [] if t.template],
                dependencies=[{"name": d.name, "eventSourceName": d.event_source_name,
                               "eventName": d.event_name} for d in deps],
            ))

    async def _start_sources(self, js: Any) -> None:
        if not self.manifests.event_sources:
            return
        from knevents.bus import jetstream
        from knevents.runtime import source as source_runtime

        async def reconnect() -> Any:  # the shared client closed for good: sources get a connection of their own
            client = await jetstream.connect(self.settings.nats)
            self._closers.append(client.close)
            return client.jetstream()

        publisher = _ConsolePublisher(jetstream.JetStreamPublisher(js, self.bus_name, connector=reconnect), self.console)
        by_port: dict[int, list[tuple[str | None, str, Any]]] = {}
        runtimes: list[tuple[Any, Any]] = []
        for es in self.manifests.event_sources:
            runtime = source_runtime.SourceRuntime(es, publisher, settings=self.settings, secrets=self.secrets)
            close = getattr(runtime, "close", None)
            if close is not None:
                self._closers.append(close)
            for port, endpoint, method in runtime.routes():
                real_port = port or self.options.default_port
                by_port.setdefault(real_port, []).append((method, endpoint, runtime))
            if not self.options.is_worker:  # pull sources run once, in worker 0 (two would publish twice)
                self._tasks.append(asyncio.create_task(runtime.run_pull(self.stop_event),
                                                       name=f"pull-{es.metadata.name}"))
            runtimes.append((es, runtime))
        for port, port_routes in sorted(by_port.items()):
            tls = next((c for c in (routes.ssl_of(r, port) for _m, _e, r in port_routes) if c is not None), None)
            self._tls_ports.update({port} if tls is not None else set())
            max_body = max(getattr(r, "max_body", lambda _p: self.settings.server.max_body)(port)
                           for _m, _e, r in port_routes)
            if self.options.workers > 1 and not self.options.is_worker:
                await _unshared(self.options.host, port)
            sock = httpserve.bind(self.options.host, port, reuse_port=self.options.workers > 1 or self.options.is_worker)
            server = httpserve.PortServer(sock, routes.router(port, port_routes), tls,
                                          max_body=max_body, limits=self.settings.server)
            await server.start()
            self._servers.append(server)
        for es, runtime in runtimes:
            self._sources_info.extend(self._describe_source(es, runtime))

    async def _start_metrics(self) -> None:
        """``/metrics`` of every source and sensor of this runner (``knevents_*`` and Argo's ``argo_events_*``)."""
        if not self.options.metrics_port:
            return
        from knevents import metrics

        async def serve(request: web.Request) -> web.Response:
            if request.path.rstrip("/") != "/metrics":
                return web.text_response(404, "only /metrics is served on this port\n")
            body, content_type = metrics.render()
            return web.Response(200, body, {"content-type": content_type})

        try:
            sock = httpserve.bind(self.options.host, self.options.metrics_port)
        except errors.KneventsError as exc:  # metrics are not worth refusing to run for
            self.console.emit("warning", f"/metrics not served: {exc} (choose another with --metrics-port)")
            return
        server = httpserve.PortServer(sock, serve)
        await server.start()
        self._servers.append(server)
        self._metrics_url = f"http://{self._display_host()}:{server.port}/metrics"

    def _display_host(self) -> str:
        return "localhost" if self.options.host in ("127.0.0.1", "0.0.0.0") else self.options.host

    def _describe_source(self, es: Any, runtime: Any) -> list[runnerfile.SourceInfo]:
        host = "localhost" if self.options.host in ("127.0.0.1", "0.0.0.0") else self.options.host
        out = []
        pushed: set[str] = set()
        for port, endpoint, method in runtime.routes():
            event = routes.event_of_route(es, endpoint)
            pushed.add(event)
            real_port = port or self.options.default_port
            scheme = "https" if real_port in self._tls_ports else "http"
            out.append(runnerfile.SourceInfo(
                eventsource=es.metadata.name, event=event, type=routes.type_of(es, event),
                url=f"{scheme}://{host}:{real_port}{endpoint}", method=method))
        for key, entries in routes.spec_entries(es):
            for event in entries:
                if event not in pushed:
                    out.append(runnerfile.SourceInfo(eventsource=es.metadata.name, event=event, type=key))
        return out

    async def wait(self) -> None:
        """Return when ``stop_event`` is set or a background task died."""
        waiter = asyncio.create_task(self.stop_event.wait())
        pending = {waiter, *self._tasks}
        while not self.stop_event.is_set():
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not waiter and task.exception() is not None:
                    exc = task.exception()
                    self.console.emit("error", f"{task.get_name()} stopped: {type(exc).__name__}: {exc}")
            if not pending - {waiter}:
                await waiter
        waiter.cancel()

    async def stop(self) -> None:
        """Stop accepting, finish work in flight, close connections, stop nats-server, mark the state stopped."""
        self.stop_event.set()
        if self._lock_fd is None and not self.options.is_worker:  # refused at start: touch nothing of the state
            return
        if self._pool is not None:
            await self._pool.stop()
        # Closing connections on purpose makes the NATS clients report "disconnected": not news at exit.
        for name in ("knevents.state", "knevents.bus", "nats"):
            logging.getLogger(name).setLevel(logging.ERROR)
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.stop()
        if self._hooks is not None:
            with contextlib.suppress(Exception):
                await self._hooks.stop()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=10)
            for task in pending:
                task.cancel()
        for close in reversed(self._closers):
            with contextlib.suppress(Exception):
                await close()
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.drain()
        if self.nats is not None:
            await asyncio.to_thread(self.nats.stop)
        if not self.options.is_worker:
            with contextlib.suppress(Exception):
                self._write_runner_file(running=False)
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    @property
    def holds_state_dir(self) -> bool:
        """Whether this runner took its state dir (False before start, or when another runner holds it)."""
        return self._lock_fd is not None

    def kill(self) -> None:
        """Stop the embedded nats-server at once (a forced exit); JetStream recovers its store on the next start."""
        if self._pool is not None:
            self._pool.kill()
        if self.nats is not None:
            self.nats.stop(timeout=2.0)

    # --- observation -----------------------------------------------------------------

    def _observed_fire(self, fire: Callable[..., Awaitable[Any]], sensor: str) -> Callable[..., Awaitable[Any]]:
        """``triggers.fire`` wrapped by a :class:`observer.FiringObserver` for ``sensor``."""
        cluster = self.kubeconfig is not None or self.settings.kube.in_cluster
        return observer.FiringObserver(fire, sensor, self.console, self._record, cluster=cluster,
                                       forced_dry_run=self.options.dry_run)

    async def _record(self, firing: streams.Firing) -> None:
        detail = redact.redact(firing.detail)
        if detail != firing.detail:
            firing = dataclasses.replace(firing, detail=detail)
        try:
            await streams.record_firing_nowait(self.nc, firing)
        except Exception as exc:
            log.warning("could not record a firing of %s/%s: %s", firing.sensor, firing.trigger, exc)

    def workers_info(self) -> list[dict[str, Any]]:
        """Every process serving this runner now (``[{index, pid, alive}]``), as ``knevents status`` lists them."""
        return runnerfile.worker_list(self._worker_pids())

    def _worker_pids(self) -> dict[int, int]:
        return {0: os.getpid(), **({i: p.pid for i, p in self._pool.procs.items()} if self._pool else {})}

    def _write_runner_file(self, *, running: bool) -> None:
        runnerfile.write(self.options.state_dir, runnerfile.RunnerInfo(
            nats_url=natsauth.strip(self.settings.nats.url), bus=self.bus_name, pid=os.getpid(), running=running,
            managed_nats=self.nats is not None, state_dir=str(self.options.state_dir.resolve()),
            max_deliveries=self.options.policy.max_deliveries, sources=self._sources_info,
            sensors=self._sensors_info, started=self._started_at,
            workers={index: proc.pid for index, proc in self._pool.procs.items()} if running and self._pool else {},
            paths=[str(Path(p).resolve()) for p in self.options.paths]))

    def _banner(self) -> None:
        lines = [f"knevents run: bus {self.bus_name!r} on {natsauth.strip(self.settings.nats.url)}"
                 f"{' (embedded nats-server, store ' + str(self.options.state_dir / 'jetstream') + ')' if self.nats else ''}"]
        lines.append(f"bus stream limits: {self.retention.describe()} (oldest events go first)")
        lines.append("event sources:" if self._sources_info else "event sources: none")
        for s in self._sources_info:
            where = f"{s.method or 'ANY'} {s.url}" if s.url else f"({s.type}, pulled)"
            lines.append(f"  {s.eventsource}/{s.event:<20} {where}")
        lines.append("sensors:" if self._sensors_info else "sensors: none")
        known = {(s.eventsource, s.event) for s in self._sources_info}
        for sensor in self._sensors_info:
            deps = ", ".join(f"{d['name']}={d['eventSourceName']}/{d['eventName']}" for d in sensor.dependencies)
            lines.append(f"  {sensor.name} [{deps}] -> triggers: {', '.join(sensor.triggers) or 'none'}")
            for d in sensor.dependencies:
                if (d["eventSourceName"], d["eventName"]) not in known:
                    lines.append(f"    ! no EventSource event {d['eventSourceName']}/{d['eventName']} here: "
                                 f"{d['name']} only gets events sent with `knevents send --bus`")
        if self.options.dry_run:
            lines.append("dry run: triggers print what they would do")
        elif self.kubeconfig:
            lines.append(f"k8s/argoWorkflow triggers use the cluster of {self.kubeconfig} (--dry-run to print instead)")
        else:
            lines.append("no kubeconfig: k8s/argoWorkflow triggers print the resolved resource (dry run)")
        if self._metrics_url:
            lines.append(f"metrics (knevents_* and Argo's argo_events_*): {self._metrics_url}")
        lines.append(f"dead letters after {self.options.policy.max_deliveries} deliveries -> "
                     f"{streams.dlq_subject(self.bus_name, 'x')[:-1]}<sensor>; Ctrl-C to stop")
        self.console.block(lines, bus=self.bus_name, nats_url=natsauth.strip(self.settings.nats.url),
                           sources=[dataclasses.asdict(s) for s in self._sources_info],
                           sensors=[dataclasses.asdict(s) for s in self._sensors_info])


async def _unshared(host: str, port: int, patience: float = 5.0) -> None:
    """Worker 0 of ``run --workers``: refuse a port that another process listens on before sharing it.

    ``SO_REUSEPORT`` lets any process of the same user that sets it listen too, so a second runner with workers
    on the same port would silently take half of this one's events. Workers of a runner just killed on this state
    dir free their ports within seconds, hence the patience.
    """
    deadline = asyncio.get_running_loop().time() + patience
    while True:
        try:
            httpserve.bind(host, port).close()
            return
        except errors.KneventsError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)


def _remove_stale_metrics(state_dir: Path) -> None:
    """Remove the shared metric files of runners that are gone (``<state-dir>/metrics/<pid>``, see ``knevents run``)."""
    import shutil

    for directory in (state_dir / "metrics").glob("*"):
        if directory.name.isdigit() and int(directory.name) != os.getpid() and not runnerfile.pid_alive(
                int(directory.name)):
            shutil.rmtree(directory, ignore_errors=True)


def _port_free(port: int) -> bool:
    try:
        httpserve.bind("127.0.0.1", port).close()
    except errors.KneventsError:
        return False
    return True
