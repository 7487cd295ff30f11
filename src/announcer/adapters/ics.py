"""ICS calendars for calendar apps: per series, combined, per tag, per event.

Each VEVENT is serialised once per build and its bytes reused in every calendar
that holds it; each VTIMEZONE once per (zone, span of years). Times are written
in the event's own IANA zone with a VTIMEZONE generated from the same tz
database, so clients that trust the VTIMEZONE (libical) and clients that trust
the TZID name (Google, ical.js) agree. SEQUENCE, DTSTAMP, CREATED and
LAST-MODIFIED come from the ledger, never from the clock, so the same input and
ledger give the same bytes.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, partial
from importlib import metadata, resources
from pathlib import Path
from zoneinfo import ZoneInfo

from announcer import markup, urls
from announcer.adapters import listing
from announcer.adapters.base import BuildContext, Depends, LazyFile, OutputAdapter, OutputFile
from announcer.adapters.icstext import Lines, day, local, text, utc
from announcer.buildstate import digest
from announcer.i18n import labels
from announcer.model import Event, Repeat, Series, Site
from announcer.recurrence import last_finish

PRODID = "-//announcer//announcer calendar//EN"
UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/GMT", "GMT", "Etc/Universal", "Universal", "Zulu"})
_END = b"END:VCALENDAR\r\n"
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


class IcsAdapter(OutputAdapter):
    name = "ics"
    incremental = True

    def prepare(self, context: BuildContext, events: Sequence[Event]) -> None:
        writer = _Writer(context)
        for event in events:
            writer.vevents(event)

    def files(self, context: BuildContext) -> Iterator[LazyFile]:
        writer = _Writer(context)
        site = context.site
        everything = in_window(context)
        yield writer.lazy(urls.SITE_CALENDAR, site.title, _site_description(site), everything)
        for series in site.series:
            yield writer.lazy(
                urls.series_calendar(series),
                series.title,
                series.description.strip(),
                series.events,
                series,
            )
            for event in series.events:
                if urls.event_ics(event) not in context.kept:
                    yield writer.event_file(event, series)
        _, by_tag = listing.grouped(everything)
        for tag in sorted(by_tag):
            tagged = by_tag[tag]
            yield writer.lazy(urls.tag_calendar(tag), f"{site.title}: {tag}", "", tagged)


def event_calendar(
    context: BuildContext, event: Event, method: str = "PUBLISH", part: Event | None = None
) -> bytes:
    """The calendar ``<series>/<event-id>/event.ics`` publishes, with METHOD ``method``.

    Email attaches it, so the UID and SEQUENCE are the published calendar's to the
    byte. ``part``, a changed occurrence of the recurring ``event``, narrows it to
    that occurrence's RECURRENCE-ID VEVENT: what cancelling one date takes.
    """
    writer = _Writer(context)
    series = writer.series[event.series]
    if part is not None:
        writer.events[event.key] = _vevent(part, context, series, master=event)
    path = urls.event_ics(event)
    return writer.calendar(path, event.title, "", [event], series, method).data


def _site_description(site: Site) -> str:
    return ", ".join(s.title for s in site.series)


def in_window(context: BuildContext) -> list[Event]:
    """The events the combined and tag calendars carry: those that ended at most
    ``calendar.past_days`` ago (Google drops subscribed calendars near 1 MB). Once per
    build: the tag pages ask too, to link only the calendars that exist."""
    found = context.cache.get("ics.window")
    if isinstance(found, list):
        return found
    site, days = context.site, context.site.calendar.past_days
    if days is None:
        found = list(site.events())
    else:
        cutoff = (context.now - timedelta(days=days)).astimezone(UTC)
        found = [e for e in site.events() if _last_instant(e) >= cutoff]
    context.cache["ics.window"] = found
    return found


def _last_instant(event: Event) -> datetime:
    """:func:`last_finish` in UTC (see ``listing.is_past``), at once when nothing repeats."""
    return event.utc_finishes if event.repeat is None else last_finish(event).astimezone(UTC)


class _Writer:
    """Assembles calendars from cached component bytes."""

    def __init__(self, context: BuildContext) -> None:
        self.context = context
        self.site = context.site
        self.series = {s.slug: s for s in context.site.series}
        self.events: dict[str, bytes] = {}
        self.keys: dict[str, str] = {}
        self.zones: dict[tuple[str, int, int], bytes] = {}
        self.spans: dict[str, tuple[str, int, int] | None] = {}

    def years(self, event: Event) -> tuple[str, int, int] | None:
        """:func:`_years`, once per event: every calendar that holds it asks."""
        if event.key not in self.spans:
            self.spans[event.key] = _years(event)
        return self.spans[event.key]

    def lazy(
        self,
        path: str,
        name: str,
        description: str,
        events: Iterable[Event],
        series: Series | None = None,
    ) -> LazyFile:
        """A calendar assembled only when the build gets to it, and not at all when its
        events and settings are the last build's.

        The events' tokens cover their times and zones, so the key need not hold
        the VTIMEZONEs they call for; they also say whether each event is past, which
        a calendar does not show, so a calendar is made again (and found unchanged)
        when one of its events ends.
        """
        events = list(events)
        keys = [event.key for event in events]

        def key() -> str:
            tokens = self.context.joined_tokens(keys)
            return digest("calendar", path, name, description, self.context.all_settings(), tokens)

        make = partial(self._calendar_data, path, name, description, events, series)
        return LazyFile(path, make, key, Depends(keys), partial(self._size_note, path))

    def _calendar_data(
        self, path: str, name: str, description: str, events: list[Event], series: Series | None
    ) -> bytes:
        return self.calendar(path, name, description, events, series).data

    def calendar(
        self,
        path: str,
        name: str,
        description: str,
        events: Iterable[Event],
        series: Series | None = None,
        method: str = "PUBLISH",
    ) -> OutputFile:
        events = list(events)
        spans = _zone_spans(events, self.years)
        return OutputFile(
            path, b"".join(self._parts(name, description, events, series, spans, method))
        )

    def _parts(
        self,
        name: str,
        description: str,
        events: list[Event],
        series: Series | None,
        spans: list[tuple[str, tuple[int, int]]],
        method: str = "PUBLISH",
    ) -> list[bytes]:
        parts = [self._header(name, description, series, method)]
        parts.extend(self._zone(tzid, first, last) for tzid, (first, last) in spans)
        parts.extend(self.vevents(event) for event in events)
        parts.append(_END)
        return parts

    def _size_note(self, path: str, size: int) -> str | None:
        """Said at every build, whether or not the calendar is written again."""
        if size <= self.site.calendar.size_warning:
            return None
        return (
            f"{path} is {size:,} bytes: Google Calendar stops refreshing subscribed "
            "calendars near 1 MB (lower calendar.past_days in announcer.yaml)"
        )

    def _header(self, name: str, description: str, series: Series | None, method: str) -> bytes:
        refresh = _duration(self.site.calendar.refresh)
        cal = Lines("VCALENDAR")
        cal.add("PRODID", PRODID)
        cal.add("VERSION", "2.0")
        cal.add("CALSCALE", "GREGORIAN")
        cal.add("METHOD", method)
        cal.add("NAME", text(name))
        cal.add("X-WR-CALNAME", text(name))
        if description:
            cal.add("DESCRIPTION", text(description))
            cal.add("X-WR-CALDESC", text(description))
        cal.add("REFRESH-INTERVAL", refresh, VALUE="DURATION")
        cal.add("X-PUBLISHED-TTL", refresh)
        return b"".join(cal.lines)

    def _zone(self, tzid: str, first: int, last: int) -> bytes:
        """The VTIMEZONE of ``tzid`` for those years, kept from build to build while the
        tz database's entry is the same: making one, and loading icalendar to make it,
        was a tenth of a one-event rebuild."""
        key = (tzid, first, last)
        if key not in self.zones:
            self.zones[key] = self.context.fragments.get(
                _zone_key(tzid, first, last), partial(_vtimezone, tzid, first, last)
            )
        return self.zones[key]

    def event_file(self, event: Event, series: Series) -> LazyFile:
        """``event.ics``: rendered only when the event or what it shows changed.

        Its VEVENT, and its VTIMEZONE for its own years, are kept in the store though
        the file is not made: a build that prunes the store would drop them. The
        next edit to the event would then load icalendar to make the VTIMEZONE
        again (0.04 s), and the next edit in its series make the VEVENTs of every
        event of the series' calendar (a thousand: 0.35 s)."""
        path = urls.event_ics(event)
        if self.context.fragments.known:  # nothing to keep in a first build
            self.context.fragments.keep(self._key(event))
            for tzid, (first, last) in _zone_spans([event], self.years):
                self.context.fragments.keep(_zone_key(tzid, first, last))
        return LazyFile(
            path,
            lambda: self.calendar(path, event.title, "", [event], series).data,
            lambda: f"{path}\x1f{self._key(event)}",  # the VEVENT's key holds all it shows
            Depends((event.key,), own=True),
        )

    def vevents(self, event: Event) -> bytes:
        """The event's VEVENT and its overrides', made once per build and kept for the next."""
        if event.key not in self.events:
            self.events[event.key] = self.context.fragments.get(
                self._key(event), lambda: self._serialise(event)
            )
        return self.events[event.key]

    def _serialise(self, event: Event) -> bytes:
        parts = [_vevent(event, self.context, self.series[event.series])]
        parts.extend(
            _vevent(o, self.context, self.series[o.series], master=event) for o in event.overrides
        )
        return b"".join(parts)

    def _key(self, event: Event) -> str:
        """What an event's VEVENTs depend on: the event, its revisions, its series' words."""
        if event.key not in self.keys:
            stamps = map(self.context.stamp_key, (event, *event.overrides))
            settings = self.context.settings_key(event.series)
            self.keys[event.key] = "\x1f".join(("vevent", settings, *stamps))  # digests all
        return self.keys[event.key]


def _vtimezone(tzid: str, first: int, last: int) -> bytes:
    from icalendar import Timezone  # loaded only when a VTIMEZONE is not kept

    zone = Timezone.from_tzid(tzid, first_date=date(first, 1, 1), last_date=date(last + 1, 1, 1))
    return bytes(zone.to_ical())


def _zone_key(tzid: str, first: int, last: int) -> str:
    return f"vtimezone\x1f{tzid}\x1f{first}\x1f{last}\x1f{_zone_source(tzid)}"


@cache
def _zone_source(tzid: str) -> str:
    """What a VTIMEZONE of ``tzid`` is made from: the tz database entry zoneinfo reads,
    and the icalendar that writes it."""
    return digest(_tz_entry(tzid), metadata.version("icalendar"))


def _tz_entry(tzid: str) -> bytes:
    """The entry's bytes where zoneinfo finds them: the system's, else the tzdata package's."""
    for folder in zoneinfo.TZPATH:
        entry = Path(folder, tzid)
        if entry.is_file():
            return entry.read_bytes()
    try:
        return resources.files("tzdata.zoneinfo").joinpath(tzid).read_bytes()
    except (ImportError, OSError):
        return b""


def _zone_spans(
    events: list[Event], years: Callable[[Event], tuple[str, int, int] | None]
) -> list[tuple[str, tuple[int, int]]]:
    """The years each timezone must cover, so a VTIMEZONE stays small but complete."""
    spans: dict[str, tuple[int, int]] = {}
    for found in map(years, events):
        if found is not None:
            zone, first, last = found
            old = spans.get(zone, (first, last))
            spans[zone] = (min(old[0], first), max(old[1], last))
    return sorted(spans.items())


def _years(event: Event) -> tuple[str, int, int] | None:
    """An event's zone and the years it spans; None when it needs no VTIMEZONE."""
    if event.all_day or event.timezone in UTC_NAMES:
        return None
    return event.timezone, event.begins.year, last_finish(event).year


def _vevent(
    event: Event, context: BuildContext, series: Series, master: Event | None = None
) -> bytes:
    revision = context.ledger.revision(event)
    words = labels(series.language)
    vevent = Lines("VEVENT")
    vevent.add("UID", text(event.uid))
    vevent.add("DTSTAMP", utc(revision.modified))
    vevent.add("SEQUENCE", str(revision.sequence))
    if event.recurrence_id is not None and master is not None:
        _time(vevent, "RECURRENCE-ID", _moment(master, event.recurrence_id), event.timezone)
    _time(vevent, "DTSTART", event.start, event.timezone)
    _time(vevent, "DTEND", event.end_exclusive, event.timezone)
    if event.repeat is not None:
        vevent.add("RRULE", _rrule(event, event.repeat))
        for skipped in event.repeat.skip:
            _time(vevent, "EXDATE", _moment(event, skipped), event.timezone)
    title = f"{words['cancelled']}: {event.title}" if event.cancelled else event.title
    vevent.add("SUMMARY", text(title))
    vevent.add("STATUS", event.status.upper())
    _place(vevent, event, words)
    vevent.add("DESCRIPTION", text(_description(event, context.site, words)))
    vevent.add("URL", urls.absolute(context.site, urls.event_page(event)), VALUE="URI")
    if series.organizer is not None and series.organizer.email:
        vevent.add("ORGANIZER", f"mailto:{series.organizer.email}", CN=series.organizer.name)
    if event.tags:
        vevent.add("CATEGORIES", ",".join(text(t) for t in event.tags))
    vevent.add("CLASS", "PUBLIC")
    vevent.add("TRANSP", "TRANSPARENT" if event.all_day else "OPAQUE")
    vevent.add("CREATED", utc(revision.first_seen))
    vevent.add("LAST-MODIFIED", utc(revision.modified))
    return vevent.end()


def _place(vevent: Lines, event: Event, words: Mapping[str, str]) -> None:
    """LOCATION for every client; CONFERENCE (RFC 7986) for the ones that know it."""
    if event.location or event.online_url:
        vevent.add("LOCATION", text(event.location or event.online_url))
    if event.online_url:
        vevent.add(
            "CONFERENCE", event.online_url, VALUE="URI", FEATURE="VIDEO", LABEL=words["join_online"]
        )


def _description(event: Event, site: Site, words: Mapping[str, str]) -> str:
    blocks = []
    if event.speakers:
        names = [s.name + (f" ({s.affiliation})" if s.affiliation else "") for s in event.speakers]
        label = words["speaker"] if len(names) == 1 else words["speakers"]
        blocks.append(
            f"{label}: {names[0]}"
            if len(names) == 1
            else label + ":\n" + "\n".join(f"- {n}" for n in names)
        )
    if event.abstract.strip():
        blocks.append(markup.to_text(event.abstract))
    links = []
    if event.online_url:
        links.append(f"{words['join_online']}: {event.online_url}")
    if event.url:
        links.append(f"{words['more_info']}: {event.url}")
    links.append(f"{words['event_page']}: {urls.absolute(site, urls.event_page(event))}")
    blocks.append("\n".join(links))
    return "\n\n".join(blocks)


def _time(lines: Lines, name: str, moment: datetime | date, timezone: str) -> None:
    """Local time with a TZID, except where local time cannot say which instant is meant.

    A wall-clock time in the hour that repeats when clocks go back names two
    instants; clients resolve it differently (ical.js takes the later one), so
    such a time is written in UTC, which every client reads the same way.
    """
    if not isinstance(moment, datetime):
        lines.add(name, day(moment), VALUE="DATE")
    elif timezone in UTC_NAMES or _ambiguous(moment):
        lines.add(name, utc(moment))
    else:
        lines.add(name, local(moment), TZID=timezone)


def _ambiguous(moment: datetime) -> bool:
    return moment.replace(fold=0).utcoffset() != moment.replace(fold=1).utcoffset()


def _moment(event: Event, on: date) -> datetime | date:
    """The start of ``event``'s occurrence on ``on``, as RECURRENCE-ID and EXDATE name it."""
    if isinstance(event.start, datetime):
        return datetime.combine(on, event.start.timetz())
    return on


def _rrule(event: Event, rule: Repeat) -> str:
    parts = ["FREQ=" + {"day": "DAILY", "week": "WEEKLY", "month": "MONTHLY"}[rule.every]]
    if rule.interval != 1:
        parts.append(f"INTERVAL={rule.interval}")
    if rule.count is not None:
        parts.append(f"COUNT={rule.count}")
    elif rule.until is not None:
        parts.append("UNTIL=" + _until(event, rule.until))
    if rule.every == "week" and rule.weekdays:
        parts.append("BYDAY=" + ",".join(_WEEKDAYS[d] for d in rule.weekdays))
    return ";".join(parts)


def _until(event: Event, last_day: date) -> str:
    """UNTIL must be UTC when DTSTART has a TZID (RFC 5545): the end of the last day, local time."""
    if not isinstance(event.start, datetime):
        return day(last_day)
    return utc(datetime.combine(last_day, time(23, 59, 59), tzinfo=ZoneInfo(event.timezone)))


def _duration(length: timedelta) -> str:
    """An RFC 5545 duration such as PT6H or P1DT30M."""
    days, seconds = length.days, length.seconds
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    clock = "".join(f"{n}{u}" for n, u in ((hours, "H"), (minutes, "M"), (seconds, "S")) if n)
    return "P" + (f"{days}D" if days else "") + (f"T{clock}" if clock else "" if days else "T0S")
