"""Put each busy py-spy sample in one bucket of "where the CPU goes", by the frames of its stack.

A sample's *deciding frame* is its leaf-most frame that is not in the standard library, except
``json`` and ``logging``, which are buckets of their own: the cost of ``asyncio.streams``,
``datetime``, ``re`` … called by some code is that code's cost (a socket write made by nats-py's
flusher is nats-py's). A sample with no such frame is the event loop itself (``asyncio``; with
uvloop, its C code shows as the bare ``Runner.run`` frame).

A deciding frame in nats-py (or knevents/natsclient.py, our subclass of its client), or in our
modules that call it (state/, bus/, local/streams.py, local/dispatcher.py), is charged to the request path of the leaf-most of those modules in the
stack — "NATS request: KV state/dedupe", "bus publish + ack", … — or to "nats-py core" (the read
loop, the flusher, message parsing) when none of ours is in the stack.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

BUCKETS = (
    "nats-py core",
    "NATS request: KV state/dedupe",
    "NATS request: bus publish + ack",
    "NATS request: firing-log publish",
    "NATS request: dispatcher",
    "HTTP trigger client",
    "CloudEvent building",
    "asyncio (event loop)",
    "HTTP server",
    "logging, console, metrics",
    "JSON",
    "firing observer",
    "engine",
    "sensor runtime",
    "event-source runtime",
    "UI",
    "other",
)

THIRD_PARTY = frozenset({
    "knevents", "nats", "uvicorn", "httptools", "h11", "starlette", "functions_framework", "cloudevents",
    "prometheus_client", "pydantic", "pydantic_core", "uvloop", "anyio", "yaml", "httpx", "httpcore", "flask",
    "werkzeug", "gunicorn", "orjson", "sniffio", "idna", "bench",
})
"""First path parts that are not the standard library (py-spy prints paths relative to ``sys.path``)."""

LOOP_ENTRIES = ("(asyncio/runners.py:", "run_forever (asyncio/base_events.py:", "_run_once (asyncio/base_events.py:",
                "run_until_complete (asyncio/base_events.py:", "Handle._run (asyncio/events.py:")
"""Frames of the event loop itself: with uvloop, a sample in its C code ends at ``Runner.run``."""

IDLE_LEAVES = ("selectors.py", "select (", "epoll", "poll (")
"""A leaf frame waiting for I/O: an idle sample py-spy's thread-state check let through."""

NATS_CALLERS = (
    ("knevents/state/", "NATS request: KV state/dedupe"),
    ("knevents/local/streams.py", "NATS request: firing-log publish"),
    ("knevents/bus/", "NATS request: bus publish + ack"),
    ("knevents/local/dispatcher.py", "NATS request: dispatcher"),
)

BY_FILE = (
    ("knevents/ui/", "UI"),
    ("json/", "JSON"),
    ("orjson", "JSON"),
    ("logging/", "logging, console, metrics"),
    ("knevents/local/console.py", "logging, console, metrics"),
    ("knevents/metrics.py", "logging, console, metrics"),
    ("knevents/argo_metrics.py", "logging, console, metrics"),
    ("knevents/runtime/sensor_obs.py", "logging, console, metrics"),
    ("knevents/runtime/source_obs.py", "logging, console, metrics"),
    ("prometheus_client/", "logging, console, metrics"),
    ("knevents/triggers/", "HTTP trigger client"),
    ("knevents/http11.py", "HTTP trigger client"),
    ("knevents/events.py", "CloudEvent building"),
    ("cloudevents/", "CloudEvent building"),
    ("uvicorn/", "HTTP server"),
    ("httptools/", "HTTP server"),
    ("h11/", "HTTP server"),
    ("starlette/", "HTTP server"),
    ("functions_framework/", "HTTP server"),
    ("knevents/runtime/asgi.py", "HTTP server"),
    ("knevents/runtime/serve.py", "HTTP server"),
    ("knevents/runtime/httpguard.py", "HTTP server"),
    ("knevents/runtime/httpserver.py", "HTTP server"),
    ("knevents/runtime/httpconn.py", "HTTP server"),
    ("knevents/web.py", "HTTP server"),
    ("knevents/local/httpserve.py", "HTTP server"),
    ("knevents/local/observer.py", "firing observer"),
    ("knevents/sensors/", "engine"),
    ("knevents/runtime/sensor", "sensor runtime"),
    ("knevents/runtime/source", "event-source runtime"),
    ("knevents/sources/", "event-source runtime"),
)

_FILE = re.compile(r"\((.*?):\d+\)$")


def frame_file(frame: str) -> str:
    """``nats/aio/client.py`` from ``Client._flusher (nats/aio/client.py:2363)``."""
    match = _FILE.search(frame)
    return match.group(1) if match else frame


def _ours_or_third_party(path: str) -> bool:
    return path.split("/", 1)[0].removesuffix(".py") in THIRD_PARTY or path.startswith(("json/", "logging/"))


def is_idle(stack: list[str]) -> bool:
    return any(mark in stack[-1] for mark in IDLE_LEAVES)


def classify(stack: list[str]) -> tuple[str, str]:
    """``(bucket, deciding file)`` of one sample's stack (root first, as py-spy writes it)."""
    files = [frame_file(f) for f in stack]
    if any(f.startswith("knevents/ui/") for f in files):
        return "UI", "knevents/ui/"
    # frames below the event loop's entry (the CLI that started the loop) decide nothing
    loop = [i for i, frame in enumerate(stack) if any(mark in frame for mark in LOOP_ENTRIES)]
    files = files[loop[-1] + 1:] if loop else files
    deciding = next((f for f in reversed(files) if _ours_or_third_party(f)), None)
    if deciding is None:
        return "asyncio (event loop)", files[-1] if files else "asyncio/runners.py"
    nats_side = deciding.startswith(("nats/", "knevents/natsclient.py")) or any(
        deciding.startswith(m) for m, _ in NATS_CALLERS)
    if nats_side:
        for f in reversed(files):
            for module, bucket in NATS_CALLERS:
                if f.startswith(module):
                    return bucket, deciding
        return "nats-py core", deciding
    for prefix, bucket in BY_FILE:
        if deciding.startswith(prefix):
            return bucket, deciding
    return "other", deciding


def summarize(stacks: list[tuple[list[str], int]]) -> dict[str, Any]:
    """Busy and idle sample counts, each bucket's share of the busy ones (%), the largest "other" files."""
    counts: Counter[str] = Counter()
    other: Counter[str] = Counter()
    idle = 0
    for stack, n in stacks:
        if not stack or is_idle(stack):
            idle += n
            continue
        bucket, deciding = classify(stack)
        counts[bucket] += n
        if bucket == "other":
            other[deciding] += n
    busy = sum(counts.values())
    shares = {b: counts[b] * 100 / busy if busy else 0.0 for b in BUCKETS}
    return {"busy": busy, "idle": idle, "shares": shares,
            "other_files": {f: n * 100 / busy for f, n in other.most_common(6)}}
