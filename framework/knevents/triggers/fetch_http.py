"""One bounded HTTP GET for the resource readers of k8s / argoWorkflow triggers (``source.url``, ``source.s3``).

A resource comes from a server the sensor's author named, but that server may
be slow, broken or hostile: the answer is read in pieces up to
:data:`MAX_BYTES` (a larger one is refused by name), the whole GET has
:data:`DEADLINE` seconds (httpx's timeout bounds each network read only, so a
server trickling a byte within each could hold the firing for ever), redirects
are not followed, and the server is asked for the identity encoding (httpx
inflates a compressed piece whole before the size is checked).
"""

from __future__ import annotations

import asyncio
from typing import Any

from knevents import errors

__all__ = ["DEADLINE", "MAX_BYTES", "get"]

MAX_BYTES = 1024 * 1224
"""The most read of a resource: Argo's S3 reader's limit (``io.LimitReader(obj, 1024*1224)``), about what
etcd stores of one object anyway."""
DEADLINE = 60.0
"""Seconds one whole GET may take; MAX_BYTES in this time is 20 KiB/s."""


async def get(url: str, headers: dict[str, str], verify: Any, timeout: float, where: str) -> tuple[int, bytes]:
    """The status and at most :data:`MAX_BYTES` of the body of one GET.

    Unreachable, failing mid-answer or too slow: TriggerRetryableError; too large: TriggerError. ``where`` names
    the resource in errors (never a secret: callers pass a redacted URL).
    """
    import httpx

    body = bytearray()
    try:
        async with (
            asyncio.timeout(DEADLINE),
            httpx.AsyncClient(verify=verify, timeout=timeout) as client,
            client.stream("GET", url, headers={**headers, "accept-encoding": "identity"}) as response,
        ):
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_BYTES:
                    raise errors.TriggerError(f"{where}: larger than {MAX_BYTES} bytes")
    except TimeoutError:  # before OSError, its base class
        raise errors.TriggerRetryableError(f"{where}: not read within {DEADLINE:.0f}s") from None
    except (httpx.HTTPError, OSError) as exc:
        raise errors.TriggerRetryableError(f"{where}: {exc.__class__.__name__}") from None
    return response.status_code, bytes(body)
