"""The ``sftp`` event source: poll a remote directory over SFTP, as Argo's sftp event source does.

Argo reads ``address`` and ``username`` (both Secrets), logs in with the
``password`` Secret or the ``sshKeySecret`` private key, lists
``watchPathConfig.directory`` every ``pollIntervalDuration`` and compares the
regular files (name, size, mtime) with the previous listing: a vanished file
is ``REMOVE``, a new or changed one ``CREATE``; a file whose name equals
``path`` or matches ``pathRegexp`` and whose operation equals ``eventType``
becomes an event with Argo's data ``{"name", "op", "metadata"?}`` (``name``
is the file name).

knevents keeps the last published listing in the progress store
(:mod:`knevents.sources.progress`), so files that appear while the function
is down are reported when it comes back (Argo starts from the current
listing and misses them); a listing whose events the bus refused is
compared again on the next poll. Event ids are derived from the change, so a
republished change is dropped by the sensors' dedupe. Differences from Argo:
``pollIntervalDuration`` is honoured (Argo v1.9 inverts its parse check and
polls every 10 s or not at all); the host key is not checked, as Argo does
with passwords (with a key Argo tries to parse the private key as a host key,
which cannot work). ``asyncssh`` (the ``sftp`` extra) is imported lazily.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

from knevents import errors, events
from knevents.sources import base, common, file, progress
from knevents.spec import checks, models

__all__ = ["SOURCE", "SftpSource", "changes", "create"]

log = logging.getLogger(__name__)

Listing = dict[str, tuple[int, int]]
"""file name -> (size, mtime)."""


def changes(old: Listing, new: Listing) -> list[tuple[str, str]]:
    """``(op, name)`` as Argo's diffFiles: removed files, then new or changed ones (sorted for stable ids)."""
    removed = [("REMOVE", name) for name in sorted(old.keys() - new.keys())]
    created = [("CREATE", name) for name in sorted(new) if old.get(name) != new[name]]
    return removed + created


class SftpSource:
    """One ``sftp`` entry: list, diff, publish matching changes, remember the listing."""

    def __init__(self, event_name: str, config: models.SFTPEventSource, ctx: base.SourceContext,
                 store: progress.Progress | None = None) -> None:
        where = f"sftp.{event_name}"
        watch = config.watch_path_config
        if watch is None or not watch.directory:
            raise errors.SpecError(f"{where}.watchPathConfig.directory is required")
        if config.address is None or config.username is None:
            raise errors.SpecError(f"{where}: address and username (Secrets) are required")
        if config.password is None and config.ssh_key_secret is None:
            raise errors.SpecError(f"{where}: set password or sshKeySecret")
        self.event_name = event_name
        self._config = config
        self._ctx = ctx
        self._directory = watch.directory
        self._path = watch.path or ""
        self._regexp = re.compile(watch.path_regexp) if watch.path_regexp else None
        self._op = str(config.event_type or "").upper()
        self._metadata = dict(config.metadata) if config.metadata else None
        interval = config.poll_interval_duration
        self._interval = common.parse_go_duration(interval, f"{where}.pollIntervalDuration") if interval else 10.0
        self._store = store if store is not None else progress.for_source(ctx)

    def _matches(self, op: str, name: str) -> bool:
        if op != self._op:
            return False
        if self._path and name == self._path:
            return True
        return self._regexp is not None and self._regexp.search(name) is not None

    async def _connect(self) -> Any:
        import asyncssh

        secrets, config = self._ctx.secrets, self._config
        address = common.read_secret(secrets, config.address, "address")
        host, _, port = address.rpartition(":")
        options: dict[str, Any] = {"username": common.read_secret(secrets, config.username, "username"),
                                   "known_hosts": None}
        if config.ssh_key_secret is not None:
            key = common.read_secret(secrets, config.ssh_key_secret, "sshKeySecret")
            options["client_keys"] = [asyncssh.import_private_key(key)]
            options["password"] = None
        else:
            options["password"] = common.read_secret(secrets, config.password, "password")
            options["client_keys"] = None
        return await asyncssh.connect(host or address, int(port or 22), **options)

    async def _listing(self, sftp: Any) -> Listing:
        import stat

        found: Listing = {}
        for entry in await sftp.readdir(self._directory):
            attrs = entry.attrs
            if entry.filename in (".", "..") or (attrs.permissions is not None and stat.S_ISDIR(attrs.permissions)):
                continue
            found[entry.filename] = (int(attrs.size or 0), int(attrs.mtime or 0))
        return found

    def _event(self, op: str, name: str, info: tuple[int, int] | None) -> events.Event:
        data: dict[str, Any] = {"name": name, "op": op}
        if self._metadata:
            data["metadata"] = self._metadata
        ident = f"{self._ctx.event_source_name}/{self.event_name}/{op}/{name}/{info}"
        return events.new_event(id=hashlib.sha256(ident.encode()).hexdigest()[:32], source=self._ctx.event_source_name,
                                subject=self.event_name, type="sftp", data=data)

    async def _baseline(self, sftp: Any) -> Listing:
        raw = await self._store.load(self.event_name)
        if raw:
            with contextlib.suppress(ValueError, TypeError, IndexError):
                return {k: (int(v[0]), int(v[1])) for k, v in json.loads(raw).items()}
        current = await self._listing(sftp)
        await self._store.save(self.event_name, json.dumps(current).encode())
        return current

    async def _poll(self, sftp: Any, old: Listing, publish: base.Publish) -> Listing:
        new = await self._listing(sftp)
        for op, name in changes(old, new):
            if self._matches(op, name):
                await publish(self._event(op, name, new.get(name) or old.get(name)))
        if new != old:
            await self._store.save(self.event_name, json.dumps(new).encode())
        return new

    async def _session(self, publish: base.Publish, stop: asyncio.Event) -> None:
        async with await self._connect() as conn, conn.start_sftp_client() as sftp:
            listing = await self._baseline(sftp)
            log.info("sftp %s: watching %s", self.event_name, self._directory)
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._interval)
                if stop.is_set():
                    return
                try:
                    listing = await self._poll(sftp, listing, publish)
                except errors.BusUnavailableError as exc:
                    log.warning("sftp %s: bus refused an event (%s); compared again next poll", self.event_name, exc)

    async def run(self, publish: base.Publish, stop: asyncio.Event) -> None:
        """Poll until ``stop``; reconnect with backoff when the server or the login fails."""
        import asyncssh

        delay = 1.0
        while not stop.is_set():
            try:
                await self._session(publish, stop)
                return
            except (OSError, asyncssh.Error, asyncssh.SFTPError, errors.StateUnavailableError) as exc:
                log.error("sftp %s: %s: %s; retrying in %.0fs", self.event_name, type(exc).__name__,
                          str(exc)[:200], delay)
                common.rejected(self._ctx.event_source_name, self.event_name, "connection")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, 30.0)

    async def close(self) -> None:
        """Release the progress store's connection."""
        await self._store.close()


def create(event_name: str, config: models.SFTPEventSource, ctx: base.SourceContext) -> base.Source:
    """Factory for the ``sftp`` spec key."""
    return SftpSource(event_name, config, ctx)


def _check(config: models.SFTPEventSource, path: str) -> Iterator[tuple[str, str]]:
    if config.address is None:
        yield f"{path}.address", "an sftp event source needs `address` (a Secret)"
    if config.username is None:
        yield f"{path}.username", "an sftp event source needs `username` (a Secret)"
    if config.password is None and config.ssh_key_secret is None:
        yield path, "an sftp event source needs `password` or `sshKeySecret`"
    if not config.event_type:
        yield f"{path}.eventType", "type must be specified (CREATE or REMOVE)"
    if config.poll_interval_duration and (msg := checks.duration(config.poll_interval_duration)) is not None:
        yield f"{path}.pollIntervalDuration", msg
    yield from file.check_watch_path(config.watch_path_config, f"{path}.watchPathConfig")


SOURCE = base.SourceType(
    key="sftp",
    model=models.SFTPEventSource,
    factory=create,
    # the poller keeps the last listing: two replicas would report every change twice
    knative=base.always(base.Knative.ONE_REPLICA),
    check=_check,
    data='{"name": "<file name>", "op": "CREATE|REMOVE", "metadata"?: {...}}',
)
