"""Framework-free HTTP request/response values.

The runtimes (event source and sensor pipelines) take a :class:`Request` and
return a :class:`Response`; the thin adapters under ``functions/`` and the local
runner convert Flask / Starlette objects to and from these. Keeping Flask and
Starlette out of the library keeps it testable and cold-start cheap.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

__all__ = [
    "BodyTooLarge",
    "Headers",
    "Request",
    "Response",
    "from_asgi",
    "from_wsgi",
    "json_response",
    "text_response",
    "too_large",
]

_CHUNK = 64 * 1024


class Headers(Mapping[str, str]):
    """Case-insensitive, read-only header mapping that keeps repeated values."""

    __slots__ = ("_items", "_lookup")

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        pairs = list(items.items()) if isinstance(items, Mapping) else list(items)
        self._items: tuple[tuple[str, str], ...] = tuple(pairs)
        lookup: dict[str, list[str]] = {}
        for key, value in pairs:
            lookup.setdefault(key.lower(), []).append(value)
        self._lookup = lookup

    def __getitem__(self, key: str) -> str:
        return self._lookup[key.lower()][0]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._lookup

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for key, _ in self._items:
            if key.lower() not in seen:
                seen.add(key.lower())
                yield key

    def __len__(self) -> int:
        return len(self._lookup)

    def get_all(self, key: str) -> list[str]:
        """Every value sent for ``key`` (HTTP allows a header to repeat)."""
        return list(self._lookup.get(key.lower(), []))

    def items_all(self) -> tuple[tuple[str, str], ...]:
        """Every (name, value) pair, in arrival order, with the names as sent."""
        return self._items


@dataclass(frozen=True, slots=True)
class Request:
    """An incoming HTTP request: what a function needs of it, nothing more."""

    method: str
    path: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    query_string: str = ""
    remote_addr: str | None = None

    @property
    def query(self) -> dict[str, list[str]]:
        """The query string parsed into lists of values (blank values kept)."""
        return parse_qs(self.query_string, keep_blank_values=True)

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-cased (``""`` when absent)."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()


@dataclass(frozen=True, slots=True)
class Response:
    """An HTTP answer."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


def text_response(status: int, text: str) -> Response:
    """A plain-text answer."""
    return Response(status, text.encode(), {"content-type": "text/plain; charset=utf-8"})


def json_response(status: int, value: Any) -> Response:
    """A JSON answer."""
    return Response(status, json.dumps(value).encode(), {"content-type": "application/json"})


def too_large(limit: int) -> Response:
    """The 413 answer for a body over ``limit`` bytes, naming the limit."""
    return text_response(413, f"request body too large: this endpoint reads at most {limit} bytes\n")


class BodyTooLarge(ValueError):
    """The request body is larger than the limit; :attr:`response` is the 413 to send."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body larger than {limit} bytes")
        self.response = too_large(limit)


def _declared_length(headers: Headers, limit: int) -> None:
    """Refuse at once when ``Content-Length`` already says the body is too large (nothing read)."""
    declared = headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)


def _wsgi_body(request: Any, limit: int) -> bytes:
    stream = request.stream
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = stream.read(min(_CHUNK, limit + 1 - size))
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)


def from_wsgi(request: Any, limit: int | None = None) -> Request:
    """A :class:`Request` from a Flask/Werkzeug request (duck-typed: Flask is not imported here).

    With ``limit``, at most that many body bytes are read: :class:`BodyTooLarge` beyond it, before buffering.
    """
    headers = Headers(list(request.headers.items()))
    if limit is not None:
        _declared_length(headers, limit)
    return Request(
        method=request.method,
        path=request.path,
        headers=headers,
        body=request.get_data() if limit is None else _wsgi_body(request, limit),
        query_string=request.query_string.decode("latin-1"),
        remote_addr=request.remote_addr,
    )


async def _asgi_body(request: Any, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def from_asgi(request: Any, limit: int | None = None) -> Request:
    """A :class:`Request` from a Starlette request (duck-typed: Starlette is not imported here).

    With ``limit``, at most that many body bytes are read: :class:`BodyTooLarge` beyond it, before buffering.
    """
    headers = Headers(list(request.headers.items()))
    if limit is not None:
        _declared_length(headers, limit)
    return Request(
        method=request.method,
        path=request.url.path,
        headers=headers,
        body=await request.body() if limit is None else await _asgi_body(request, limit),
        query_string=request.url.query,
        remote_addr=request.client.host if request.client else None,
    )
