"""The event-source function's background loop (WSGI target, pull loops) ends as ``asyncio.run`` ends a loop."""

from __future__ import annotations

import threading
import time

from knevents.runtime import source_app

from tests.fixtures.ports import connections_to

SPEC = """
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata: {{name: pulls}}
spec:
  nats:
    orders: {{url: "{url}", subject: orders}}
"""


def _wait(predicate: object, what: str) -> None:
    deadline = time.monotonic() + 60
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not in 60 s")
        time.sleep(0.05)


def test_closing_the_loop_thread_stops_the_pull_loops_and_closes_their_connections(nats_url: str) -> None:
    """At exit (``atexit``) the pull sources are cancelled and their NATS connection closed, where the loop used
    to be dropped with the process, running."""
    port = int(nats_url.rsplit(":", 1)[1])
    app = source_app.SourceApp.from_env({"KNEVENTS_SPEC": SPEC.format(url=nats_url), "K_SINK": "http://127.0.0.1:9/",
                                         "KNEVENTS_LOG_LEVEL": "warning"})
    assert app.problem is None
    assert app.start_pull()
    _wait(lambda: connections_to(port) == 1, "the nats source connected")
    app.background.close()
    assert connections_to(port) == 0
    assert not [t for t in threading.enumerate() if t.name == "knevents-source-loop"]
