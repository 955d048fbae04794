"""The ``slack`` trigger: post a message through the Slack Web API, as Argo's Slack trigger does.

Argo (v1.9) posts with argoproj/notifications-engine: one ``chat.postMessage``
to ``channel`` (a leading ``#`` dropped) with ``text`` = ``message``,
``attachments`` and ``blocks`` parsed from their JSON strings, ``as_user``,
and the ``sender``'s ``username`` / ``icon`` (``:emoji:`` or an URL). With
``thread.messageAggregationKey`` the first message of a key starts a thread
and later ones reply in it (``thread_ts``), also shown in the channel when
``broadcastMessageToChannel`` is set. knevents does the same with
``slack_sdk``; the thread of a key is remembered per process, as in Argo
(a new replica starts a new thread).

Rate limits: ``ratelimited`` answers (429 + ``Retry-After``) are waited out
and retried by ``slack_sdk``'s retry handler, up to three times; after that the
attempt is retryable, so ``retryStrategy`` or the broker redelivery takes over.
``invalid_auth``, ``channel_not_found`` and the like are permanent. The token
is read from its Secret and never appears in an error. ``KNEVENTS_SLACK_API_URL``
points the client elsewhere (tests use a local Slack API fixture).

Difference from Argo: Argo v1.9 posts the template *before* its
``slack.parameters`` are applied (it reads the unparameterised template);
knevents posts the parameterised one, as Argo's documentation describes.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from knevents import errors
from knevents.spec import models, sensor_rules
from knevents.triggers import base

if TYPE_CHECKING:
    from knevents.sensors import engine

__all__ = ["TRIGGER", "SlackTrigger", "message_arguments"]

API_URL_ENV = "KNEVENTS_SLACK_API_URL"
_DEFAULT_API_URL = "https://slack.com/api/"
_EMOJI = re.compile(r"^:.+:$")
_URL = re.compile(r"^https?://\S+$")
_PERMANENT_STATUSES = frozenset({400, 401, 403, 404})


def _json_list(text: str | None, what: str) -> list[Any] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise errors.TriggerError(f"slack.{what} is not JSON: {exc}") from None
    if not isinstance(value, list):
        raise errors.TriggerError(f"slack.{what} must be a JSON array")
    return value or None


def message_arguments(spec: Any) -> dict[str, Any]:
    """The ``chat.postMessage`` arguments for a slack template (no thread, no token)."""
    channel = (spec.channel or "").removeprefix("#")
    if not channel:
        raise errors.TriggerError("no slack channel provided")
    message = spec.message or ""
    attachments = _json_list(spec.attachments, "attachments")
    blocks = _json_list(spec.blocks, "blocks")
    if not message and not spec.attachments and not spec.blocks:
        raise errors.TriggerError("no text to post: at least one of message/attachments/blocks should be provided")
    arguments: dict[str, Any] = {"channel": channel, "text": message, "as_user": True}
    if attachments:
        arguments["attachments"] = attachments
    if blocks:
        arguments["blocks"] = blocks
    sender = spec.sender
    if sender is not None and sender.username:
        arguments["username"] = sender.username
    icon = sender.icon if sender is not None else None
    if icon and _EMOJI.match(icon):
        arguments["icon_emoji"] = icon
    elif icon and _URL.match(icon):
        arguments["icon_url"] = icon
    return arguments


def _client(token: str) -> Any:
    from slack_sdk import WebClient
    from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

    client = WebClient(token=token, base_url=os.environ.get(API_URL_ENV) or _DEFAULT_API_URL, timeout=30)
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=3))
    return client


def _post(token: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """One chat.postMessage (with slack_sdk's own rate-limit waits); Slack's answer as a dict."""
    from slack_sdk.errors import SlackApiError, SlackClientError

    try:
        # api_call, not chat_postMessage: the latter warns when text is empty, which Argo allows.
        response = _client(token).api_call("chat.postMessage", json=arguments)
    except SlackApiError as exc:
        status = int(exc.response.status_code)
        code = str(exc.response.get("error", "") or f"HTTP {status}")
        message = base.scrub(f"Slack answered {status} {code}", [token])
        if status == 429 or status >= 500:
            retry_after = exc.response.headers.get("Retry-After") or exc.response.headers.get("retry-after")
            delay = float(retry_after) if retry_after and str(retry_after).isdigit() else None
            raise errors.TriggerRetryableError(message, delay=delay) from None
        raise errors.TriggerError(message) from None
    except SlackClientError as exc:
        raise errors.TriggerError(base.scrub(f"Slack client error: {exc}", [token])) from None
    except OSError as exc:  # urllib's URLError, timeouts, refused connections
        raise errors.TriggerRetryableError(f"cannot reach the Slack API: {exc.__class__.__name__}") from None
    return dict(response.data) if isinstance(response.data, dict) else {}


class SlackTrigger:
    """Posts ``template.slack`` to its channel; threads messages by ``thread.messageAggregationKey``."""

    def __init__(self) -> None:
        self._threads: dict[tuple[str, str, str], str] = {}
        self._lock = threading.Lock()

    async def execute(self, resolved: engine.Resolved, ctx: base.TriggerContext) -> base.TriggerResult:
        spec = resolved.spec.template.slack
        if spec is None:
            raise errors.TriggerError("the trigger has no template.slack section")
        arguments = message_arguments(spec)
        channel = arguments["channel"]
        if ctx.dry_run:
            return base.TriggerResult(resolved.trigger, resolved.kind, f"dry run: would post to Slack #{channel}")
        if spec.slack_token is None:
            raise errors.TriggerError("slack.slackToken is required")
        token = ctx.secrets.secret(spec.slack_token)
        thread = spec.thread
        key = (thread.message_aggregation_key or "") if thread is not None else ""
        # The thread map is per sensor and channel, as notifications-engine keys it per recipient.
        thread_key = (ctx.sensor_name, channel, key)
        with self._lock:
            ts = self._threads.get(thread_key) if key else None
        if ts:
            arguments["thread_ts"] = ts
            if thread is not None and thread.broadcast_message_to_channel:
                arguments["reply_broadcast"] = True
        answer = await asyncio.to_thread(_post, token, arguments)
        if key and not ts and answer.get("ts"):
            with self._lock:
                self._threads.setdefault(thread_key, str(answer["ts"]))
        where = f"#{channel}" + (f" (thread {key})" if key else "")
        return base.TriggerResult(resolved.trigger, resolved.kind, f"posted to Slack {where}", status=200)


def _check(slack: models.SlackTrigger, ctx: base.CheckContext) -> Iterator[tuple[str, str]]:
    yield from sensor_rules.check_parameters(slack.parameters, f"{ctx.path}.parameters", ctx.dependencies)


TRIGGER = base.TriggerKind(
    key="slack",
    model=models.SlackTrigger,
    executor=SlackTrigger(),
    summary="posts a message to a Slack channel (chat.postMessage), threaded by an aggregation key",
    check=_check,
)
