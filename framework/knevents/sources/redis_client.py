"""The redis-py side of the ``redis`` and ``redisStream`` sources: one client from Argo's fields.

Argo's Redis sources share their connection fields: ``hostAddress``
(``host:port``), ``db``, ``username``, ``password`` (a Secret) and ``tls``. The
client is ``redis.asyncio``, imported inside :func:`connect` so the event-source
function pays for it only when a spec uses Redis.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from knevents.sources import base, common, reconnect

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["check_address", "connect", "connect_retrying", "errors", "lost_group"]


def errors() -> tuple[type[BaseException], ...]:
    """Exceptions meaning "the server is unreachable or went away": reconnect with backoff."""
    import redis.exceptions

    return (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError, TimeoutError)


def lost_group() -> type[BaseException]:
    """The error of a read on a stream whose consumer group is gone (``NOGROUP``)."""
    import redis.exceptions

    return redis.exceptions.ResponseError


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return (host or "localhost").strip("[]"), int(port)


def check_address(config: Any, path: str) -> Iterator[tuple[str, str]]:
    """``hostAddress`` is required and is ``host:port``."""
    if not config.host_address:
        yield f"{path}.hostAddress", "a redis event source needs `hostAddress` (host:port)"
        return
    try:
        _host_port(str(config.host_address))
    except ValueError:
        yield f"{path}.hostAddress", f"{config.host_address!r} is not host:port"


def _tls_options(block: Any, ctx: base.SourceContext) -> dict[str, Any]:
    """redis-py's TLS keywords from Argo's ``tls`` (redis.asyncio takes files or data, not an SSLContext)."""
    if block is None:
        return {}
    skip = bool(block.insecure_skip_verify)
    options: dict[str, Any] = {"ssl": True, "ssl_check_hostname": not skip, "ssl_cert_reqs": "none" if skip else "required"}
    if block.ca_cert_secret is not None:
        options["ssl_ca_data"] = common.read_secret(ctx.secrets, block.ca_cert_secret, "tls.caCertSecret")
    if block.client_cert_secret is not None and block.client_key_secret is not None:
        folder = tempfile.mkdtemp(prefix="knevents-redis-tls-")  # 0700; the connection reads them on each connect
        for name, selector in (("ssl_certfile", block.client_cert_secret), ("ssl_keyfile", block.client_key_secret)):
            path = os.path.join(folder, name)
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
                out.write(common.read_secret(ctx.secrets, selector, f"tls.{name}"))
            options[name] = path
    return options


async def connect(config: Any, ctx: base.SourceContext) -> Redis:
    """A connected client (PING answered); raises one of :func:`errors` when the server is not there."""
    from redis.asyncio import Redis

    host, port = _host_port(str(config.host_address))
    password = common.read_secret(ctx.secrets, config.password, "password") if config.password is not None else None
    client = Redis(host=host, port=port, db=int(config.db or 0), username=config.username or None,
                   password=password, socket_connect_timeout=5, health_check_interval=15,
                   **_tls_options(config.tls, ctx))
    try:
        await client.ping()
    except BaseException:
        await client.aclose()
        raise
    return client


async def connect_retrying(config: Any, ctx: base.SourceContext, retry: reconnect.Reconnect,
                           stop: asyncio.Event) -> Redis | None:
    """:func:`connect`, retried with ``retry``'s backoff (its reason says why) until it works or ``stop`` is set."""
    while not stop.is_set():
        try:
            return await connect(config, ctx)
        except errors() as exc:
            await retry.wait(f"redis {config.host_address}: {exc!r}", stop)
    return None
