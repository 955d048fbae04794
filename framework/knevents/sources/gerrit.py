"""The ``gerrit`` event source: deliveries of Gerrit's ``webhooks`` plugin.

The plugin posts each stream event (``patchset-created``, ``change-merged``,
``comment-added`` …) as a JSON object whose ``type`` names it. As in Argo, the
event data is ``{"headers": <Go http.Header>, "body": <the event>,
"metadata"?: {...}}``.

* ``events``: Argo only passes the list to the hook it creates; knevents also
  applies it to each delivery (``body.type`` must be in it; others are
  answered 200 and dropped), so a hook edited by hand, or one shared by
  several event sources, does not flood the sensors.
* The body must be a JSON object (Argo answers 400 to anything it cannot
  marshal too).
* Gerrit's plugin sends no signature; protect the endpoint with
  ``webhook.authSecret`` (a bearer token) or the network.

Creating the project hooks (``projects``, ``hookName``, ``auth``,
``sslVerify``) is ``knevents hooks apply``'s job (:mod:`knevents.hooks`).
"""

from __future__ import annotations

from typing import Any

from knevents import web
from knevents.sources import base, hooked

__all__ = ["GerritSource", "create"]


class GerritSource(hooked.HookedSource):
    """One ``gerrit`` entry."""

    type_key = "gerrit"

    def receive(self, request: web.Request) -> base.PushResult:
        """Parse, filter by ``events``, and build one event."""
        body = self.json_object(request.body, "the gerrit event")
        if isinstance(body, base.PushResult):
            return body
        kind = str(body.get("type", ""))
        wanted = self.config.events
        if wanted and kind not in wanted:
            return self.ignore(f"gerrit event {kind!r} is not in events; dropped")
        text = request.body.decode("utf-8").strip()
        return self.emit(hooked.headers_body(request, text, self.metadata))


@base.register("gerrit")
def create(event_name: str, config: Any, ctx: base.SourceContext) -> base.Source:
    """Factory for the ``gerrit`` spec key."""
    return GerritSource(event_name, config, ctx)
