"""Watch for the Kubernetes API stand-in: ``?watch=1`` streams, bookmarks, and 410 Gone after compaction.

As the real API server does it for a list path with ``watch=1`` (what the official client's
``watch.Watch().stream`` and a ``call_api`` with ``watch=True`` send):

* the answer is ``200`` with ``Transfer-Encoding: chunked``, one JSON watch event per line
  (``{"type": "ADDED"|"MODIFIED"|"DELETED"|"BOOKMARK"|"ERROR", "object": ...}``);
* ``resourceVersion`` unset or ``"0"``: synthetic ``ADDED`` events for every current object first;
  otherwise every change after that version;
* a version older than the last compaction (:meth:`Journal.compact`) gets one ``ERROR`` event whose
  object is a ``Status`` with ``code: 410``, ``reason: Expired`` ("too old resource version"), and the
  stream ends;
* ``allowWatchBookmarks=true``: a ``BOOKMARK`` (only ``metadata.resourceVersion``) after each quiet
  ``bookmark_every`` seconds; ``timeoutSeconds`` ends the stream;
* ``labelSelector`` and ``fieldSelector`` (``metadata.name`` / ``metadata.namespace``) filter events.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

Key = tuple[str, str, str, str, str]


@dataclass
class Journal:
    """Every change, in resourceVersion order; watchers wait on ``changed``."""

    entries: list[tuple[int, str, Key, dict[str, Any]]] = field(default_factory=list)
    compacted: int = 0
    changed: threading.Condition = field(default_factory=threading.Condition)
    bookmark_every: float = 1.0

    def record(self, kind: str, key: Key, obj: dict[str, Any]) -> None:
        with self.changed:
            self.entries.append((int(obj["metadata"]["resourceVersion"]), kind, key, copy.deepcopy(obj)))
            self.changed.notify_all()

    def compact(self, upto: int) -> None:
        """Forget changes up to version ``upto``: older watch versions get 410 Gone."""
        with self.changed:
            self.entries = [e for e in self.entries if e[0] > upto]
            self.compacted = max(self.compacted, upto)
            self.changed.notify_all()


def _field_ok(obj: dict[str, Any], selector: str) -> bool:
    meta = obj.get("metadata") or {}
    for term in filter(None, (t.strip() for t in selector.split(","))):
        key, _, value = term.replace("==", "=").partition("=")
        if key.endswith("!"):
            if str(meta.get(key[:-1].split(".")[-1], "")) == value:
                return False
        elif str(meta.get(key.split(".")[-1], "")) != value:
            return False
    return True


def gone(version: int) -> dict[str, Any]:
    """The ERROR event the API server sends for a compacted resourceVersion."""
    return {"type": "ERROR", "object": {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": f"too old resource version: {version}", "reason": "Expired", "code": 410}}


def stream(journal: Journal, group_key: tuple[str, str, str], namespace: str | None, query: dict[str, list[str]],
           current: Callable[[], tuple[int, list[tuple[Key, dict[str, Any]]]]],
           labels_ok: Callable[[dict[str, Any], str], bool]) -> Iterator[dict[str, Any]]:
    """The watch events for one request, until its timeout; ``current()`` is (version, objects) under the lock."""
    first = lambda name: (query.get(name) or [""])[0]  # noqa: E731
    labels, fields = first("labelSelector"), first("fieldSelector")
    bookmarks = first("allowWatchBookmarks") in ("true", "1")
    deadline = time.monotonic() + float(first("timeoutSeconds") or 1800)

    def wanted(key: Key, obj: dict[str, Any]) -> bool:
        return (key[:3] == group_key and (namespace is None or key[3] == namespace)
                and labels_ok((obj.get("metadata") or {}).get("labels") or {}, labels) and _field_ok(obj, fields))

    since = first("resourceVersion")
    if since in ("", "0"):
        version, objects = current()
        for key, obj in objects:
            if wanted(key, obj):
                yield {"type": "ADDED", "object": obj}
    else:
        version = int(since)
        with journal.changed:
            if version < journal.compacted:
                yield gone(version)
                return
    while time.monotonic() < deadline:
        with journal.changed:
            fresh = [e for e in journal.entries if e[0] > version]
            if not fresh:
                journal.changed.wait(min(journal.bookmark_every, max(0.0, deadline - time.monotonic())))
                fresh = [e for e in journal.entries if e[0] > version]
            top = max([version, *(e[0] for e in journal.entries)])
        for rv, kind, key, obj in fresh:
            version = rv
            if wanted(key, obj):
                yield {"type": kind, "object": obj}
        if not fresh and bookmarks:
            version = top
            yield {"type": "BOOKMARK", "object": {"kind": "", "apiVersion": "", "metadata": {"resourceVersion": str(top)}}}


def write_chunked(wfile: Any, events: Iterator[dict[str, Any]]) -> None:
    """Send watch events as HTTP/1.1 chunks, one JSON line each, then the last chunk."""
    try:
        for event in events:
            line = json.dumps(event).encode() + b"\n"
            wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
            wfile.flush()
        wfile.write(b"0\r\n\r\n")
        wfile.flush()
    except (BrokenPipeError, ConnectionResetError):
        return
