"""The web UI of ``knevents run``: the event flow, live events and their story, sensor state, firings, replay.

:func:`serve` wires a :class:`hub.Hub` (what the bus says) to a
:class:`app.UiApp` (the page and its API) on a loopback port. The page's
assets ship in the package (``static/``): plain JavaScript and the vendored
dagre layout library, so nothing needs Node to install or run knevents.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from knevents import errors
from knevents.local import httpserve
from knevents.ui import app as app_mod
from knevents.ui import cluster
from knevents.ui import hub as hub_mod

__all__ = ["DEFAULT_PORT", "UiServer", "is_loopback", "serve"]

DEFAULT_PORT = 12100
"""Port of ``knevents run``'s UI unless ``--ui-port`` says otherwise (next to the examples' 12000s)."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address or ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class UiServer:
    """A running UI: its URL, and how to stop it."""

    url: str
    hub: hub_mod.Hub
    app: app_mod.UiApp
    server: httpserve.PortServer

    async def stop(self) -> None:
        """Close live streams, stop following the bus, stop listening."""
        await self.hub.close()
        await self.server.stop()


async def serve(nc: Any, bus: str, manifests: Any, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                token: str | None = None, read_only: bool = False,
                workers: Callable[[], list[dict[str, Any]]] | None = None, receive_events: bool = False,
                broker_url: str | None = None) -> UiServer:
    """Start the UI for ``manifests`` on ``bus``; KneventsError when the port is taken or the bus unreadable.

    ``workers`` lists the processes serving the runner (``[{index, pid, alive}]``), for ``/api/workers``.
    ``receive_events`` and ``broker_url``: beside a Knative cluster (:mod:`knevents.ui.cluster`).
    """
    loopback = is_loopback(host)
    sock = httpserve.bind(host, port)
    hub = hub_mod.Hub(nc, bus, manifests, follow_bus=not receive_events)
    try:
        ui = app_mod.UiApp(hub, port=port, loopback=loopback, bearer=token, read_only=read_only, workers=workers,
                           receive_events=receive_events)
        if receive_events:
            await cluster.prepare(hub.js, bus)
        hub.resend = cluster.resender(broker_url, receive_events)
        await hub.start()
    except errors.KneventsError:
        sock.close()
        raise
    except Exception as exc:  # a NATS failure while subscribing: the runner goes on without its UI
        sock.close()
        raise errors.KneventsError(f"the UI cannot follow bus {bus!r}: {exc}") from exc
    server = httpserve.PortServer(sock, None, app=ui)
    await server.start()
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return UiServer(url=f"http://{shown}:{server.port}/", hub=hub, app=ui, server=server)

