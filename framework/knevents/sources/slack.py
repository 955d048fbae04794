"""The ``slack`` event source: Slack Events API callbacks, interactive payloads and slash commands.

Checked as Slack documents it ("Verifying requests from Slack") and shaped as
Argo's slack source does:

* ``signingSecret`` set: ``X-Slack-Signature`` must be ``v0=`` + the hex
  HMAC-SHA256 of ``v0:{X-Slack-Request-Timestamp}:{raw body}``, and the
  timestamp at most five minutes from now; otherwise **401** (Argo's answer)
  and a warning line without the secret.
* ``application/x-www-form-urlencoded`` with a ``payload`` field: an
  interactive payload; the event data is that JSON object.
* the same with a ``command`` field: a slash command; the data is the form as
  slack-go's ``SlashCommand`` marshals it (``token``, ``team_id``, ``command``,
  ``text``, ``response_url`` … all strings, ``is_enterprise_install`` a bool).
* anything else is an Events API body: ``url_verification`` is answered with
  the ``challenge`` as text (no event); ``event_callback`` becomes one event
  whose data is ``{"type": <inner type>, "Data": <inner event>}`` (slack-go's
  ``EventsAPIInnerEvent``, which has no JSON tag on ``Data``). With ``token``
  set, the body's ``token`` must equal it (401 otherwise), as slack-go's
  ``OptionVerifyToken`` requires.

Differences from Argo, on purpose: a form with neither field, or a body that
is not JSON, is **400** (Argo answers 500, which makes Slack retry), and the
inner event / interaction is carried as Slack sent it (Argo re-marshals it
through slack-go's structs, which adds empty fields and drops unknown ones).
The Events API ``event_id`` gives the event id, so Slack's retries dedupe.
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import parse_qs

from knevents import web
from knevents.sources import base, hooked, signing
from knevents.spec import models

__all__ = ["SLASH_FIELDS", "SOURCE", "SlackSource", "create"]

SLASH_FIELDS = (
    "token", "team_id", "team_domain", "enterprise_id", "enterprise_name", "channel_id", "channel_name",
    "user_id", "user_name", "command", "text", "response_url", "trigger_id", "api_app_id",
)
"""The string fields of slack-go's ``SlashCommand``, in its order (``is_enterprise_install`` is the bool)."""


def slash_command(form: dict[str, list[str]]) -> dict[str, Any]:
    """A slash command form as slack-go's ``SlashCommand`` marshals it."""
    out: dict[str, Any] = {name: form.get(name, [""])[0] for name in SLASH_FIELDS[:5]}
    out["is_enterprise_install"] = form.get("is_enterprise_install", ["false"])[0] == "true"
    out.update({name: form.get(name, [""])[0] for name in SLASH_FIELDS[5:]})
    return out


class SlackSource(hooked.HookedSource):
    """One ``slack`` entry."""

    type_key = "slack"

    def receive(self, request: web.Request) -> base.PushResult:
        """Verify, then route by body kind: interaction, slash command, or Events API."""
        if self.config.signing_secret is not None:
            secret = self.secret(self.config.signing_secret, "signingSecret")
            if isinstance(secret, base.PushResult):
                return secret
            wrong = signing.slack_v0(request.headers.get("x-slack-signature"),
                                     request.headers.get("x-slack-request-timestamp"), request.body, secret)
            if wrong is not None:
                return self.refuse(401, f"signature validation failed: {wrong}")
        if request.content_type == "application/x-www-form-urlencoded":
            return self._form(request)
        return self._events_api(request)

    def _form(self, request: web.Request) -> base.PushResult:
        try:
            form = parse_qs(request.body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            return self.refuse(400, "form body is not UTF-8")
        if form.get("payload", [""])[0]:
            interaction = self.json_object(form["payload"][0].encode(), "the interaction payload")
            if isinstance(interaction, base.PushResult):
                return interaction
            return self.emit(interaction, interaction.get("trigger_id") or None)
        if form.get("command", [""])[0]:
            command = slash_command(form)
            return self.emit(command, command["trigger_id"] or None)
        return self.refuse(400, "could not determine slack type from form parameters")

    def _token_ok(self, outer: dict[str, Any]) -> str | base.PushResult | None:
        if self.config.token is None:
            return None
        token = self.secret(self.config.token, "token")
        if isinstance(token, base.PushResult):
            return token
        given = str(outer.get("token", ""))
        if not hmac.compare_digest(given.encode("utf-8", "replace"), token.encode()):
            return "verification token mismatch"
        return None

    def _events_api(self, request: web.Request) -> base.PushResult:
        outer = self.json_object(request.body, "the Events API body")
        if isinstance(outer, base.PushResult):
            return outer
        wrong = self._token_ok(outer)
        if isinstance(wrong, base.PushResult):
            return wrong
        if wrong is not None:
            return self.refuse(401, wrong)
        kind = outer.get("type")
        if kind == "url_verification":
            challenge = str(outer.get("challenge", ""))
            return base.PushResult(response=web.Response(200, challenge.encode(), {"content-type": "text/plain; charset=utf-8"}))
        if kind != "event_callback":
            return self.ignore(f"Events API type {kind!r} carries no event")
        inner = outer.get("event")
        if not isinstance(inner, dict):
            return self.refuse(400, "event_callback without an `event` object")
        return self.emit({"type": inner.get("type", ""), "Data": inner}, outer.get("event_id") or None)


def create(event_name: str, config: models.SlackEventSource, ctx: base.SourceContext) -> base.Source:
    """Factory for the ``slack`` spec key."""
    return SlackSource(event_name, config, ctx)


SOURCE = hooked.declare(
    "slack",
    models.SlackEventSource,
    create,
    '<the Events API event, interactive payload or slash-command form as JSON>; Events API callbacks as {"type", "Data"}',
)
