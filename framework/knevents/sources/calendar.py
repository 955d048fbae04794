"""The ``calendar`` event source: ticks on a cron ``schedule`` or an ``interval``.

Event data as Argo's ``CalendarEventData``: ``{"eventTime": "<Go time.String()>",
"metadata"?: {...}}``, e.g. ``"2024-05-01 10:30:00 +0000 UTC"`` (Go's monotonic
``m=+…`` suffix is left out). Exclusion dates (``EXDATE:20190102T150405Z``,
comma lists allowed) skip every tick on that calendar day, as Argo compares
year, month and day. ``timezone`` applies to the schedule and to eventTime.

Where ticks come from:

* **PingSource** (Knative, scale to zero): a POST to ``/calendar/<event name>``
  is one tick; its CloudEvent ``ce-time`` (else now) is the tick time, and the
  event id derives from the tick, so a redelivered ping dedupes.
* **in process** (:meth:`CalendarSource.run`): ``interval`` always (a pull
  source, min-scale 1 on Knative); ``schedule`` when the runtime runs
  schedules in process (the local runner, a plain container).

``persistence.catchup.enabled``: the last tick time is kept in JetStream KV
(:mod:`calendar_store`); on start the ticks missed since then are fired at
once, no further back than ``catchup.maxDuration``. The clock and the sleep
are injectable so tests run without waiting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from knevents import errors, events, web
from knevents.sensors import cron
from knevents.sources import base, calendar_store, common, webhook
from knevents.spec import models

__all__ = ["SOURCE", "CalendarSource", "create", "event_time", "parse_exclusion_dates"]

log = logging.getLogger(__name__)
PATH = "/calendar/{event}"
"""The push route a PingSource posts ticks to."""

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]


def event_time(when: datetime) -> str:
    """Go's ``time.Time.String()`` without the monotonic part: ``2006-01-02 15:04:05.999999999 -0700 MST``."""
    text = when.strftime("%Y-%m-%d %H:%M:%S")
    if when.microsecond:
        text += f".{when.microsecond:06d}".rstrip("0")
    return f"{text} {when.strftime('%z')} {when.tzname() or 'UTC'}"


def parse_exclusion_dates(values: list[str] | None, where: str) -> list[datetime]:
    """RFC 5545 ``EXDATE:`` values; entries without the prefix are ignored, as in Argo."""
    out: list[datetime] = []
    for value in values or []:
        if not value.startswith("EXDATE:"):
            continue
        for text in value[len("EXDATE:") :].split(","):
            try:
                out.append(datetime.strptime(text.strip(), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC))
            except ValueError:
                raise errors.SpecError(f"{where}.exclusionDates: {text!r} is not like 20190102T150405Z") from None
    return out


def _zone(name: str | None, where: str) -> tzinfo:
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise errors.SpecError(f"{where}.timezone: unknown time zone {name!r}") from None


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


class CalendarSource:
    """One ``calendar`` entry: a push route for PingSource ticks and an in-process ticker."""

    def __init__(
        self,
        event_name: str,
        config: Any,
        ctx: base.SourceContext,
        *,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
        store: calendar_store.TickStore | None = None,
    ) -> None:
        where = f"calendar.{event_name}"
        self.event_name = event_name
        self._ctx = ctx
        self._zone = _zone(config.timezone, where)
        self._exdates = parse_exclusion_dates(config.exclusion_dates, where)
        self._metadata = dict(config.metadata) if config.metadata else None
        self._clock: Clock = clock or (lambda: datetime.now(UTC))
        self._sleep: Sleep = sleep or _sleep
        self._cron: cron.Schedule | None = None
        self._interval = 0.0
        if config.schedule:
            try:
                self._cron = cron.parse(config.schedule, config.timezone)
            except cron.CronError as exc:
                raise errors.SpecError(f"{where}.schedule: {exc.reason}") from None
        elif config.interval:
            seconds = common.parse_go_duration(config.interval, f"{where}.interval")
            if seconds <= 0:
                raise errors.SpecError(f"{where}.interval must be positive, got {config.interval!r}")
            self._interval = max(seconds, 1.0)  # robfig/cron rounds a constant delay up to one second
        else:
            raise errors.SpecError(f"{where}: a calendar needs a schedule or an interval")
        self.schedule_driven = self._cron is not None
        """True for a cron ``schedule`` (a PingSource ticks it on Knative); False for ``interval``."""
        catchup = config.persistence.catchup if config.persistence is not None else None
        self._catchup = bool(catchup is not None and catchup.enabled)
        self._max_catchup: float | None = None
        if self._catchup and catchup is not None and catchup.max_duration:
            self._max_catchup = common.parse_go_duration(catchup.max_duration, f"{where}.persistence.catchup.maxDuration")
        if store is None and self._catchup:
            store = calendar_store.JetStreamTickStore(
                ctx.settings.nats, calendar_store.bucket_name(ctx.namespace, ctx.event_source_name)
            )
        self._store = store

    # --- the schedule ----------------------------------------------------------------

    def _excluded(self, when: datetime) -> bool:
        return any((d.year, d.month, d.day) == (when.year, when.month, when.day) for d in self._exdates)

    def next_tick(self, last: datetime) -> datetime:
        """The first tick after ``last`` that is not on an excluded day."""
        current = last.astimezone(self._zone)
        for _ in range(10_000):  # an exclusion list cannot hide every day; this only bounds a bad spec
            if self._cron is not None:
                current = self._cron.next(current)
            else:
                current = current.replace(microsecond=0) + timedelta(seconds=self._interval)
            if not self._excluded(current):
                return current
        raise errors.SpecError(f"calendar.{self.event_name}: every upcoming tick is excluded")

    def _event(self, when: datetime, upstream: str | None = None) -> events.Event:
        data: dict[str, Any] = {"eventTime": event_time(when.astimezone(self._zone))}
        if self._metadata:
            data["metadata"] = self._metadata
        source = self._ctx.event_source_name
        event_id = webhook.derived_id(source, self.event_name, "calendar", upstream or events.format_time(when))
        return events.new_event(id=event_id, source=source, subject=self.event_name, type="calendar", data=data,
                                time=self._clock())

    # --- push: PingSource ticks ----------------------------------------------------------

    def routes(self) -> list[base.Route]:
        """``POST /calendar/<event name>`` for a cron ``schedule`` (where a PingSource delivers ticks)."""
        if not self.schedule_driven:
            return []  # an interval only ticks in process
        return [base.Route(endpoint=PATH.format(event=self.event_name), method="POST")]

    async def handle(self, request: web.Request) -> base.PushResult:
        """One tick from a PingSource (or anyone allowed to POST here)."""
        when = self._clock()
        ce_time = request.headers.get("ce-time")
        if ce_time:
            try:
                when = events.parse_time(ce_time)
            except errors.EventError:
                return base.PushResult(response=web.text_response(400, f"ce-time {ce_time!r} is not RFC 3339\n"))
        if self._excluded(when.astimezone(self._zone)):
            return base.PushResult(response=web.text_response(200, "tick on an excluded date; ignored\n"))
        event = self._event(when, request.headers.get("ce-id"))
        return base.PushResult(events=(event,))

    # --- pull: in-process ticks -----------------------------------------------------------

    async def _start_time(self) -> datetime:
        now = self._clock()
        if not self._catchup or self._store is None:
            return now
        try:
            last = await self._store.last(self.event_name)
        except errors.KneventsError as exc:
            log.warning("calendar %s: cannot read the last tick, not catching up: %s", self.event_name, exc)
            return now
        if last is None:
            return now
        if self._max_catchup is not None and now - last > timedelta(seconds=self._max_catchup):
            return now - timedelta(seconds=self._max_catchup)
        return last

    async def _fire(self, when: datetime, publish: base.Publish) -> None:
        await publish(self._event(when))
        if self._store is not None:
            try:
                await self._store.save(self.event_name, when)
            except errors.KneventsError as exc:
                log.warning("calendar %s: cannot record the tick: %s", self.event_name, exc)

    async def run(self, publish: base.Publish, stop: asyncio.Event) -> None:
        """Tick until ``stop``: missed ticks (catch-up) at once, then each at its time."""
        last = await self._start_time()
        retry = 0.1
        while not stop.is_set():
            tick = self.next_tick(last)
            wait = (tick - self._clock()).total_seconds()
            if wait > 0:
                await self._wait(wait, stop)
                if stop.is_set():
                    return
            try:
                await self._fire(tick, publish)
            except errors.BusUnavailableError as exc:
                if self._catchup:  # keep the tick and try again, as Argo does with persistence
                    log.warning("calendar %s: tick %s not published, retrying: %s", self.event_name, tick, exc)
                    await self._wait(retry, stop)
                    retry = min(retry * 2, 30.0)
                    continue
                log.error("calendar %s: tick %s lost, the bus refused it: %s", self.event_name, tick, exc)
            retry = 0.1
            last = tick

    async def _wait(self, seconds: float, stop: asyncio.Event) -> None:
        """Sleep ``seconds`` (with the injected sleep), returning early when ``stop`` is set."""
        sleeper = asyncio.ensure_future(self._sleep(seconds))
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, stopper):
                if not task.done():
                    task.cancel()

    async def close(self) -> None:
        """Close the tick store's connection."""
        close = getattr(self._store, "close", None)
        if close is not None:
            await close()


def create(event_name: str, config: models.CalendarEventSource, ctx: base.SourceContext) -> base.Source:
    """Factory for the ``calendar`` spec key."""
    return CalendarSource(event_name, config, ctx)


def _check(config: models.CalendarEventSource, path: str) -> Iterator[tuple[str, str]]:
    if not config.schedule and not config.interval:
        yield path, "a calendar needs either `schedule` or `interval`"
    # the same parsers the source runs with: what passes here starts
    if config.schedule:
        try:
            cron.parse(config.schedule)
        except cron.CronError as exc:
            yield f"{path}.schedule", exc.reason
    elif config.interval:
        try:
            if common.parse_go_duration(config.interval, f"{path}.interval") <= 0:
                yield f"{path}.interval", f"interval must be positive, got `{config.interval}`"
        except errors.SpecError:
            yield f"{path}.interval", f"`{config.interval}` is not a duration (use a number with a unit: 30s, 5m, 1h)"
    if config.timezone:
        try:
            cron.zone(config.timezone)
        except cron.CronError as exc:
            yield f"{path}.timezone", exc.reason


def _knative(config: models.CalendarEventSource) -> base.Knative:
    # a cron schedule is ticked by a PingSource (scale to zero); an interval needs a process that stays up
    return base.Knative.PING if config.schedule else base.Knative.ONE_REPLICA


def _endpoints(event_name: str, config: models.CalendarEventSource) -> Iterator[base.Endpoint]:
    if config.schedule:
        yield base.Endpoint("", PATH.format(event=event_name), "", "POST")


def _ping(config: models.CalendarEventSource) -> base.Ping | None:
    return base.Ping(config.schedule, config.timezone or None) if config.schedule else None


def _keeps_state(config: models.CalendarEventSource) -> bool:
    # catch-up keeps the last tick in JetStream KV
    catchup = config.persistence.catchup if config.persistence is not None else None
    return bool(catchup is not None and catchup.enabled)


SOURCE = base.SourceType(
    key="calendar",
    model=models.CalendarEventSource,
    factory=create,
    knative=_knative,
    check=_check,
    endpoints=_endpoints,
    ping=_ping,
    keeps_state=_keeps_state,
    data='{"eventTime": "2024-05-01 10:30:00 +0000 UTC", "metadata"?: {...}}',
)
