"""Argo Events' admission rules for an EventSource and an EventBus, reporting every violation.

Follows argo-events' ``pkg/reconciler/eventsource/validate.go`` (event names
unique across all types) and the per-type ``validate.go`` of the types knevents
runs, plus the knevents extensions (S3 ``sns``/``sqs`` delivery, Pub/Sub
``push``). Types knevents does not run are only reported as not supported
(:mod:`knevents.spec.support`), not checked deeper.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pydantic

from knevents.spec import checks, models, support

__all__ = ["check_event_bus", "check_event_source", "check_event_source_parts"]

Found = Iterator[tuple[str, str]]


def check_event_source(source: models.EventSource) -> Found:
    """Every admission problem of ``source``."""
    seen: dict[str, str] = {}
    any_event = False
    for key, entries in support.source_types(source.spec):
        for name, config in entries.items():
            any_event = True
            path = f"spec.{key}.{name}"
            if name in seen:
                yield path, f"event name `{name}` is used more than once (also under `{seen[name]}`)"
            seen.setdefault(name, key)
            rule = _RULES.get(key)
            if rule is not None:
                yield from rule(config, path)
    if not any_event:
        yield "spec", "no event source: set at least one type (webhook, calendar, sqs …) with an event"
    yield from _route_conflicts(source.spec)


def _routes(spec: models.EventSourceSpec) -> Iterator[tuple[str, str, str, str | None]]:
    """``(path, port, endpoint, method)`` of every explicitly configured HTTP endpoint."""
    for key, entries in support.source_types(spec):
        for name, config in entries.items():
            path = f"spec.{key}.{name}"
            if key == "webhook":
                yield path, config.port or "", config.endpoint or "", config.method
            elif (key in _HOOKED and config.webhook is not None) or (key == "minio" and getattr(config, "webhook", None) is not None):
                ctx = config.webhook
                yield f"{path}.webhook", ctx.port or "", ctx.endpoint or "", ctx.method
            elif key in ("s3", "minio") and config.sns is not None and config.sns.endpoint:
                yield f"{path}.sns", config.sns.port or "", config.sns.endpoint, config.sns.method
            elif key == "pubSub" and config.push is not None and config.push.endpoint:
                yield f"{path}.push", config.push.port or "", config.push.endpoint, config.push.method


_HOOKED = frozenset({"github", "gitlab", "sns", "slack", "stripe", "bitbucket", "bitbucketserver", "gerrit",
                     "storageGrid"})
"""Types whose HTTP side is a ``webhook`` (WebhookContext) field."""


def _route_conflicts(spec: models.EventSourceSpec) -> Found:
    """Two events may not listen on the same port, endpoint and method: a request could not be routed."""
    seen: dict[tuple[str, str, str], str] = {}
    for path, port, endpoint, method in _routes(spec):
        if not endpoint:
            continue
        key = (port, endpoint, (method or "*").upper())
        if key in seen:
            where = f"port {port}" if port else "the default port"
            yield f"{path}.endpoint", f"endpoint `{endpoint}` on {where} is also used by {seen[key]}"
        else:
            seen[key] = path


def check_webhook_context(ctx: models.WebhookContext | None, path: str, *, required: bool = True) -> Found:
    """endpoint starts with '/', port is a number, method is an HTTP method."""
    if ctx is None:
        if required:
            yield path, "a `webhook` (endpoint, port, method) is needed"
        return
    if not ctx.endpoint:
        yield f"{path}.endpoint", "an endpoint is needed"
    elif not ctx.endpoint.startswith("/"):
        yield f"{path}.endpoint", f"endpoint `{ctx.endpoint}` must start with `/`"
    if not ctx.port:
        yield f"{path}.port", "a port is needed"
    elif (msg := checks.port(ctx.port)) is not None:
        yield f"{path}.port", msg
    yield from _method(ctx.method, f"{path}.method")


def _method(method: str | None, path: str) -> Found:
    if method and method.upper() not in checks.HTTP_METHODS:
        yield path, f"`{method}` is not an HTTP method"


def _webhook(config: models.WebhookEventSource, path: str) -> Found:
    if not config.endpoint:
        yield f"{path}.endpoint", "an endpoint is needed"
    elif not config.endpoint.startswith("/"):
        yield f"{path}.endpoint", f"endpoint `{config.endpoint}` must start with `/`"
    if not config.port:
        yield f"{path}.port", "a port is needed"
    elif (msg := checks.port(config.port)) is not None:
        yield f"{path}.port", msg
    yield from _method(config.method, f"{path}.method")


def _github(config: models.GithubEventSource, path: str) -> Found:
    owned = bool(config.repositories or (config.owner and config.repository))
    if not owned and config.organizations is None:
        yield path, "a github event source needs `repositories` or `organizations`"
    if owned and config.organizations is not None:
        yield path, "set either `repositories` or `organizations`, not both"
    creates_hooks = config.api_token is not None or config.github_app is not None
    if creates_hooks and not config.events:
        yield f"{path}.events", "list the GitHub events the webhook is created for (or `*`)"
    if config.content_type and config.content_type not in ("json", "form"):
        yield f"{path}.contentType", f"contentType `{config.content_type}` is not supported (json or form)"
    if bool(config.github_base_url) != bool(config.github_upload_url):
        yield path, "set both `githubBaseURL` and `githubUploadURL` (GitHub Enterprise), or neither"
    yield from check_webhook_context(config.webhook, f"{path}.webhook")


def _gitlab(config: models.GitlabEventSource, path: str) -> Found:
    if not config.events:
        yield f"{path}.events", "list at least one GitLab event"
    if not config.gitlab_base_url:
        yield f"{path}.gitlabBaseURL", "a gitlab event source needs `gitlabBaseURL`"
    if config.access_token is None:
        yield f"{path}.accessToken", "a gitlab event source needs `accessToken` (a secret key selector)"
    yield from check_webhook_context(config.webhook, f"{path}.webhook")


def _calendar(config: models.CalendarEventSource, path: str) -> Found:
    if not config.schedule and not config.interval:
        yield path, "a calendar needs either `schedule` or `interval`"
    if config.schedule and (msg := checks.cron(config.schedule)) is not None:
        yield f"{path}.schedule", msg
    if config.interval and (msg := checks.duration(config.interval)) is not None:
        yield f"{path}.interval", msg
    if config.timezone and (msg := checks.timezone(config.timezone)) is not None:
        yield f"{path}.timezone", msg


def _sns(config: models.SNSEventSource, path: str) -> Found:
    if not config.topic_arn:
        yield f"{path}.topicArn", "an sns event source needs `topicArn`"
    yield from check_webhook_context(config.webhook, f"{path}.webhook")


def _sqs(config: models.SQSEventSource, path: str) -> Found:
    if not config.queue:
        yield f"{path}.queue", "an sqs event source needs `queue`"
    if not config.region:
        yield f"{path}.region", "an sqs event source needs `region`"
    if config.wait_time_seconds is not None and not 0 <= config.wait_time_seconds <= 20:
        yield f"{path}.waitTimeSeconds", "waitTimeSeconds must be between 0 and 20 (an SQS limit)"


def _s3(config: models.S3EventSource, path: str) -> Found:
    if config.bucket is None or not config.bucket.name:
        yield f"{path}.bucket.name", "the bucket name is needed"
    if config.sns is not None and config.sqs is not None:
        yield path, "set either `sns` or `sqs` delivery, not both"
    if config.sns is not None:
        sns = config.sns
        if sns.endpoint and not sns.endpoint.startswith("/"):
            yield f"{path}.sns.endpoint", f"endpoint `{sns.endpoint}` must start with `/`"
        if sns.port and (msg := checks.port(sns.port)) is not None:
            yield f"{path}.sns.port", msg
        yield from _method(sns.method, f"{path}.sns.method")
    if config.sqs is not None:
        if not config.sqs.queue:
            yield f"{path}.sqs.queue", "sqs delivery needs the `queue` the bucket notifies"
        wait = config.sqs.wait_time_seconds
        if wait is not None and not 0 <= wait <= 20:
            yield f"{path}.sqs.waitTimeSeconds", "waitTimeSeconds must be between 0 and 20 (an SQS limit)"


def _slack(config: models.SlackEventSource, path: str) -> Found:
    yield from check_webhook_context(config.webhook, f"{path}.webhook")


def _stripe(config: models.StripeEventSource, path: str) -> Found:
    if config.create_webhook and config.api_key is None:
        yield f"{path}.apiKey", "createWebhook needs `apiKey` (a secret key selector)"
    if config.create_webhook and (config.webhook is None or not config.webhook.url):
        yield f"{path}.webhook.url", "createWebhook needs `webhook.url`, the public URL Stripe posts to"
    yield from check_webhook_context(config.webhook, f"{path}.webhook")


def _bitbucket(config: models.BitbucketEventSource, path: str) -> Found:
    repos = config.repositories or []
    if not repos and not (config.owner and config.repository_slug):
        yield f"{path}.repositories", "a bitbucket event source needs `repositories` (owner, repositorySlug)"
    for index, repo in enumerate(repos):
        if not repo.owner or not repo.repository_slug:
            yield f"{path}.repositories[{index}]", "each repository needs `owner` and `repositorySlug`"
    if not config.events:
        yield f"{path}.events", "list at least one Bitbucket event key (e.g. repo:push)"
    auth = config.auth
    if auth is not None and auth.basic is None and auth.oauth_token is None:
        yield f"{path}.auth", "set `basic` (username, password) or `oauthToken`"
    yield from check_webhook_context(config.webhook, f"{path}.webhook")


def _bitbucketserver(config: models.BitbucketServerEventSource, path: str) -> Found:
    repos = config.repositories or []
    if not repos and not config.projects and not (config.project_key and config.repository_slug):
        yield f"{path}.repositories", "a bitbucketserver event source needs `repositories` or `projects`"
    for index, repo in enumerate(repos):
        if not repo.project_key or not repo.repository_slug:
            yield f"{path}.repositories[{index}]", "each repository needs `projectKey` and `repositorySlug`"
    if not config.events:
        yield f"{path}.events", "list at least one Bitbucket Server event key (e.g. repo:refs_changed)"
    if config.access_token is not None and not config.bitbucketserver_base_url:
        yield f"{path}.bitbucketserverBaseURL", "the REST base URL is needed with `accessToken`"
    if config.check_interval and (msg := checks.duration(config.check_interval)) is not None:
        yield f"{path}.checkInterval", msg
    yield from check_webhook_context(config.webhook, f"{path}.webhook")


def _gerrit(config: models.GerritEventSource, path: str) -> Found:
    if not config.hook_name:
        yield f"{path}.hookName", "a gerrit event source needs `hookName`"
    if not config.events:
        yield f"{path}.events", "list at least one Gerrit event (e.g. patchset-created)"
    if not config.projects:
        yield f"{path}.projects", "list at least one Gerrit project"
    if not config.gerrit_base_url:
        yield f"{path}.gerritBaseURL", "a gerrit event source needs `gerritBaseURL`"
    yield from check_webhook_context(config.webhook, f"{path}.webhook")


def _storage_grid(config: models.StorageGridEventSource, path: str) -> Found:
    if not config.events:
        yield f"{path}.events", "list at least one bucket event (e.g. s3:ObjectCreated:*)"
    yield from check_webhook_context(config.webhook, f"{path}.webhook")


def _minio(config: models.S3EventSource, path: str) -> Found:
    yield from _s3(config, path)
    hook = getattr(config, "webhook", None)
    if hook is not None:
        if config.sns is not None or config.sqs is not None:
            yield path, "set one delivery: `webhook`, `sns` or `sqs`"
        yield from check_webhook_context(hook, f"{path}.webhook")
    elif config.sns is None and config.sqs is None:
        if not config.endpoint:
            yield f"{path}.endpoint", "MinIO's `endpoint` (host:port) is needed to listen for notifications"
        if config.access_key is None or config.secret_key is None:
            yield path, "`accessKey` and `secretKey` are needed to listen for notifications"


def _pubsub(config: models.PubSubEventSource, path: str) -> Found:
    if not config.topic and not config.subscription_id:
        yield path, "a pubSub event source needs `topic` or `subscriptionID`"
    if config.topic_project_id and not config.topic:
        yield f"{path}.topicProjectID", "topicProjectID is only meaningful with `topic`"
    push = config.push
    if push is not None:
        if push.endpoint and not push.endpoint.startswith("/"):
            yield f"{path}.push.endpoint", f"endpoint `{push.endpoint}` must start with `/`"
        if push.port and (msg := checks.port(push.port)) is not None:
            yield f"{path}.push.port", msg
        yield from _method(push.method, f"{path}.push.method")


def _nats(config: models.NATSEventsSource, path: str) -> Found:
    if not config.url:
        yield f"{path}.url", "a nats event source needs `url`"
    if not config.subject:
        yield f"{path}.subject", "a nats event source needs `subject`"


def _generic(config: models.GenericEventSource, path: str) -> Found:
    if not config.url:
        yield f"{path}.url", "a generic event source needs `url` (host:port of the gRPC server)"


def _amqp(config: models.AMQPEventSource, path: str) -> Found:
    if bool(config.url) == (config.url_secret is not None):
        yield path, "an amqp event source needs exactly one of `url` and `urlSecret`"
    if not config.routing_key:
        yield f"{path}.routingKey", "an amqp event source needs `routingKey`"
    if not config.exchange_type:
        yield f"{path}.exchangeType", "an amqp event source needs `exchangeType`"


def _watch_path(watch: models.WatchPathConfig | None, path: str) -> Found:
    """Argo's WatchPathConfig.Validate."""
    if watch is None or not watch.directory:
        yield f"{path}.directory", "directory is required"
        return
    if not watch.directory.startswith("/"):
        yield f"{path}.directory", "directory must be an absolute file path"
    if not watch.path and not watch.path_regexp:
        yield path, "either path or pathRegexp must be specified"
    if watch.path and watch.path_regexp:
        yield path, "path and pathRegexp cannot be specified together"
    if watch.path and watch.path.startswith("/"):
        yield f"{path}.path", "path must be a relative file path"
    if watch.path_regexp:
        try:
            re.compile(watch.path_regexp)
        except re.error as exc:
            yield f"{path}.pathRegexp", f"invalid regular expression: {exc}"


def _file(config: models.FileEventSource, path: str) -> Found:
    if not config.event_type:
        yield f"{path}.eventType", "type must be specified (CREATE, WRITE, REMOVE, RENAME or CHMOD)"
    elif config.event_type.upper() not in ("CREATE", "WRITE", "REMOVE", "RENAME", "CHMOD"):
        yield f"{path}.eventType", f"`{config.event_type}` is not one of CREATE, WRITE, REMOVE, RENAME, CHMOD"
    yield from _watch_path(config.watch_path_config, f"{path}.watchPathConfig")


def _mqtt(config: models.MQTTEventSource, path: str) -> Found:
    for name, value in (("url", config.url), ("topic", config.topic), ("clientId", config.client_id)):
        if not value:
            yield f"{path}.{name}", f"an mqtt event source needs `{name}`"


def _resource(config: models.ResourceEventSource, path: str) -> Found:
    if not config.version:
        yield f"{path}.version", "a resource event source needs `version`"
    if not config.resource:
        yield f"{path}.resource", "a resource event source needs `resource` (the plural, e.g. `workflows`)"
    if not config.event_types:
        yield f"{path}.eventTypes", "a resource event source needs `eventTypes` (ADD, UPDATE, DELETE)"
    for index, kind in enumerate(config.event_types or []):
        if kind not in ("ADD", "UPDATE", "DELETE"):
            yield f"{path}.eventTypes[{index}]", f"unknown event type `{kind}` (ADD, UPDATE or DELETE)"


def _azure_queue(config: models.AzureQueueStorageEventSource, path: str) -> Found:
    if config.connection_string is None and not config.storage_account_name:
        yield path, "must specify connection string or storageAccountName"
    if not config.queue_name:
        yield f"{path}.queueName", "must specify queue name"


_RULES: dict[str, Callable[[Any, str], Found]] = {
    "webhook": _webhook,
    "github": _github,
    "gitlab": _gitlab,
    "calendar": _calendar,
    "sns": _sns,
    "sqs": _sqs,
    "s3": _s3,
    "minio": _minio,
    "pubSub": _pubsub,
    "nats": _nats,
    "generic": _generic,
    "slack": _slack,
    "stripe": _stripe,
    "bitbucket": _bitbucket,
    "bitbucketserver": _bitbucketserver,
    "gerrit": _gerrit,
    "storageGrid": _storage_grid,
    "amqp": _amqp,
    "file": _file,
    "mqtt": _mqtt,
    "resource": _resource,
    "azureQueueStorage": _azure_queue,
}


def check_event_bus(bus: models.EventBus) -> Found:
    """An EventBus sets exactly one bus type."""
    spec = bus.spec
    kinds = [k for k, v in (("nats", spec.nats), ("jetstream", spec.jetstream), ("kafka", spec.kafka)) if v]
    if spec.jetstream_exotic is not None:
        kinds.append("jetstreamExotic")
    if not kinds:
        yield "spec", "an EventBus needs a bus type (jetstream, nats or kafka)"
    elif len(kinds) > 1:
        yield "spec", f"an EventBus sets exactly one bus type, found {', '.join(kinds)}"


_ENTRY_MODELS: dict[str, str] = {
    "webhook": "WebhookEventSource",
    "github": "GithubEventSource",
    "gitlab": "GitlabEventSource",
    "calendar": "CalendarEventSource",
    "sns": "SNSEventSource",
    "sqs": "SQSEventSource",
    "s3": "S3EventSource",
    "minio": "S3EventSource",
    "pubSub": "PubSubEventSource",
    "nats": "NATSEventsSource",
    "slack": "SlackEventSource",
    "stripe": "StripeEventSource",
    "bitbucket": "BitbucketEventSource",
    "bitbucketserver": "BitbucketServerEventSource",
    "gerrit": "GerritEventSource",
    "storageGrid": "StorageGridEventSource",
    "amqp": "AMQPEventSource",
    "mqtt": "MQTTEventSource",
}
"""Spec key -> model class name (looked up on use: the models module builds classes lazily)."""


def check_event_source_parts(obj: Any) -> Found:
    """The rules of the event entries that parse, when the whole EventSource does not."""
    spec = obj.get("spec") if isinstance(obj, dict) else None
    if not isinstance(spec, dict):
        return
    for key, class_name in _ENTRY_MODELS.items():
        cls: type[pydantic.BaseModel] = getattr(models, class_name)
        entries = spec.get(key)
        if not isinstance(entries, dict):
            continue
        for name, raw in entries.items():
            try:
                config = cls.model_validate(raw, by_alias=True, by_name=False)
            except pydantic.ValidationError:
                continue
            yield from _RULES[key](config, f"spec.{key}.{name}")
