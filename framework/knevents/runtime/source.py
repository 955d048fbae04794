"""The event-source pipeline: request or message → events → EventSource filter → bus.

:class:`SourceRuntime` builds one source per spec entry through the registry
(``sources.TYPES.get(key)`` imports only the types the spec uses), routes push
requests by ``(port, endpoint, method)``, and answers **2xx only after the bus
accepted every event** of the request; when the bus refuses, 503 so the caller
(GitHub, SNS, a PingSource, the broker) retries. Unknown paths get 404, a known
path with another method 405, ``/health`` 200 (503 with the reasons while a
pull source says it is not ready, e.g. its broker is unreachable). Pull sources
(nats, calendar ``interval`` …) run concurrently under :meth:`run_pull`.

Per event: the EventSource-level ``filter.expression`` (dropped events still get
2xx), a W3C ``traceparent`` request header becomes the CloudEvent extension,
metrics and a JSON log line. Ports: on Knative every event shares ``$PORT``
(``handle(request)`` with no port matches on method and path only); the
standalone port of the spec matters to the local runner, which passes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from knevents import bus, errors, events, metrics, sources, spec, web
from knevents.runtime import source_obs
from knevents.secrets import SecretResolver
from knevents.settings import Settings
from knevents.sources import base, common
from knevents.sources import filter as source_filter

__all__ = ["SourceRuntime", "log_rejected"]

_RESTART_DELAY = 1.0
"""Seconds before a pull source whose loop crashed is started again."""


@dataclass(frozen=True)
class _Entry:
    key: str
    event_name: str
    source: Any
    filter: source_filter.SourceFilter | None


@dataclass(frozen=True)
class _Bound:
    port: int | None
    endpoint: str
    method: str | None
    entry: _Entry


def _spec_entries(event_source: Any) -> Iterable[tuple[base.SourceType[Any], str, Any]]:
    """(type, event name, config) for every entry of a type knevents runs, in spec order.

    Types knevents does not run are skipped: ``validate`` reports them as not supported.
    """
    for key, entries in spec.source_types(event_source.spec):
        source_type = sources.TYPES.get(key)
        if source_type is not None:
            for name, config in entries.items():
                yield source_type, name, config


def _norm(path: str) -> str:
    return path.rstrip("/") or "/"


class SourceRuntime:
    """One EventSource: its push routes and pull loops, publishing to one bus."""

    def __init__(
        self,
        event_source: Any,
        publisher: bus.Publisher,
        *,
        settings: Settings | None = None,
        secrets: SecretResolver | None = None,
        schedules_in_process: bool = True,
    ) -> None:
        self.settings = settings or Settings()
        self.name: str = event_source.metadata.name
        self.namespace: str = event_source.metadata.namespace or "default"
        self.publisher = publisher
        self.schedules_in_process = schedules_in_process
        """False on Knative: cron ``schedule`` ticks then come from a PingSource, not an in-process timer."""
        self._metrics = source_obs.SourceMetrics(self.name, self.namespace)
        ctx = base.SourceContext(
            event_source_name=self.name,
            namespace=self.namespace,
            secrets=secrets or SecretResolver(self.settings.secrets),
            settings=self.settings,
        )
        self._entries, self._bound = self._build(event_source, ctx)
        self._metrics.argo.running(len(self._entries))

    def _build(self, event_source: Any, ctx: base.SourceContext) -> tuple[list[_Entry], list[_Bound]]:
        entries: list[_Entry] = []
        bound: list[_Bound] = []
        problems: list[errors.Problem] = []
        for source_type, name, config in _spec_entries(event_source):
            key = source_type.key
            where = f"spec.{key}.{name}"
            try:
                source = source_type.factory(name, config, ctx)
                flt = source_filter.from_config(config, where)
            except errors.SpecError as exc:
                problems.extend(replace(p, path=p.path or where) for p in exc.problems)
                continue
            except errors.KneventsError as exc:
                problems.append(errors.Problem(str(exc), path=where))
                continue
            except Exception as exc:  # a source that trips over a config shape: report it, keep the process up
                problems.append(errors.Problem(f"cannot build this source: {type(exc).__name__}: {exc}", path=where))
                continue
            entry = _Entry(key, name, source, flt)
            entries.append(entry)
            if isinstance(source, base.PushSource):
                for route in source.routes():
                    method = route.method.upper() if route.method else None
                    bound.append(_Bound(route.port, route.endpoint, method, entry))
        if problems:
            raise errors.SpecError(
                [replace(p, message=f"EventSource {self.name}: {p.message}") for p in problems]
            )
        self._warn_shared_routes(bound)
        return entries, bound

    def _warn_shared_routes(self, bound: list[_Bound]) -> None:
        """On Knative every event shares one port: two events on one (endpoint, method) cannot both be reached."""
        seen: dict[tuple[str, str | None], str] = {}
        for b in bound:
            key = (_norm(b.endpoint), b.method)
            if key in seen and seen[key] != b.entry.event_name:
                source_obs.log_event(
                    logging.WARNING,
                    "two events listen on the same endpoint and method on different ports; on one port "
                    "(Knative) only the first is reachable",
                    eventsource=self.name,
                    endpoint=b.endpoint,
                    events=[seen[key], b.entry.event_name],
                )
            seen.setdefault(key, b.entry.event_name)

    # --- push ------------------------------------------------------------------------

    def routes(self) -> list[tuple[int | None, str, str | None]]:
        """Every ``(port, endpoint, method)`` a push source listens on (port ``None`` = any)."""
        return [(b.port, b.endpoint, b.method) for b in self._bound]

    def health(self) -> web.Response:
        """200 while the bus connection is up (or not opened yet) and every pull source consumes, else 503 why."""
        if getattr(self.publisher, "connected", None) is False:
            return web.text_response(503, "the event bus connection is down; reconnecting\n")
        waiting = self.not_ready()
        if waiting:
            return web.text_response(503, "not ready: " + "; ".join(waiting) + "\n")
        return web.text_response(200, "ok\n")

    def max_body(self, port: int | None) -> int:
        """Bytes of body worth reading on ``port`` (``None``: every port): the largest route ``maxPayloadSize``.

        Sources without a payload limit of their own count as ``KNEVENTS_MAX_BODY``. The source still
        answers its own 413 with its exact limit; this only stops a transport from buffering more.
        """
        limits = [_payload_limit(b.entry.source) or self.settings.server.max_body
                  for b in self._bound if port is None or b.port is None or b.port == port]
        return max(limits, default=self.settings.server.max_body)

    def ssl_context(self, port: int) -> ssl.SSLContext | None:
        """The TLS context for a standalone ``port`` when one of its events configures a server cert."""
        for b in self._bound:
            if b.port == port:
                make = getattr(b.entry.source, "ssl_context", None)
                context = make() if make is not None else None
                if isinstance(context, ssl.SSLContext):
                    return context
        return None

    def _match(self, request: web.Request, port: int | None) -> _Bound | web.Response:
        path = _norm(request.path)
        allowed: set[str] = set()
        for b in self._bound:
            if _norm(b.endpoint) != path or (port is not None and b.port is not None and b.port != port):
                continue
            if b.method is None or b.method == request.method.upper():
                return b
            allowed.add(b.method)
        if allowed:
            return web.Response(405, b"method not allowed\n", {"allow": ", ".join(sorted(allowed))})
        return web.text_response(404, f"no event listens on {request.path}\n")

    async def handle(self, request: web.Request, port: int | None = None) -> web.Response:
        """Answer one HTTP request (Knative's contract: 2xx done, 5xx retry, 4xx refused); a refusal is logged."""
        response = await self._answer(request, port)
        if 400 <= response.status < 500:
            log_rejected(request, response, eventsource=self.name)
        return response

    async def _answer(self, request: web.Request, port: int | None) -> web.Response:
        path = _norm(request.path)
        if path == "/health":
            return self.health()
        if path == "/metrics" and request.method.upper() == "GET":
            body, content_type = metrics.render()
            return web.Response(200, body, {"content-type": content_type})
        matched = self._match(request, port)
        if isinstance(matched, web.Response):
            return matched
        entry = matched.entry
        try:
            result: base.PushResult = await entry.source.handle(request)
        except errors.KneventsError as exc:
            source_obs.log_event(
                logging.ERROR,
                "event source failed on a request",
                eventsource=self.name,
                event=entry.event_name,
                error=str(exc),
            )
            status = 503 if isinstance(exc, errors.TemporaryError) else 500
            return web.text_response(status, f"{type(exc).__name__}: {exc}\n")
        except (RecursionError, UnicodeDecodeError) as exc:  # malformed input a source did not expect: 400
            return web.text_response(400, f"malformed request: {type(exc).__name__}\n")
        except Exception as exc:  # the process stays up; the caller may retry
            source_obs.log.exception("event source %s/%s crashed on a request", self.name, entry.event_name)
            return web.text_response(500, f"internal error: {type(exc).__name__}\n")
        traceparent = _traceparent(request)
        try:
            await self._publish_all(entry, result.events, traceparent)
        except errors.BusUnavailableError as exc:
            return web.text_response(503, f"the event bus did not accept the event; retry later ({exc})\n")
        except errors.EventTooLargeError as exc:
            self._metrics.rejected(entry.event_name, source_obs.reason_of(413))
            return web.text_response(413, f"event too large for the bus: {exc}\n")
        if result.response is not None:
            if result.response.status >= 400:
                self._metrics.rejected(entry.event_name, source_obs.reason_of(result.response.status))
            elif not result.events:
                self._metrics.rejected(entry.event_name, "not_configured")
            return result.response
        return web.text_response(200, "success\n")

    # --- publishing ------------------------------------------------------------------------

    async def _publish_all(
        self, entry: _Entry, batch: Iterable[events.Event], traceparent: str | None
    ) -> None:
        for event in batch:
            await self._publish(entry, event, traceparent)

    async def _publish(self, entry: _Entry, event: events.Event, traceparent: str | None = None) -> bool:
        """Filter and publish one event; False when filtered out; BusUnavailableError when refused."""
        admitted = self._admit(entry, event, traceparent)
        if admitted is None:
            return False
        started = time.perf_counter()
        try:
            await self.publisher.publish(admitted)
        except errors.BusUnavailableError as exc:
            self._metrics.failed(entry.event_name, time.perf_counter() - started)
            self._log_refused(entry, admitted.id, exc)
            raise
        self._published(entry, admitted, time.perf_counter() - started)
        return True

    def _admit(self, entry: _Entry, event: events.Event, traceparent: str | None = None, *,
               count: bool = True) -> events.Event | None:
        """Count ``event`` received (unless the caller counted it) and pass it through the filter; ``None``: dropped."""
        if count:
            self._metrics.received(entry.event_name)
        if traceparent and "traceparent" not in event.extensions:
            event = replace(event, extensions={**event.extensions, "traceparent": traceparent})
        if entry.filter is not None:
            keep, why = entry.filter.passes(event)
            if not keep:
                self._metrics.rejected(entry.event_name, "filtered")
                source_obs.log_event(
                    logging.INFO,
                    "event dropped by the EventSource filter",
                    eventsource=self.name,
                    event=entry.event_name,
                    event_id=event.id,
                    reason=why,
                )
                return None
        return event

    def _published(self, entry: _Entry, event: events.Event, seconds: float, *, count: bool = True) -> None:
        if count:
            self._metrics.published(entry.event_name, seconds)
        # DEBUG, not INFO: one JSON line per event costs a third of the request on the hot path;
        # the published counter and latency histogram say the same in aggregate.
        source_obs.log_event(
            logging.DEBUG,
            "event published",
            eventsource=self.name,
            event=entry.event_name,
            event_id=event.id,
            type=event.type,
        )

    def _log_refused(self, entry: _Entry, event_id: str, exc: BaseException, **more: Any) -> None:
        source_obs.log_event(
            logging.ERROR,
            "the bus did not accept an event",
            eventsource=self.name,
            event=entry.event_name,
            event_id=event_id,
            error=str(exc),
            **more,
        )

    def _log_too_large(self, entry: _Entry, exc: Exception) -> None:
        # can never be delivered: say so, and do not make the source loop on it
        source_obs.log_event(logging.ERROR, "event dropped: too large for the bus",
                             eventsource=self.name, event=entry.event_name, error=str(exc))

    async def _publish_many(self, entry: _Entry, batch: Sequence[events.Event]) -> None:
        """Filter every event, publish the rest pipelined in batch order; BatchRefusedError(done=k) on a refusal.

        ``done`` counts the leading events of ``batch`` (filtered ones included) before the first refused
        one. Without a pipelining publisher (the HTTP sink) the events are published concurrently.
        """
        self._metrics.received(entry.event_name, len(batch))
        kept = [(i, admitted) for i, event in enumerate(batch)
                if (admitted := self._admit(entry, event, count=False)) is not None]
        started = time.perf_counter()
        outcomes: Sequence[BaseException | None]
        if isinstance(self.publisher, bus.BatchPublisher):
            outcomes = await self.publisher.publish_many([event for _, event in kept])
        else:
            outcomes = await asyncio.gather(*(self.publisher.publish(e) for _, e in kept), return_exceptions=True)
        seconds = time.perf_counter() - started
        refused: tuple[int, BaseException] | None = None
        self._metrics.published(entry.event_name, seconds, outcomes.count(None))
        debug = source_obs.log.isEnabledFor(logging.DEBUG)
        for (index, event), outcome in zip(kept, outcomes, strict=True):
            if outcome is None:
                if debug:
                    self._published(entry, event, seconds, count=False)
            elif isinstance(outcome, errors.EventTooLargeError):
                self._log_too_large(entry, outcome)
            elif isinstance(outcome, errors.BusUnavailableError):
                self._metrics.failed(entry.event_name, seconds)
                if refused is None:
                    refused = (index, outcome)
            else:
                raise outcome
        if refused is not None:
            index, exc = refused
            self._log_refused(entry, batch[index].id, exc, batch=len(batch), accepted_before=index)
            raise errors.BatchRefusedError(str(exc), done=index) from exc

    # --- pull ------------------------------------------------------------------------------

    def not_ready(self) -> list[str]:
        """``<event>: <reason>`` for every pull source that says it is not consuming yet."""
        out = []
        for entry in self._pulls():
            check = getattr(entry.source, "not_ready", None)
            reason = check() if check is not None else None
            if reason:
                out.append(f"{entry.event_name}: {reason}")
        return out

    def pull_entries(self) -> list[str]:
        """Event names whose source runs a loop in this process (nats, calendar interval …)."""
        return [e.event_name for e in self._pulls()]

    def _pulls(self) -> list[_Entry]:
        out = []
        for entry in self._entries:
            if not isinstance(entry.source, base.PullSource):
                continue
            if getattr(entry.source, "schedule_driven", False) and not self.schedules_in_process:
                continue
            out.append(entry)
        return out

    async def run_pull(self, stop: asyncio.Event) -> None:
        """Run every pull source until ``stop`` is set; a loop that crashes is restarted after a pause."""
        pulls = self._pulls()
        if not pulls:
            return
        await asyncio.gather(*(self._run_one(entry, stop) for entry in pulls))

    async def _run_one(self, entry: _Entry, stop: asyncio.Event) -> None:
        publish = _EntryPublish(self, entry)
        while not stop.is_set():
            try:
                await entry.source.run(publish, stop)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep the other sources and the process running
                missing = _missing_extra(exc)
                if missing is not None:  # an optional client is not installed: restarting cannot help
                    source_obs.log_event(logging.ERROR, f"event source stopped: {missing}",
                                         eventsource=self.name, event=entry.event_name)
                    return
                source_obs.log_event(
                    logging.ERROR,
                    "pull source stopped with an error; restarting",
                    eventsource=self.name,
                    event=entry.event_name,
                    error=f"{type(exc).__name__}: {exc}",
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), _RESTART_DELAY)
            else:
                return

    async def close(self) -> None:
        """Release what the sources hold (connections); the publisher is the caller's."""
        for entry in self._entries:
            close = getattr(entry.source, "close", None)
            if close is not None:
                try:
                    await close()
                except Exception as exc:  # closing must not fail a shutdown
                    source_obs.log.debug("closing %s failed: %r", entry.event_name, exc)


class _EntryPublish:
    """The ``publish`` a pull source gets (:class:`base.BatchPublish`): one event, or a batch pipelined."""

    def __init__(self, runtime: SourceRuntime, entry: _Entry) -> None:
        self._runtime = runtime
        self._entry = entry

    async def __call__(self, event: events.Event) -> None:
        try:
            await self._runtime._publish(self._entry, event)
        except errors.EventTooLargeError as exc:
            self._runtime._log_too_large(self._entry, exc)

    async def many(self, batch: Sequence[events.Event]) -> None:
        await self._runtime._publish_many(self._entry, batch)


def _payload_limit(source: Any) -> int | None:
    """A push source's ``maxPayloadSize`` when it has one (webhook-like sources keep it on ``hook``)."""
    limit = getattr(getattr(source, "hook", None), "max_payload", None)
    return limit if isinstance(limit, int) else None


def _traceparent(request: web.Request) -> str | None:
    return common.traceparent(request.headers.get("traceparent") or request.headers.get("ce-traceparent"))


def _missing_extra(exc: Exception) -> errors.MissingExtraError | None:
    if isinstance(exc, errors.MissingExtraError):
        return exc
    return errors.missing_extra(exc) if isinstance(exc, ImportError) else None


def log_rejected(request: web.Request, response: web.Response, **fields: Any) -> None:
    """One warning per refused request: method, path, status and our own answer (never the caller's body)."""
    answer = response.body[:200].decode(errors="replace").strip().splitlines()
    source_obs.log_event(
        logging.WARNING,
        f"request rejected: {request.method.upper()} {request.path} -> {response.status}",
        status=response.status,
        reason=answer[0] if answer else None,
        **fields,
    )
