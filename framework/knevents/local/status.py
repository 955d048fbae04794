"""What ``knevents status`` shows: sources, sensors, triggers, pending AND-state, last firings, dead letters.

Read-only. It reads the runner's ``runner.json`` and the JetStream store: the
sensors' KV buckets (decoded with the sensor runtime's record format and the
engine's ``TriggerState``), the ``KNEVENTS_FIRINGS`` log and the
``KNEVENTS_DLQ`` stream. When the runner is stopped, it opens the store with a
short-lived nats-server of its own, so the state can be inspected offline.
Event payloads are not shown, only ids, times and dependency names.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from knevents import errors, events, redact
from knevents.local import natsauth, natsd, runnerfile, streams
from knevents.settings import NatsSettings

__all__ = ["collect", "format_text", "open_store", "pending_state"]


@contextlib.asynccontextmanager
async def open_store(state_dir: Path, info: runnerfile.RunnerInfo) -> AsyncIterator[Any]:
    """A NATS connection to the runner's server, or to a temporary server on its store when it is stopped."""
    from knevents.bus import jetstream

    server: natsd.NatsServer | None = None
    url = natsauth.client_url(state_dir, info.nats_url)
    runner_alive = info.running and runnerfile.pid_alive(info.pid)
    if info.managed_nats and not runner_alive:
        store = state_dir / "jetstream"
        if not store.exists():
            raise errors.KneventsError(f"no JetStream store in {store}")
        config = state_dir / natsauth.CONFIG_FILE
        server = natsd.NatsServer(store_dir=store, name="knevents-status",
                                  config_file=config if config.exists() else None)
        server.start()
        url = natsauth.client_url(state_dir, server.url)
    try:
        nc = await jetstream.connect(NatsSettings(url=url, connect_timeout=2.0))
    except errors.KneventsError:
        if server is not None:
            server.stop()
        raise
    try:
        yield nc
    finally:
        with contextlib.suppress(Exception):
            await nc.close()
        if server is not None:
            server.stop()


async def pending_state(js: Any, namespace: str, sensor: str, trigger: str) -> dict[str, Any]:
    """What one trigger holds: ``{"pending": {dep: {event_id, saved_at}}, "in_flight": n}`` (``error`` if unreadable)."""
    from knevents import state
    from knevents.runtime import sensor_record
    from knevents.sensors import engine

    out: dict[str, Any] = {"pending": {}, "in_flight": 0}
    try:
        kv = await js.key_value(state.bucket_name(namespace, sensor))
        entry = await kv.get(state.kv_key(trigger))
    except Exception:  # no bucket or no key: nothing pending
        return out
    if not entry.value:
        return out
    try:
        record = sensor_record.decode(entry.value)
        saved = engine.TriggerState.from_bytes(record.state) if record.state else engine.TriggerState.EMPTY
    except Exception as exc:
        out["error"] = f"unreadable state: {exc}"
        return out
    out["pending"] = {
        dep: {"event_id": ev.id, "saved_at": events.format_time(saved.saved_at[dep]) if dep in saved.saved_at
              else None}
        for dep, ev in saved.events.items()
    }
    out["in_flight"] = len(record.outbox)
    return out


async def collect(state_dir: Path, firings: int = 5) -> dict[str, Any]:
    """Everything ``status`` prints, as one JSON-able dict."""
    info = runnerfile.read(state_dir)
    async with open_store(state_dir, info) as nc:
        js = nc.jetstream()
        dead = await streams.dlq_counts(js, info.bus)
        stream = await _stream_size(js, info.bus)
        sensors = []
        for sensor in info.sensors:
            deps = {d["name"] for d in sensor.dependencies}
            triggers = []
            for trigger in sensor.triggers:
                pending = await pending_state(js, sensor.namespace, sensor.name, trigger)
                pending["waiting_for"] = sorted(deps - set(pending["pending"])) if pending["pending"] else []
                triggers.append({"name": trigger, **pending})
            last = await streams.last_firings(js, sensor.name, firings)
            sensors.append({
                "name": sensor.name, "namespace": sensor.namespace, "dependencies": sensor.dependencies,
                "triggers": triggers, "last_firings": [dataclasses.asdict(f) for f in last],
                "dead_letters": dead.get(sensor.name, 0),
                "dlq_subject": streams.dlq_subject(info.bus, sensor.name),
            })
    running = info.running and runnerfile.pid_alive(info.pid)
    result: dict[str, Any] = redact.redact_values({  # firing details were redacted when recorded; URL user info and auth here
        "runner": {"running": running, "pid": info.pid, "nats_url": info.nats_url,
                   "bus": info.bus, "state_dir": info.state_dir, "max_deliveries": info.max_deliveries,
                   "workers": _workers(info) if running else []},
        "sources": [dataclasses.asdict(s) for s in info.sources],
        "sensors": sensors,
        "bus_stream": stream,
    })
    return result


def _workers(info: runnerfile.RunnerInfo) -> list[dict[str, Any]]:
    """Every process serving the runner: worker 0 (the runner) and those it started (``run --workers``)."""
    return runnerfile.worker_list({0: info.pid, **info.workers})


async def _stream_size(js: Any, bus: str) -> dict[str, Any]:
    """Size and limits of the bus stream (what the disk holds), or the reason it could not be read."""
    from knevents.bus import naming

    try:
        info = await js.stream_info(naming.stream_name(bus))
    except Exception as exc:
        return {"error": f"cannot read the bus stream: {type(exc).__name__}"}
    config = info.config
    return {"name": config.name, "messages": info.state.messages, "bytes": info.state.bytes,
            "max_age_seconds": config.max_age or 0, "max_bytes": config.max_bytes, "max_msgs": config.max_msgs}


def _limit(value: float | None, unit: str = "") -> str:
    return "unlimited" if not value or value < 0 else f"{value:g}{unit}"


def format_text(status: dict[str, Any]) -> str:
    """The human view of :func:`collect`'s result."""
    runner = status["runner"]
    lines = [f"runner: {'running (pid ' + str(runner['pid']) + ')' if runner['running'] else 'stopped'}, "
             f"bus {runner['bus']!r}, NATS {runner['nats_url']}, state {runner['state_dir']}"]
    if len(runner.get("workers") or []) > 1:
        lines.append(f"workers: {len(runner['workers'])} (" + ", ".join(
            f"{w['index']}: pid {w['pid']}{'' if w['alive'] else ' exited'}" for w in runner["workers"]) + ")")
    stream = status.get("bus_stream") or {}
    if "bytes" in stream:
        lines.append(f"bus stream {stream['name']}: {stream['messages']} events, {stream['bytes']} bytes "
                     f"(limits: maxAge {_limit(stream['max_age_seconds'], 's')}, maxBytes {_limit(stream['max_bytes'])}, "
                     f"maxMsgs {_limit(stream['max_msgs'])})")
    lines.append("sources:")
    for s in status["sources"]:
        lines.append(f"  {s['eventsource']}/{s['event']} ({s['type']})" +
                     (f" {s['method'] or 'ANY'} {s['url']}" if s["url"] else ""))
    lines.append("sensors:")
    for sensor in status["sensors"]:
        lines.append(f"  {sensor['name']} (namespace {sensor['namespace']}): dead letters {sensor['dead_letters']}"
                     f" [{sensor['dlq_subject']}]")
        for trigger in sensor["triggers"]:
            if trigger.get("error"):
                state_text = trigger["error"]
            elif trigger["pending"]:
                held = ", ".join(f"{dep} (event {p['event_id']})" for dep, p in sorted(trigger["pending"].items()))
                state_text = f"pending {held}; waiting for {', '.join(trigger['waiting_for']) or '-'}"
            else:
                state_text = "nothing pending"
            if trigger.get("in_flight"):
                state_text += f"; {trigger['in_flight']} firing(s) in flight"
            lines.append(f"    trigger {trigger['name']}: {state_text}")
        for firing in sensor["last_firings"]:
            mark = "fired " if firing["ok"] else "FAILED"
            ids = ", ".join(f"{k}={v}" for k, v in sorted(firing["events"].items()))
            lines.append(f"    {firing['time']} {mark} {firing['trigger']} ({firing['kind']}"
                         f"{', dry run' if firing.get('dry_run') else ''}): {firing['detail']} [{ids}]")
    return "\n".join(lines)


