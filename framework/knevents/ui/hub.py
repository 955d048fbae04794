"""What the page shows, gathered from the bus: the flow graph, live events, firings, dead letters, sensor state.

Everything comes from NATS, so the same hub serves ``knevents run`` and a UI
deployed against a cluster's NATS (where the UI itself stores the Broker's
events in the bus stream, :mod:`knevents.ui.cluster`): the bus stream (the
newest :data:`HISTORY` events are kept, as raw messages, decoded only when asked
for), a core subscription on the firing log and one on the dead-letter
subjects. Counts the bus cannot tell (events a dependency's filters dropped)
are read from this process's Prometheus registry when the sensors run here.

Cost matters: the hub runs beside the runner's hot path, so per message it only
splits the subject, bumps a counter and appends to a deque; JSON work happens
when a browser asks, and live updates go out in batches (:data:`PUSH_EVERY`).
The views read only on demand (graph, sensor state, dead letters) live in
:mod:`knevents.ui.views`. It never shows Secret values: it reads events,
resolved triggers and firing records, which carry references to Secrets, not
their contents.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from knevents import errors, events
from knevents.bus import codec, naming
from knevents.local import replay, routes, streams
from knevents.ui import views

__all__ = ["HISTORY", "PUSH_EVERY", "Hub"]

log = logging.getLogger("knevents.ui")

HISTORY = 300
"""Events kept for the live list (newest first on the page); older ones are in the archive (``replay``)."""
FIRINGS_KEPT = 200
"""Firing records kept for the page."""
PUSH_EVERY = 0.5
"""Seconds between live updates to browsers: one batch, however many events arrived."""
PUSH_MAX = 40
"""Newest events sent per live batch; older ones of the batch are listed when the page asks."""
FILTERED_EVERY = 2.0
"""Seconds between reads of the filtered counters from the metrics registry."""


@dataclass
class _Raw:
    seq: int
    subject: str
    headers: Mapping[str, str]
    data: bytes
    summary: dict[str, Any] | None = None
    """Made on first use (most events are never looked at), then kept."""


def _tokens(subject: str) -> list[str]:
    return [naming.decode_token(t) for t in subject.split(".")]


class Hub:
    """Live view of one bus and the manifests that run on it."""

    def __init__(self, nc: Any, bus: str, manifests: Any, *, history: int = HISTORY, follow_bus: bool = True) -> None:
        """``follow_bus=False`` beside a cluster: the UI appends the events itself (:meth:`take`), and a stored
        message, not every publish (a redelivery too), is what it lists."""
        self.nc = nc
        self.js = nc.jetstream()
        self.bus = bus
        self.manifests = manifests
        self.sensors = {s.metadata.name: s for s in manifests.sensors}
        self._raw: deque[_Raw] = deque(maxlen=history)
        self._firings: deque[dict[str, Any]] = deque(maxlen=FIRINGS_KEPT)
        self.counts: Counter[str] = Counter()
        shown = [(es.metadata.name, name) for es in manifests.event_sources
                 for _, entries in routes.spec_entries(es) for name in entries]
        shown += [(d.event_source_name, d.event_name) for s in self.sensors.values() for d in s.spec.dependencies or []]
        self._event_nodes = {naming.subject(bus, source, name): views.event_node(source, name) for source, name in shown}
        """Subject -> graph node of the events the graph shows (an EventSource's here, or one a sensor depends
        on); only those are counted: beside a cluster the Broker brings every producer's events, whose names
        have no end."""
        self.last_failed: str | None = None
        self._new_events: list[_Raw] = []
        self._new_firings: list[dict[str, Any]] = []
        self._listeners: set[asyncio.Queue[bytes]] = set()
        self._subs: list[Any] = []
        self._pusher: asyncio.Task[None] | None = None
        self._changed = False
        self._dlq_changed = False
        self._sent_counts: dict[str, int] = {}
        self._seq = 0
        """The page's own numbering of the events it keeps (live messages carry no stream sequence)."""
        self._backfilling: list[_Raw] | None = None
        self._filtered: dict[tuple[str, str], int] = {}
        self._filtered_at = 0.0
        self._follow_bus = follow_bus
        self.resend: Callable[..., Awaitable[str]] | None = None
        """How replays go when not onto the bus (``(sensor, events, trigger=) -> replay id``): beside a
        cluster, through the Broker (:func:`knevents.ui.cluster.resender`)."""

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Backfill the newest events and firings, then follow the bus."""
        from nats.js.errors import NotFoundError

        stream = naming.stream_name(self.bus)
        try:
            info = await self.js.stream_info(stream)
        except NotFoundError:
            # a cluster's NATS and a UI not receiving the Broker's events (``--receive-events``): no knevents
            # bus stream there; the graph and the sensors' state (KV) are still there to show
            log.warning("no stream %s for bus %r on this NATS: the live event list stays empty", stream, self.bus)
            info = None
        except Exception as exc:
            raise errors.KneventsError(f"the UI cannot read bus {self.bus!r}: {exc}") from exc
        # Live: a plain subscription on the bus subjects (no consumer bookkeeping per message). It starts before
        # the backfill reads the stream's newest messages, so nothing falls in between; the overlap is dropped
        # by message id.
        self._backfilling = []
        if self._follow_bus:
            self._subs.append(await self.nc.subscribe(naming.subject_filter(self.bus), cb=self._on_event))
        if info is not None:
            await self._backfill(stream)
        live, self._backfilling = self._backfilling, None
        seen = {r.headers.get("Nats-Msg-Id") for r in self._raw}
        for raw in live:
            if raw.headers.get("Nats-Msg-Id") not in seen:
                self._keep(raw)
        for name in self.sensors:
            for firing in reversed(await streams.last_firings(self.js, name, streams.FIRINGS_KEPT)):
                self._remember_firing(asdict(firing), live=False)
        self._subs.append(await self.nc.subscribe("knevents.firings.*", cb=self._on_firing))
        self._pusher = asyncio.create_task(self._push_loop(), name="ui-push")

    async def _backfill(self, stream: str) -> None:
        """The newest :data:`HISTORY` messages of the bus stream, oldest first."""
        from nats.js import api

        info = await self.js.stream_info(stream)
        last = int(info.state.last_seq or 0)
        if not last:
            return
        config = api.ConsumerConfig(
            deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=max(1, last - HISTORY + 1),
            ack_policy=api.AckPolicy.NONE, mem_storage=True, inactive_threshold=10.0,
        )
        sub = await self.js.pull_subscribe(naming.subject_filter(self.bus), stream=stream, config=config)
        try:
            taken = 0
            while taken < HISTORY:
                try:
                    batch = await sub.fetch(HISTORY, timeout=1.0)
                except TimeoutError:
                    break
                for msg in batch:
                    taken += 1
                    self._intake(msg.subject, msg.headers or {}, msg.data or b"")
                if not batch or int(batch[-1].metadata.sequence.stream) >= last:
                    break
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def close(self) -> None:
        """Stop following the bus and end every live stream."""
        if self._pusher is not None:
            self._pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pusher
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        for queue in list(self._listeners):
            queue.put_nowait(b"")

    # --- intake (hot path: keep it cheap) ------------------------------------------------

    async def _on_event(self, msg: Any) -> None:
        raw = self._parse(msg.subject, msg.headers or {}, msg.data or b"")
        if raw is None:
            return
        if self._backfilling is not None:  # still reading the stream's history: keep these for after it
            self._backfilling.append(raw)
            return
        self._keep(raw)

    def take(self, subject: str, headers: Mapping[str, str], data: bytes) -> None:
        """An event the UI itself stored in the bus stream (beside a cluster, from the Broker)."""
        self._intake(subject, headers, data)

    def _intake(self, subject: str, headers: Mapping[str, str], data: bytes) -> None:
        raw = self._parse(subject, headers, data)
        if raw is not None:
            self._keep(raw)

    def _parse(self, subject: str, headers: Mapping[str, str], data: bytes) -> _Raw | None:
        parts = subject.split(".")
        if len(parts) != 3:
            return None  # replay subjects (4 tokens) are not new events
        if parts[1] == streams.RESERVED_SOURCE:
            sensor = naming.decode_token(parts[2])
            self.counts[f"sensor:{sensor}:dlq"] += 1
            self.last_failed = f"sensor:{sensor}"
            self._dlq_changed = self._changed = True
            return None
        self._seq += 1
        return _Raw(self._seq, subject, headers, data)

    def _keep(self, raw: _Raw) -> None:
        self._raw.append(raw)
        node = self._event_nodes.get(raw.subject)
        if node is not None:
            self.counts[node] += 1
        self._changed = True
        if self._listeners:
            self._new_events.append(raw)

    async def _on_firing(self, msg: Any) -> None:
        try:
            firing = json.loads(msg.data)
        except ValueError:
            return
        self._remember_firing(firing, live=True)

    def _remember_firing(self, firing: dict[str, Any], *, live: bool) -> None:
        self._firings.appendleft(firing)
        node = f"trigger:{firing.get('sensor')}/{firing.get('trigger')}"
        if live:
            self._changed = True
            self.counts[node + (":fired" if firing.get("ok") else ":failed")] += 1
            if not firing.get("ok"):
                self.last_failed = node
            if self._listeners:
                self._new_firings.append(firing)

    # --- live stream ---------------------------------------------------------------------

    def listen(self) -> asyncio.Queue[bytes]:
        """A queue of Server-Sent Events chunks for one browser (an empty chunk ends the stream)."""
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=64)
        self._listeners.add(queue)
        return queue

    def forget(self, queue: asyncio.Queue[bytes]) -> None:
        """Stop feeding a browser that went away."""
        self._listeners.discard(queue)

    async def _push_loop(self) -> None:
        while True:
            await asyncio.sleep(PUSH_EVERY)
            if not self._listeners:
                self._new_events.clear()
                self._new_firings.clear()
                continue
            counts = self.node_counts()  # filtered counts move without a bus message: compare
            if not self._changed and counts == self._sent_counts:
                continue
            self._sent_counts = counts
            batch = {
                # the newest few only: a page shows a screenful, and summarising every event at hundreds a
                # second would cost the runner more than the page is worth (the rest is one click away)
                "events": [self._summary(r) for r in reversed(self._new_events[-PUSH_MAX:])],
                "firings": list(reversed(self._new_firings)),
                "counts": counts,
                "last_failed": self.last_failed,
                "dead_letters_changed": self._dlq_changed,
            }
            self._new_events, self._new_firings = [], []
            self._changed = self._dlq_changed = False
            chunk = b"data: " + json.dumps(batch, default=str).encode() + b"\n\n"
            for queue in list(self._listeners):
                if queue.full():  # a browser that stopped reading: drop it rather than grow
                    self.forget(queue)
                    queue.put_nowait(b"") if not queue.full() else None
                    continue
                queue.put_nowait(chunk)

    # --- views ---------------------------------------------------------------------------

    def _event(self, raw: _Raw) -> events.Event | None:
        try:
            return codec.decode_nats(raw.headers, raw.data)
        except errors.EventError:
            return None

    def _summary(self, raw: _Raw) -> dict[str, Any]:
        if raw.summary is None:
            raw.summary = self._summarise(raw)
        return raw.summary

    def _summarise(self, raw: _Raw) -> dict[str, Any]:
        _, source, name = _tokens(raw.subject)
        event = self._event(raw)
        preview = views.preview(raw.data)
        return {
            "seq": raw.seq, "id": event.id if event else None, "source": source, "event": name,
            "type": event.type if event else None,
            "time": events.format_time(event.time) if event and event.time else None,
            "preview": preview, "sensors": self._sensors_of(source, name),
            "replay": bool(event and event.extensions.get(replay.REPLAY_EXTENSION)),
        }

    def _sensors_of(self, source: str, name: str) -> list[str]:
        return sorted(
            s for s, sensor in self.sensors.items()
            if any(d.event_source_name == source and d.event_name == name for d in sensor.spec.dependencies or [])
        )

    def recent_events(self, source: str | None = None, sensor: str | None = None) -> list[dict[str, Any]]:
        """The live list, newest first, optionally only one source's or one sensor's events."""
        out = []
        for raw in reversed(self._raw):
            summary = self._summary(raw)
            if source and summary["source"] != source:
                continue
            if sensor and sensor not in summary["sensors"]:
                continue
            out.append(summary)
        return out

    def firings(self, sensor: str | None = None) -> list[dict[str, Any]]:
        """Recent firings, newest first."""
        return [f for f in self._firings if sensor is None or f.get("sensor") == sensor]

    def find(self, seq: int) -> events.Event | None:
        """A kept event by its stream sequence."""
        for raw in self._raw:
            if raw.seq == seq:
                return self._event(raw)
        return None

    def story(self, seq: int) -> dict[str, Any] | None:
        """An event's full data and, per sensor, the ``knevents test`` explanation and the real firings."""
        event = self.find(seq)
        if event is None:
            return None
        stories = []
        for name in self._sensors_of(event.source, event.subject or ""):
            run = replay.explain(self.sensors[name], [event])
            notes = run.notes[0]
            stories.append({
                "sensor": name, "step": run.steps[0], "would_store": notes.stored,
                "waiting": notes.waiting, "actions": notes.actions,
                "fired": [f for f in self._firings if event.id in (f.get("events") or {}).values()
                          and f.get("sensor") == name],
            })
        return {"seq": seq, "event": events.to_json(event), "sensors": stories}

    def node_counts(self) -> dict[str, int]:
        """Counts per graph node id, the bus's and this process's sensor metrics merged."""
        counts = dict(self.counts)
        now = asyncio.get_running_loop().time()
        if now - self._filtered_at >= FILTERED_EVERY:  # walking the metrics registry is not free
            self._filtered, self._filtered_at = views.filtered_counts(), now
        for (sensor, dependency), value in self._filtered.items():
            counts[f"dep:{sensor}/{dependency}:filtered"] = value
        return counts

    async def sensor_state(self) -> list[dict[str, Any]]:
        """For each trigger: its condition, what it holds and what it waits for."""
        return await views.sensor_state(self.js, self.sensors)

    async def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]:
        """Dead letters held, oldest first, with why they were dead-lettered."""
        return await views.dead_letters(self.js, self.bus, limit)

    async def replay_dead_letter(self, seq: int) -> dict[str, Any]:
        """Deliver a dead letter again to its sensor (as a replay), then drop it from the dead letters."""
        headers, data = await streams.get_dlq(self.js, seq)
        sensor = headers.get("Knevents-Sensor") or ""
        if sensor not in self.sensors:
            raise errors.KneventsError(f"dead letter {seq} belongs to sensor {sensor!r}, which is not here")
        event = codec.decode_nats(headers, data)
        if self.resend is not None:
            replay_id = await self.resend(sensor, [event])
        else:
            replay_id = await replay.replay(self.js, self.bus, sensor, [event])
        await streams.delete_dlq(self.js, seq)
        return {"sensor": sensor, "event": event.id, "replay": replay_id}

    async def discard_dead_letter(self, seq: int) -> None:
        """Drop a dead letter for good."""
        await streams.delete_dlq(self.js, seq)

    def graph(self) -> dict[str, Any]:
        """Nodes and edges: EventSource events → sensor dependencies → triggers."""
        return views.graph(self.manifests, self.sensors)
