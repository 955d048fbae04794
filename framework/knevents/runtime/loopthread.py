"""One event loop on a daemon thread, for synchronous servers (gunicorn threads) to hand coroutines to.

The WSGI targets of both functions (``functions/*/main.py``) and the event-source
function's pull loops run on it. It is created lazily and re-created after
``fork``: gunicorn imports the app in the master, then forks workers, and a
thread does not survive the fork. At interpreter exit (a gunicorn worker's exit
runs ``atexit``) the loop ends the way ``asyncio.run`` ends one: what is left is
cancelled and the async generators are closed, so the trigger client pools of
the loop close politely (:mod:`knevents.triggers.pools`) and the pull sources
get their cancellation.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["LoopThread"]

T = TypeVar("T")


class LoopThread:
    """One event loop on a daemon thread, started on first use."""

    def __init__(self, name: str = "knevents-loop") -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()
        self._at_exit = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """This process's loop, started on first use."""
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=_run_until_stopped, args=(loop,), name=self._name,
                                                daemon=True)
                self._thread.start()
                if not self._at_exit:  # once per instance; in a forked worker it closes the worker's loop
                    self._at_exit = True
                    atexit.register(self.close)
                self._loop, self._pid = loop, os.getpid()
            return self._loop

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop thread and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def submit(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Start ``coro`` on the loop thread without waiting."""
        asyncio.run_coroutine_threadsafe(coro, self.loop)

    def close(self, timeout: float = 10.0) -> None:
        """Stop this process's loop and close it as ``asyncio.run`` does (no-op when none was started here)."""
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
            if loop is None or thread is None or self._pid != os.getpid() or loop.is_closed():
                return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)


def _run_until_stopped(loop: asyncio.AbstractEventLoop) -> None:
    """The loop thread: serve until stopped, then end as ``asyncio.run`` does: cancel what is left, close the
    async generators, close the loop."""
    try:
        loop.run_forever()
    finally:
        try:
            left = asyncio.all_tasks(loop)
            for task in left:
                task.cancel()
            if left:
                loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
