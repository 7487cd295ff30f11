"""One event file -> one :class:`~announcer.model.Event`, or located errors."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import yaml

from announcer.load.fields import Fields, Reader, check_slug, kind_of
from announcer.model import FREQUENCIES, STATUSES, Event, Repeat, Speaker
from announcer.recurrence import MAX_OCCURRENCES, occurrence, rule_dates
from announcer.times import (
    TimeError,
    Written,
    parse_duration,
    parse_written,
    resolve,
    wall_clock,
    zone,
)

EVENT_KEYS = (
    "title",
    "start",
    "end",
    "duration",
    "timezone",
    "speakers",
    "speaker",
    "location",
    "online_url",
    "url",
    "abstract",
    "tags",
    "status",
    "uid",
    "repeat",
    "occurrences",
)
OCCURRENCE_KEYS = (
    "title",
    "start",
    "end",
    "duration",
    "speakers",
    "speaker",
    "location",
    "online_url",
    "url",
    "abstract",
    "status",
)
SPEAKER_KEYS = ("name", "affiliation", "bio", "url")
REPEAT_KEYS = ("every", "interval", "on", "until", "count", "except")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_URL = re.compile(r"https?://[^\s/$.?#\"<>][^\s\"<>]*", re.IGNORECASE)


@dataclass(frozen=True)
class SeriesDefaults:
    """What an event inherits from its series."""

    slug: str
    timezone: str
    duration: timedelta
    location: str


def uid_for(series: str, event_id: str) -> str:
    """The derived UID: depends on nothing but the series slug and event id."""
    return f"{event_id}.{series}@announcer"


def read_event(
    reader: Reader, root: yaml.Node, event_id: str, series: SeriesDefaults
) -> Event | None:
    fields = reader.mapping(root, "an event", EVENT_KEYS)
    if fields is None:
        return None
    before = len(reader.problems)
    base = _base_event(fields, event_id, series)
    if base is None or len(reader.problems) > before:
        return None
    if "repeat" in fields:
        return _recurring(fields, base)
    if "occurrences" in fields:
        fields.error(
            "occurrences",
            "'occurrences' needs a 'repeat' rule in the same file",
            "add 'repeat:' or remove 'occurrences:'",
        )
        return None
    return base


def _base_event(fields: Fields, event_id: str, series: SeriesDefaults) -> Event | None:
    fields.require("title", "start")
    tz_name = fields.text("timezone", series.timezone)
    try:
        zone(tz_name)
    except TimeError as exc:
        fields.error("timezone", str(exc), exc.hint)
        return None
    span = _span(fields, tz_name, series.duration)
    uid = fields.text("uid") or uid_for(series.slug, event_id)
    if span is None:
        return None
    return Event(
        series=series.slug,
        id=event_id,
        uid=uid,
        title=fields.text("title").strip(),
        start=span[0],
        end=span[1],
        timezone=tz_name,
        speakers=_speakers(fields),
        location=fields.text("location", series.location).strip(),
        online_url=_url(fields, "online_url"),
        url=_url(fields, "url"),
        abstract=fields.text("abstract"),
        tags=_tags(fields),
        status=fields.choice("status", STATUSES, "confirmed"),
        source=fields.reader.path,
    )


def _span(
    fields: Fields, tz_name: str, default: timedelta
) -> tuple[datetime | date, datetime | date] | None:
    """(start, end) with the contract's rules: all-day ends inclusive, timed ends after start."""
    start_w = fields.parsed("start", parse_written)
    if start_w is None:
        return None
    if "end" in fields and "duration" in fields:
        fields.error("duration", "give either 'end' or 'duration', not both", "remove one of them")
        return None
    end_w = fields.parsed("end", parse_written)
    length = fields.parsed("duration", parse_duration)
    if ("end" in fields and end_w is None) or ("duration" in fields and length is None):
        return None
    if start_w.date_only:
        return _all_day(fields, start_w, end_w, length)
    return _timed(fields, start_w, end_w, length or default, tz_name)


def _all_day(
    fields: Fields, start_w: Written, end_w: Written | None, length: timedelta | None
) -> tuple[date, date] | None:
    if end_w is not None and not end_w.date_only:
        fields.error(
            "end",
            "'end' has a time but 'start' is a date (an all-day event)",
            "give 'end' as a date too: the last day, inclusive",
        )
        return None
    if length is not None and (length.seconds or length.days < 1):
        fields.error("duration", "an all-day event lasts whole days", "write e.g. 'duration: 2d'")
        return None
    start = start_w.day
    end = end_w.day if end_w else start + timedelta(days=(length.days if length else 1) - 1)
    if end < start:
        fields.error(
            "end",
            f"'end' ({end}) is before 'start' ({start})",
            "for all-day events 'end' is the last day, inclusive",
        )
        return None
    return start, end


def _timed(
    fields: Fields, start_w: Written, end_w: Written | None, length: timedelta, tz_name: str
) -> tuple[datetime, datetime] | None:
    tz = zone(tz_name)
    try:
        start = resolve(start_w, tz)
    except TimeError as exc:
        fields.error("start", f"'start': {exc}", exc.hint)
        return None
    if end_w is None:
        return start, (start.replace(tzinfo=None) + length).replace(tzinfo=tz)
    if end_w.date_only:
        fields.error(
            "end",
            "'end' is a date but 'start' has a time",
            "give 'end' a time too, e.g. 2018-11-30 13:00",
        )
        return None
    try:
        end = resolve(end_w, tz)
    except TimeError as exc:
        fields.error("end", f"'end': {exc}", exc.hint)
        return None
    if end <= start:
        fields.error(
            "end",
            f"'end' ({end:%Y-%m-%d %H:%M}) is not after 'start' ({start:%Y-%m-%d %H:%M})",
            "check the date and time; use 'duration' for a length instead",
        )
        return None
    return start, end


def _url(fields: Fields, key: str) -> str:
    value = fields.text(key).strip()
    if value and not _URL.fullmatch(value):
        fields.error(
            key,
            f"{key!r} is not a web address: {value!r}",
            "write a full address starting with https://",
        )
        return ""
    return value


def _tags(fields: Fields) -> tuple[str, ...]:
    tags: list[str] = []
    for tag, node in fields.texts("tags"):
        if check_slug(fields.reader, node, tag, "tag") and tag not in tags:
            tags.append(tag)
    return tuple(tags)


def _speakers(fields: Fields) -> tuple[Speaker, ...]:
    if "speaker" in fields and "speakers" in fields:
        fields.error("speaker", "give either 'speaker' or 'speakers', not both")
        return ()
    node = fields.get("speakers") or fields.get("speaker")
    if node is None:
        return ()
    items = node.value if isinstance(node, yaml.SequenceNode) else [node]
    found = (_speaker(fields.reader, item) for item in items)
    return tuple(s for s in found if s is not None)


def _speaker(reader: Reader, node: yaml.Node) -> Speaker | None:
    if isinstance(node, yaml.ScalarNode) and node.value.strip():
        return Speaker(name=node.value.strip())
    fields = reader.mapping(node, "a speaker", SPEAKER_KEYS)
    if fields is None or not fields.require("name"):
        return None
    return Speaker(
        name=fields.text("name").strip(),
        affiliation=fields.text("affiliation").strip(),
        bio=fields.text("bio"),
        url=_url(fields, "url"),
    )


def _recurring(fields: Fields, base: Event) -> Event | None:
    rule = _repeat(fields, base)
    if rule is None:
        return None
    event = replace(base, repeat=rule)
    overrides = _overrides(fields, event)
    return None if overrides is None else replace(event, overrides=overrides)


def _repeat(parent: Fields, base: Event) -> Repeat | None:
    reader = parent.reader
    fields = reader.mapping(parent.get("repeat"), "'repeat'", REPEAT_KEYS)
    if fields is None or not fields.require("every"):
        return None
    before = len(reader.problems)
    every = fields.choice("every", FREQUENCIES, "week")
    first = _first_day(base)
    weekdays = _weekdays(fields, every, first)
    until = fields.parsed("until", _date)
    count = fields.integer("count", minimum=1)
    skip = tuple(d for d, _ in _dates(fields, "except"))
    if until is None and count is None and len(reader.problems) == before:
        fields.error(None, "'repeat' has no end", "add 'until: YYYY-MM-DD' or 'count: N'")
    elif until is not None and count is not None:
        fields.error("count", "give either 'until' or 'count', not both")
    elif until is not None and until < first:
        fields.error("until", f"'until' ({until}) is before the first 'start' ({first})")
    if len(reader.problems) > before:
        return None
    rule = Repeat(
        every=every,
        interval=fields.integer("interval", minimum=1) or 1,
        weekdays=weekdays,
        until=until,
        count=count,
        skip=skip,
    )
    return _bounded(fields, rule, base)


def _bounded(fields: Fields, rule: Repeat, base: Event) -> Repeat | None:
    dates = set(rule_dates(_first_day(base), rule))
    if len(dates) >= MAX_OCCURRENCES:
        fields.error(
            None,
            f"'repeat' makes {MAX_OCCURRENCES} or more occurrences",
            "split the series into several files, or end it sooner",
        )
        return None
    for day, node in _dates(fields, "except"):
        if day not in dates:
            fields.error(
                node,
                f"'except' date {day} is not an occurrence of this event",
                "list only dates the rule produces",
            )
    if isinstance(base.start, datetime):
        _check_wall_clocks(fields, sorted(dates - set(rule.skip)), base.start)
    return rule


def _check_wall_clocks(fields: Fields, days: list[date], start: datetime) -> None:
    """Occurrences keep the first one's clock time, which a DST change may skip or repeat."""
    tz = start.tzinfo
    assert isinstance(tz, ZoneInfo)
    for day in days:
        try:
            wall_clock(datetime.combine(day, start.time()), tz)
        except TimeError as exc:
            fields.error(
                None,
                f"the occurrence on {day}: {exc}",
                "add that date to 'except', or choose another time",
            )


def _weekdays(fields: Fields, every: str, first: date) -> tuple[int, ...]:
    names = fields.texts("on")
    if names and every != "week":
        fields.error("on", "'on' only applies to 'every: week'", "remove 'on'")
        return ()
    days = []
    for name, node in names:
        short = name.strip().lower()[:3]
        if short not in WEEKDAYS:
            fields.error(
                node, f"{name!r} is not a weekday", "use mon, tue, wed, thu, fri, sat, sun"
            )
        else:
            days.append(WEEKDAYS.index(short))
    if days and first.weekday() not in days:
        fields.error(
            "on",
            f"'start' ({first}) is a {WEEKDAYS[first.weekday()]}, not in 'on'",
            "make 'start' the first occurrence",
        )
    return tuple(sorted(set(days)))


def _dates(fields: Fields, key: str) -> list[tuple[date, yaml.Node]]:
    found = []
    for text, node in fields.texts(key):
        try:
            found.append((_date(text), node))
        except ValueError:
            fields.error(node, f"{text!r} in {key!r} is not a date", "write YYYY-MM-DD")
    return found


def _date(text: str) -> date:
    written = parse_written(text)
    if not written.date_only:
        raise TimeError(f"{text!r} has a time", "write a date only: YYYY-MM-DD")
    return written.day


def _first_day(event: Event) -> date:
    return event.start.date() if isinstance(event.start, datetime) else event.start


def _overrides(parent: Fields, event: Event) -> tuple[Event, ...] | None:
    node = parent.get("occurrences")
    if node is None:
        return ()
    reader = parent.reader
    if not isinstance(node, yaml.MappingNode):
        reader.error(node, f"'occurrences' must map dates to changes, found {kind_of(node)}")
        return None
    assert event.repeat is not None
    valid = set(rule_dates(_first_day(event), event.repeat)) - set(event.repeat.skip)
    found = [_override(reader, key, value, event, valid) for key, value in node.value]
    return None if None in found else tuple(sorted((o for o in found if o), key=_rid))


def _rid(event: Event) -> date:
    assert event.recurrence_id is not None
    return event.recurrence_id


def _override(
    reader: Reader, key: yaml.Node, value: yaml.Node, event: Event, valid: set[date]
) -> Event | None:
    try:
        day = _date(str(key.value))
    except ValueError:
        reader.error(key, f"{key.value!r} in 'occurrences' is not a date", "write YYYY-MM-DD")
        return None
    if day not in valid:
        reader.error(
            key,
            f"{day} is not an occurrence of this event",
            "use a date the 'repeat' rule produces (and not one in 'except')",
        )
        return None
    fields = reader.mapping(value, f"the change for {day}", OCCURRENCE_KEYS)
    if fields is None:
        return None
    return _apply(fields, event, day)


def _apply(fields: Fields, event: Event, day: date) -> Event | None:
    plain = occurrence(event, day)
    if "start" in fields or "end" in fields or "duration" in fields:
        start_w = fields.parsed("start", parse_written) if "start" in fields else None
        moved = _moved(fields, plain, start_w)
        if moved is None:
            return None
        plain = replace(plain, start=moved[0], end=moved[1])
    changes: dict[str, object] = {}
    for key in ("title", "location", "abstract"):
        if key in fields:
            changes[key] = fields.text(key)
    for key in ("online_url", "url"):
        if key in fields:
            changes[key] = _url(fields, key)
    if "status" in fields:
        changes["status"] = fields.choice("status", STATUSES, "confirmed")
    if "speaker" in fields or "speakers" in fields:
        changes["speakers"] = _speakers(fields)
    return replace(plain, **changes)  # type: ignore[arg-type]


def _moved(
    fields: Fields, plain: Event, start_w: Written | None
) -> tuple[datetime | date, datetime | date] | None:
    length = plain.finishes - plain.begins
    if start_w is None:
        start_w = Written(_first_day(plain), None if plain.all_day else _clock(plain.start), None)
    end_w = fields.parsed("end", parse_written)
    duration = fields.parsed("duration", parse_duration)
    if start_w.date_only:
        return _all_day(fields, start_w, end_w, duration or (None if end_w else length))
    return _timed(fields, start_w, end_w, duration or length, plain.timezone)


def _clock(moment: datetime | date) -> tuple[int, int, int]:
    assert isinstance(moment, datetime)
    return moment.hour, moment.minute, moment.second
