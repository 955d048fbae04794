"""Per-event-loop pools of trigger clients that are closed with their loop, even when nobody calls ``aclose``.

A client pool (httpx clients, HTTP/1.1 keep-alive pools, kafka producers)
belongs to the loop it was opened on: its sockets and tasks cannot be used from
another. The runner and the functions close them on shutdown through
``triggers.aclose``, but a loop may end without it: ``asyncio.run`` in a worker
thread (``knevents.testing`` under a running loop), a test's loop, a function's
server loop ended by SIGTERM. Left alone, such a pool kept its sockets (and its
loop) for the life of the process, or until the garbage collector warned about
them in some unrelated place.

The design, and why it holds for asyncio and uvloop alike: the first use of a
pool on a loop starts a small *guard* async generator on that loop and keeps it.
asyncio and uvloop both note every async generator first iterated on them
(``sys.set_asyncgen_hooks``, set while the loop runs) and ``loop.shutdown_asyncgens()``
closes them while the loop still runs; ``asyncio.run``, ``asyncio.Runner``
(``httpserver.serve_forever``), uvicorn and pytest-asyncio all call it before
``loop.close()``. The guard's ``finally`` is therefore the one hook both loops
run on the loop just before it closes, and it closes the pool there, awaiting
the clients' own ``aclose``/``stop``. A loop closed without that call (a
hand-written ``loop.close()``) cannot run anything any more: its pool is dropped
when the next loop opens a pool here (or on the next ``aclose``), which releases
the clients to the garbage collector (uvloop has closed their sockets already,
asyncio closes them when the transports are collected); it is not kept for the
life of the process. Keys are the loop objects, not ``id(loop)``: an id is
reused once a loop is collected, and a client of a dead loop must never be
handed to a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

__all__ = ["CLOSE_WAIT", "LoopPools"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

CLOSE_WAIT = 5.0
"""Seconds one client gets to close politely (a producer of a lost broker must not hold a shutdown)."""


class _Entry(Generic[K, V]):
    """One loop's pool and the guard generator that closes it."""

    def __init__(self) -> None:
        self.pool: dict[K, V] = {}
        self.guard: AsyncGenerator[None, None] | None = None
        self.dropped = False
        """Set before the guard is finished by hand (``aclose``, a closed loop): its ``finally`` then does nothing."""


class LoopPools(Generic[K, V]):
    """Clients by key, one dict per event loop; ``close`` closes one client."""

    def __init__(self, close: Callable[[V], Awaitable[object]]) -> None:
        self._close = close
        self._loops: dict[asyncio.AbstractEventLoop, _Entry[K, V]] = {}
        self._retiring: set[asyncio.Future[None]] = set()

    def here(self) -> dict[K, V]:
        """The running loop's pool (callers add to it and read from it); armed to close with the loop."""
        loop = asyncio.get_running_loop()
        entry = self._loops.get(loop)
        if entry is None:  # first use on this loop: cheap checks stay off the path of every request
            self._drop_closed_loops()
            entry = self._loops[loop] = _Entry()
            entry.guard = self._guard(loop, entry)
            _first_step(entry.guard)
        return entry.pool

    def retire(self, client: V) -> None:
        """Close ``client``, already taken out of the running loop's pool, in the background."""
        task = asyncio.ensure_future(self._close_all({None: client}))
        self._retiring.add(task)  # a task nobody references may be collected before it ran
        task.add_done_callback(self._retiring.discard)

    def __len__(self) -> int:
        """How many loops hold a pool here (for tests and diagnostics)."""
        return len(self._loops)

    async def aclose(self) -> None:
        """Close the running loop's pool now (shutdown, or a failure that calls for fresh clients)."""
        self._drop_closed_loops()
        entry = self._loops.pop(asyncio.get_running_loop(), None)
        if entry is not None:
            _stop_guard(entry)
            await self._close_all(entry.pool)

    async def _guard(self, loop: asyncio.AbstractEventLoop, entry: _Entry[K, V]) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:  # loop.shutdown_asyncgens(): the loop still runs, the pool can close properly
            if not entry.dropped and self._loops.get(loop) is entry:
                del self._loops[loop]
                await self._close_all(entry.pool)

    async def _close_all(self, pool: dict[Any, V]) -> None:
        clients = list(pool.values())
        pool.clear()
        for client in clients:
            with contextlib.suppress(Exception):  # a client of a lost server may fail to close; dropped anyway
                await asyncio.wait_for(self._close(client), CLOSE_WAIT)

    def _drop_closed_loops(self) -> None:
        for loop in [loop for loop in list(self._loops) if loop.is_closed()]:  # list(): other threads' loops
            entry = self._loops.pop(loop, None)  # another thread may have dropped it first
            if entry is not None:
                _stop_guard(entry)


def _first_step(guard: AsyncGenerator[None, None]) -> None:
    """Run ``guard`` to its ``yield`` without awaiting: the running loop's hooks note it as its generator."""
    with contextlib.suppress(StopIteration):
        guard.asend(None).send(None)


def _stop_guard(entry: _Entry[K, V]) -> None:
    """Finish ``entry``'s guard here and now, so that no finalizer schedules it on a loop that may be closed."""
    entry.dropped = True
    guard, entry.guard = entry.guard, None
    if guard is not None:
        with contextlib.suppress(StopIteration, RuntimeError):
            guard.aclose().send(None)
