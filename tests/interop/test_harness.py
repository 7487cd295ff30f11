"""The harness must read hand-written calendars right before it may judge ours.

Every expected time is computed here with zoneinfo, from the wall-clock times
written in the fixtures, never copied from a dumper's output.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from .clients import (
    CLIENTS,
    LIBICAL_SOURCE,
    CalendarDump,
    Dumper,
    EventDump,
    StrictParseError,
    ToolMissingError,
    build_libical_dumper,
    icaljs_dump,
    libical_dump,
    require_node_modules,
    require_tool,
    strict_parse,
    utc_text,
)

FIXTURES = Path(__file__).parent / "fixtures"
TORONTO = ZoneInfo("America/Toronto")
GOOD = ["toronto.ics", "all_day.ics", "weekly_dst.ics", "override.ics"]


def toronto(year: int, month: int, day: int, hour: int, minute: int = 0) -> str:
    """A Toronto wall-clock time as the UTC text the dumpers print."""
    return utc_text(datetime(year, month, day, hour, minute, tzinfo=TORONTO))


def event(dump: CalendarDump, uid: str, *, override: bool = False) -> EventDump:
    """The one master (or override) event with this UID."""
    found = [
        e
        for e in dump["events"]
        if e["uid"] == uid and (e["recurrence_id"] is not None) == override
    ]
    assert len(found) == 1, f"{uid}: {found}"
    return found[0]


clients = pytest.mark.parametrize("dump", CLIENTS.values(), ids=CLIENTS.keys())


@clients
def test_toronto_winter_and_summer_offsets(dump: Dumper) -> None:
    result = dump(FIXTURES / "toronto.ics")
    assert result["errors"] == []
    winter = event(result, "winter-2026@fixtures.announcer.test")
    summer = event(result, "summer-2026@fixtures.announcer.test")
    assert (winter["start"], winter["end"]) == (
        toronto(2026, 1, 15, 10),
        toronto(2026, 1, 15, 11, 30),
    )
    assert (summer["start"], summer["end"]) == (
        toronto(2026, 7, 15, 10),
        toronto(2026, 7, 15, 11, 30),
    )
    # Guards the fixture itself: the two must straddle a change of UTC offset.
    assert winter["start"][11:] != summer["start"][11:]
    assert winter["tzid"] == summer["tzid"] == "America/Toronto"
    assert winter["all_day"] is False
    assert winter["occurrences"] == []


@clients
def test_text_is_unescaped_and_unfolded(dump: Dumper) -> None:
    result = dump(FIXTURES / "toronto.ics")
    winter = event(result, "winter-2026@fixtures.announcer.test")
    assert winter["summary"] == 'Winter meetup, room 2; bring "snacks"'
    assert winter["description"] == (
        "Line one\nLine two with a backslash \\ and a long tail that"
        " is folded across two physical lines per RFC 5545."
    )
    assert winter["location"] == "Café Réunion, 100 Queen St W"
    assert winter["categories"] == ["Meetup", "Winter"]
    assert winter["url"] == "https://example.org/events/winter-2026"
    assert winter["status"] == "CONFIRMED"
    assert winter["sequence"] == 2
    summer = event(result, "summer-2026@fixtures.announcer.test")
    assert (summer["description"], summer["sequence"], summer["status"]) == (
        None,
        None,
        "TENTATIVE",
    )
    assert result["calendar"]["X-WR-CALNAME"] == "Toronto Meetups"
    assert result["calendar"]["METHOD"] == "PUBLISH"
    assert result["calendar"]["PRODID"] == "-//announcer//interop fixtures//EN"


@clients
def test_all_day_events_stay_dates(dump: Dumper) -> None:
    result = dump(FIXTURES / "all_day.ics")
    assert result["errors"] == []
    picnic = event(result, "canada-day-2026@fixtures.announcer.test")
    closed = event(result, "holidays-2026@fixtures.announcer.test")
    assert picnic["all_day"] is closed["all_day"] is True
    assert (picnic["start"], picnic["end"]) == ("2026-07-01", "2026-07-02")
    assert (closed["start"], closed["end"]) == (
        date(2026, 12, 24).isoformat(),
        (date(2026, 12, 24) + timedelta(days=3)).isoformat(),
    )
    assert picnic["tzid"] is None


def weekly(first: datetime, count: int) -> list[datetime]:
    """Weekly wall-clock times in Toronto: same local hour, whatever the offset."""
    return [first + timedelta(weeks=n) for n in range(count)]


@clients
def test_weekly_rule_keeps_local_time_across_dst_and_drops_exdate(dump: Dumper) -> None:
    result = dump(FIXTURES / "weekly_dst.ics")
    assert result["errors"] == []
    series = event(result, "weekly-thursday@fixtures.announcer.test")
    local = weekly(datetime(2026, 2, 26, 19, tzinfo=TORONTO), 6)
    expected = [utc_text(t) for t in local if t.date() != date(2026, 3, 19)]
    assert series["occurrences"] == expected
    assert len({t[11:] for t in expected}) == 2, "fixture must cross the March DST change"
    assert series["start"] == expected[0]
    assert series["end"] == toronto(2026, 2, 26, 21)


@clients
def test_utc_until_is_compared_as_an_instant(dump: Dumper) -> None:
    # UNTIL is 21:59:59Z; the 16 March class starts at 22:00Z (18:00 EDT) and
    # must not appear, though 18:00 is before 21:59:59 on the wall clock.
    until = datetime(2026, 3, 16, 21, 59, 59, tzinfo=UTC)
    local = weekly(datetime(2026, 3, 2, 18, tzinfo=TORONTO), 3)
    expected = [utc_text(t) for t in local if t <= until]
    assert len(expected) == 2
    series = event(dump(FIXTURES / "weekly_dst.ics"), "weekly-monday-until@fixtures.announcer.test")
    assert series["occurrences"] == expected


@clients
def test_recurrence_id_override_moves_one_occurrence(dump: Dumper) -> None:
    result = dump(FIXTURES / "override.ics")
    assert result["errors"] == []
    uid = "monday-standup@fixtures.announcer.test"
    master = event(result, uid)
    moved = event(result, uid, override=True)
    rule = weekly(datetime(2026, 10, 19, 9, tzinfo=TORONTO), 4)
    new_start = datetime(2026, 10, 27, 14, 30, tzinfo=TORONTO)
    expected = [utc_text(new_start if t.date() == date(2026, 10, 26) else t) for t in rule]
    assert master["occurrences"] == sorted(expected)
    assert master["end"] == toronto(2026, 10, 19, 9, 30)  # DURATION:PT30M
    assert moved["recurrence_id"] == toronto(2026, 10, 26, 9)
    assert (moved["start"], moved["end"]) == (utc_text(new_start), toronto(2026, 10, 27, 15))
    assert moved["summary"] == "Monday stand-up (moved to Tuesday)"
    assert moved["sequence"] == 1
    assert moved["occurrences"] == []


@clients
def test_expansion_stops_before_expand_until(dump: Dumper) -> None:
    third = datetime(2026, 3, 12, 19, tzinfo=TORONTO)
    result = dump(FIXTURES / "weekly_dst.ics", expand_until=third)
    series = event(result, "weekly-thursday@fixtures.announcer.test")
    assert series["occurrences"] == [toronto(2026, 2, 26, 19), toronto(2026, 3, 5, 19)]


@pytest.mark.parametrize("name", GOOD)
def test_both_clients_read_good_fixtures_identically(name: str) -> None:
    assert icaljs_dump(FIXTURES / name) == libical_dump(FIXTURES / name)


@pytest.mark.parametrize("name", GOOD)
def test_strict_parser_accepts_good_fixtures(name: str) -> None:
    calendar = strict_parse(FIXTURES / name)
    assert calendar.events


def test_strict_parser_agrees_on_times() -> None:
    calendar = strict_parse(FIXTURES / "toronto.ics")
    starts = sorted(utc_text(e.dtstart) for e in calendar.events if isinstance(e.dtstart, datetime))
    assert starts == [toronto(2026, 1, 15, 10), toronto(2026, 7, 15, 10)]


# fixture: (what ical.js says, what libical says, what the strict parser says)
BROKEN = {
    "broken_datetime.ics": ("invalid date-time value", "DTSTART", "20260115T1000"),
    "broken_rrule.ics": ("invalid frequency", "RRULE", "FORTNIGHTLY"),
    "broken_unterminated.ics": ("did not end", "no complete component", "END:vevent"),
    "missing_vtimezone.ics": ('"America/Toronto" has no VTIMEZONE',) * 2 + ("has no VTIMEZONE",),
}


@pytest.mark.parametrize("name", BROKEN)
def test_broken_files_are_reported_by_every_reader(name: str) -> None:
    icaljs_says, libical_says, strict_says = BROKEN[name]
    for dump, says in ((icaljs_dump, icaljs_says), (libical_dump, libical_says)):
        errors = dump(FIXTURES / name)["errors"]
        assert any(says in error for error in errors), (dump.__name__, errors)
    with pytest.raises(StrictParseError, match=strict_says):
        strict_parse(FIXTURES / name)


@clients
def test_bytes_that_are_not_utf8_are_an_error(dump: Dumper, tmp_path: Path) -> None:
    good = (FIXTURES / "all_day.ics").read_bytes()
    bad = tmp_path / "latin1.ics"
    bad.write_bytes(good.replace(b"Canada Day picnic", "Fête".encode("latin-1")))
    assert "file is not valid UTF-8" in dump(bad)["errors"]
    with pytest.raises(StrictParseError, match="UTF-8"):
        strict_parse(bad)


def test_strict_parser_insists_on_crlf(tmp_path: Path) -> None:
    bare = tmp_path / "lf.ics"
    bare.write_bytes((FIXTURES / "all_day.ics").read_bytes().replace(b"\r\n", b"\n"))
    with pytest.raises(StrictParseError, match="CRLF"):
        strict_parse(bare)


def test_libical_dumper_is_rebuilt_only_when_its_source_changes(tmp_path: Path) -> None:
    source = tmp_path / "libical_dump.c"
    shutil.copy2(LIBICAL_SOURCE, source)
    binary = build_libical_dumper(source, tmp_path / "build")
    built = binary.stat().st_mtime_ns
    assert build_libical_dumper(source, tmp_path / "build") == binary
    assert binary.stat().st_mtime_ns == built
    later = binary.stat().st_mtime + 10
    os.utime(source, (later, later))
    assert build_libical_dumper(source, tmp_path / "build") == binary
    assert binary.stat().st_mtime_ns != built
    assert [p.name for p in (tmp_path / "build").iterdir()] == [binary.name]


def test_missing_tools_say_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(ToolMissingError, match="apt-get install -y libical-dev"):
        require_tool("pkg-config", "`apt-get install -y libical-dev`", search_path=str(tmp_path))
    with pytest.raises(ToolMissingError, match="npm ci"):
        require_node_modules(tmp_path / "node_modules")
