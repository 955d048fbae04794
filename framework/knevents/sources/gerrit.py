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

from collections.abc import Iterator

from knevents import web
from knevents.sources import base, hooked
from knevents.spec import models

__all__ = ["SOURCE", "GerritSource", "create"]


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


def create(event_name: str, config: models.GerritEventSource, ctx: base.SourceContext) -> base.Source:
    """Factory for the ``gerrit`` spec key."""
    return GerritSource(event_name, config, ctx)


def _rules(config: models.GerritEventSource, path: str) -> Iterator[tuple[str, str]]:
    if not config.hook_name:
        yield f"{path}.hookName", "a gerrit event source needs `hookName`"
    if not config.events:
        yield f"{path}.events", "list at least one Gerrit event (e.g. patchset-created)"
    if not config.projects:
        yield f"{path}.projects", "list at least one Gerrit project"
    if not config.gerrit_base_url:
        yield f"{path}.gerritBaseURL", "a gerrit event source needs `gerritBaseURL`"


SOURCE = hooked.declare(
    "gerrit",
    models.GerritEventSource,
    create,
    '{"headers": {<Canonical-Name>: [values]}, "body": <the Gerrit event>, "metadata"?: {...}}',
    _rules,
    wraps_request=True,
    manages_hooks=True,
)
