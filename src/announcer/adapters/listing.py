"""The events that feeds and pages list, worked out once per build and shared.

Feeds and pages treat each occurrence of a recurring event as an event of its
own, so both need the same expanded, ordered list; it is kept in the build's
``cache`` so the second adapter does not expand every rule again.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from announcer.adapters.base import BuildContext
from announcer.model import Event, Site
from announcer.recurrence import expand

_CACHE_KEY = "listing.shown"


def shown(context: BuildContext) -> tuple[Event, ...]:
    """Every event and occurrence a reader sees (not recurring events themselves), by start."""
    cached = context.cache.get(_CACHE_KEY)
    if isinstance(cached, tuple):
        return cached
    events = tuple(sorted(_expanded(context.site), key=start_order))
    context.cache[_CACHE_KEY] = events
    return events


def grouped(events: Iterable[Event]) -> tuple[dict[str, list[Event]], dict[str, list[Event]]]:
    """``events`` by series and by tag, each list in the order given: one pass, where
    filtering the whole list again for each of thirty tags was a measurable part of a build."""
    by_series: dict[str, list[Event]] = {}
    by_tag: dict[str, list[Event]] = {}
    for event in events:
        by_series.setdefault(event.series, []).append(event)
        for tag in event.tags:
            by_tag.setdefault(tag, []).append(event)
    return by_series, by_tag


def shown_groups(context: BuildContext) -> tuple[dict[str, list[Event]], dict[str, list[Event]]]:
    """:func:`grouped` over :func:`shown`, once per build."""
    cached = context.cache.get("listing.groups")
    if not isinstance(cached, tuple):
        cached = context.cache["listing.groups"] = grouped(shown(context))
    return cached


def _expanded(site: Site) -> Iterable[Event]:
    for event in site.events():
        yield from expand(event)


def start_order(event: Event) -> tuple[datetime, str]:
    """Chronological, and total: events that start together are ordered by key."""
    return event.utc_begins, event.key


def is_past(event: Event, now: datetime) -> bool:
    """An event is past once it has ended; while it runs it is still worth showing first.
    Fastest with ``now`` in UTC (:attr:`Event.utc_finishes`)."""
    return event.utc_finishes <= now


def listed_as(event: Event, now: datetime) -> str:
    """All a listing page shows of an event: its item (title, status, times and zone,
    speakers' names), its place in the order and its section (past or not). A listing
    whose events all read the same here is the same page, whatever else changed in
    them (a room, an abstract, a bio), so its key is the last build's
    (:mod:`announcer.recall`); the tests hold this to the templates field by field.
    Fastest with ``now`` in UTC (:func:`is_past`)."""
    return "\x1e".join(
        (
            event.title,
            event.status,
            event.start.isoformat(),
            event.end.isoformat(),
            event.timezone,
            "\x1f".join(speaker.name for speaker in event.speakers),
            "1" if is_past(event, now) else "0",
        )
    )


def split(events: Iterable[Event], now: datetime) -> tuple[list[Event], list[Event]]:
    """(upcoming, soonest first), (past, most recent first): the order a visitor wants."""
    now = now.astimezone(UTC)
    upcoming: list[Event] = []
    past: list[Event] = []
    for event in sorted(events, key=start_order):
        (past if is_past(event, now) else upcoming).append(event)
    past.reverse()
    return upcoming, past


def utc_stamp(moment: datetime) -> str:
    """An instant as scripts and validators read it everywhere: ``2018-11-30T18:00:00Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
