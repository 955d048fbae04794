"""The sensor pipeline: what one delivery of a CloudEvent to a sensor function does, end to end.

For each event: match it against the dependencies (pure engine); drop it if it
was already processed (event-id dedupe in KV); for each trigger a passing
dependency touches, either fire at once (no ``&&`` in its conditions) or fold
the event into the trigger's saved state with a compare-and-set, and fire when
that write satisfied the condition. The satisfying write also records the
firing in an outbox (see :mod:`knevents.runtime.sensor_record`), which is
cleared after the trigger ran; a crash in between is finished by the broker's
redelivery of the event, so N replicas never fire a satisfied set twice and a
satisfied set is never lost. The event is marked processed only after all of
that, so a redelivery after a crash redoes what was left undone and nothing
else.

Delivery modes are Argo's, per trigger. ``atLeastOnce: false`` (the default) is
at-most-once: the trigger is *taken* in KV before it runs (a stateless firing
writes its ``trigger/dependency`` mark to the event's dedupe entry; a satisfied
``&&`` firing is removed from the outbox with a compare-and-set), so a
redelivery of the event (after a crash, a stop or a timeout) never runs it
again. ``atLeastOnce: true`` records only after success, so a crash re-runs it.
Both paths are drawn in docs/sensor-runtime.md.

Answers follow Knative's delivery contract: 2xx when done or failed for good
(logged, dead-lettered through ``dlqTrigger``), 5xx/429 when a retry can help,
400 for a malformed CloudEvent.

Fault injection: ``KNEVENTS_FAULT=crash-after-satisfy`` makes the process exit
with ``os._exit(137)`` right after a satisfying write and before the trigger
runs, the worst moment to crash (used by the crash tests).

This module does no parsing of specs and no trigger I/O itself: the engine
decides, ``triggers.fire`` acts, the store remembers.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from logging import ERROR, INFO, WARNING
from typing import Any

from knevents import errors, events, state, triggers, web
from knevents.runtime import sensor_batch, sensor_obs, sensor_rate, sensor_record
from knevents.secrets import SecretResolver
from knevents.sensors import engine
from knevents.settings import Settings
from knevents.spec import models

__all__ = [
    "CRASH_AFTER_SATISFY",
    "FAULT_ENV",
    "REPLAY_EXTENSION",
    "REPLAY_SENSOR_EXTENSION",
    "REPLAY_TRIGGER_EXTENSION",
    "FetchFn",
    "FireFn",
    "FiringReport",
    "Outcome",
    "SensorRuntime",
]

FAULT_ENV = "KNEVENTS_FAULT"
CRASH_AFTER_SATISFY = "crash-after-satisfy"
_DONE = b"done"
REPLAY_EXTENSION = "knreplay"
"""Extension of an event a user replayed (its value is the replay id; see ``knevents.local.replay``)."""
REPLAY_TRIGGER_EXTENSION = "knreplaytrigger"
"""Extension restricting a replayed event to one trigger."""
REPLAY_SENSOR_EXTENSION = "knreplaysensor"
"""Extension restricting a replayed event to one sensor: a replay through a Knative Broker reaches every sensor
whose Trigger matches it (``knevents.ui.cluster``); the others take it as filtered out."""

FireFn = Callable[[engine.Resolved, triggers.TriggerContext], Awaitable[triggers.TriggerResult]]
FetchFn = Callable[[models.Trigger, triggers.TriggerContext], Awaitable[dict[str, Any] | None]]
"""Fetches a trigger's base resource kept outside the spec (configmap, file, url, s3, git); ``None`` when inline."""


@dataclass(frozen=True)
class FiringReport:
    """One trigger execution of this delivery."""

    trigger: str
    event_ids: tuple[str, ...]
    ok: bool
    detail: str
    dlq: str | None = None
    """What the dlqTrigger did, when it ran."""


@dataclass(frozen=True)
class Outcome:
    """What processing one event did; ``status`` is the HTTP answer it calls for."""

    event_id: str
    duplicate: bool = False
    matched: tuple[str, ...] = ()
    filtered: tuple[str, ...] = ()
    waiting: tuple[str, ...] = ()
    """Triggers that saved the event and wait for the rest of their condition."""
    fired: tuple[FiringReport, ...] = ()
    failed: tuple[FiringReport, ...] = ()
    retry: str | None = None
    """Why a redelivery is wanted (a trigger under atLeastOnce failed and may succeed later)."""
    retry_after: float | None = None
    results: tuple[engine.DependencyResult, ...] = field(default=(), compare=False, repr=False)
    """Every dependency the event matched, passed or not, with the event after transform (not in the JSON)."""

    @property
    def status(self) -> int:
        return 503 if self.retry else 200

    def to_json(self) -> dict[str, Any]:
        """A JSON-able summary (the response body)."""
        return {
            "event_id": self.event_id,
            "duplicate": self.duplicate,
            "matched": list(self.matched),
            "filtered": list(self.filtered),
            "waiting": list(self.waiting),
            "fired": [_report_json(r) for r in self.fired],
            "failed": [_report_json(r) for r in self.failed],
            "retry": self.retry,
            "retry_after": self.retry_after,
        }


def _report_json(report: FiringReport) -> dict[str, Any]:
    return {
        "trigger": report.trigger,
        "event_ids": list(report.event_ids),
        "ok": report.ok,
        "detail": report.detail,
        "dlq": report.dlq,
    }


@dataclass
class _Acc:
    event_id: str
    traceparent: str | None
    matched: list[str] = field(default_factory=list)
    filtered: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    fired: list[FiringReport] = field(default_factory=list)
    failed: list[FiringReport] = field(default_factory=list)
    done_marks: list[str] = field(default_factory=list)
    previously_done: frozenset[str] = frozenset()
    """Stateless firings taken or done by earlier deliveries of this event (kept when rewriting the entry)."""
    retry: str | None = None
    retry_after: float | None = None
    results: tuple[engine.DependencyResult, ...] = ()

    def outcome(self, duplicate: bool = False) -> Outcome:
        return Outcome(
            self.event_id,
            duplicate,
            tuple(self.matched),
            tuple(self.filtered),
            tuple(self.waiting),
            tuple(self.fired),
            tuple(self.failed),
            self.retry,
            self.retry_after,
            self.results,
        )


class SensorRuntime:
    """Processes CloudEvents for one Sensor; safe to run as N replicas on one state store."""

    def __init__(
        self,
        sensor: models.Sensor,
        store: state.StateStore,
        *,
        settings: Settings,
        secrets: SecretResolver,
        dry_run: bool = False,
        fire: FireFn = triggers.fire,
        fetch: FetchFn = triggers.fetch_resource,
        clock: Callable[[], float] = time.time,
        bucket_prefix: str = "knevents",
        observe: bool = True,
    ) -> None:
        """``fire``/``fetch``/``clock`` are injectable (``knevents test`` resolves without executing or fetching,
        with the event's time as "now"); ``observe=False`` keeps the run out of the logs and metrics."""
        self.sensor = sensor
        self.engine = engine.SensorEngine(sensor, fetches_resource=triggers.fetches_resource)
        self.name = self.engine.name
        self.namespace = self.engine.namespace
        self._store = store
        self._settings = settings
        self._secrets = secrets
        self._dry_run = dry_run
        self._fire = fire
        self._fetch = fetch
        self._clock = clock
        self._bucket_names = (
            state.bucket_name(self.namespace, self.name, prefix=bucket_prefix),
            state.dedupe_bucket_name(self.namespace, self.name, prefix=bucket_prefix),
        )
        self._state: state.Bucket | None = None
        self._dedupe: state.Bucket | None = None
        # rateLimit slots live in the state bucket, shared by every replica/worker (bound once, not per firing)
        self._rate_slots = sensor_rate.RateSlots(self._state_bucket).reserve
        self._triggers = {t.template.name: t for t in sensor.spec.triggers}
        # asked once here, not per firing: the answer scans every kind field of the template
        self._fetched = frozenset(name for name, t in self._triggers.items() if triggers.reads_resource(t))
        self._fingerprints: dict[str, str] = {}
        self._writers: dict[str, sensor_batch.KeyWriter] = {}
        self._dlq_engine: engine.SensorEngine | None = None
        self._fault = os.environ.get(FAULT_ENV, "")
        self.metrics = (
            sensor_obs.SensorMetrics(self.name, self.namespace) if observe else sensor_obs.QuietMetrics(self.name)
        )
        self._emit = sensor_obs.log_event if observe else sensor_obs.no_log

    # --- HTTP -------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.Response:
        """One delivery over HTTP (Knative's contract: 2xx done, 5xx/429 retry, 400 malformed)."""
        if request.method.upper() != "POST":
            return web.text_response(405, "send a CloudEvent with POST")
        try:
            event = events.from_http(request.headers, request.body)
        except errors.EventError as exc:
            return web.text_response(400, f"invalid CloudEvent: {exc}")
        return await self.answer(event)

    async def answer(self, event: events.Event, *, first_delivery: bool = False) -> web.Response:
        """Process a decoded event and give the delivery's answer (the local runner calls this directly).

        ``first_delivery``: the bus says nobody had this message before and its duplicate window covers the
        dedupe TTL, so the dedupe read is skipped when the event has no at-most-once firing to take (a
        redelivery, or an unknown count, always reads; at-most-once firings are always claimed with a create
        that fails on an existing entry, since a crashed nats-server can count a redelivery as the first).
        """
        try:
            outcome = await self.process(event, first_delivery=first_delivery)
        except errors.StateConflictError as exc:
            self._log(WARNING, "state contention; asking for a redelivery", event, error=str(exc))
            return web.json_response(429, {"event_id": event.id, "error": str(exc)})
        except errors.TemporaryError as exc:
            self._log(WARNING, "temporary failure; asking for a redelivery", event, error=str(exc))
            response = web.json_response(503, {"event_id": event.id, "error": str(exc)})
            return _with_retry_after(response, exc.delay)
        except errors.KneventsError as exc:
            self._log(ERROR, "event dropped", event, error=str(exc))
            return web.json_response(200, {"event_id": event.id, "dropped": str(exc)})
        except Exception as exc:  # a bug: keep serving, answer 500 (the broker retries), log the traceback
            sensor_obs.logger.exception("internal error", extra={"sensor": self.name, "event_id": event.id})
            return web.json_response(
                500, {"event_id": event.id, "error": f"internal error: {type(exc).__name__}"}
            )
        response = web.json_response(outcome.status, outcome.to_json())
        return _with_retry_after(response, outcome.retry_after) if outcome.retry else response

    # --- the pipeline -----------------------------------------------------

    async def process(self, event: events.Event, *, first_delivery: bool = False) -> Outcome:
        """Process one event; raises TemporaryError subclasses when the state store fails."""
        started = time.perf_counter()
        self.metrics.received()
        acc = _Acc(event.id, event.extensions.get("traceparent"))
        try:
            if REPLAY_SENSOR_EXTENSION in event.extensions and not _for_me(event, self.name):  # another's replay
                return acc.outcome()
            passing = []
            acc.results = tuple(self.engine.match(event))
            for result in acc.results:
                if result.passed:
                    acc.matched.append(result.name)
                    passing.append(result)
                else:
                    acc.filtered.append(result.name)
                    self.metrics.filtered(result.name)
                    self._log(INFO, "event filtered out", event, dependency=result.name, reason=result.error)
            if not passing:
                return acc.outcome()
            dedupe_id = _dedupe_id(event)
            # a replay's own restriction: on any other event the extension means nothing (a Broker brings every
            # producer's events, and in Argo an event fires every trigger whose dependencies it satisfies)
            only = event.extensions.get(REPLAY_TRIGGER_EXTENSION) if event.extensions.get(REPLAY_EXTENSION) else None
            taking = self._at_most_once(passing, only)
            # every firing of this event is stateless at-most-once: once they are taken the event is done, so
            # the record written before running them is the final "done" mark (no second write after)
            final = bool(taking) and taking == self._firings(passing, only)
            done: frozenset[str] | None = frozenset()
            if first_delivery and not taking:
                # Nothing to take: what a wrong "first" costs is an atLeastOnce re-run, which that mode allows.
                # With at-most-once firings the claim below decides: a nats-server crash can roll the
                # consumer's delivery count back, and an event already run comes back counted as a first.
                pass
            elif taking and await self._claim(dedupe_id, taking, final):
                taking = set()  # recorded by the claim
            else:
                done = await self._already_done(dedupe_id)
                final = final and not done
            if done is None:
                self.metrics.deduplicated()
                self._log(INFO, "duplicate event dropped", event)
                return acc.outcome(duplicate=True)
            acc.previously_done = done
            await self._take_stateless(taking - done, done, event, final)
            for result in passing:
                for trigger in self.engine.triggers_for(result.name):
                    if only and trigger != only:
                        continue
                    if self.engine.needs_state(trigger):
                        await self._stateful(trigger, result, event, acc)
                    elif f"{trigger}/{result.name}" not in done:
                        await self._stateless(trigger, result, event, acc)
                    else:
                        self._log(INFO, "trigger taken by an earlier delivery; not run again", event,
                                  trigger=trigger, dependency=result.name)
            if not final or acc.retry:
                await self._mark_done(dedupe_id, acc)
            self._log(
                INFO,
                "event processed",
                event,
                dependency=acc.matched,
                fired=[f.trigger for f in acc.fired],
                waiting=acc.waiting or None,
                retry=acc.retry,
            )
            return acc.outcome()
        finally:
            self.metrics.processed(time.perf_counter() - started)

    def _firings(self, passing: list[engine.DependencyResult], only: str | None) -> set[str]:
        """Every firing (``trigger/dependency``) this event would run."""
        return {
            f"{trigger}/{result.name}"
            for result in passing
            for trigger in self.engine.triggers_for(result.name)
            if not only or trigger == only
        }

    def _at_most_once(self, passing: list[engine.DependencyResult], only: str | None) -> set[str]:
        """The stateless at-most-once firings among :meth:`_firings`."""
        return {
            firing
            for firing in self._firings(passing, only)
            if not self.engine.needs_state(trigger := firing.split("/", 1)[0])
            and not self._triggers[trigger].at_least_once
        }

    async def _claim(self, dedupe_id: str, taking: set[str], final: bool) -> bool:
        """A first delivery: create the event's dedupe entry with the firings about to run, in one request.

        Creating succeeds only when no entry exists, which is what reading it and finding none meant; so
        the common case costs one KV request instead of a read and a write. False when an entry exists
        (a redelivery, a replica's copy): the caller reads it as before. ``final``: the entry is the "done"
        mark itself (see :meth:`process`).
        """
        bucket = await self._dedupe_bucket()
        try:
            await bucket.create(state.kv_key(dedupe_id), _DONE if final else _done_value(taking))
        except errors.StateConflictError:
            return False
        return True

    async def _take_stateless(
        self, taking: set[str], done: frozenset[str], event: events.Event, final: bool = False
    ) -> None:
        """At-most-once: record the stateless firings about to run before running them (one KV write)."""
        if taking:
            bucket = await self._dedupe_bucket()
            await bucket.put(state.kv_key(_dedupe_id(event)), _DONE if final else _done_value(done | taking))

    async def _stateless(
        self, trigger: str, result: engine.DependencyResult, event: events.Event, acc: _Acc
    ) -> None:
        if await self._execute(trigger, {result.name: result.event}, acc):
            acc.done_marks.append(f"{trigger}/{result.name}")

    async def _stateful(
        self, trigger: str, result: engine.DependencyResult, event: events.Event, acc: _Acc
    ) -> None:
        writer = await self._writer(trigger)
        key = _dedupe_id(event)  # a replayed event folds in again, once per replay
        mark = f"{key}/{result.name}"

        def fold(record: sensor_record.Record, now: float) -> tuple[sensor_record.Record, Any]:
            new, mine, satisfied = self._step(trigger, record, result, mark, key, now)
            return new, (mine, satisfied)

        _, (mine, satisfied) = await writer.apply(fold)
        if satisfied and self._fault == CRASH_AFTER_SATISFY:
            os._exit(137)  # fault injection (documented in the module docstring)
        if not mine:
            acc.waiting.append(trigger)
        at_least_once = bool(self._triggers[trigger].at_least_once)
        for firing in mine:
            if not at_least_once:
                # At-most-once: take the firing out of the outbox before running it; whoever removes it runs it.
                _, taken = await writer.apply(_clear(firing.id))
                if taken:
                    await self._execute(trigger, firing.events, acc)
            elif await self._execute(trigger, firing.events, acc):
                await writer.apply(_clear(firing.id))

    def _step(
        self,
        trigger: str,
        record: sensor_record.Record,
        result: engine.DependencyResult,
        mark: str,
        event_id: str,
        now: float,
    ) -> tuple[sensor_record.Record, list[sensor_record.Firing], bool]:
        """The next record: take over stale/own pending firings, fold the event in once."""
        new = record
        mine: list[sensor_record.Firing] = []
        for firing in record.outbox:
            if firing.cause == event_id or now - firing.claimed_at > self._settings.state.outbox_lease:
                claimed = dataclasses.replace(firing, claimed_at=now, attempts=firing.attempts + 1)
                new = new.replacing(claimed)
                mine.append(claimed)
        satisfied = False
        if mark not in record.applied:
            saved = (
                engine.TriggerState.from_bytes(record.state) if record.state else engine.TriggerState.EMPTY
            )
            advance = self.engine.advance(
                trigger, saved, result.name, result.event, datetime.fromtimestamp(now, UTC)
            )
            new = dataclasses.replace(new, state=advance.state.to_bytes()).with_applied(mark)
            if advance.fired is not None:
                firing = sensor_record.Firing(events.new_id(), event_id, dict(advance.fired), now)
                new = dataclasses.replace(new, outbox=(*new.outbox, firing))
                mine.append(firing)
                satisfied = True
        return new, mine, satisfied

    def _load(self, trigger: str, entry: state.Entry | None) -> sensor_record.Record:
        fingerprint = self._fingerprint(trigger)
        if entry is None or not entry.value:
            return sensor_record.Record(fingerprint)
        try:
            record = sensor_record.decode(entry.value)
        except ValueError as exc:
            self._emit(
                WARNING,
                "unreadable trigger state discarded",
                sensor=self.name,
                trigger=trigger,
                error=str(exc),
            )
            return sensor_record.Record(fingerprint)
        if record.fingerprint != fingerprint:
            # The trigger's conditions or dependencies changed: saved events no longer mean the same.
            self._emit(
                INFO, "spec changed; saved trigger state purged", sensor=self.name, trigger=trigger
            )
            return sensor_record.Record(fingerprint, outbox=record.outbox)
        return record

    # --- running triggers -------------------------------------------------

    async def _execute(self, trigger: str, fired: Mapping[str, events.Event], acc: _Acc) -> bool:
        """Run one firing; False when it must stay pending (atLeastOnce and a retry may help)."""
        spec = self._triggers[trigger]
        ids = tuple(sorted(e.id for e in fired.values()))
        ctx = self._context(acc.traceparent)
        started = time.perf_counter()
        try:
            # A resource kept outside the spec (configmap, file, url, s3, git) is fetched first: Argo's step one.
            try:
                base_resource = await self._fetch(spec, ctx) if trigger in self._fetched else None
                result = await self._fire(self.engine.resolve(trigger, fired, base_resource), ctx)
            except ImportError as missing:  # an optional client is not installed: say which extra
                translated = errors.missing_extra(missing)
                if translated is None:
                    raise
                raise translated from missing
        except errors.KneventsError as exc:
            self.metrics.failed(trigger, time.perf_counter() - started)
            return await self._failed(spec, trigger, fired, ids, exc, acc, ctx)
        self.metrics.fired(trigger, time.perf_counter() - started, result.attempts)
        acc.fired.append(FiringReport(trigger, ids, True, result.detail))
        self._emit(
            INFO,
            "trigger fired",
            sensor=self.name,
            trigger=trigger,
            event_id=acc.event_id,
            dependency=sorted(fired),
            event_ids=list(ids),
            detail=result.detail,
            attempts=result.attempts,
        )
        return True

    async def _failed(
        self,
        spec: models.Trigger,
        trigger: str,
        fired: Mapping[str, events.Event],
        ids: tuple[str, ...],
        exc: errors.KneventsError,
        acc: _Acc,
        ctx: triggers.TriggerContext,
    ) -> bool:
        dlq = None
        if spec.at_least_once and spec.dlq_trigger is not None:
            dlq = await self._dead_letter(spec.dlq_trigger, fired, ctx, acc)
        acc.failed.append(FiringReport(trigger, ids, False, str(exc), dlq))
        retry = (
            bool(spec.at_least_once)
            and isinstance(exc, errors.TemporaryError)
            and (dlq is None or not dlq.startswith("ok"))
        )
        self._emit(
            ERROR,
            "trigger failed",
            sensor=self.name,
            trigger=trigger,
            event_id=acc.event_id,
            dependency=sorted(fired),
            event_ids=list(ids),
            error=str(exc),
            dlq=dlq,
            redeliver=retry,
        )
        if retry:
            acc.retry = f"trigger {trigger} failed and atLeastOnce is set: {exc}"
            if isinstance(exc, errors.TemporaryError):
                acc.retry_after = exc.delay
        return not retry

    async def _dead_letter(
        self, dlq: models.Trigger, fired: Mapping[str, events.Event], ctx: triggers.TriggerContext, acc: _Acc
    ) -> str:
        """Fire the dlqTrigger with the same events (Argo: after atLeastOnce retries are exhausted)."""
        name = dlq.template.name
        started = time.perf_counter()
        try:
            result = await self._fire(self._dlq().resolve(name, fired), ctx)
        except errors.KneventsError as exc:
            self.metrics.failed(name, time.perf_counter() - started)
            return f"failed: {exc}"
        self.metrics.fired(name, time.perf_counter() - started, result.attempts)
        self._emit(
            INFO,
            "dlqTrigger fired",
            sensor=self.name,
            trigger=name,
            event_id=acc.event_id,
            detail=result.detail,
        )
        return f"ok: {name}: {result.detail}"

    def _dlq(self) -> engine.SensorEngine:
        """An engine over the dlqTriggers, so they resolve parameters exactly like triggers."""
        if self._dlq_engine is None:
            seen: dict[str, models.Trigger] = {}
            for t in self.sensor.spec.triggers:
                if t.dlq_trigger is not None:
                    seen.setdefault(t.dlq_trigger.template.name, t.dlq_trigger)
            spec = self.sensor.spec.model_copy(update={"triggers": list(seen.values())})
            self._dlq_engine = engine.SensorEngine(
                self.sensor.model_copy(update={"spec": spec}), fetches_resource=triggers.fetches_resource
            )
        return self._dlq_engine

    def _context(self, traceparent: str | None) -> triggers.TriggerContext:
        return triggers.TriggerContext(
            sensor_name=self.name,
            namespace=self.namespace,
            secrets=self._secrets,
            settings=self._settings,
            traceparent=traceparent,
            dry_run=self._dry_run,
            rate_slots=self._rate_slots,
        )

    # --- dedupe -----------------------------------------------------------

    async def _already_done(self, event_id: str) -> frozenset[str] | None:
        """``None`` when the event was fully processed; else the stateless firings already done."""
        entry = await (await self._dedupe_bucket()).get(state.kv_key(event_id))
        if entry is None:
            return frozenset()
        if entry.value == _DONE:
            return None
        try:
            return frozenset(json.loads(entry.value).get("done", ()))
        except (ValueError, AttributeError):
            return frozenset()

    async def _mark_done(self, event_id: str, acc: _Acc) -> None:
        """Remember the event: fully done, or which stateless firings are done when a retry is wanted."""
        bucket = await self._dedupe_bucket()
        if acc.retry:
            done = acc.previously_done | set(acc.done_marks)
            if done != acc.previously_done:
                await bucket.put(state.kv_key(event_id), _done_value(done))
            return
        await bucket.put_nowait(state.kv_key(event_id), _DONE)

    # --- inspection (knevents test) ------------------------------------------

    async def saved_state(self, trigger: str) -> engine.TriggerState:
        """The AND-state the trigger holds now, read through its writer (an unchanged record writes nothing)."""
        if not self.engine.needs_state(trigger):
            return engine.TriggerState.EMPTY
        _, record = await (await self._writer(trigger)).apply(lambda record, now: (record, record))
        return engine.TriggerState.from_bytes(record.state) if record.state else engine.TriggerState.EMPTY

    async def reset_conditions(self) -> None:
        """Forget every trigger's saved AND-state, as a ``conditionsReset`` tick does (pending firings stay)."""
        for trigger in self._triggers:
            if self.engine.needs_state(trigger):
                await (await self._writer(trigger)).apply(_forget_state)

    # --- plumbing ---------------------------------------------------------

    def _fingerprint(self, trigger: str) -> str:
        found = self._fingerprints.get(trigger)
        if found is None:
            found = self._fingerprints[trigger] = self.engine.fingerprint(trigger)
        return found

    async def _writer(self, trigger: str) -> sensor_batch.KeyWriter:
        """The process' single writer of the trigger's KV entry."""
        writer = self._writers.get(trigger)
        if writer is None:
            bucket = await self._state_bucket()
            writer = self._writers.setdefault(
                trigger,
                sensor_batch.KeyWriter(
                    bucket, state.kv_key(trigger), lambda entry: self._load(trigger, entry), self._clock
                ),
            )
        return writer

    async def _state_bucket(self) -> state.Bucket:
        """The sensor's trigger-state bucket (one key per trigger, and the ``rate.`` keys of rate limits)."""
        if self._state is None:
            self._state = await self._store.bucket(self._bucket_names[0])
        return self._state

    async def _dedupe_bucket(self) -> state.Bucket:
        if self._dedupe is None:
            self._dedupe = await self._store.bucket(
                self._bucket_names[1], ttl=self._settings.state.dedupe_ttl
            )
        return self._dedupe

    def _log(self, level: int, msg: str, event: events.Event, **fields: Any) -> None:
        self._emit(
            level,
            msg,
            sensor=self.name,
            event_id=event.id,
            source=event.source,
            subject=event.subject,
            **fields,
        )


def _done_value(firings: Iterable[str]) -> bytes:
    """A dedupe entry naming the stateless firings already taken (the event is not done yet)."""
    return json.dumps({"done": sorted(firings)}).encode()


def _dedupe_id(event: events.Event) -> str:
    """The dedupe key: the event id, or ``<id>~<replay id>`` for an event a user replayed (``knevents replay``)."""
    replay = event.extensions.get(REPLAY_EXTENSION)
    return f"{event.id}~{replay}" if replay else event.id


def _for_me(event: events.Event, sensor: str) -> bool:
    """False for a replay addressed to another sensor (the Broker delivers it to all whose Trigger matches).

    Only a replay (``knreplay`` set) is addressed: any other event goes to every sensor whose dependencies
    match, as in Argo, whatever extensions its producer gave it.
    """
    return not event.extensions.get(REPLAY_EXTENSION) or event.extensions[REPLAY_SENSOR_EXTENSION] == sensor


def _forget_state(record: sensor_record.Record, now: float) -> tuple[sensor_record.Record, None]:
    return (record if record.state is None else dataclasses.replace(record, state=None)), None


def _clear(firing_id: str) -> sensor_batch.Change:
    """The change that removes a firing from the outbox; its result says whether this write removed it."""

    def change(record: sensor_record.Record, now: float) -> tuple[sensor_record.Record, bool]:
        if all(f.id != firing_id for f in record.outbox):
            return record, False
        return record.without(firing_id), True

    return change


def _with_retry_after(response: web.Response, delay: float | None) -> web.Response:
    if not delay:
        return response
    return web.Response(
        response.status, response.body, {**response.headers, "retry-after": str(max(1, round(delay)))}
    )
