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

from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar, Timezone, vDuration, vText, vUri
from icalendar import Event as VEvent

from announcer import markup, urls
from announcer.adapters.base import BuildContext, OutputAdapter, OutputFile
from announcer.i18n import labels
from announcer.model import Event, Repeat, Series, Site
from announcer.recurrence import last_finish

PRODID = "-//announcer//announcer calendar//EN"
UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/GMT", "GMT", "Etc/Universal", "Universal", "Zulu"})
_END = b"END:VCALENDAR\r\n"
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


class IcsAdapter(OutputAdapter):
    name = "ics"

    def files(self, context: BuildContext) -> Iterator[OutputFile]:
        writer = _Writer(context)
        site = context.site
        everything = in_window(site, context.now)
        yield writer.calendar(urls.SITE_CALENDAR, site.title, _site_description(site), everything)
        for series in site.series:
            yield writer.calendar(
                urls.series_calendar(series),
                series.title,
                series.description.strip(),
                series.events,
                series,
            )
            for event in series.events:
                yield writer.calendar(urls.event_ics(event), event.title, "", [event], series)
        for tag in sorted({t for e in everything for t in e.tags}):
            tagged = [e for e in everything if tag in e.tags]
            yield writer.calendar(urls.tag_calendar(tag), f"{site.title}: {tag}", "", tagged)


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
        writer.events[event.key] = _vevent(part, context, series, master=event).to_ical()
    path = urls.event_ics(event)
    return writer.calendar(path, event.title, "", [event], series, method).data


def _site_description(site: Site) -> str:
    return ", ".join(s.title for s in site.series)


def in_window(site: Site, now: datetime) -> list[Event]:
    """The events the combined and tag calendars carry: those that ended at most
    ``calendar.past_days`` ago (Google drops subscribed calendars near 1 MB)."""
    days = site.calendar.past_days
    if days is None:
        return list(site.events())
    cutoff = now - timedelta(days=days)
    return [e for e in site.events() if last_finish(e) >= cutoff]


class _Writer:
    """Assembles calendars from cached component bytes."""

    def __init__(self, context: BuildContext) -> None:
        self.context = context
        self.site = context.site
        self.series = {s.slug: s for s in context.site.series}
        self.events: dict[str, bytes] = {}
        self.zones: dict[tuple[str, int, int], bytes] = {}

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
        parts = [self._header(name, description, series, method)]
        parts.extend(
            self._zone(tzid, first, last)
            for tzid, (first, last) in sorted(_zone_spans(events).items())
        )
        parts.extend(self._event(event) for event in events)
        parts.append(_END)
        data = b"".join(parts)
        if len(data) > self.site.calendar.size_warning:
            self.context.warnings.append(
                f"{path} is {len(data):,} bytes: Google Calendar stops refreshing subscribed "
                "calendars near 1 MB (lower calendar.past_days in announcer.yaml)"
            )
        return OutputFile(path, data)

    def _header(self, name: str, description: str, series: Series | None, method: str) -> bytes:
        cal = Calendar()
        cal.add("prodid", PRODID)
        cal.add("version", "2.0")
        cal.add("calscale", "GREGORIAN")
        cal.add("method", method)
        cal.add("name", vText(name))
        cal.add("x-wr-calname", vText(name))
        if description:
            cal.add("description", vText(description))
            cal.add("x-wr-caldesc", vText(description))
        cal.add(
            "refresh-interval",
            vDuration(self.site.calendar.refresh),
            parameters={"VALUE": "DURATION"},
        )
        cal.add("x-published-ttl", vDuration(self.site.calendar.refresh))
        header: bytes = cal.to_ical()
        return header[: -len(_END)]

    def _zone(self, tzid: str, first: int, last: int) -> bytes:
        key = (tzid, first, last)
        if key not in self.zones:
            zone = Timezone.from_tzid(
                tzid, first_date=date(first, 1, 1), last_date=date(last + 1, 1, 1)
            )
            self.zones[key] = zone.to_ical()
        return self.zones[key]

    def _event(self, event: Event) -> bytes:
        if event.key not in self.events:
            parts = [_vevent(event, self.context, self.series[event.series]).to_ical()]
            parts.extend(
                _vevent(o, self.context, self.series[o.series], master=event).to_ical()
                for o in event.overrides
            )
            self.events[event.key] = b"".join(parts)
        return self.events[event.key]


def _zone_spans(events: list[Event]) -> dict[str, tuple[int, int]]:
    """The years each timezone must cover, so a VTIMEZONE stays small but complete."""
    spans: dict[str, tuple[int, int]] = {}
    for event in events:
        if event.all_day or event.timezone in UTC_NAMES:
            continue
        first, last = event.begins.year, last_finish(event).year
        old = spans.get(event.timezone, (first, last))
        spans[event.timezone] = (min(old[0], first), max(old[1], last))
    return spans


def _vevent(
    event: Event, context: BuildContext, series: Series, master: Event | None = None
) -> VEvent:
    revision = context.ledger.revision(event)
    words = labels(series.language)
    vevent = VEvent()
    vevent.add("uid", event.uid)
    vevent.add("dtstamp", revision.modified.astimezone(UTC))
    if event.recurrence_id is not None and master is not None:
        vevent.add("recurrence-id", _moment(master, event.recurrence_id))
    vevent.add("dtstart", _when(event.start, event.timezone))
    vevent.add("dtend", _when(event.end_exclusive, event.timezone))
    if event.repeat is not None:
        vevent.add("rrule", _rrule(event, event.repeat))
        for day in event.repeat.skip:
            vevent.add("exdate", _moment(event, day))
    vevent.add("sequence", revision.sequence)
    vevent.add("created", revision.first_seen.astimezone(UTC))
    vevent.add("last-modified", revision.modified.astimezone(UTC))
    title = f"{words['cancelled']}: {event.title}" if event.cancelled else event.title
    vevent.add("summary", title)
    vevent.add("status", event.status.upper())
    _place(vevent, event, words)
    vevent.add("description", _description(event, context.site, words))
    vevent.add(
        "url",
        vUri(urls.absolute(context.site, urls.event_page(event))),
        parameters={"VALUE": "URI"},
    )
    if series.organizer is not None and series.organizer.email:
        vevent.add(
            "organizer",
            f"mailto:{series.organizer.email}",
            parameters={"CN": series.organizer.name},
        )
    if event.tags:
        vevent.add("categories", list(event.tags))
    vevent.add("class", "PUBLIC")
    vevent.add("transp", "TRANSPARENT" if event.all_day else "OPAQUE")
    return vevent


def _place(vevent: VEvent, event: Event, words: dict[str, str]) -> None:
    """LOCATION for every client; CONFERENCE (RFC 7986) for the ones that know it."""
    if event.location:
        vevent.add("location", event.location)
    elif event.online_url:
        vevent.add("location", event.online_url)
    if event.online_url:
        vevent.add(
            "conference",
            vUri(event.online_url),
            parameters={"VALUE": "URI", "FEATURE": "VIDEO", "LABEL": words["join_online"]},
        )


def _description(event: Event, site: Site, words: dict[str, str]) -> vText:
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
    return vText("\n\n".join(blocks))


def _when(moment: datetime | date, timezone: str) -> datetime | date:
    """Local time with a TZID, except where local time cannot say which instant is meant.

    A wall-clock time in the hour that repeats when clocks go back names two
    instants; clients resolve it differently (ical.js takes the later one), so
    such a time is written in UTC, which every client reads the same way.
    """
    if not isinstance(moment, datetime):
        return moment
    if timezone in UTC_NAMES or _ambiguous(moment):
        return moment.astimezone(UTC)
    return moment


def _ambiguous(moment: datetime) -> bool:
    return moment.replace(fold=0).utcoffset() != moment.replace(fold=1).utcoffset()


def _moment(event: Event, day: date) -> datetime | date:
    """The start of ``event``'s occurrence on ``day``, as RECURRENCE-ID and EXDATE name it."""
    if isinstance(event.start, datetime):
        return _when(datetime.combine(day, event.start.timetz()), event.timezone)
    return day


def _rrule(event: Event, rule: Repeat) -> dict[str, object]:
    parts: dict[str, object] = {
        "FREQ": {"day": "DAILY", "week": "WEEKLY", "month": "MONTHLY"}[rule.every]
    }
    if rule.interval != 1:
        parts["INTERVAL"] = rule.interval
    if rule.every == "week" and rule.weekdays:
        parts["BYDAY"] = [_WEEKDAYS[d] for d in rule.weekdays]
    if rule.count is not None:
        parts["COUNT"] = rule.count
    elif rule.until is not None:
        parts["UNTIL"] = _until(event, rule.until)
    return parts


def _until(event: Event, last_day: date) -> datetime | date:
    """UNTIL must be UTC when DTSTART has a TZID (RFC 5545): the end of the last day, local time."""
    if not isinstance(event.start, datetime):
        return last_day
    local = datetime.combine(last_day, time(23, 59, 59), tzinfo=ZoneInfo(event.timezone))
    return local.astimezone(UTC)
