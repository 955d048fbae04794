"""Cron schedules as robfig/cron v3 reads them: the one parser of ``conditionsReset`` and calendar schedules.

``knevents validate``, the sensor engine (``conditionsReset``) and the calendar
source all call :func:`parse`, so a schedule one of them accepts the others run.

Accepted, as robfig/cron v3's parser reads it:

* five fields ``minute hour day-of-month month day-of-week``: ``*`` and ``?``,
  numbers, ranges ``a-b``, steps ``/n`` (``3/15`` runs from 3 to the end),
  lists ``a,b``, month names ``JAN``–``DEC`` and weekday names ``SUN``–``SAT``
  (any case); day-of-week is 0–6 (robfig refuses 7);
* a ``CRON_TZ=<zone>`` or ``TZ=<zone>`` prefix, which overrides ``timezone``;
* the descriptors ``@yearly`` ``@annually`` ``@monthly`` ``@weekly`` ``@daily``
  ``@midnight`` ``@hourly`` and ``@every <Go duration>`` (at least one second).

Difference from Argo (documented in docs/sensor-engine.md): Argo builds its
parser for calendar schedules and ``conditionsReset`` without robfig's
``Descriptor`` option, so Argo refuses ``@daily`` and ``@every``; knevents runs
them (robfig's standard parser takes them). ``@every`` has no start in a
stateless function, so its ticks are counted from the Unix epoch: every
replica agrees on them. Next and previous ticks of field schedules are
computed by croniter after this module has checked the syntax.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from knevents import errors

__all__ = ["CronError", "Schedule", "parse", "zone"]


CronError = errors.CronError


_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = {name: index + 1 for index, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}
_DAYS = {name: index for index, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day of month", 1, 31, {}),
           ("month", 1, 12, _MONTHS), ("day of week", 0, 6, _DAYS))
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def zone(name: str | None) -> tzinfo:
    """A time zone as Go's ``time.LoadLocation`` names it (``""`` and ``UTC`` are UTC)."""
    if not name or name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError(f"unknown time zone `{name}` (use an IANA name such as Europe/Paris or UTC)") from None


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule: five cron fields, or a constant delay (``@every``), in a time zone."""

    text: str
    fields: str | None
    every: float | None
    zone: tzinfo

    def next(self, after: datetime) -> datetime:
        """The first tick strictly after ``after`` (in the schedule's zone)."""
        local = after.astimezone(self.zone)
        if self.every is not None:
            return self._epoch_tick(local, ahead=True)
        from croniter import croniter

        result: datetime = croniter(self.fields, local).get_next(datetime)
        return result

    def last(self, at: datetime) -> datetime:
        """The latest tick at or before ``at`` (in the schedule's zone)."""
        local = at.astimezone(self.zone)
        if self.every is not None:
            return self._epoch_tick(local, ahead=False)
        from croniter import croniter

        if local.second == 0 and local.microsecond == 0 and croniter.match(self.fields, local):
            return local
        result: datetime = croniter(self.fields, local).get_prev(datetime)
        return result

    def _epoch_tick(self, local: datetime, *, ahead: bool) -> datetime:
        assert self.every is not None
        seconds = local.timestamp()
        count = int(seconds // self.every) + (1 if ahead else 0)
        return datetime.fromtimestamp(count * self.every, tz=self.zone)


def parse(spec: str, timezone: str | None = None) -> Schedule:
    """A schedule from ``spec`` in ``timezone`` (a ``CRON_TZ=``/``TZ=`` prefix wins); CronError if robfig refuses it."""
    text = spec.strip()
    if not text:
        raise CronError("empty cron expression")
    where = zone(timezone)
    if text.startswith(("TZ=", "CRON_TZ=")):
        name, _, rest = text.partition(" ")
        where = zone(name.split("=", 1)[1])
        text = rest.strip()
        if not text:
            raise CronError(f"invalid cron expression `{spec}`: nothing after the time zone")
    if text.startswith("@"):
        return _descriptor(spec, text, where)
    fields = text.split()
    if len(fields) != 5:
        raise CronError(f"invalid cron expression `{spec}`: expected exactly 5 fields, found {len(fields)}")
    normal = [_field(value, *rule, spec=spec) for value, rule in zip(fields, _FIELDS, strict=True)]
    return Schedule(spec, " ".join(normal), None, where)


def _descriptor(spec: str, text: str, where: tzinfo) -> Schedule:
    if text in _DESCRIPTORS:
        return Schedule(spec, _DESCRIPTORS[text], None, where)
    if text.startswith("@every "):
        seconds = _go_duration(text[len("@every "):].strip(), spec)
        return Schedule(spec, None, max(seconds, 1.0), where)  # robfig runs a shorter delay every second
    raise CronError(f"invalid cron expression `{spec}`: unrecognized descriptor `{text}`")


def _go_duration(text: str, spec: str) -> float:
    """A Go ``time.ParseDuration`` value in seconds (``1h30m``, ``90s``, ``-1s``)."""
    body = text[1:] if text[:1] in "+-" else text
    sign = -1.0 if text.startswith("-") else 1.0
    if body == "0":
        return 0.0
    parts = _DURATION_PART.findall(body)
    if not body or "".join(number + unit for number, unit in parts) != body:
        raise CronError(f"invalid cron expression `{spec}`: `{text}` is not a duration (e.g. 1h30m)")
    return sign * sum(float(number) * _UNITS[unit] for number, unit in parts)


def _field(value: str, name: str, low: int, high: int, names: dict[str, int], *, spec: str) -> str:
    """One field checked as robfig does, in croniter's spelling (``?`` → ``*``, names → numbers)."""
    out = []
    for part in value.split(","):
        range_part, slash, step_text = part.partition("/")
        if slash and not (step_text.isdigit() and int(step_text) > 0):
            raise CronError(f"invalid cron expression `{spec}`: the step of `{part}` in the {name} must be positive")
        if range_part in ("*", "?"):
            # kept a star: robfig (like croniter) ANDs day-of-month and day-of-week only when one is a star
            out.append(f"*/{step_text}" if slash else "*")
            continue
        else:
            first, dash, last = range_part.partition("-")
            start = _number(first, name, names, spec)
            end = _number(last, name, names, spec) if dash else (high if slash else start)
            if start < low or end > high:
                raise CronError(f"invalid cron expression `{spec}`: `{part}` is outside {low}-{high} ({name})")
            if start > end:
                raise CronError(f"invalid cron expression `{spec}`: `{part}` starts after it ends ({name})")
        out.append(f"{start}-{end}/{step_text}" if slash else f"{start}-{end}" if start != end else str(start))
    return ",".join(out)


def _number(text: str, name: str, names: dict[str, int], spec: str) -> int:
    if text.lower() in names:
        return names[text.lower()]
    digits = text[1:] if text[:1] in "+-" else text
    if not digits.isdigit():
        raise CronError(f"invalid cron expression `{spec}`: `{text}` is not a number ({name})")
    return int(text)
