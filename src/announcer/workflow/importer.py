"""``announcer import``: an exported calendar (Google, Outlook, Indico) as event files.

Each event keeps its UID (``uid:``), so people already subscribed to the old
calendar see the same events, not duplicates. What announcer cannot express
faithfully (a rule that repeats forever, yearly, or on "the second Tuesday") is
skipped with the reason, and what it does not use (alarms, attendees) is named,
never silently lost. The result is checked by loading the project: a file the
loader refuses is removed again and reported with the loader's own words.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from icalendar import Calendar, Component
from icalendar import Event as VEvent

from announcer.errors import ConfigError, ValidationFailed, display_path
from announcer.load import load_site
from announcer.load.fields import SLUG
from announcer.load.project import SERIES_DIR
from announcer.model import Site
from announcer.times import TimeError, zone
from announcer.workflow.icsmap import Bare, Fields, Skip, Zones, event_fields, zone_name
from announcer.workflow.scaffold import ID_LIMIT, TITLE_SLUG_LIMIT, slugify

NOTABLE = {
    "ATTENDEE": "attendees",
    "ORGANIZER": "organizers (the series' organizer is used)",
    "ATTACH": "attachments",
    "GEO": "map coordinates",
    "CONTACT": "contacts",
    "RESOURCES": "resources",
    "COMMENT": "comments",
}
# Characters a YAML file may not hold as they are (or that YAML reads as line breaks).
_NOT_YAML = re.compile(
    "[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]|[\u2028\u2029\x85]"
)


@dataclass
class ImportReport:
    series: str
    created_series: bool = False
    written: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (which event, why)
    ignored: Counter[str] = field(default_factory=Counter)  # what was not imported, in how many


@dataclass
class Group:
    """A VEVENT and the VEVENTs that change single occurrences of it (same UID)."""

    master: VEvent | None = None
    overrides: list[VEvent] = field(default_factory=list)


def import_calendar(
    project: Path, source: Path, series: str, timezone: str | None = None
) -> ImportReport:
    """Write one event file per calendar event into ``series``; see the module docstring."""
    calendars = read_calendars(source)
    site = load_site(project)  # the project must be valid, to know its ids and UIDs
    report = ImportReport(series)
    zones = prepare_series(project, site, series, calendars, timezone, report)
    events_dir = project / SERIES_DIR / series / "events"
    events_dir.mkdir(parents=True, exist_ok=True)
    known = {e.uid.lower(): e.source for e in site.events()}
    taken = {p.stem for p in events_dir.glob("*.yaml")}
    for uid, group in groups(calendars, report).items():
        fields = _convert(uid, group, zones, known, report)
        if fields is not None:
            path = events_dir / f"{unique_id(fields, taken)}.yaml"
            path.write_text(dump(fields), encoding="utf-8")
            report.written.append(display_path(path, project))
    validate(project, report)
    return report


def read_calendars(source: Path) -> list[Calendar]:
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {source}: {exc.strerror}") from None
    try:
        calendars: list[Calendar] = Calendar.from_ical(data, multiple=True)
    except ValueError as exc:
        raise ConfigError(f"{source} is not an iCalendar (.ics) file: {exc}") from None
    if not calendars:
        raise ConfigError(f"{source} holds no calendar (no BEGIN:VCALENDAR)")
    return calendars


# --- the series ----------------------------------------------------------------------------------


def prepare_series(
    project: Path,
    site: Site,
    slug: str,
    calendars: list[Calendar],
    timezone: str | None,
    report: ImportReport,
) -> Zones:
    """The series' zones; a series that does not exist yet is created from the calendar."""
    calendar_tz = _calendar_zone(calendars)
    existing = next((s for s in site.series if s.slug == slug), None)
    if existing is not None:
        if timezone and timezone != existing.timezone:
            raise ConfigError(
                f"series {slug} already has timezone {existing.timezone}; "
                "--timezone only applies to a series the import creates"
            )
        return Zones(existing.timezone, calendar_tz)
    if not SLUG.fullmatch(slug):
        raise ConfigError(f"series {slug!r} is not a valid slug: use a-z, 0-9 and '-'")
    tz = timezone or calendar_tz or _common_zone(calendars) or "UTC"
    _check_zone(tz)
    _write_series(project / SERIES_DIR / slug, tz, calendars[0], slug)
    report.created_series = True
    return Zones(tz, calendar_tz)


def _calendar_zone(calendars: list[Calendar]) -> str | None:
    """X-WR-TIMEZONE, the zone Google writes for times given in UTC."""
    for calendar in calendars:
        name = str(calendar.get("x-wr-timezone", "")).strip()
        if name:
            _check_zone(name)
            return name
    return None


def _common_zone(calendars: list[Calendar]) -> str | None:
    starts = [
        event.start
        for calendar in calendars
        for event in calendar.walk("VEVENT")
        if isinstance(event, VEvent) and event.get("dtstart") is not None
    ]
    zones = Counter(
        name
        for start in starts
        if isinstance(start, datetime) and (name := zone_name(start, Zones("UTC"))) != "UTC"
    )
    return zones.most_common(1)[0][0] if zones else None


def _check_zone(name: str) -> None:
    try:
        zone(name)
    except TimeError as exc:
        raise ConfigError(f"{exc} ({exc.hint})") from None


def _write_series(folder: Path, tz: str, calendar: Calendar, slug: str) -> None:
    title = (
        " ".join(str(calendar.get("x-wr-calname", "")).split())
        or slug.replace("-", " ").capitalize()
    )
    fields: Fields = {"title": title, "timezone": Bare(tz)}
    about = str(calendar.get("x-wr-caldesc", "")).strip()
    if about:
        fields["description"] = about
    folder.mkdir(parents=True)
    (folder / "series.yaml").write_text(dump(fields), encoding="utf-8")


# --- events --------------------------------------------------------------------------------------


def groups(calendars: list[Calendar], report: ImportReport) -> dict[str, Group]:
    """Events by UID, each with its changed occurrences; other components are named and left."""
    found: dict[str, Group] = {}
    for number, component in enumerate(c for cal in calendars for c in cal.subcomponents):
        if component.name in ("VTODO", "VJOURNAL"):
            kind = "task" if component.name == "VTODO" else "journal entry"
            report.skipped.append((_name(component), f"it is a {kind}, not an event"))
        if not isinstance(component, VEvent):
            continue
        _note_ignored(component, report)
        uid = str(component.get("uid", "")).strip() or f"#{number}"
        group = found.setdefault(uid, Group())
        if component.get("recurrence-id") is not None:
            group.overrides.append(component)
        elif group.master is None:
            group.master = component
        else:
            report.skipped.append((_name(component), f"its UID {uid} is used twice in the file"))
    return found


def _note_ignored(component: Component, report: ImportReport) -> None:
    for name, words in NOTABLE.items():
        if name in component:
            report.ignored[words] += 1
    if component.walk("VALARM"):
        report.ignored["alarms (subscribers set their own)"] += 1


def _name(component: Component) -> str:
    title = " ".join(str(component.get("summary", "")).split()) or "(untitled)"
    start = component.get("dtstart")
    return f"{title!r}" + (f" on {start.dt:%Y-%m-%d}" if start is not None else "")


def _convert(
    uid: str, group: Group, zones: Zones, known: dict[str, str], report: ImportReport
) -> Fields | None:
    """The event's fields, or None after recording why it was skipped."""
    if group.master is None:
        what = _name(group.overrides[0])
        report.skipped.append(
            (what, "it changes an occurrence of a recurring event not in the file")
        )
        return None
    what = _name(group.master)
    if uid.lower() in known:
        report.skipped.append((what, f"it is already in the project as {known[uid.lower()]}"))
        return None
    if group.master.get("dtstart") is None:
        report.skipped.append((what, "it has no start time"))
        return None
    try:
        fields = event_fields(group.master, group.overrides, zones)
    except Skip as exc:
        report.skipped.append((what, str(exc)))
        return None
    if uid.startswith("#"):
        del fields["uid"]  # no UID in the file: announcer derives a stable one
    return fields


def unique_id(fields: Fields, taken: set[str]) -> str:
    """``<date>-<title slug>``, with ``-2``, ``-3``... when two events would share it."""
    day = str(fields["start"])[:10]
    base = f"{day}-{slugify(fields['title'], min(TITLE_SLUG_LIMIT, ID_LIMIT - 14)) or 'event'}"
    ident, number = base, 1
    while ident in taken:
        number += 1
        ident = f"{base}-{number}"
    taken.add(ident)
    return ident


def validate(project: Path, report: ImportReport) -> None:
    """Load the project; each new file it refuses is removed and reported, until it loads."""
    while True:
        try:
            load_site(project)
            return
        except ValidationFailed as exc:
            bad = {
                w for w in report.written for d in exc.diagnostics if d.path == w or w in d.message
            }
            if not bad:
                raise
            for written in sorted(bad):
                reasons = "; ".join(d.message for d in exc.diagnostics if d.path == written)
                (project / written).unlink()
                report.written.remove(written)
                report.skipped.append((written, reasons or "announcer check refused it"))


# --- writing YAML --------------------------------------------------------------------------------


def dump(fields: Fields) -> str:
    """An event file as an organiser would write it: plain keys, bare times, block text."""
    return (
        "\n".join(line for key, value in fields.items() for line in _entry(key, value, "")) + "\n"
    )


def _entry(key: str, value: Any, pad: str) -> list[str]:
    if isinstance(value, dict):
        nested = [line for k, v in value.items() for line in _entry(str(k), v, pad + "  ")]
        return [f"{pad}{key}:", *nested]
    if isinstance(value, list):
        return [f"{pad}{key}: [{', '.join(_item(v) for v in value)}]"]
    if _block(value):
        indicator = "2" if value[:1] == " " else ""  # the first line starts with a space
        lines = [f"{pad}  {line}" if line else "" for line in value.split("\n")]
        return [f"{pad}{key}: |{indicator}", *lines]
    return [f"{pad}{key}: {_scalar(value)}"]


def _block(value: Any) -> bool:
    """Several lines of text go in a literal block, which keeps them as they are."""
    is_text = isinstance(value, str) and not isinstance(value, Bare)
    return is_text and "\n" in value and not _NOT_YAML.search(value)


def _item(value: Any) -> str:
    """A list item: tags and weekdays bare (``[housing, fri]``) when YAML reads them as text."""
    if isinstance(value, str) and SLUG.fullmatch(value) and value[0].isalpha() and value != "null":
        return value
    return _scalar(value)


def _scalar(value: Any) -> str:
    if isinstance(value, Bare | int):
        return str(value)
    text = json.dumps(str(value), ensure_ascii=False)  # a JSON string is a YAML double-quoted one
    return _NOT_YAML.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
