"""How long and how much the JetStream bus stream keeps: Argo's ``streamConfig`` limits, read sensibly.

Without limits a local bus grows ~12 GiB a day at 200 events/s. Argo's
EventBus says how much to keep in ``spec.jetstream.streamConfig`` (a YAML
string: ``maxAge: 72h``, ``maxBytes: 1GB``, ``maxMsgs: 1000000``), or with the
same names under ``spec.nats.native``. Defaults are those of Argo's controller
config: 72 hours, 1,000,000 messages and 1 GiB. The oldest events go first.

One difference from Argo, on purpose: Argo reads sizes with viper's
``GetInt64``, so ``maxBytes: 1GB`` silently becomes 0 (no limit); here size
units are understood (``1GB`` = 10⁹ bytes, ``1Gi``/``1GiB`` = 2³⁰). ``0`` or a
negative value means no limit for that dimension, as in JetStream.
Nothing here does I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from knevents import errors

__all__ = ["DEFAULT", "Retention", "from_event_bus", "parse_duration", "parse_size"]

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?)(b?)\s*$", re.IGNORECASE)
_POWER = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}


@dataclass(frozen=True)
class Retention:
    """Stream limits; 0 (age) or -1 (bytes, messages) means unlimited, as JetStream has it."""

    max_age: float = 72 * 3600.0
    """Seconds an event is kept (Argo's default ``maxAge: 72h``)."""
    max_bytes: int = 1024**3
    """Bytes the stream may hold (Argo's ``maxBytes: 1GB`` default, taken as 1 GiB)."""
    max_msgs: int = 1_000_000
    """Events the stream may hold (Argo's default ``maxMsgs``)."""

    def describe(self) -> str:
        """``maxAge 72h, maxBytes 1.0 GiB, maxMsgs 1000000`` for banners and status."""
        age = f"{self.max_age / 3600:g}h" if self.max_age > 0 else "unlimited"
        size = f"{self.max_bytes / 1024**2:g} MiB" if self.max_bytes > 0 else "unlimited"
        msgs = str(self.max_msgs) if self.max_msgs > 0 else "unlimited"
        return f"maxAge {age}, maxBytes {size}, maxMsgs {msgs}"


DEFAULT = Retention()


def parse_duration(value: Any, where: str) -> float:
    """Seconds in ``72h``, ``1h30m``, ``300s`` (or a number of seconds); SpecError when unreadable."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    if text in ("0", ""):
        return 0.0
    total, pos = 0.0, 0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise errors.SpecError(f"{where}: {value!r} is not a duration (e.g. 72h, 30m, 300s)")
    return total


def parse_size(value: Any, where: str) -> int:
    """Bytes in ``1073741824``, ``1GB``, ``512Mi``, ``64KiB``; SpecError when unreadable."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE.match(str(value))
    if match is None:
        raise errors.SpecError(f"{where}: {value!r} is not a size (e.g. 1GB, 512Mi, 1073741824)")
    number, unit, binary = float(match.group(1)), match.group(2).lower(), match.group(3)
    return int(number * (1024 if binary else 1000) ** _POWER[unit])


def _limits(values: Any, where: str) -> Retention:
    if not isinstance(values, dict):
        return DEFAULT
    age, size, msgs = values.get("maxAge"), values.get("maxBytes"), values.get("maxMsgs")
    return Retention(
        max_age=DEFAULT.max_age if age is None else parse_duration(age, f"{where}.maxAge"),
        max_bytes=DEFAULT.max_bytes if size is None else (parse_size(size, f"{where}.maxBytes") or -1),
        max_msgs=DEFAULT.max_msgs if msgs is None else (int(msgs) or -1),
    )


def from_event_bus(bus: Any) -> Retention:
    """The limits an EventBus model asks for (``jetstream.streamConfig``, ``nats.native``), else DEFAULT."""
    spec = getattr(bus, "spec", None)
    for field in ("jetstream", "jetstream_exotic"):
        text = getattr(getattr(spec, field, None), "stream_config", None)
        if text:
            try:
                values = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise errors.SpecError(f"spec.{field}.streamConfig is not YAML: {exc}") from None
            return _limits(values, f"spec.{field}.streamConfig")
    native = getattr(getattr(spec, "nats", None), "native", None)
    if native is not None:
        return _limits({"maxAge": native.max_age, "maxBytes": native.max_bytes, "maxMsgs": native.max_msgs},
                       "spec.nats.native")
    return DEFAULT
