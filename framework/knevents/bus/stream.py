"""The bus stream: created, or brought up to date, before anything is published to it.

``KNEVENTS-<bus>`` with subjects ``<bus>.>`` (:mod:`knevents.bus.naming`), a
duplicate window keyed on the event id (``Nats-Msg-Id``), retention limits
(:mod:`knevents.bus.retention`) and, where the server can, fast-ingest batches
(``allow_batched``, :mod:`knevents.bus.fastbatch`). An existing stream keeps
what it has unless it is missing one of these; a window is widened, never
narrowed. NATS errors become :class:`errors.BusUnavailableError`. ``nats`` is
imported lazily, as in the rest of the bus.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from knevents import errors, natskv
from knevents.bus import fastbatch, naming, retention

if TYPE_CHECKING:
    from nats.js import JetStreamContext

__all__ = ["DEFAULT_DUPLICATE_WINDOW", "ensure_stream"]

DEFAULT_DUPLICATE_WINDOW = 120.0
"""Seconds JetStream remembers a ``Nats-Msg-Id``: NATS' own default, longer than any publish retry."""

_nats_errors = natskv.nats_errors


async def ensure_stream(
    js: JetStreamContext, bus_name: str, *, duplicate_window: float = DEFAULT_DUPLICATE_WINDOW,
    limits: retention.Retention | None = None,
) -> str:
    """Create the bus stream (subjects ``<bus>.>``) if it does not exist; return its name.

    With ``limits``, an existing stream is updated to them too (a bus made unbounded by an older
    version gets bounded); without, an existing stream is left as it is and a new one gets the defaults.
    Either way the stream takes fast-ingest batches (``allow_batched``) when the server can
    (nats-server 2.14 or later), and its duplicate window is widened to ``duplicate_window``.
    """
    import nats.js.errors

    name = naming.stream_name(bus_name)
    bounds = limits or retention.DEFAULT
    batched = _can_batch(js)
    try:
        info = await js.stream_info(name)
        if limits is not None:
            await _apply_limits(js, info.config, limits)
        widen = (info.config.duplicate_window or 0) < duplicate_window  # widen, never narrow, an existing window
        enable = batched and not getattr(info.config, "allow_batched", False)
        if widen or enable:
            info.config.duplicate_window = max(info.config.duplicate_window or 0, duplicate_window)
            if enable:
                info.config.allow_batched = True
            try:
                await js.update_stream(info.config)
            except _nats_errors() as exc:
                raise errors.BusUnavailableError(f"cannot update stream {name}: {exc!r}") from exc
        return name
    except nats.js.errors.NotFoundError:
        pass
    except _nats_errors() as exc:
        raise errors.BusUnavailableError(f"cannot read stream {name}: {exc!r}") from exc
    extra: dict[str, Any] = {"allow_batched": True} if batched else {}
    try:
        await js.add_stream(
            name=name, subjects=[naming.subject_filter(bus_name)], duplicate_window=duplicate_window,
            max_age=bounds.max_age, max_bytes=bounds.max_bytes, max_msgs=bounds.max_msgs,
            **extra,
        )
    except nats.js.errors.BadRequestError as exc:
        if exc.err_code != 10058:  # created concurrently with the same name: fine
            raise errors.BusUnavailableError(f"cannot create stream {name}: {exc!r}") from exc
    except _nats_errors() as exc:
        raise errors.BusUnavailableError(f"cannot create stream {name}: {exc!r}") from exc
    return name


def _can_batch(js: JetStreamContext) -> bool:
    """Whether the server takes fast-ingest batches and this nats-py can set ``allow_batched`` on a stream."""
    from nats.js.api import StreamConfig

    return "allow_batched" in StreamConfig.__dataclass_fields__ and fastbatch.supported(getattr(js, "_nc", None))


async def _apply_limits(js: JetStreamContext, config: Any, limits: retention.Retention) -> None:
    if (config.max_age or 0, config.max_bytes, config.max_msgs) == (limits.max_age, limits.max_bytes, limits.max_msgs):
        return
    config.max_age, config.max_bytes, config.max_msgs = limits.max_age, limits.max_bytes, limits.max_msgs
    try:
        await js.update_stream(config)
    except _nats_errors() as exc:
        raise errors.BusUnavailableError(f"cannot set the limits of stream {config.name}: {exc!r}") from exc
