"""The page's views that are not the live stream: the flow graph, the sensors' held state, the dead letters.

They are read when a browser asks, never per event, so they may walk the
manifests, read KV and decode JSON. :class:`knevents.ui.hub.Hub` answers
through them; they hold no state of their own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from knevents import errors
from knevents.bus import codec
from knevents.local import routes, status, streams

__all__ = ["PREVIEW", "dead_letters", "event_node", "filtered_counts", "graph", "preview", "sensor_state"]

PREVIEW = 160
"""Characters of event data shown in the live list and the dead letters."""


def event_node(source: str, name: str) -> str:
    """The graph node of an event, under which it is counted."""
    return f"event:{source}/{name}"


def preview(data: bytes) -> str:
    """The start of an event's data; for Argo's ``{header, body}`` shape, of the body (what people look for)."""
    if len(data) <= 256 * 1024:
        try:
            value = json.loads(data)
        except (ValueError, RecursionError):
            value = None
        if isinstance(value, dict) and "body" in value:
            return json.dumps(value["body"], separators=(",", ":"), default=str)[:PREVIEW]
    return data[: PREVIEW * 2].decode("utf-8", "replace")[:PREVIEW]


def graph(manifests: Any, sensors: Mapping[str, Any]) -> dict[str, Any]:
    """Nodes and edges: EventSource events → sensor dependencies → triggers."""
    nodes: list[dict[str, Any]] = []
    edges: list[tuple[str, str]] = []
    seen: set[str] = set()

    def node(node_id: str, kind: str, label: str, **extra: Any) -> None:
        if node_id not in seen:
            seen.add(node_id)
            nodes.append({"id": node_id, "kind": kind, "label": label, **extra})

    for es in manifests.event_sources:
        for key, entries in routes.spec_entries(es):
            for name in entries:
                node(event_node(es.metadata.name, name), "event", f"{es.metadata.name}/{name}", type=key)
    for name, sensor in sensors.items():
        node(f"sensor:{name}", "sensor", name)
        for dep in sensor.spec.dependencies or []:
            dep_id = f"dep:{name}/{dep.name}"
            node(dep_id, "dependency", dep.name, sensor=name)
            source_id = event_node(dep.event_source_name, dep.event_name)
            node(source_id, "event", f"{dep.event_source_name}/{dep.event_name}", type="(not here)")
            edges.append((source_id, dep_id))
            edges.append((dep_id, f"sensor:{name}"))
        for trigger in sensor.spec.triggers or []:
            if trigger.template is None:
                continue
            trigger_id = f"trigger:{name}/{trigger.template.name}"
            node(trigger_id, "trigger", trigger.template.name, sensor=name)
            edges.append((f"sensor:{name}", trigger_id))
    return {"nodes": nodes, "edges": [{"from": a, "to": b} for a, b in edges]}


async def sensor_state(js: Any, sensors: Mapping[str, Any]) -> list[dict[str, Any]]:
    """For each trigger: its condition, what it holds and what it waits for."""
    out = []
    for name, sensor in sensors.items():
        namespace = sensor.metadata.namespace or "default"
        deps = [d.name for d in sensor.spec.dependencies or []]
        for trigger in sensor.spec.triggers or []:
            template = trigger.template
            if template is None:
                continue
            held = await status.pending_state(js, namespace, name, template.name)
            condition = template.conditions or " && ".join(deps)
            out.append({
                "sensor": name, "trigger": template.name, "condition": condition,
                "pending": held.get("pending", {}), "in_flight": held.get("in_flight", 0),
                "error": held.get("error"),
                "waiting_for": _waiting(condition, deps, set(held.get("pending", {}))),
            })
    return out


def _waiting(condition: str, deps: list[str], held: set[str]) -> list[str]:
    """Dependencies of the condition not held yet (all of them when nothing is held)."""
    from knevents.spec import checks

    names, _ = checks.condition_names(condition)
    wanted = [n for n in (names or deps) if n in deps]
    return [n for n in dict.fromkeys(wanted) if n not in held]


async def dead_letters(js: Any, bus: str, limit: int) -> list[dict[str, Any]]:
    """Dead letters held, oldest first, with why they were dead-lettered."""
    out: list[dict[str, Any]] = []
    async for seq, headers, data in streams.read_dlq(js, bus, limit):
        try:
            event = codec.decode_nats(headers, data)
            summary = {"id": event.id, "source": event.source, "event": event.subject,
                       "preview": data[:PREVIEW].decode("utf-8", "replace")}
        except errors.EventError:
            summary = {"id": None, "source": None, "event": None, "preview": ""}
        out.append({"seq": seq, "sensor": headers.get("Knevents-Sensor"),
                    "reason": headers.get("Knevents-Reason"),
                    "deliveries": headers.get("Knevents-Deliveries"), **summary})
    return out


def filtered_counts() -> dict[tuple[str, str], int]:
    """``knevents_sensor_events_filtered`` of this process (of every worker with ``run --workers``), by (sensor, dependency)."""
    from knevents import metrics

    out: dict[tuple[str, str], int] = {}
    for family in metrics.families():
        if family.name != "knevents_sensor_events_filtered":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                out[(sample.labels["sensor"], sample.labels["dependency"])] = int(sample.value)
    return out
