"""Turning what organisers type into exact times.

Wall-clock times are read in an IANA timezone; times that a DST change skips
(spring forward) or repeats (fall back) are refused rather than guessed, because
a talk shown an hour off is the worst thing a calendar can do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_DATETIME = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[T ](?P<time>\d{1,2}:\d{2}(?::\d{2})?)"
    r"\s*(?P<offset>Z|[+-]\d{2}:?\d{2})?)?"
)
_DURATION = re.compile(r"(?:(?P<d>\d+)\s*d)?\s*(?:(?P<h>\d+)\s*h)?\s*(?:(?P<m>\d+)\s*m(?:in)?)?")


class TimeError(ValueError):
    """A time that cannot be used; the message says why, ``hint`` what to do."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True)
class Written:
    """A date or date-time as written: ``offset`` is set when the text fixed one."""

    day: date
    clock: tuple[int, int, int] | None
    offset: timezone | None

    @property
    def date_only(self) -> bool:
        return self.clock is None


def zone(name: str) -> ZoneInfo:
    """The IANA zone, or a TimeError that suggests the right spelling."""
    if not name or name != name.strip() or name.startswith("/") or ".." in name:
        raise TimeError(f"unknown timezone {name!r}", "use an IANA name like America/Toronto")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise TimeError(
            f"unknown timezone {name!r}", "use an IANA name like America/Toronto or Europe/Paris"
        ) from None


def parse_written(text: str) -> Written:
    """Parse ``2018-11-30``, ``2018-11-30 12:00``, ``2018-11-30T12:00:00-05:00`` or ``...Z``."""
    match = _DATETIME.fullmatch(text.strip())
    if not match:
        raise TimeError(
            f"{text!r} is not a date or time", "write 2018-11-30 12:00, or 2018-11-30 for all day"
        )
    try:
        day = date.fromisoformat(match["date"])
        clock = _parse_clock(match["time"]) if match["time"] else None
    except ValueError as exc:
        raise TimeError(f"{text!r} is not a valid date or time: {exc}") from None
    offset = _parse_offset(match["offset"]) if match["offset"] else None
    return Written(day, clock, offset)


def _parse_clock(text: str) -> tuple[int, int, int]:
    parts = [int(p) for p in text.split(":")]
    hour, minute, second = [*parts, 0][:3]
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"{text} is not a time of day")
    return hour, minute, second


def _parse_offset(text: str) -> timezone:
    if text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:])
    if hours > 14 or minutes > 59:
        raise TimeError(f"{text} is not a UTC offset", "offsets run from -12:00 to +14:00")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def resolve(written: Written, tz: ZoneInfo) -> datetime:
    """The aware datetime, shown in ``tz``; refuses times a DST change skips or repeats."""
    assert written.clock is not None
    naive = datetime.combine(written.day, datetime.min.time()).replace(
        hour=written.clock[0], minute=written.clock[1], second=written.clock[2]
    )
    if written.offset is not None:
        return naive.replace(tzinfo=written.offset).astimezone(tz)
    return wall_clock(naive, tz)


def wall_clock(naive: datetime, tz: ZoneInfo) -> datetime:
    """``naive`` read on the clocks of ``tz``, or a TimeError at a DST change."""
    early, late = naive.replace(tzinfo=tz, fold=0), naive.replace(tzinfo=tz, fold=1)
    if early.utcoffset() != late.utcoffset():
        when = naive.strftime("%Y-%m-%d %H:%M")  # only here: 20,000 times a build otherwise
        if _round_trips(early):
            raise TimeError(
                f"{when} happens twice in {tz.key} (clocks go back that night)",
                "add the UTC offset you mean, e.g. -04:00 or -05:00",
            )
        raise TimeError(
            f"{when} does not exist in {tz.key} (clocks spring forward that night)",
            "pick a time outside the skipped hour",
        )
    return early


def _round_trips(aware: datetime) -> bool:
    back = aware.astimezone(UTC).astimezone(aware.tzinfo)
    return back.replace(tzinfo=None) == aware.replace(tzinfo=None)


def parse_duration(text: str) -> timedelta:
    """``90m``, ``1h``, ``1h30m``, ``2d``: the lengths organisers write."""
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or not match or not any(match.groupdict().values()):
        raise TimeError(f"{text!r} is not a duration", "write 90m, 1h or 1h30m")
    parts = {k: int(v) for k, v in match.groupdict().items() if v}
    length = timedelta(days=parts.get("d", 0), hours=parts.get("h", 0), minutes=parts.get("m", 0))
    if not length:
        raise TimeError(f"{text!r} is an empty duration", "write 90m, 1h or 1h30m")
    return length
