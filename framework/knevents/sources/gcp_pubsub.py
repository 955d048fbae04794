"""The google-cloud-pubsub adapter for the pull mode of the ``pubSub`` source.

Only this module imports ``google.cloud.pubsub`` (lazily: ~0.5 s, not paid by
push sources), and it translates ``google.api_core`` exceptions into
knevents errors. It uses the synchronous unary ``pull``/``acknowledge`` calls
(run in a worker thread) rather than the streaming ``subscribe`` helper, so
that a message is acknowledged exactly when the bus has accepted its event,
and a stop is prompt and clean.

Subscription preparation follows Argo Events: an existing subscription is
used (and must belong to ``topic`` when one is given); a missing one is
created on ``topic``, creating the topic too when it is missing.
The ``PUBSUB_EMULATOR_HOST`` variable is honoured by the Google library.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from knevents import errors
from knevents.secrets import KeySelector, SecretResolver

__all__ = ["Client", "Pulled", "SubscriptionSpec", "translate"]

PULL_TIMEOUT = 10.0
"""Seconds one pull may block waiting for messages; also bounds how long a stop takes."""

_PERMANENT = (
    "NotFound",
    "PermissionDenied",
    "Unauthenticated",
    "InvalidArgument",
    "FailedPrecondition",
    "AlreadyExists",
    "DefaultCredentialsError",
    "RefreshError",
)


@dataclass(frozen=True)
class SubscriptionSpec:
    """Where to pull from, resolved from the spec."""

    project_id: str
    subscription_id: str
    topic: str | None = None
    topic_project_id: str | None = None
    credential: KeySelector | None = None

    @property
    def subscription_path(self) -> str:
        """``projects/<p>/subscriptions/<s>``."""
        return f"projects/{self.project_id}/subscriptions/{self.subscription_id}"

    @property
    def topic_path(self) -> str | None:
        """``projects/<p>/topics/<t>`` when a topic is given."""
        if not self.topic:
            return None
        return f"projects/{self.topic_project_id or self.project_id}/topics/{self.topic}"


@dataclass(frozen=True)
class Pulled:
    """One received message, reduced to plain values."""

    ack_id: str
    message_id: str
    data: bytes
    attributes: dict[str, str]
    publish_time: Any
    """A datetime (``DatetimeWithNanoseconds`` from the library, which has ``.nanosecond``)."""


def translate(exc: BaseException, what: str) -> errors.KneventsError:
    """A google.api_core exception as a knevents error."""
    if isinstance(exc, errors.KneventsError):
        return exc
    name = type(exc).__name__
    message = getattr(exc, "message", None) or str(exc)
    text = f"{what}: {name}: {message}"
    if name in _PERMANENT:
        return errors.PermanentError(text)
    return errors.TemporaryError(text)


def _credentials(spec: SubscriptionSpec, secrets: SecretResolver) -> Any:
    if spec.credential is None:
        return None
    from google.oauth2 import service_account

    raw = secrets.secret(spec.credential)
    try:
        info = json.loads(raw)
        return service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=["https://www.googleapis.com/auth/pubsub"]
        )
    except (ValueError, KeyError) as exc:
        raise errors.SecretError(
            f"secret {spec.credential.name}/{spec.credential.key} is not a service account JSON key"
        ) from exc


class Client:
    """A blocking Pub/Sub subscriber for one subscription; call its methods from a worker thread."""

    def __init__(self, spec: SubscriptionSpec, secrets: SecretResolver) -> None:
        from google.cloud import pubsub_v1

        self.spec = spec
        self._credentials = _credentials(spec, secrets)
        self._subscriber = pubsub_v1.SubscriberClient(credentials=self._credentials)

    def prepare(self) -> None:
        """Make sure the subscription exists (creating it and its topic as Argo does)."""
        from google.api_core import exceptions as gex

        path, topic = self.spec.subscription_path, self.spec.topic_path
        try:
            existing = self._subscriber.get_subscription(subscription=path)
        except gex.NotFound:
            existing = None
        except gex.GoogleAPICallError as exc:
            raise translate(exc, f"check subscription {path}") from exc
        if existing is not None:
            if topic and existing.topic != topic:
                raise errors.PermanentError(
                    f"subscription {path} belongs to topic {existing.topic}, not {topic}"
                )
            return
        if not topic:
            raise errors.PermanentError(
                f"subscription {path} does not exist and no topic is given to create it"
            )
        try:
            self._subscriber.create_subscription(name=path, topic=topic)
            return
        except gex.AlreadyExists:
            return
        except gex.NotFound:
            pass
        except gex.GoogleAPICallError as exc:
            raise translate(exc, f"create subscription {path}") from exc
        self._create_topic(topic)
        try:
            self._subscriber.create_subscription(name=path, topic=topic)
        except gex.AlreadyExists:
            return
        except gex.GoogleAPICallError as exc:
            raise translate(exc, f"create subscription {path}") from exc

    def _create_topic(self, topic: str) -> None:
        from google.api_core import exceptions as gex
        from google.cloud import pubsub_v1

        publisher = pubsub_v1.PublisherClient(credentials=self._credentials)
        try:
            publisher.create_topic(name=topic)
        except gex.AlreadyExists:
            pass
        except gex.GoogleAPICallError as exc:
            raise translate(exc, f"create topic {topic}") from exc
        finally:
            publisher.transport.close()

    def pull(self, max_messages: int = 10) -> list[Pulled]:
        """Up to ``max_messages`` messages; an empty list when none arrived within PULL_TIMEOUT."""
        from google.api_core import exceptions as gex

        try:
            answer = self._subscriber.pull(
                request={"subscription": self.spec.subscription_path, "max_messages": max_messages},
                timeout=PULL_TIMEOUT,
            )
        except gex.DeadlineExceeded:
            return []
        except gex.GoogleAPICallError as exc:
            raise translate(exc, f"pull from {self.spec.subscription_path}") from exc
        return [
            Pulled(
                ack_id=received.ack_id,
                message_id=received.message.message_id,
                data=bytes(received.message.data),
                attributes=dict(received.message.attributes),
                publish_time=received.message.publish_time,
            )
            for received in answer.received_messages
        ]

    def ack(self, ack_ids: list[str]) -> None:
        """Acknowledge messages (their events are on the bus)."""
        self._call("acknowledge", {"subscription": self.spec.subscription_path, "ack_ids": ack_ids})

    def nack(self, ack_ids: list[str]) -> None:
        """Make messages available for redelivery at once."""
        self._call(
            "modify_ack_deadline",
            {"subscription": self.spec.subscription_path, "ack_ids": ack_ids, "ack_deadline_seconds": 0},
        )

    def delete_subscription(self) -> None:
        """Delete the subscription (``deleteSubscriptionOnFinish``)."""
        self._call("delete_subscription", {"subscription": self.spec.subscription_path})

    def _call(self, method: str, request: dict[str, Any]) -> None:
        from google.api_core import exceptions as gex

        try:
            getattr(self._subscriber, method)(request=request)
        except gex.GoogleAPICallError as exc:
            raise translate(exc, f"{method} on {self.spec.subscription_path}") from exc

    def close(self) -> None:
        """Close the gRPC channel."""
        self._subscriber.close()
