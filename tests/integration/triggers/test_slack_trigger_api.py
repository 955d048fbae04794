"""The slack trigger against the Slack Web API stand-in (tests/fixtures/slack_api.py), from Argo's upstream sensor."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from knevents import errors, events, triggers, validation
from knevents.local.natsd import free_port
from knevents.secrets import env_name
from knevents.sensors import engine
from knevents.triggers import base, slack

from tests import upstream
from tests.fixtures.slack_api import TOKEN, SlackApi
from tests.integration.sources_more import local_run
from tests.unit.triggers import trigger_support as support

SECRETS = {env_name("SECRET", "slack-secret", "token"): TOKEN}


def _slack(**fields: Any) -> dict[str, Any]:
    return {"name": "notify", "slack": {"slackToken": {"name": "slack-secret", "key": "token"}, **fields}}


async def _fire(template: dict[str, Any], **kwargs: Any) -> base.TriggerResult:
    return await triggers.fire(support.resolved(template), support.context(secrets=SECRETS, **kwargs))


async def test_upstream_sensor_posts_the_webhook_body(slack_api: SlackApi) -> None:
    sensor = validation.parse_sensor(yaml.safe_load(upstream.example("sensors", "slack-trigger.yaml").read_text()))
    machine = engine.SensorEngine(sensor)
    event = events.new_event(source="webhook", subject="example", type="webhook", time=datetime.now(UTC),
                             data={"header": {}, "body": {"channel": "#builds", "message": "build 42 is green"}})
    [matched] = machine.match(event)
    resolved = machine.resolve(machine.triggers_for(matched.name)[0], {matched.name: matched.event})
    result = await triggers.fire(resolved, support.context(secrets=SECRETS))
    assert slack_api.posts == [{"channel": "builds", "text": "build 42 is green", "as_user": True}]
    assert result.detail == "posted to Slack #builds"


async def test_attachments_blocks_and_sender_are_sent_as_slack_expects(slack_api: SlackApi) -> None:
    attachments = '[{"title": "Attachment1!", "color": "#18be52"}]'
    blocks = '[{"type": "section", "text": {"type": "mrkdwn", "text": "*done*"}}]'
    await _fire(_slack(channel="general", attachments=attachments, blocks=blocks,
                       sender={"username": "argo-bot", "icon": ":robot_face:"}))
    [post] = slack_api.posts
    assert post == {"channel": "general", "text": "", "as_user": True, "username": "argo-bot",
                    "icon_emoji": ":robot_face:", "attachments": [{"title": "Attachment1!", "color": "#18be52"}],
                    "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*done*"}}]}


async def test_messages_with_one_aggregation_key_share_a_thread(slack_api: SlackApi) -> None:
    thread = {"messageAggregationKey": "release-1.9", "broadcastMessageToChannel": True}
    for text in ("started", "tests passed", "released"):
        await _fire(_slack(channel="general", message=text, thread=thread))
    await _fire(_slack(channel="general", message="other", thread={"messageAggregationKey": "release-2.0"}))
    first, second, third, other = slack_api.posts
    assert "thread_ts" not in first and "thread_ts" not in other
    assert second["thread_ts"] == third["thread_ts"] == "1700000000.000001"
    assert second["reply_broadcast"] is True


async def test_ratelimited_is_waited_out_with_retry_after(slack_api: SlackApi) -> None:
    slack_api.ratelimit_next = 2
    await _fire(_slack(channel="general", message="hi"))
    assert [status for status, _ in slack_api.rejected] == [429, 429]
    assert [p["text"] for p in slack_api.posts] == ["hi"]


async def test_persistent_ratelimit_is_retryable_with_the_delay(slack_api: SlackApi) -> None:
    slack_api.ratelimit_next = 10
    with pytest.raises(errors.TriggerRetryableError, match="429 ratelimited") as info:
        await _fire(_slack(channel="general", message="hi"))
    assert info.value.delay == 1.0
    assert slack_api.posts == []


@pytest.mark.parametrize(
    ("template", "secrets", "match"),
    [
        (_slack(channel="nope", message="hi"), SECRETS, "channel_not_found"),
        (_slack(channel="general", message="hi"), {env_name("SECRET", "slack-secret", "token"): "xoxb-wrong"},
         "invalid_auth"),
        (_slack(channel="", message="hi"), SECRETS, "no slack channel provided"),
        (_slack(channel="general"), SECRETS, "at least one of message/attachments/blocks"),
        (_slack(channel="general", blocks="{not json"), SECRETS, "slack.blocks is not JSON"),
    ],
)
async def test_bad_input_is_a_permanent_error_without_the_token(
    slack_api: SlackApi, caplog: pytest.LogCaptureFixture, template: dict[str, Any], secrets: dict[str, str],
    match: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(errors.TriggerError, match=match) as info:
        await triggers.fire(support.resolved(template), support.context(secrets=secrets))
    assert TOKEN not in str(info.value) and "xoxb-wrong" not in str(info.value)
    assert TOKEN not in caplog.text and "xoxb-wrong" not in caplog.text


async def test_unreachable_api_is_retryable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(slack.API_URL_ENV, "http://127.0.0.1:9/api/")
    with pytest.raises(errors.TriggerRetryableError, match="cannot reach the Slack API"):
        await _fire(_slack(channel="general", message="hi"))


async def test_dry_run_posts_nothing(slack_api: SlackApi) -> None:
    result = await _fire(_slack(channel="#general", message="hi"), dry_run=True)
    assert result.detail == "dry run: would post to Slack #general"
    assert slack_api.posts == []


def test_upstream_webhook_and_slack_sensor_under_knevents_run(slack_api: SlackApi, tmp_path: Path) -> None:
    port = free_port()
    sensor = upstream.example("sensors", "slack-trigger.yaml").read_text()
    env = {**SECRETS, slack.API_URL_ENV: slack_api.url}
    with local_run.running(tmp_path, local_run.upstream_webhook(port), sensor, env) as runner:
        local_run.post(runner, port, {"channel": "builds", "message": "deployed 1.4.2"}, tmp_path)
        runner.wait_for(lambda r: r.get("tag") == "fired", "the slack firing")
    assert slack_api.posts == [{"channel": "builds", "text": "deployed 1.4.2", "as_user": True}]
