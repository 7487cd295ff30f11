"""Our calendars as real clients read them: ical.js, libical and a strict parser.

The times the clients compute from the calendar's own VTIMEZONE are compared
with the times in the YAML (as loaded into the model, which other tests pin to
the text), in winter, in summer and around both DST changes: a calendar that
parses but shows a talk an hour late is the bug users hate most.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import icalendar
import pytest
import recurring_ical_events

from announcer import pipeline
from announcer.model import Event, Site
from announcer.recurrence import expand
from tests.conftest import EXAMPLE, FIXTURES, NOW
from tests.interop.clients import CLIENTS, CalendarDump, EventDump, strict_parse, utc_text


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Site, Path]]:
    """The example and the tricky project, each built once for this module."""
    results = {}
    for name, source in (("example", EXAMPLE), ("tricky", FIXTURES / "tricky")):
        root = tmp_path_factory.mktemp(name)
        shutil.copytree(source / "series", root / "series")
        shutil.copy(source / "announcer.yaml", root)
        result = pipeline.build(root, root / "public", now=NOW)
        results[name] = (result.site, result.output)
    return results


def calendars(out: Path) -> list[Path]:
    return sorted(out.rglob("*.ics"))


def expected_times(event: Event) -> tuple[str, str]:
    end = event.end_exclusive
    return utc_text(event.start), utc_text(end)


def find(dump: CalendarDump, uid: str, recurrence_id: str | None = None) -> EventDump:
    matches = [e for e in dump["events"] if e["uid"] == uid and e["recurrence_id"] == recurrence_id]
    assert len(matches) == 1, (uid, recurrence_id, [e["uid"] for e in dump["events"]])
    return matches[0]


@pytest.mark.parametrize("project", ["example", "tricky"])
def test_every_calendar_passes_the_strict_parser_and_folds_by_octets(
    built: dict[str, tuple[Site, Path]], project: str
) -> None:
    _, out = built[project]
    files = calendars(out)
    assert len(files) > 4
    for path in files:
        strict_parse(path)
        data = path.read_bytes()
        assert data.endswith(b"\r\n") and b"\n" not in data.replace(b"\r\n", b"")
        for line in data.split(b"\r\n"):
            assert len(line) <= 75, (path, line)
            line.decode("utf-8")  # a fold never splits a character


@pytest.mark.parametrize("client", sorted(CLIENTS))
@pytest.mark.parametrize("project", ["example", "tricky"])
def test_clients_show_each_event_at_the_time_written(
    built: dict[str, tuple[Site, Path]], project: str, client: str
) -> None:
    site, out = built[project]
    dump = CLIENTS[client](out / "calendar.ics")
    assert dump["errors"] == []
    events = list(site.events())
    assert {e["uid"] for e in dump["events"]} == {e.uid for e in events}
    for event in events:
        shown = find(dump, event.uid)
        assert (shown["start"], shown["end"]) == expected_times(event), event.key
        assert shown["all_day"] == event.all_day
        assert shown["status"] == event.status.upper()
        if event.repeat is not None:
            assert shown["occurrences"] == sorted(utc_text(o.start) for o in expand(event))


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_times_around_dst_changes_against_hand_computed_utc(
    built: dict[str, tuple[Site, Path]], client: str
) -> None:
    """Independent of the model: UTC instants worked out by hand from the YAML."""
    _, out = built["tricky"]
    dump = CLIENTS[client](out / "calendar.ics")
    by_title = {e["summary"]: e for e in dump["events"] if e["recurrence_id"] is None}
    expected = {
        # 2027-03-14 is the spring-forward Sunday in Toronto: noon is EDT (-4).
        "Le jour où l'on avance l'heure": ("2027-03-14T16:00:00Z", "2027-03-14T17:30:00Z"),
        # 2027-11-07 is the fall-back Sunday: 09:30 is EST (-5).
        "Le jour où l'on recule l'heure": ("2027-11-07T14:30:00Z", "2027-11-07T16:00:00Z"),
        "Ambiguous hour, offset given: 01:30 EDT": ("2027-11-07T05:30:00Z", "2027-11-07T05:59:00Z"),
        "Written in UTC (Z), shown in Montréal time": (
            "2027-07-01T16:00:00Z",
            "2027-07-01T16:45:00Z",
        ),
        # UK clocks go forward on 2027-03-28: 14:00 is BST (+1).
        "The Sunday clocks go forward (UK): 東京の講演": (
            "2027-03-28T13:00:00Z",
            "2027-03-28T14:00:00Z",
        ),
        # Paris leaves summer time on 2027-10-31 at 03:00: 10:00 is CET (+1).
        "A talk held in Paris, listed in a London series": (
            "2027-10-31T09:00:00Z",
            "2027-10-31T10:00:00Z",
        ),
        "A winter talk in London": ("2027-12-10T18:00:00Z", "2027-12-10T19:30:00Z"),
        "Colloque : trois jours, tout compris": ("2027-06-02", "2027-06-05"),
        "Journée d'étude (all day)": ("2027-05-20", "2027-05-21"),
    }
    for title, times in expected.items():
        assert (by_title[title]["start"], by_title[title]["end"]) == times, title


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_recurrence_across_dst_with_exceptions_and_changes(
    built: dict[str, tuple[Site, Path]], client: str
) -> None:
    _, out = built["tricky"]
    dump = CLIENTS[client](out / "ete-montreal/reading-group/event.ics")
    master = find(dump, "reading-group.ete-montreal@announcer")
    # Fridays 2027-02-26 .. 2027-04-09 at 12:00 Toronto; 03-05 skipped; 03-26 moved to 13:00.
    # Toronto springs forward on 03-14: noon is 17:00Z before, 16:00Z after.
    assert master["occurrences"] == [
        "2027-02-26T17:00:00Z",
        "2027-03-12T17:00:00Z",
        "2027-03-19T16:00:00Z",
        "2027-03-26T17:00:00Z",
        "2027-04-02T16:00:00Z",
        "2027-04-09T16:00:00Z",
    ]
    cancelled = find(dump, "reading-group.ete-montreal@announcer", "2027-03-19T16:00:00Z")
    assert cancelled["status"] == "CANCELLED"
    moved = find(dump, "reading-group.ete-montreal@announcer", "2027-03-26T16:00:00Z")
    assert (moved["start"], moved["location"]) == (
        "2027-03-26T17:00:00Z",
        "Salle 2200, Richcraft Hall",
    )


def test_recurring_ical_events_agrees(built: dict[str, tuple[Site, Path]]) -> None:
    site, out = built["tricky"]
    calendar = icalendar.Calendar.from_ical((out / "calendar.ics").read_bytes())
    found = recurring_ical_events.of(calendar).between(datetime(2027, 2, 1), datetime(2027, 5, 1))
    group = sorted(
        (e["DTSTART"].dt, str(e.get("STATUS")))
        for e in found
        if str(e["UID"]) == "reading-group.ete-montreal@announcer"
    )
    event = next(e for e in site.events() if e.repeat is not None)
    assert [(utc_text(s), st) for s, st in group] == [
        (utc_text(o.start), o.status.upper()) for o in expand(event)
    ]


def test_text_escaping_survives_the_round_trip(built: dict[str, tuple[Site, Path]]) -> None:
    _site, out = built["tricky"]
    for client in CLIENTS.values():
        dump = client(out / "ete-montreal/spring-forward-day/event.ics")
        event = dump["events"][0]
        assert (
            event["location"]
            == "Pavillon Président-Kennedy, salle PK-1140; 201, av. Président-Kennedy"
        )
        assert event["description"] is not None
        # Markdown joins a single line break; paragraphs stay apart.
        assert 'Une ligne Deux lignes, avec ; et \\ et "guillemets"\n\n' in event["description"]
        assert "Zoë Lévesque (UQAM, Département d'études urbaines)" in event["description"]


def test_calendar_properties_subscribers_use(built: dict[str, tuple[Site, Path]]) -> None:
    _site, out = built["example"]
    cal = icalendar.Calendar.from_ical((out / "policy-seminars/calendar.ics").read_bytes())
    assert str(cal["X-WR-CALNAME"]) == "Public Policy Research Seminars"
    # No X-WR-TIMEZONE: Google and recurring-ical-events re-read UTC times in it,
    # which would move a recurring UTC event by an hour after a DST change.
    assert "X-WR-TIMEZONE" not in cal
    assert cal["REFRESH-INTERVAL"].to_ical() == b"PT6H"
    assert str(cal["METHOD"]) == "PUBLISH"
    talk = next(c for c in cal.walk("VEVENT") if "nonprofit" in str(c["UID"]))
    assert str(talk["URL"]) == (
        "https://events.example.org/policy-seminars/2018-11-30-nonprofit-coproduction/"
    )
    assert str(talk["ORGANIZER"]) == "mailto:sppa-events@example.org"
    assert talk["ORGANIZER"].params["CN"] == "SPPA Events"
    assert talk["CATEGORIES"].cats == ["co-production", "non-profits", "public-services"]
    assert (
        "Caitlin McMullin (Centre for Interdisciplinary Research on Montreal, McGill University)"
        in str(talk["DESCRIPTION"])
    )
    cancelled = next(c for c in cal.walk("VEVENT") if "housing" in str(c["UID"]))
    assert str(cancelled["STATUS"]) == "CANCELLED"
    assert str(cancelled["SUMMARY"]).startswith("Cancelled: ")
    online = cancelled["CONFERENCE"]
    assert str(online) == "https://stream.example.org/sppa"
    assert online.params["FEATURE"] == "VIDEO"


def test_no_clock_in_the_output(example_project: Path, tmp_path: Path) -> None:
    """DTSTAMP comes from the ledger: two builds at different times give the same bytes."""
    root = example_project
    first = pipeline.build(root, tmp_path / "a", now=NOW)
    later = NOW.replace(year=2027)
    second = pipeline.build(root, tmp_path / "b", now=later)
    assert not first.changes and not second.changes
    for path in calendars(tmp_path / "a"):
        twin = tmp_path / "b" / path.relative_to(tmp_path / "a")
        assert twin.read_bytes() == path.read_bytes(), path
