"""Event source types, one module per EventSource spec key, loaded on demand.

:func:`load` imports only the module a spec needs (``webhook`` never pays for
``boto3``), and the module registers its factory in :data:`base.REGISTRY`
with ``@base.register(key)``. Modules of this package never import the bus,
triggers or state; the runtime (:mod:`knevents.runtime.source`) wires them.
"""

from __future__ import annotations

import importlib

from knevents import errors
from knevents.sources import base

__all__ = ["MODULES", "load"]

MODULES: dict[str, str] = {
    "webhook": "webhook",
    "github": "github",
    "gitlab": "gitlab",
    "calendar": "calendar",
    "nats": "nats",
    "amqp": "amqp",
    "kafka": "kafka",
    "mqtt": "mqtt",
    "redis": "redis",
    "redisStream": "redis_stream",
    "sns": "sns",
    "sqs": "sqs",
    "s3": "s3",
    "minio": "minio",
    "pubSub": "pubsub",
    "generic": "generic",
    "slack": "slack",
    "stripe": "stripe",
    "bitbucket": "bitbucket",
    "bitbucketserver": "bitbucketserver",
    "gerrit": "gerrit",
    "storageGrid": "storagegrid",
    "file": "file",
    "resource": "resource",
    "azureQueueStorage": "azure_queue",
}
"""EventSource spec key → module under ``knevents.sources`` that registers it."""


def load(key: str) -> base.SourceFactory:
    """The factory for spec key ``key``, importing its module on first use."""
    factory = base.REGISTRY.get(key)
    if factory is not None:
        return factory
    module = MODULES.get(key)
    if module is None:
        known = ", ".join(sorted(MODULES))
        raise errors.NotSupportedError(f"event source type {key!r} is not supported by knevents (supported: {known})")
    importlib.import_module(f"knevents.sources.{module}")
    try:
        return base.REGISTRY[key]
    except KeyError:
        raise errors.NotSupportedError(f"knevents.sources.{module} did not register {key!r}") from None
