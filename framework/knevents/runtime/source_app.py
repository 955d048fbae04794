"""The event-source function's process-level wiring: spec, publisher and runtime from the environment.

``functions/eventsource/main.py`` stays a thin adapter (Flask / Starlette ↔
:mod:`knevents.web`); this module reads ``KNEVENTS_SPEC`` (a path, or inline
YAML/JSON), picks the publisher (``K_SINK`` → the broker over HTTP, else
JetStream at ``KNEVENTS_NATS_URL``), answers ``/health`` and ``/metrics``, and
runs pull loops (nats, calendar ``interval``) on a background event loop.

Publishers hold connections bound to one event loop, so there is one runtime
per loop: the synchronous (WSGI) target submits every request to the
background loop; the ASGI target serves on the server's loop with its own runtime.
On Knative (``K_SERVICE`` set) cron ``schedule`` ticks come from a PingSource,
so only ``interval`` calendars tick in-process; override with
``KNEVENTS_CALENDAR_IN_PROCESS=true|false``.

A bad spec does not crash the process: requests answer 500 with the problems,
``/health`` 503, and the log says why. Never a traceback to the caller.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from typing import Any

from knevents import bus, errors, redact, validation, web
from knevents.runtime import sensor_obs, source
from knevents.runtime.loopthread import LoopThread
from knevents.secrets import SecretResolver
from knevents.settings import Settings

__all__ = ["LoopThread", "SourceApp"]

log = logging.getLogger("knevents.eventsource")
SPEC_ENV = "KNEVENTS_SPEC"


class SourceApp:
    """One event-source function: routes requests to the runtime of the calling event loop."""

    def __init__(
        self,
        model: Any = None,
        *,
        settings: Settings | None = None,
        secrets: SecretResolver | None = None,
        schedules_in_process: bool = True,
        problem: str | None = None,
    ) -> None:
        self.model = model
        self.problem = problem
        self.settings = settings or Settings()
        self.secrets = secrets or SecretResolver(self.settings.secrets)
        self.schedules_in_process = schedules_in_process
        self.background = LoopThread("knevents-source-loop")
        self._runtimes: dict[int, source.SourceRuntime] = {}
        self._stop: asyncio.Event | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SourceApp:
        """Build from the environment; a spec or settings problem is kept and reported, not raised."""
        env = os.environ if env is None else env
        sensor_obs.configure_json_logging()
        try:
            settings = Settings.from_env(env)
            text = env.get(SPEC_ENV)
            if not text:
                raise errors.SpecError(
                    f"{SPEC_ENV} is not set: give a path to an EventSource manifest or inline YAML"
                )
            model = validation.load_one(text, kind="EventSource")
            app = cls(
                model,
                settings=settings,
                secrets=SecretResolver(settings.secrets, env),
                schedules_in_process=settings.sources.calendar_in_process,
            )
            app.runtime()  # build once now: a spec problem shows at start, not on the first request
        except (errors.KneventsError, ValueError, OSError) as exc:
            log.error("event source function cannot start: %s", exc)
            return cls(problem=str(exc))
        log.info(
            "event source function ready",
            extra={"eventsource": model.metadata.name, "sink": settings.bus.sink or "jetstream"},
        )
        return app

    @property
    def max_body(self) -> int:
        """Bytes of request body the adapters read: the largest ``maxPayloadSize`` of the routes, else the setting."""
        if self.model is None:
            return self.settings.server.max_body
        return self.runtime().max_body(None)

    def runtime(self) -> source.SourceRuntime:
        """The runtime bound to the running event loop (or a first one, outside any loop)."""
        try:
            key = id(asyncio.get_running_loop())
        except RuntimeError:
            key = 0
        found = self._runtimes.get(key)
        if found is None:
            publisher = bus.from_settings(self.settings)
            found = source.SourceRuntime(
                self.model,
                publisher,
                settings=self.settings,
                secrets=self.secrets,
                schedules_in_process=self.schedules_in_process,
            )
            self._runtimes[key] = found
        return found

    async def handle(self, request: web.Request) -> web.Response:
        """Route one request: health, metrics, or the event source."""
        if self.model is None:
            if request.path.rstrip("/") == "/health":
                return web.text_response(503, f"not ready: {self.problem}\n")
            return web.text_response(500, f"the event source function is misconfigured: {self.problem}\n")
        answer = await self.runtime().handle(request)
        return web.Response(answer.status, redact.redact_bytes(answer.body), answer.headers)

    def start_pull(self) -> bool:
        """Start the pull loops (if the spec has any) on the background loop; True when started."""
        if self.model is None or self._stop is not None:
            return False

        async def run() -> None:
            self._stop = asyncio.Event()
            await self.runtime().run_pull(self._stop)

        if not self.runtime().pull_entries():
            return False
        self.background.submit(run())
        return True
