"""Provider hooks during ``knevents run``: applied at start, deleted on stop when ``deleteHookOnFinish``.

As Argo's event source pods do, the local runner registers the webhooks of
github, gitlab, bitbucket, bitbucketserver, gerrit and stripe entries when it
starts — but only for entries whose credentials can be read (no credentials,
no calls: an example run offline stays quiet) and never with ``--no-hooks``.
The calls run in a worker thread after the ports are listening, so a slow
provider does not delay the first event; every outcome is one console line.
On stop, hooks of entries with ``deleteHookOnFinish: true`` that this run
applied are deleted. Errors are warnings: a provider that refuses does not stop
the runner.
"""

from __future__ import annotations

import asyncio
from typing import Any

from knevents import errors, hooks
from knevents.hooks import base

__all__ = ["HookLifecycle"]


class HookLifecycle:
    """The hooks of one run."""

    def __init__(self, event_sources: list[Any], secrets: Any, console: Any) -> None:
        self._console = console
        self._ctx = base.Context(secrets, out=lambda line: console.emit("info", line), api_bases=hooks.api_bases())
        self._applied: list[base.Target] = []
        self._task: asyncio.Task[None] | None = None
        found = list(hooks.targets(event_sources,
                                   on_missing_url=lambda why: console.emit("info", f"hook not applied: {why}")))
        self._targets = [t for t in found if hooks.has_credentials(t, secrets)]
        for skipped in (t for t in found if t not in self._targets):
            console.emit("info", f"hooks of {skipped.key} {skipped.event_source}/{skipped.event_name} not applied: "
                                 "no credentials available")

    def start(self) -> None:
        """Apply every hook in the background."""
        if self._targets:
            self._task = asyncio.create_task(asyncio.to_thread(self._apply_all), name="hooks-apply")

    def _apply_all(self) -> None:
        for target in self._targets:
            try:
                for outcome in hooks.apply(target, self._ctx):
                    self._console.emit("info", f"hook {outcome.line()}", eventsource=target.event_source,
                                       event=target.event_name)
                self._applied.append(target)
            except errors.KneventsError as exc:
                self._console.emit("warning", f"hook not applied: {exc}", eventsource=target.event_source,
                                   event=target.event_name)

    async def stop(self) -> None:
        """Wait for the apply to end, then delete the hooks marked ``deleteHookOnFinish``."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        doomed = [t for t in self._applied if getattr(t.config, "delete_hook_on_finish", False)]
        if doomed:
            await asyncio.to_thread(self._delete_all, doomed)

    def _delete_all(self, doomed: list[base.Target]) -> None:
        for target in doomed:
            try:
                for outcome in hooks.delete(target, self._ctx):
                    self._console.emit("info", f"hook {outcome.line()}", eventsource=target.event_source,
                                       event=target.event_name)
            except errors.KneventsError as exc:
                self._console.emit("warning", f"hook not deleted: {exc}", eventsource=target.event_source,
                                   event=target.event_name)
