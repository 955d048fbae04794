"""Deliver bus events to one sensor from a durable JetStream consumer: the local stand-in for a Knative Trigger.

Knative's Broker delivers each event to a sensor over HTTP and retries on
5xx/429 with backoff, then dead-letters. Locally one durable pull consumer per
sensor does the same: it is filtered on the subjects of the sensor's
dependencies, acks a message only after the sensor answered 2xx, naks it with
exponential backoff otherwise, and after ``max_deliveries`` attempts copies it
to ``<bus>.dlq.<sensor>`` (read through stream ``KNEVENTS_DLQ``, see
:mod:`knevents.local.streams`) and terminates it. The
consumer lives in the JetStream store, so a restart resumes where it stopped.

Nothing in flight waits long for a dead runner: ``ack_wait`` is a few seconds,
so the server redelivers what a crashed runner held within seconds of its
restart; a handler that works longer (a trigger retrying with backoff) keeps
its message with in-progress acks (``+WPI``) sent by one heartbeat loop. A
dispatcher that stops gives every message it holds back at once (nak without
delay) after a short grace for deliveries about to finish; what a cancelled
trigger already did is known to the sensor (at-most-once triggers are taken in
KV before they run), so the redelivery does not repeat it.

The handler is any ``async (event) -> web.Response``; the runner passes the
sensor function's own HTTP entry point, so delivery semantics are the ones a
Knative deployment gets.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from knevents import events, web
from knevents.local import console as console_mod
from knevents.local import consumer, streams
from knevents.local.consumer import DeliveryPolicy, consumer_name

__all__ = ["DELIVERIES", "DeliveryPolicy", "Dispatcher", "Handler", "consumer_name"]

DELIVERIES: contextvars.ContextVar[int] = contextvars.ContextVar("knevents_deliveries", default=0)
"""How many times JetStream has delivered the message being handled (0 outside a delivery)."""

Handler = Callable[[events.Event], Awaitable[web.Response]]
Decode = Callable[[Any], events.Event]

log = logging.getLogger("knevents.local.dispatcher")
_PULL_EXPIRES = 5.0
"""Seconds a pull request stays open on the server; short enough to notice a lost connection quickly."""


class Dispatcher:
    """One sensor's durable consumer and its delivery loop."""

    def __init__(
        self,
        js: Any,
        *,
        stream: str,
        bus: str,
        sensor: str,
        subjects: Sequence[str],
        handler: Handler,
        decode: Decode,
        console: console_mod.Console,
        policy: DeliveryPolicy | None = None,
    ) -> None:
        self.js = js
        self.stream = stream
        self.bus = bus
        self.sensor = sensor
        self.subjects = sorted(set(subjects))
        self.handler = handler
        self.decode = decode
        self.console = console
        self.policy = policy or DeliveryPolicy()
        self.durable = consumer_name(sensor)
        self._inflight: dict[asyncio.Task[None], Any] = {}
        """Deliveries in flight and their messages (for in-progress acks and naks at stop)."""
        self._slot_freed = asyncio.Event()

    async def ensure_consumer(self) -> None:
        """Create the durable consumer, or update its filter when the sensor's dependencies changed."""
        await consumer.ensure(self.js, self.stream, self.durable, self.subjects, self.policy, self.sensor)

    async def run(self, stop: asyncio.Event) -> None:
        """Pull and deliver until ``stop`` is set; waits for deliveries in flight before returning.

        Pull requests are made by hand rather than with nats-py's ``fetch``: ``fetch(batch=n)`` holds back
        the messages it got until the batch is full or the request expires, which adds up to the whole
        expiry to the latency of a quiet sensor. A raw pull request for ``n`` messages makes the server
        push each one as soon as it exists, and each is started as it is read (:class:`_Pull`); no queue
        or timer per message. A new request is made when at least half the delivery slots are free
        (fewer, larger requests under load).
        """
        nc = self.js._nc
        inbox = nc.new_inbox()
        pull = _Pull(self, stop)

        async def on_message(msg: Any) -> None:
            pull.accept(msg)

        direct = getattr(nc, "subscribe_direct", None)  # knevents' client: handled as read, no task switch
        sub = await (direct(inbox, pull.accept) if direct else nc.subscribe(inbox, cb=on_message))
        waker = asyncio.create_task(_wake_on(stop, pull))
        heartbeat = asyncio.create_task(self._heartbeat(stop))
        api = f"{self.js._prefix}.CONSUMER.MSG.NEXT.{self.stream}.{self.durable}"
        try:
            while not stop.is_set():
                want = await self._free_slots(stop)
                if not want:
                    continue
                request = json.dumps({"batch": want, "expires": int(_PULL_EXPIRES * 1e9)}).encode()
                pull.open(want)
                try:
                    await nc.publish(api, request, reply=inbox)
                except Exception as exc:  # connection trouble: the server keeps the messages
                    log.warning("sensor %s: pull request failed: %s", self.sensor, exc)
                    await _pause(stop, 0.5)
                    continue
                with contextlib.suppress(TimeoutError):  # no answer at all (reconnecting): a new request
                    await asyncio.wait_for(pull.over.wait(), _PULL_EXPIRES + 1.0)
        finally:
            waker.cancel()
            heartbeat.cancel()
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
            await self._give_back()

    def track(self, msg: Any, work: Coroutine[Any, Any, None] | None = None) -> None:
        """Deliver ``msg`` (or run ``work`` on it) in a task kept in the in-flight table until it settles."""
        task = asyncio.get_running_loop().create_task(self._deliver(msg) if work is None else work)
        self._inflight[task] = msg
        task.add_done_callback(self._done)

    async def _give_back(self) -> None:
        """Stopping: let deliveries finish briefly, then cancel and nak the rest."""
        if self._inflight:
            _, late = await asyncio.wait(set(self._inflight), timeout=self.policy.stop_grace)
            for task in late:  # _deliver naks its message when cancelled
                task.cancel()
            if late:
                await asyncio.gather(*late, return_exceptions=True)
                log.info("sensor %s: %d delivery(ies) cancelled at stop and given back", self.sensor, len(late))

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        """Keep long deliveries' messages from being redelivered: an in-progress ack for each, every interval."""
        interval = self.policy.ack_wait / 4
        while not stop.is_set():
            await _pause(stop, interval)
            for task, msg in list(self._inflight.items()):
                if not task.done():
                    await _settle(msg.in_progress())

    async def _free_slots(self, stop: asyncio.Event) -> int:
        """Wait until at least half the delivery slots are free; how many are (0 when stopping)."""
        limit = self.policy.concurrency
        while not stop.is_set():
            free = limit - len(self._inflight)
            if free >= max(1, limit // 2):
                return free
            self._slot_freed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._slot_freed.wait(), 1.0)
        return 0

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.pop(task, None)
        self._slot_freed.set()

    async def _deliver(self, msg: Any) -> None:
        deliveries = int(msg.metadata.num_delivered)
        DELIVERIES.set(deliveries)  # the handler may skip work a first delivery cannot need (dedupe read)
        try:
            event = self.decode(msg)
        except Exception as exc:  # malformed on the bus: retrying cannot help
            await self._dead_letter(msg, None, f"undecodable event: {exc}", deliveries)
            return
        try:
            response = await self.handler(event)
        except asyncio.CancelledError:  # stopping: hand the message back at once rather than after ack_wait
            await _settle(msg.nak())
            raise
        except Exception as exc:  # the handler should answer, not raise; treat as retryable
            log.exception("sensor %s raised on event %s", self.sensor, event.id)
            response = web.text_response(500, f"{type(exc).__name__}: {exc}")
        if 200 <= response.status < 300:
            await _settle(msg.ack())
            return
        reason = f"HTTP {response.status}: {_reason(response.body)}"
        if response.status == 400 or deliveries >= self.policy.max_deliveries:
            await self._dead_letter(msg, event, reason, deliveries)
            return
        delay = min(self.policy.max_backoff, self.policy.backoff * 2 ** (deliveries - 1))
        self.console.emit(
            "retry", f"{self.sensor} event {event.id}: attempt {deliveries}/{self.policy.max_deliveries} "
            f"failed, next in {delay:g}s ({reason})",
            sensor=self.sensor, event_id=event.id, attempt=deliveries, status=response.status, reason=reason,
        )
        await _settle(msg.nak(delay=delay))

    async def _dead_letter(self, msg: Any, event: events.Event | None, reason: str, deliveries: int) -> None:
        subject = streams.dlq_subject(self.bus, self.sensor)
        headers = dict(msg.headers or {})
        headers.pop("Nats-Msg-Id", None)
        headers.update({
            "Knevents-Sensor": self.sensor,
            "Knevents-Reason": reason[:500],
            "Knevents-Original-Subject": msg.subject,
            "Knevents-Deliveries": str(deliveries),
            "Nats-Msg-Id": f"{self.sensor}:{msg.metadata.sequence.stream}",
        })
        try:
            await self.js.publish(subject, msg.data, headers=headers)
        except Exception as exc:
            # Keep the event on the bus rather than lose it; it comes back after the backoff.
            log.warning("sensor %s: dead-letter publish failed (%s); will redeliver", self.sensor, exc)
            await _settle(msg.nak(delay=self.policy.max_backoff))
            return
        event_id = event.id if event is not None else "?"
        self.console.emit(
            "dlq", f"{self.sensor} event {event_id} dead-lettered to {subject} after {deliveries} "
            f"attempt(s): {reason}",
            sensor=self.sensor, event_id=event_id, subject=subject, attempts=deliveries,
        )
        await _settle(msg.term())


def _reason(body: bytes) -> str:
    """Why the sensor refused: its JSON answer's ``retry``/``error``/``dropped`` text, never a cut-off body."""
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if isinstance(answer, dict):
        for key in ("retry", "error", "dropped"):
            if isinstance(answer.get(key), str) and answer[key]:
                return str(answer[key])
    text = body.decode(errors="replace").strip()
    return text if len(text) <= 300 else text[:297] + "..."


class _Pull:
    """The pull request in progress: starts each message as it is read, and says when the request is over.

    It is over when its ``want`` messages came, when the server ends it with a status message (408
    expired, 404/409), or when the dispatcher stops. A message read after the stop is given back at once.
    A late message of an earlier request is started too (never dropped) and counts against this one.
    """

    def __init__(self, dispatcher: Dispatcher, stop: asyncio.Event) -> None:
        self.dispatcher, self.stop = dispatcher, stop
        self.over = asyncio.Event()
        self.left = 0

    def open(self, want: int) -> None:
        self.left = want
        self.over.clear()

    def accept(self, msg: Any) -> None:
        headers = msg.headers
        if headers and headers.get("Status"):
            self.over.set()
        elif self.stop.is_set():
            self.dispatcher.track(msg, _settle(msg.nak()))  # kept in flight, so the stop waits for it
        else:
            self.dispatcher.track(msg)
            self.left -= 1
            if self.left <= 0:
                self.over.set()


async def _wake_on(stop: asyncio.Event, pull: _Pull) -> None:
    """End the wait for the pull request in progress when the dispatcher is asked to stop."""
    await stop.wait()
    pull.over.set()


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, but wake up at once when ``stop`` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _settle(ack: Awaitable[None]) -> None:
    """Ack/nak/term; a lost connection only means the server redelivers later."""
    try:
        await ack
    except Exception as exc:
        log.warning("could not settle a message: %s", exc)
