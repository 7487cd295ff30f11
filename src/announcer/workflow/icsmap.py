"""One calendar event (a VEVENT and its changed occurrences) as the fields of an event file.

Times keep their instant: a single event is written as wall-clock time in the
series timezone, a recurring one in its own zone (the zone its rule repeats
in, so 12:00 stays 12:00 across DST). Zones are found by IANA name, by the
Windows name Outlook writes, or (Google) by X-WR-TIMEZONE for UTC and floating
times. Whatever announcer cannot express faithfully raises :class:`Skip` with
the reason, so nothing is imported subtly wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Event as VEvent
from icalendar.timezone import tzid_from_dt
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from announcer.model import Repeat
from announcer.recurrence import rule_dates
from announcer.times import TimeError, wall_clock, zone
from announcer.workflow.htmltext import to_markdown
from announcer.workflow.scaffold import slugify

Fields = dict[str, Any]
FREQUENCIES = {"DAILY": "day", "WEEKLY": "week", "MONTHLY": "month"}
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # as event files write them
STATUSES = {"CANCELLED": "cancelled", "TENTATIVE": "tentative"}
RULE_PARTS = {"FREQ", "INTERVAL", "BYDAY", "UNTIL", "COUNT", "WKST", "BYMONTHDAY"}


class Skip(Exception):
    """This event cannot be imported faithfully; the message says why."""


class Bare(str):
    """A value written bare in YAML (``start: 2027-03-05 12:00``, ``every: week``), not quoted."""


@dataclass(frozen=True)
class Zones:
    """Where times without a usable zone of their own are read."""

    series: str
    calendar: str | None = None  # X-WR-TIMEZONE

    @property
    def default(self) -> str:
        return self.calendar or self.series


def zone_name(moment: datetime, zones: Zones) -> str | None:
    """The IANA zone a time was written in; UTC and floating times take the calendar's."""
    if moment.tzinfo is None:
        return zones.default
    tzid = tzid_from_dt(moment) or ""
    if tzid.upper() in ("UTC", "Z", "ETC/UTC", "GMT") or (
        moment.utcoffset() == timedelta(0) and not tzid
    ):
        return zones.calendar or "UTC"
    for name in (tzid, WINDOWS_TO_OLSON.get(tzid, "")):
        try:
            zone(name)
        except TimeError:
            continue
        return name
    return None


def aware(moment: datetime, zones: Zones) -> datetime:
    """A floating time read in the calendar's zone; others as they are."""
    if moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=ZoneInfo(zones.default))


def written(moment: datetime | date, tz: tzinfo | None = None) -> Bare:
    """How an event file says this time: wall-clock, with the offset only where DST needs it."""
    if not isinstance(moment, datetime):
        return Bare(moment.isoformat())
    local = moment.astimezone(tz)
    text = f"{local:%Y-%m-%d %H:%M}" + (f":{local:%S}" if local.second else "")
    try:
        assert isinstance(tz, ZoneInfo)
        if wall_clock(local.replace(tzinfo=None), tz) == local:
            return Bare(text)
    except TimeError:
        pass
    offset = f"{local:%z}"
    return Bare(f"{text}{offset[:3]}:{offset[3:]}")


# --- one event -----------------------------------------------------------------------------------


def event_fields(master: VEvent, overrides: list[VEvent], zones: Zones) -> Fields:
    """The event file's fields, in the order organisers read them."""
    start, end = master.start, master.end
    recurring = bool(master.rrules)
    tz_name = _event_zone(start, recurring, zones)
    fields: Fields = {"title": _text(master.get("summary")) or "(untitled)"}
    fields.update(_span(start, end, tz_name, zones))
    if tz_name != zones.series and recurring and isinstance(start, datetime):
        fields["timezone"] = tz_name
    fields.update(details(master))
    fields["uid"] = str(master.uid)
    if recurring:
        fields["repeat"] = repeat(master, _local(start, tz_name, zones))
        changes = occurrences(master, overrides, fields["repeat"], tz_name, zones)
        if changes:
            fields["occurrences"] = changes
    elif overrides:
        raise Skip("it has changed occurrences but no repeat rule")
    return fields


def _event_zone(start: datetime | date, recurring: bool, zones: Zones) -> str:
    if not isinstance(start, datetime) or not recurring:
        return zones.series
    name = zone_name(start, zones)
    if name is None:
        raise Skip(
            f"it repeats in the timezone {tzid_from_dt(start)!r}, which is not an IANA or "
            "Windows name; add it by hand with 'timezone:'"
        )
    return name


def _local(moment: datetime | date, tz_name: str, zones: Zones) -> datetime | date:
    if isinstance(moment, datetime):
        return aware(moment, zones).astimezone(ZoneInfo(tz_name))
    return moment


def _span(start: datetime | date, end: datetime | date, tz_name: str, zones: Zones) -> Fields:
    """``start`` and ``end`` as the event file writes them (all-day ``end``: the last day)."""
    if not isinstance(start, datetime):
        last = end - timedelta(days=1) if isinstance(end, date) and end > start else start
        return {"start": Bare(start.isoformat())} | (
            {"end": Bare(last.isoformat())} if last > start else {}
        )
    assert isinstance(end, datetime)
    tz = ZoneInfo(tz_name)
    first, finish = aware(start, zones), aware(end, zones)
    if finish <= first:
        return {"start": written(first, tz)}  # no length given: the series' default_duration
    return {"start": written(first, tz), "end": written(finish, tz)}


def details(component: VEvent) -> Fields:
    """Place, links, description, tags and status: what pages and calendars show beside the time."""
    found: Fields = {}
    location = _text(component.get("location"))
    online = _online_url(component)
    if location.startswith(("http://", "https://")) and " " not in location:
        online, location = online or location, ""
    found.update({"location": location} if location else {})
    found.update({"online_url": online} if online else {})
    url = _text(component.get("url"))
    if url.startswith(("http://", "https://")):
        found["url"] = url
    abstract = description(component)
    found.update({"abstract": abstract} if abstract else {})
    tags = list(dict.fromkeys(t for t in (slugify(str(c), 80) for c in component.categories) if t))
    found.update({"tags": tags} if tags else {})
    status = STATUSES.get(str(component.get("status", "")).upper())
    found.update({"status": Bare(status)} if status else {})
    return found


def description(component: VEvent) -> str:
    """Markdown from DESCRIPTION, or from Outlook's HTML copy when there is no plain one."""
    text = _text(component.get("description"), keep_lines=True)
    if not text:
        alt = component.get("x-alt-desc")
        if alt is not None and "html" in str(alt.params.get("FMTTYPE", "")).lower():
            text = str(alt)
    return to_markdown(text) if text else ""


def _online_url(component: VEvent) -> str:
    for conference in component.conferences:
        if str(conference.uri).startswith(("http://", "https://")):
            return str(conference.uri)
    for name in ("x-google-conference", "x-microsoft-skypeteamsmeetingurl"):
        value = _text(component.get(name))
        if value.startswith(("http://", "https://")):
            return value
    return ""


def _text(value: object, keep_lines: bool = False) -> str:
    if value is None:
        return ""
    text = str(value).strip()
    return text if keep_lines else " ".join(text.split())


# --- recurrence ----------------------------------------------------------------------------------


def repeat(component: VEvent, first: datetime | date) -> Fields:
    """The ``repeat:`` mapping for the component's RRULE, or Skip when it cannot be said."""
    if len(component.rrules) > 1 or component.rdates:
        raise Skip("it has several repeat rules or extra dates (RDATE)")
    rule = {key.upper(): value for key, value in component.rrules[0].items()}
    unknown = sorted(set(rule) - RULE_PARTS)
    if unknown:
        raise Skip(f"its repeat rule uses {', '.join(unknown)}, which announcer cannot express")
    frequency = FREQUENCIES.get(str(rule["FREQ"][0]).upper())
    if frequency is None:
        raise Skip(
            f"it repeats {str(rule['FREQ'][0]).lower()}; announcer repeats daily, weekly or monthly"
        )
    fields: Fields = {"every": Bare(frequency)}
    interval = int(rule.get("INTERVAL", [1])[0])
    if interval != 1:
        fields["interval"] = interval
    fields.update(_weekdays(rule, frequency, first, interval))
    fields.update(_end(rule, first))
    skipped = _exdates(component, first, fields)
    if skipped:
        fields["except"] = [Bare(d.isoformat()) for d in skipped]
    return fields


def _day(moment: datetime | date) -> date:
    return moment.date() if isinstance(moment, datetime) else moment


def _weekdays(
    rule: dict[str, list[Any]], frequency: str, first: datetime | date, interval: int
) -> Fields:
    days = [str(d).upper() for d in rule.get("BYDAY", [])]
    monthday = [int(d) for d in rule.get("BYMONTHDAY", [])]
    if monthday and (frequency != "month" or monthday != [_day(first).day]):
        raise Skip("it repeats on days of the month other than its first date's")
    if not days:
        return {}
    if frequency != "week" or any(d not in WEEKDAYS for d in days):
        raise Skip(f"it repeats on {','.join(days)}, which announcer cannot express")
    if interval > 1 and len(days) > 1 and str(rule.get("WKST", ["MO"])[0]).upper() != "MO":
        raise Skip("its weeks start on another day than Monday, which changes which days it meets")
    if WEEKDAYS[_day(first).weekday()] not in days:
        raise Skip("its first date is not one of the weekdays it repeats on")
    return {"on": [DAY_NAMES[WEEKDAYS.index(d)] for d in days]}


def _end(rule: dict[str, list[Any]], first: datetime | date) -> Fields:
    if "COUNT" in rule:
        return {"count": int(rule["COUNT"][0])}
    if "UNTIL" not in rule:
        raise Skip(
            "it repeats forever; announcer needs an end ('until' or 'count'): add one by hand"
        )
    until = rule["UNTIL"][0]
    if isinstance(until, datetime) and isinstance(first, datetime):
        local = (
            until.astimezone(first.tzinfo) if until.tzinfo else until.replace(tzinfo=first.tzinfo)
        )
        last = local.date() if local.time() >= first.time() else local.date() - timedelta(days=1)
    else:
        last = _day(until)
    return {"until": Bare(last.isoformat())}


def _exdates(component: VEvent, first: datetime | date, fields: Fields) -> list[date]:
    """Excluded dates that the rule produces (others exclude nothing and would be refused)."""
    tz = first.tzinfo if isinstance(first, datetime) else None
    wanted = {
        _day(d.astimezone(tz)) if isinstance(d, datetime) and d.tzinfo else _day(d)
        for d in component.exdates
    }
    produced = set(rule_dates(_day(first), model_rule(fields)))
    return sorted(wanted & produced)


def model_rule(fields: Fields) -> Repeat:
    """The loader's Repeat for a ``repeat:`` mapping written here, to list its dates."""
    return Repeat(
        every=fields["every"],
        interval=fields.get("interval", 1),
        weekdays=tuple(sorted(DAY_NAMES.index(d) for d in fields.get("on", []))),
        until=date.fromisoformat(fields["until"]) if "until" in fields else None,
        count=fields.get("count"),
        skip=tuple(date.fromisoformat(d) for d in fields.get("except", [])),
    )


# --- changed occurrences -------------------------------------------------------------------------


def occurrences(
    master: VEvent, overrides: list[VEvent], rule: Fields, tz_name: str, zones: Zones
) -> dict[Bare, Fields]:
    """``occurrences:``: per original date, what differs from the plain occurrence."""
    first = _local(master.start, tz_name, zones)
    model = model_rule(rule)
    valid = set(rule_dates(_day(first), model)) - set(model.skip)
    length = _length(master.start, master.end)
    found: dict[Bare, Fields] = {}
    for override in overrides:
        day = _day(_local(override.get("recurrence-id").dt, tz_name, zones))
        if str(override.get("recurrence-id").params.get("RANGE", "")).upper() == "THISANDFUTURE":
            raise Skip("it changes 'this and all following' occurrences (RANGE=THISANDFUTURE)")
        if day not in valid:
            raise Skip(f"it changes an occurrence on {day}, a date its rule does not produce")
        changed = _changes(master, override, first, day, length, tz_name, zones)
        if changed:
            found[Bare(day.isoformat())] = changed
    return dict(sorted(found.items()))


def _length(start: datetime | date, end: datetime | date) -> timedelta:
    if isinstance(start, datetime) and isinstance(end, datetime):
        return end - start
    return timedelta(days=(_day(end) - _day(start)).days)


def _changes(
    master: VEvent, override: VEvent, first: datetime | date, day: date,
    length: timedelta, tz_name: str, zones: Zones,
) -> Fields:  # fmt: skip
    """The fields of one changed occurrence that differ from the rule's plain occurrence."""
    plain_start: datetime | date = day
    if isinstance(first, datetime):
        plain_start = datetime.combine(day, first.timetz())
    start, end = _local(override.start, tz_name, zones), _local(override.end, tz_name, zones)
    found: Fields = {}
    if start != plain_start or _length(start, end) != length:
        found.update(_span(override.start, override.end, tz_name, zones))
    title = _text(override.get("summary"))
    if title and title != _text(master.get("summary")):
        found["title"] = title
    mine, theirs = details(override), details(master)
    for key in ("location", "online_url", "url", "abstract"):
        if mine.get(key, "") != theirs.get(key, ""):
            found[key] = mine.get(key, "")
    if mine.get("status", "confirmed") != theirs.get("status", "confirmed"):
        found["status"] = Bare(mine.get("status", "confirmed"))
    return found
