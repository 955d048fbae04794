"""The sensor function's process-level wiring: spec, store and runtime from the environment.

``functions/sensor/main.py`` stays a thin adapter (Flask / Starlette ↔
:mod:`knevents.web`); everything it needs to serve is here: reading
``KNEVENTS_SPEC`` (a path, or inline YAML/JSON), choosing the state store
(``KNEVENTS_NATS_URL`` → JetStream KV; unset → in-memory, with a warning, so a
single replica still works), routing ``/health`` and ``/metrics``, and — for
the synchronous (WSGI) target — one background event loop thread that runs the
async pipeline. A bad spec does not crash the process: every request answers
500 with the spec's problems and ``/health`` answers 503, so the error is in
the logs and in the answer, never a traceback.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

from knevents import errors, metrics, redact, state, validation, web
from knevents.runtime import sensor, sensor_obs
from knevents.secrets import SecretResolver
from knevents.settings import ServerSettings, Settings

__all__ = ["LoopThread", "SensorApp"]

log = logging.getLogger("knevents.sensor")
T = TypeVar("T")
SPEC_ENV = "KNEVENTS_SPEC"
NATS_ENV = "KNEVENTS_NATS_URL"
LOG_LEVEL_ENV = "KNEVENTS_LOG_LEVEL"
RECORD_ENV = "KNEVENTS_RECORD_FIRINGS"
"""``1`` (``render --ui`` sets it): also write each firing to the firing log, for the UI; off by default."""


class SensorApp:
    """One sensor function: answers ``/health``, ``/metrics`` and CloudEvent deliveries."""

    def __init__(self, runtime: sensor.SensorRuntime | None, problem: str | None = None,
                 max_body: int = ServerSettings.max_body) -> None:
        self.runtime = runtime
        self.problem = problem
        self.max_body = max_body
        """Bytes of request body the adapters read (``KNEVENTS_MAX_BODY``); more is a 413."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SensorApp:
        """Build from the environment; a spec or settings problem is kept and reported, not raised."""
        env = os.environ if env is None else env
        try:
            sensor_obs.configure_json_logging(env.get(LOG_LEVEL_ENV) or "info")
        except ValueError as exc:
            sensor_obs.configure_json_logging()
            log.error("%s=%s ignored: %s", LOG_LEVEL_ENV, env.get(LOG_LEVEL_ENV), exc)
        try:
            settings = Settings.from_env(env)
            source = env.get(SPEC_ENV)
            if not source:
                raise errors.SpecError(
                    f"{SPEC_ENV} is not set: give a path to a Sensor manifest or inline YAML/JSON"
                )
            model = validation.load_one(source, kind="Sensor")
            store = _store(env, settings)
            runtime = sensor.SensorRuntime(
                model, store, settings=settings, secrets=SecretResolver(settings.secrets, env),
                **_recording(env, store, model.metadata.name),
            )
        except (errors.KneventsError, ValueError, OSError) as exc:
            log.error("sensor function cannot start: %s", exc)
            return cls(None, str(exc))
        log.info("sensor function ready", extra={"sensor": runtime.name, "namespace": runtime.namespace})
        return cls(runtime, max_body=settings.server.max_body)

    async def handle(self, request: web.Request) -> web.Response:
        """Route one request."""
        path = request.path.rstrip("/")
        if path == "/health":
            if self.runtime is None:
                return web.text_response(503, f"not ready: {self.problem}")
            return web.text_response(200, "ok")
        if path == "/metrics":
            body, content_type = metrics.render()
            return web.Response(200, body, {"content-type": content_type})
        if self.runtime is None:
            return web.text_response(500, f"the sensor function is misconfigured: {self.problem}")
        try:
            answer = await self.runtime.handle(request)
            return web.Response(answer.status, redact.redact_bytes(answer.body), answer.headers)
        except (RecursionError, UnicodeDecodeError) as exc:  # malformed input: a retry cannot help, never a 5xx
            log.warning("malformed event refused: %s", type(exc).__name__)
            return web.text_response(400, f"malformed event: {type(exc).__name__}\n")


def _recording(env: Mapping[str, str], store: state.StateStore, name: str) -> dict[str, Any]:
    """``fire=`` writing the firing log when ``KNEVENTS_RECORD_FIRINGS`` asks (``render --ui``); else nothing."""
    if not env.get(RECORD_ENV):
        return {}
    from knevents.runtime import sensor_firings

    if not sensor_firings.wanted(env.get(RECORD_ENV)):
        return {}
    client = getattr(store, "client", None)  # JetStreamStore's connection; the in-memory store has none
    if client is None:
        log.warning("%s is set but %s is not: no NATS to record firings on", RECORD_ENV, NATS_ENV)
        return {}
    from knevents import triggers

    return {"fire": sensor_firings.FiringRecorder(triggers.fire, name, client)}


def _store(env: Mapping[str, str], settings: Settings) -> state.StateStore:
    if env.get(NATS_ENV):
        from knevents.state import jetstream  # imports nats; only when configured

        return jetstream.JetStreamStore(settings.nats.url, settings=settings)
    from knevents.state import memory

    log.warning(
        f"{NATS_ENV} is not set: sensor state is kept in memory; run a single replica only "
        "(several replicas would not share AND-conditions, dedupe or the outbox)"
    )
    return memory.MemoryStore(max_value_size=settings.state.max_value_size)


class LoopThread:
    """One event loop on a daemon thread, for synchronous servers (gunicorn threads) to submit to.

    Created lazily and re-created after ``fork`` (gunicorn imports the app in
    the master, then forks workers; a thread does not survive the fork).
    Closed at interpreter exit (a gunicorn worker's exit runs ``atexit``) the
    way ``asyncio.run`` ends a loop, so the trigger client pools of the loop
    close politely (:mod:`knevents.triggers.pools`).
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()
        self._at_exit = False

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=_run_until_stopped, args=(loop,), name="knevents-loop",
                                                daemon=True)
                self._thread.start()
                if not self._at_exit:  # once per instance; in a forked worker it closes the worker's loop
                    self._at_exit = True
                    atexit.register(self.close)
                self._loop, self._pid = loop, os.getpid()
            return self._loop

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop thread and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._ensure()).result(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Stop this process's loop and close it as ``asyncio.run`` does (no-op when none was started here)."""
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
            if loop is None or thread is None or self._pid != os.getpid() or loop.is_closed():
                return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)


def _run_until_stopped(loop: asyncio.AbstractEventLoop) -> None:
    """The loop thread: serve until stopped, then end as ``asyncio.run`` does: cancel what is left, close the
    async generators (the trigger pools' guards close the pools there), close the loop."""
    try:
        loop.run_forever()
    finally:
        try:
            left = asyncio.all_tasks(loop)
            for task in left:
                task.cancel()
            if left:
                loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
