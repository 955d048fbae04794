"""The ``file`` event source: changes in a local directory, as Argo's file event source reports them.

Argo watches ``watchPathConfig.directory`` (not recursively) with inotify, or
with a 100 ms polling watcher when ``polling: true``, and sends one event per
change whose path relative to the directory equals ``path`` or matches
``pathRegexp`` and whose operation equals ``eventType`` (``CREATE``,
``WRITE``, ``REMOVE``, ``RENAME``, ``CHMOD``). The data is Argo's
``{"name", "op", "metadata"?}``; ``name`` is the full path with inotify and
the bare file name with polling, as in Argo.

knevents compares snapshots of the directory (inode, mtime, size, mode per
entry) every ``KNEVENTS_FILE_POLL_INTERVAL`` seconds (0.1 s) in both modes and
keeps the last published snapshot in the progress store
(:mod:`knevents.sources.progress`): after a restart the differences since that
snapshot are published, so changes made while the function was down are not
lost (Argo loses them). Differences from inotify: several writes within one
interval are one ``WRITE``; a rename is ``RENAME`` of the old name plus
``CREATE`` of the new one (inotify's order). Event ids are derived from the
change, so a snapshot republished after a crash is deduplicated by sensors.
A ``directory`` without a trailing ``/`` also matches ``path`` (Argo then
compares ``/x.txt`` with ``x.txt`` and never fires).

On Knative the function must run where the directory is mounted, with one
replica (two replicas would each report every change).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import stat
from collections.abc import Iterator
from typing import Any

from knevents import errors, events
from knevents.sources import base, common, progress
from knevents.spec import models

__all__ = ["OPS", "SOURCE", "FileSource", "changes", "check_watch_path", "create", "scan"]

log = logging.getLogger(__name__)

OPS = ("CREATE", "WRITE", "REMOVE", "RENAME", "CHMOD")
Snapshot = dict[str, tuple[int, int, int, int]]
"""file name -> (inode, mtime_ns, size, mode)."""


def scan(directory: str) -> Snapshot:
    """The entries of ``directory`` (not recursive)."""
    found: Snapshot = {}
    with os.scandir(directory) as entries:
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed while scanning: the next scan reports it
            found[entry.name] = (st.st_ino, st.st_mtime_ns, st.st_size, stat.S_IMODE(st.st_mode))
    return found


def changes(old: Snapshot, new: Snapshot) -> list[tuple[str, str]]:
    """``(op, file name)`` turning ``old`` into ``new``, in inotify's order (renames, removals, then the rest)."""
    out: list[tuple[str, str]] = []
    gone = {name: old[name] for name in old.keys() - new.keys()}
    born = {name: new[name] for name in new.keys() - old.keys()}
    # a rename keeps inode, mtime and size; the inode alone may be reused by a new file
    moved = {info[:3] for info in born.values()}
    for name in sorted(gone):
        target = gone[name][:3] in moved or None
        out.append(("RENAME" if target is not None else "REMOVE", name))
    for name in sorted(born):
        out.append(("CREATE", name))
    for name in sorted(old.keys() & new.keys()):
        before, after = old[name], new[name]
        if before[0] != after[0]:
            out += [("REMOVE", name), ("CREATE", name)]
        elif before[1:3] != after[1:3]:
            out.append(("WRITE", name))
        elif before[3] != after[3]:
            out.append(("CHMOD", name))
    return out


class FileSource:
    """One ``file`` entry: diff the directory, publish matching changes, remember the snapshot."""

    def __init__(self, event_name: str, config: Any, ctx: base.SourceContext,
                 store: progress.Progress | None = None) -> None:
        where = f"file.{event_name}"
        watch = config.watch_path_config
        if watch is None or not watch.directory:
            raise errors.SpecError(f"{where}.watchPathConfig.directory is required")
        if not config.event_type:
            raise errors.SpecError(f"{where}.eventType is required")
        try:
            self._regexp = re.compile(watch.path_regexp) if watch.path_regexp else None
        except re.error as exc:
            raise errors.SpecError(f"{where}.watchPathConfig.pathRegexp: {exc}") from None
        self.event_name = event_name
        self._ctx = ctx
        self._directory = watch.directory
        self._path = watch.path or ""
        self._op = str(config.event_type).upper()
        self._polling = bool(config.polling)
        self._metadata = dict(config.metadata) if config.metadata else None
        self._interval = float(os.environ.get("KNEVENTS_FILE_POLL_INTERVAL") or 0.1)
        self._store = store if store is not None else progress.for_source(ctx)

    def _matches(self, op: str, name: str) -> bool:
        if op != self._op:
            return False
        if self._path and name == self._path:
            return True
        return self._regexp is not None and self._regexp.search(name) is not None

    def _event(self, op: str, name: str, info: tuple[int, int, int, int]) -> events.Event:
        shown = name if self._polling else os.path.join(os.path.normpath(self._directory), name)
        data: dict[str, Any] = {"name": shown, "op": op}
        if self._metadata:
            data["metadata"] = self._metadata
        key = f"{self._ctx.event_source_name}/{self.event_name}/{op}/{name}/{info[0]}/{info[1]}"
        return events.new_event(id=hashlib.sha256(key.encode()).hexdigest()[:32], source=self._ctx.event_source_name,
                                subject=self.event_name, type="file", data=data)

    async def _baseline(self) -> Snapshot:
        raw = await self._store.load(self.event_name)
        if raw:
            try:
                return {k: (v[0], v[1], v[2], v[3]) for k, v in json.loads(raw).items()}
            except (ValueError, TypeError, IndexError, AttributeError):
                log.warning("file %s: stored snapshot unreadable; starting from the current listing", self.event_name)
        current = await asyncio.to_thread(scan, self._directory)
        await self._store.save(self.event_name, json.dumps(current).encode())
        return current

    async def _step(self, old: Snapshot, publish: base.Publish) -> Snapshot:
        new = await asyncio.to_thread(scan, self._directory)
        if new == old:
            return old
        for op, name in changes(old, new):
            if self._matches(op, name):
                await publish(self._event(op, name, new.get(name) or old[name]))
        await self._store.save(self.event_name, json.dumps(new).encode())
        return new

    async def run(self, publish: base.Publish, stop: asyncio.Event) -> None:
        """Diff the directory every interval until ``stop``; a refused publish keeps the old snapshot."""
        snapshot: Snapshot | None = None
        missing = False
        while not stop.is_set():
            try:
                snapshot = await self._baseline() if snapshot is None else await self._step(snapshot, publish)
                missing = False
            except errors.BusUnavailableError as exc:
                log.warning("file %s: bus refused an event (%s); the changes are retried", self.event_name, exc)
            except (FileNotFoundError, NotADirectoryError):
                if not missing:  # once per outage, not every interval
                    log.error("file %s: directory %s does not exist", self.event_name, self._directory)
                    common.rejected(self._ctx.event_source_name, self.event_name, "missing_directory")
                missing = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval)

    async def close(self) -> None:
        """Release the progress store's connection."""
        await self._store.close()


def create(event_name: str, config: models.FileEventSource, ctx: base.SourceContext) -> base.Source:
    """Factory for the ``file`` spec key."""
    return FileSource(event_name, config, ctx)


def check_watch_path(watch: models.WatchPathConfig | None, path: str) -> Iterator[tuple[str, str]]:
    """Argo's ``WatchPathConfig.Validate`` (file, and any type that watches a directory)."""
    if watch is None or not watch.directory:
        yield f"{path}.directory", "directory is required"
        return
    if not watch.directory.startswith("/"):
        yield f"{path}.directory", "directory must be an absolute file path"
    if not watch.path and not watch.path_regexp:
        yield path, "either path or pathRegexp must be specified"
    if watch.path and watch.path_regexp:
        yield path, "path and pathRegexp cannot be specified together"
    if watch.path and watch.path.startswith("/"):
        yield f"{path}.path", "path must be a relative file path"
    if watch.path_regexp:
        try:
            re.compile(watch.path_regexp)
        except re.error as exc:
            yield f"{path}.pathRegexp", f"invalid regular expression: {exc}"


def _notes(event_name: str, config: models.FileEventSource) -> Iterator[str]:
    directory = config.watch_path_config.directory if config.watch_path_config is not None else None
    yield (
        f"file.{event_name} watches {directory} inside its pod: mount that directory into the rendered Service "
        "(add the volume to it); it runs one replica"
    )


def _check(config: models.FileEventSource, path: str) -> Iterator[tuple[str, str]]:
    if not config.event_type:
        yield f"{path}.eventType", "type must be specified (CREATE, WRITE, REMOVE, RENAME or CHMOD)"
    elif config.event_type.upper() not in ("CREATE", "WRITE", "REMOVE", "RENAME", "CHMOD"):
        yield f"{path}.eventType", f"`{config.event_type}` is not one of CREATE, WRITE, REMOVE, RENAME, CHMOD"
    yield from check_watch_path(config.watch_path_config, f"{path}.watchPathConfig")


SOURCE = base.SourceType(
    key="file",
    model=models.FileEventSource,
    factory=create,
    # a watcher keeps a snapshot and must run; two would publish every change twice
    knative=base.always(base.Knative.ONE_REPLICA),
    check=_check,
    data='{"name": "<path of the file>", "op": "CREATE|WRITE|REMOVE|RENAME|CHMOD", "metadata"?: {...}}',
    notes=_notes,
)
