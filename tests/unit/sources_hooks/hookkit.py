"""Shared by the provider-webhook source tests: the documented payloads, a runtime over a memory bus, a poster."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from knevents import bus, events, web
from knevents.runtime import source

from tests.unit.sources_core.helpers import request, runtime

PAYLOADS = Path(__file__).resolve().parents[2] / "fixtures" / "payloads"


def payload(name: str) -> bytes:
    """A documented example payload kept under tests/fixtures/payloads (sources in its SOURCES.md)."""
    return (PAYLOADS / name).read_bytes()


@dataclass
class Answer:
    """What one request produced."""

    status: int
    body: bytes
    headers: Mapping[str, str]
    published: list[events.Event]

    def data(self, index: int = 0) -> Any:
        return events.data_json(self.published[index])


class Hook:
    """One EventSource spec served by the real source runtime over an in-memory bus."""

    def __init__(self, spec: Mapping[str, Any], secrets: Mapping[str, str] | None = None) -> None:
        self.runtime: source.SourceRuntime
        self.runtime, self.bus = runtime(spec, secrets=secrets)

    async def post(self, path: str, body: bytes, headers: Mapping[str, str] | None = None,
                   method: str = "POST") -> Answer:
        before = len(self.bus.events)
        answer: web.Response = await self.runtime.handle(request(method, path, body, dict(headers or {})))
        return Answer(answer.status, answer.body, answer.headers, list(self.bus.events[before:]))


def as_json(value: Any) -> bytes:
    return json.dumps(value).encode()


__all__ = ["Answer", "Hook", "as_json", "bus", "payload"]
