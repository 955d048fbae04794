"""The knevents exception tree, grouped by what the caller should do next.

Every error knevents raises on purpose derives from :class:`KneventsError`. The
split that matters at run time is *Permanent* versus *Temporary*: a function
that hits a permanent failure logs it (or dead-letters it) and answers 2xx so the
broker stops retrying; a temporary failure answers 5xx/429 so the broker retries.

::

    KneventsError
    ├── SpecError (ValueError)            a manifest is invalid; lists every problem
    │   └── CompileError                  one part does not compile (path, reason); the engine's
    │       ├── ConditionError            ``conditions`` expression
    │       ├── CronError                 cron schedule or time zone (sensors.cron)
    │       ├── FilterSpecError           dependency filter
    │       ├── ParamSpecError            trigger parameter
    │       └── TransformSpecError        dependency transform
    ├── NotSupportedError                 valid Argo, but knevents does not run it
    ├── EventError (ValueError)           a CloudEvent / request could not be parsed
    ├── PermanentError                    retrying cannot help → 2xx + log / DLQ
    │   ├── EvaluationError (ValueError)  an expression, template or script failed on one event
    │   │   ├── ExprError                 expr-lang expression
    │   │   ├── TemplateError             Go template / sprig
    │   │   ├── LuaError                  Lua filter or transform script
    │   │   ├── TransformError            dependency transform (the event is dropped)
    │   │   └── ParamError                trigger parameter resolution
    │   ├── TriggerError                  a trigger failed for good (4xx, bad resource …)
    │   ├── SecretError                   a referenced secret is missing
    │   ├── MissingExtraError             an optional client is not installed ("install knevents[aws]")
    │   ├── EventTooLargeError            the event is larger than the bus accepts → 413
    │   └── StateValueTooLargeError (ValueError)  a state value exceeds the bucket's maximum
    └── TemporaryError                    retrying may help → 5xx / 429
        ├── StateUnavailableError         NATS / KV unreachable
        ├── StateConflictError            lost a compare-and-set race (retry at once)
        ├── BusUnavailableError           the bus did not accept an event
        │   └── BatchRefusedError         ... of a batch; ``done`` leading items were accepted
        └── TriggerRetryableError         a trigger failed but may succeed later

Third-party exceptions are translated at the adapter that calls the library and
chained with ``raise … from exc``; nothing outside an adapter catches ``nats`` or
``botocore`` errors directly. Messages never contain secret values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "BatchRefusedError",
    "BusUnavailableError",
    "CompileError",
    "ConditionError",
    "CronError",
    "EvaluationError",
    "EventError",
    "EventTooLargeError",
    "ExprError",
    "FilterSpecError",
    "KneventsError",
    "LuaError",
    "MissingExtraError",
    "NotSupportedError",
    "ParamError",
    "ParamSpecError",
    "PermanentError",
    "Problem",
    "SecretError",
    "SpecError",
    "StateConflictError",
    "StateUnavailableError",
    "StateValueTooLargeError",
    "TemplateError",
    "TemporaryError",
    "TransformError",
    "TransformSpecError",
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


class CompileError(SpecError):
    """One part of a manifest does not compile; ``path`` and ``message`` say where and why.

    ``str()`` is the reason alone (``text``), as the engine puts it in a :class:`Problem`; ``problems``
    holds one or more ``(path, message)`` pairs, like any SpecError.
    """

    def __init__(
        self, message: str, path: str = "", problems: Iterable[tuple[str, str]] = (), *, text: str | None = None
    ) -> None:
        found = tuple(problems) or ((path, message),)
        self.problems = tuple(Problem(message=m, path=p) for p, m in found)
        self.path = path
        self.message = message
        Exception.__init__(self, message if text is None else text)


class ConditionError(CompileError):
    """A ``conditions`` expression does not parse or names an unknown dependency."""


class CronError(CompileError):
    """A schedule robfig/cron would refuse, or an unknown time zone; ``reason`` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.reason = message


class FilterSpecError(CompileError):
    """A filter is invalid whatever the event; ``path`` says which field, ``problems`` lists all found."""

    def __init__(self, path: str, message: str, problems: Sequence[tuple[str, str]] = ()) -> None:
        found = tuple(problems) or ((path, message),)
        super().__init__(message, path, found, text="; ".join(f"{p}: {m}" for p, m in found))
        self.problem_pairs: tuple[tuple[str, str], ...] = found


class ParamSpecError(CompileError):
    """A parameter is invalid whatever the events (``path`` names it)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message, path, text=f"{path}: {message}")


class TransformSpecError(CompileError):
    """A transform cannot compile; ``path`` names the field."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message, path, text=f"{path}: {message}")


class EvaluationError(PermanentError, ValueError):
    """An expression, template, script or parameter failed on one event: that event (or firing) fails."""


class ExprError(EvaluationError):
    """An expression does not parse or cannot be evaluated with the given values."""


class TemplateError(EvaluationError):
    """A template does not parse or fails while executing."""


class LuaError(EvaluationError):
    """A Lua script failed to compile or to run."""


class TransformError(EvaluationError):
    """A transform failed on an event (the event is dropped for this dependency)."""


class ParamError(EvaluationError):
    """A parameter could not be resolved or written for this firing."""


class StateValueTooLargeError(PermanentError, ValueError):
    """A value exceeds the state bucket's maximum value size; retrying cannot help."""


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


class BatchRefusedError(BusUnavailableError):
    """The bus refused an event of a batch: the first ``done`` items were accepted (commit those, re-read the rest)."""

    def __init__(self, message: str, *, done: int) -> None:
        super().__init__(message)
        self.done = done
