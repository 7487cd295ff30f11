"""Expanding recurring events into occurrences, the way calendar clients do.

The rule is read in the event's own timezone, so a 12:00 seminar stays at 12:00
local time across DST changes. The dates produced here are the dates an RFC 5545
client computes from the RRULE the ICS adapter writes; tests hold the two to
each other.
"""

from __future__ import annotations

import calendar
import dataclasses
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from announcer.model import Event, Repeat

MAX_OCCURRENCES = 1000


def rule_dates(first: date, rule: Repeat) -> Iterator[date]:
    """Every date the rule yields from ``first``, skipped dates included (as COUNT counts)."""
    limit = min(rule.count or MAX_OCCURRENCES, MAX_OCCURRENCES)
    for produced, day in enumerate(_candidates(first, rule)):
        if produced >= limit or (rule.until is not None and day > rule.until):
            return
        yield day


def _candidates(first: date, rule: Repeat) -> Iterator[date]:
    step = rule.interval
    if rule.every == "day":
        for n in range(0, 10**6):
            yield first + timedelta(days=n * step)
    elif rule.every == "week":
        weekdays = sorted(rule.weekdays or (first.weekday(),))
        monday = first - timedelta(days=first.weekday())
        for n in range(0, 10**6):
            week = monday + timedelta(weeks=n * step)
            yield from (d for d in (week + timedelta(days=w) for w in weekdays) if d >= first)
    else:
        for n in range(0, 10**5):
            year, month = divmod(first.month - 1 + n * step, 12)
            if first.day <= calendar.monthrange(first.year + year, month + 1)[1]:
                yield date(first.year + year, month + 1, first.day)


def occurrence_dates(event: Event) -> list[date]:
    """The original dates of the occurrences that take place (skipped dates removed)."""
    assert event.repeat is not None
    skipped = set(event.repeat.skip)
    return [d for d in rule_dates(_day(event.start), event.repeat) if d not in skipped]


def expand(event: Event) -> list[Event]:
    """The event itself when it does not repeat, else one Event per occurrence."""
    if event.repeat is None:
        return [event]
    changed = {o.recurrence_id: o for o in event.overrides}
    return [changed.get(d) or occurrence(event, d) for d in occurrence_dates(event)]


def occurrence(event: Event, day: date) -> Event:
    """The unchanged occurrence of ``event`` on ``day``: same wall-clock time, same length."""
    start, end = (
        _shift(event.start, day),
        _shift(event.end, day + (_day(event.end) - _day(event.start))),
    )
    return dataclasses.replace(
        event,
        id=f"{event.id}/{day.isoformat()}",
        start=start,
        end=end,
        repeat=None,
        overrides=(),
        recurrence_id=day,
    )


def _shift(moment: datetime | date, day: date) -> datetime | date:
    if not isinstance(moment, datetime):
        return day
    zone = moment.tzinfo
    assert isinstance(zone, ZoneInfo)
    return datetime.combine(day, moment.time(), tzinfo=zone)


def _day(moment: datetime | date) -> date:
    return moment.date() if isinstance(moment, datetime) else moment


def last_finish(event: Event) -> datetime:
    """When the event, or its last occurrence, is over."""
    return max((o.finishes for o in expand(event)), default=event.finishes)
