"""The knevents exception tree, grouped by what the caller should do next.

Every error knevents raises on purpose derives from :class:`KneventsError`. The
split that matters at run time is *Permanent* versus *Temporary*: a function
that hits a permanent failure logs it (or dead-letters it) and answers 2xx so the
broker stops retrying; a temporary failure answers 5xx/429 so the broker retries.

::

    KneventsError
    ├── SpecError (ValueError)            a manifest is invalid; lists every problem
    ├── NotSupportedError                 valid Argo, but knevents does not run it
    ├── EventError (ValueError)           a CloudEvent / request could not be parsed
    ├── PermanentError                    retrying cannot help → 2xx + log / DLQ
    │   ├── FilterError                   a filter could not be evaluated → event dropped
    │   ├── ParameterError                a trigger parameter could not be resolved
    │   ├── TriggerError                  a trigger failed for good (4xx, bad resource …)
    │   ├── SecretError                   a referenced secret is missing
    │   ├── MissingExtraError             an optional client is not installed ("install knevents[aws]")
    │   └── EventTooLargeError            the event is larger than the bus accepts → 413
    └── TemporaryError                    retrying may help → 5xx / 429
        ├── StateUnavailableError         NATS / KV unreachable
        ├── StateConflictError            lost a compare-and-set race (retry at once)
        ├── BusUnavailableError           the bus did not accept an event
        └── TriggerRetryableError         a trigger failed but may succeed later

Third-party exceptions are translated at the adapter that calls the library and
chained with ``raise … from exc``; nothing outside an adapter catches ``nats`` or
``botocore`` errors directly. Messages never contain secret values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "BusUnavailableError",
    "EventError",
    "EventTooLargeError",
    "FilterError",
    "KneventsError",
    "MissingExtraError",
    "NotSupportedError",
    "ParameterError",
    "PermanentError",
    "Problem",
    "SecretError",
    "SpecError",
    "StateConflictError",
    "StateUnavailableError",
    "TemporaryError",
    "TriggerError",
    "TriggerRetryableError",
]


class KneventsError(Exception):
    """Root of every error knevents raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong (or unsupported) in a manifest, with where it is."""

    message: str
    path: str = ""
    file: str | None = None
    document: int | None = None
    unsupported: bool = False

    def __str__(self) -> str:
        where = []
        if self.file is not None:
            where.append(self.file)
        if self.document is not None:
            where.append(f"document {self.document}")
        if self.path:
            where.append(self.path)
        prefix = ": ".join([", ".join(where)]) if where else ""
        return f"{prefix}: {self.message}" if prefix else self.message


class SpecError(KneventsError, ValueError):
    """A manifest is invalid. ``problems`` holds every problem found, not just the first."""

    def __init__(self, problems: Iterable[Problem] | str) -> None:
        if isinstance(problems, str):
            problems = [Problem(problems)]
        self.problems: Sequence[Problem] = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s):\n{lines}")


class NotSupportedError(KneventsError):
    """Valid Argo Events, but a feature knevents does not run."""


class EventError(KneventsError, ValueError):
    """A CloudEvent or an incoming request could not be parsed."""


class PermanentError(KneventsError):
    """Retrying cannot help: log or dead-letter, then answer 2xx."""


class FilterError(PermanentError):
    """A dependency filter could not be evaluated; Argo drops the event."""


class ParameterError(PermanentError):
    """A trigger parameter could not be resolved."""


class TriggerError(PermanentError):
    """A trigger failed in a way a retry will not fix."""


class SecretError(PermanentError):
    """A referenced Secret or ConfigMap key is missing. The message names it, never its value."""


class MissingExtraError(PermanentError):
    """An event source or trigger needs an optional client library that is not installed."""

    def __init__(self, module: str, extra: str) -> None:
        self.module = module
        self.extra = extra
        super().__init__(
            f"needs the optional package `{module}`: install knevents[{extra}] "
            f"(pip install 'knevents[{extra}]')"
        )


_EXTRAS = {
    "boto3": "aws",
    "botocore": "aws",
    "google": "gcp",
    "kubernetes": "k8s",
    "aiokafka": "kafka",
    "aiormq": "amqp",
    "paho": "mqtt",
    "redis": "redis",
    "grpc": "grpc",
    "asyncssh": "sftp",
    "azure": "azure",
    "slack_sdk": "slack",
    "jsonschema": "check",
    "kubernetes_validate": "check",
}
"""Top-level module -> the pyproject extra that installs it."""


def missing_extra(exc: ImportError) -> MissingExtraError | None:
    """The :class:`MissingExtraError` for an import of an optional client that failed, else ``None``."""
    top = (exc.name or "").split(".")[0]
    return MissingExtraError(top, _EXTRAS[top]) if top in _EXTRAS else None


class EventTooLargeError(PermanentError):
    """An event (payload plus headers) is larger than the bus accepts; ``limit`` is that size in bytes."""

    def __init__(self, message: str, *, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class TemporaryError(KneventsError):
    """Retrying may help: answer 5xx (or 429) so the broker redelivers."""

    def __init__(self, message: str, *, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class StateUnavailableError(TemporaryError):
    """The state store (NATS JetStream KV) is unreachable or failed."""


class StateConflictError(TemporaryError):
    """A compare-and-set lost to another replica; re-read and try again."""


class BusUnavailableError(TemporaryError):
    """The bus (broker or JetStream) did not accept an event."""


class TriggerRetryableError(TemporaryError):
    """A trigger failed, but a later attempt may succeed (5xx, timeout, 429)."""
