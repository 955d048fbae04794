"""The runner's nats-server runs under SCHED_BATCH; other servers, and the thread that started it, do not."""

from __future__ import annotations

import os
import threading

from knevents.local import natsd


def _policy_of(server: natsd.NatsServer) -> int:
    assert server._proc is not None
    return os.sched_getscheduler(server._proc.pid)


def test_batch_server_runs_under_sched_batch_and_the_starting_thread_is_restored() -> None:
    seen: dict[str, int] = {}

    def start() -> None:  # the runner starts it from a worker thread (asyncio.to_thread)
        before = os.sched_getscheduler(0)
        with natsd.NatsServer(batch=True) as batch, natsd.NatsServer() as plain:
            seen.update(batch=_policy_of(batch), plain=_policy_of(plain), before=before,
                        after=os.sched_getscheduler(0))

    thread = threading.Thread(target=start)
    thread.start()
    thread.join(60)
    assert seen == {"batch": os.SCHED_BATCH, "plain": os.SCHED_OTHER,
                    "before": os.SCHED_OTHER, "after": os.SCHED_OTHER}
