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

import logging
import os
from collections.abc import Mapping
from typing import Any

from knevents import errors, metrics, redact, state, validation, web
from knevents.runtime import sensor, sensor_obs
from knevents.runtime.loopthread import LoopThread
from knevents.secrets import SecretResolver
from knevents.settings import ServerSettings, Settings

__all__ = ["LoopThread", "SensorApp"]

log = logging.getLogger("knevents.sensor")
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


