"""The ledger: SEQUENCE and LAST-MODIFIED move when attendees must act, and only then."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import icalendar
import pytest

from announcer import ledger, pipeline
from announcer.errors import ConfigError
from announcer.model import Event
from tests.conftest import NOW

TALK = "series/policy-seminars/events/2018-11-30-nonprofit-coproduction.yaml"
TALK_ICS = "policy-seminars/2018-11-30-nonprofit-coproduction/event.ics"


def vevent(out: Path) -> icalendar.Event:
    cal = icalendar.Calendar.from_ical((out / TALK_ICS).read_bytes())
    return next(iter(cal.walk("VEVENT")))


def edit(root: Path, old: str, new: str) -> None:
    path = root / TALK
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_new_room_raises_sequence_and_moves_last_modified(
    example_project: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    pipeline.build(example_project, out, now=NOW)
    before = vevent(out)
    edit(example_project, "location: 5136 Student Resource Centre", "location: 2200 Richcraft Hall")
    later = NOW + timedelta(days=3)
    result = pipeline.build(example_project, out, now=later)
    after = vevent(out)
    assert [c.key for c in result.changes] == ["policy-seminars/2018-11-30-nonprofit-coproduction"]
    assert after["SEQUENCE"] == before["SEQUENCE"] + 1
    assert after["LAST-MODIFIED"].dt == later
    assert after["DTSTAMP"].dt == later
    assert after["CREATED"].dt == before["CREATED"].dt
    assert {TALK_ICS, "calendar.ics", "policy-seminars/calendar.ics"} <= set(result.report.written)
    assert "policy-seminars/2019-01-25-open-data-cities/event.ics" in result.report.unchanged


def test_rebuild_without_change_is_byte_identical(example_project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    pipeline.build(example_project, out, now=NOW)
    snapshot = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    ledger_bytes = (example_project / "ledger.json").read_bytes()
    result = pipeline.build(example_project, out, now=NOW + timedelta(hours=5))
    assert not result.changes and not result.report.changed and not result.ledger_saved
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == snapshot
    assert (example_project / "ledger.json").read_bytes() == ledger_bytes


def test_change_that_does_not_matter_to_attendees_keeps_sequence(
    example_project: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    pipeline.build(example_project, out, now=NOW)
    before = vevent(out)
    edit(example_project, "coffee is provided", "tea and coffee are provided")
    result = pipeline.build(example_project, out, now=NOW + timedelta(days=1))
    assert result.changes == []
    after = vevent(out)
    assert (after["SEQUENCE"], after["DTSTAMP"].dt) == (before["SEQUENCE"], before["DTSTAMP"].dt)
    assert "tea and coffee" in str(after["DESCRIPTION"])


def test_cancelled_event_stays_with_status_cancelled(example_project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    pipeline.build(example_project, out, now=NOW)
    edit(example_project, "status: confirmed", "status: cancelled")
    pipeline.build(example_project, out, now=NOW + timedelta(days=1))
    after = vevent(out)
    assert str(after["STATUS"]) == "CANCELLED"
    assert after["SEQUENCE"] == 1
    series = icalendar.Calendar.from_ical((out / "policy-seminars/calendar.ics").read_bytes())
    assert str(after["UID"]) in {str(e["UID"]) for e in series.walk("VEVENT")}


def test_removed_event_keeps_its_entry_so_sequence_continues(
    example_project: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    pipeline.build(example_project, out, now=NOW)
    text = (example_project / TALK).read_text(encoding="utf-8")
    (example_project / TALK).unlink()
    pipeline.build(example_project, out, now=NOW + timedelta(days=1))
    assert not (out / TALK_ICS).exists()
    (example_project / TALK).write_text(text.replace("12:00", "12:30", 1), encoding="utf-8")
    pipeline.build(example_project, out, now=NOW + timedelta(days=2))
    assert vevent(out)["SEQUENCE"] == 1


def test_ledger_file_is_stable_sorted_json(example_project: Path, tmp_path: Path) -> None:
    (example_project / "ledger.json").unlink()
    pipeline.build(example_project, tmp_path / "out", now=NOW)
    raw = (example_project / "ledger.json").read_text(encoding="utf-8")
    data = json.loads(raw)
    assert data["format"] == 1
    assert list(data["events"]) == sorted(data["events"])
    entry = data["events"]["policy-seminars/2019-02-15-housing-first"]
    assert entry["sequence"] == 0 and entry["state"]["status"] == "cancelled"
    assert entry["first_seen"] == "2026-11-28T12:00:00Z"
    assert ledger.dumps(ledger.load(example_project / "ledger.json")) == raw


@pytest.mark.parametrize(
    "layout",
    [
        pytest.param(lambda text: json.dumps(json.loads(text), indent=2), id="indented"),
        pytest.param(lambda text: json.dumps(json.loads(text)), id="one-line"),
        pytest.param(lambda text: text.replace("{\n  ", "{", 1), id="an-entry-on-the-first-line"),
        pytest.param(lambda text: text.replace("},\n  ", "}, ", 1), id="two-entries-on-a-line"),
    ],
)
def test_a_ledger_laid_out_by_hand_is_read_and_saved_in_the_usual_layout(
    example_project: Path, tmp_path: Path, layout: Callable[[str], str]
) -> None:
    pipeline.build(example_project, tmp_path / "out", now=NOW)
    path = example_project / "ledger.json"
    usual, entries = path.read_text(encoding="utf-8"), ledger.load(path).entries
    path.write_text(layout(usual), encoding="utf-8")
    assert ledger.load(path).entries == entries
    assert ledger.dumps(ledger.load(path)) == usual
    edit(example_project, "location: 5136 Student Resource Centre", "location: 2200 Richcraft Hall")
    pipeline.build(example_project, tmp_path / "out", now=NOW + timedelta(days=1))
    after = ledger.load(path)
    assert after.entries.keys() == entries.keys()
    assert path.read_text(encoding="utf-8") == ledger.dumps(after)


def test_recorded_announcements_round_trip(example_project: Path, tmp_path: Path) -> None:
    pipeline.build(example_project, tmp_path / "out", now=NOW)
    path = example_project / "ledger.json"
    book = ledger.load(path)
    key = "policy-seminars/2018-11-30-nonprofit-coproduction"
    book = ledger.record_sent(book, key, "announcement", 0, NOW)
    ledger.save(book, path)
    state = book.entries[key].state
    assert ledger.load(path).entries[key].announced["announcement"] == ledger.Sent(0, NOW, state)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda text: "{not json", id="not-json"),
        pytest.param(lambda text: text.replace("}},\n", "}}\n", 1), id="a-comma-lost"),
        pytest.param(lambda text: text.replace("}}\n}}", "}},\n}}"), id="a-comma-too-many"),
    ],
)
def test_damaged_ledger_is_a_clear_error(
    example_project: Path, tmp_path: Path, damage: Callable[[str], str]
) -> None:
    path = example_project / "ledger.json"
    damaged = damage(path.read_text(encoding="utf-8"))
    assert damaged != path.read_text(encoding="utf-8")
    path.write_text(damaged, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"ledger cannot be read.*restore it from git"):
        pipeline.build(example_project, tmp_path / "out", now=NOW)
    assert not (tmp_path / "out").exists()


def test_lines_kept_from_the_last_text_are_the_lines_dumps_writes(
    example_project: Path, tmp_path: Path
) -> None:
    """An entry taken over unchanged keeps its line; changed and new ones are encoded."""
    pipeline.build(example_project, tmp_path / "out", now=NOW)
    before, text = ledger.read(example_project / "ledger.json")
    key = "policy-seminars/2018-11-30-nonprofit-coproduction"
    after = ledger.record_sent(before, key, "announcement", 0, NOW)
    first = ledger.Revision(0, NOW, NOW, {"title": "Before all others"})
    after = ledger.Ledger({**after.entries, "a-series/first": first})
    assert ledger.dumps(after, (before, text)) == ledger.dumps(after)
    assert ledger.dumps(before, (before, text)) == text


def test_a_rebuild_looks_at_the_ledger_entries_of_changed_events_only(
    example_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline.build(example_project, tmp_path / "out", now=NOW)
    edit(example_project, "location: 5136 Student Resource Centre", "location: 2200 Richcraft Hall")
    looked: list[str] = []
    real = ledger.state_of

    def state_of(event: Event) -> dict[str, str]:
        looked.append(event.key)
        return real(event)

    monkeypatch.setattr(ledger, "state_of", state_of)
    pipeline.build(example_project, tmp_path / "out", now=NOW + timedelta(days=1))
    assert looked == ["policy-seminars/2018-11-30-nonprofit-coproduction"]
    path = example_project / "ledger.json"
    entry = ledger.load(path).entries[looked[0]]
    assert entry.sequence == 1 and entry.state["location"].startswith("2200 Richcraft Hall")
    assert path.read_text(encoding="utf-8") == ledger.dumps(ledger.load(path))


def test_a_ledger_edited_by_hand_between_builds_is_read_in_full(
    example_project: Path, tmp_path: Path
) -> None:
    """Not as the last build left it: every event is compared with its entry again."""
    pipeline.build(example_project, tmp_path / "out", now=NOW)
    path = example_project / "ledger.json"
    lines = path.read_text(encoding="utf-8").split("\n")
    talk = next(n for n, line in enumerate(lines) if "nonprofit-coproduction" in line)
    assert "5136 Student" in lines[talk]
    lines[talk] = lines[talk].replace("5136 Student", "5137 Student")  # the same size
    path.write_text("\n".join(lines), encoding="utf-8")
    pipeline.build(example_project, tmp_path / "out", now=NOW + timedelta(days=1))
    entry = ledger.load(path).entries["policy-seminars/2018-11-30-nonprofit-coproduction"]
    assert entry.sequence == 1 and entry.state["location"].startswith("5136 Student")


def test_a_change_a_build_did_not_save_is_recorded_by_the_next_build(
    example_project: Path, tmp_path: Path
) -> None:
    """A build that does not save the ledger advances it in memory only: the next build
    into the same folder must not take the file for one that holds what that one saw."""
    pipeline.build(example_project, tmp_path / "out", now=NOW)
    edit(example_project, "location: 5136 Student Resource Centre", "location: 2200 Richcraft Hall")
    pipeline.build(example_project, tmp_path / "out", now=NOW, save_ledger=False)
    pipeline.build(example_project, tmp_path / "out", now=NOW + timedelta(days=1))
    path = example_project / "ledger.json"
    entry = ledger.load(path).entries["policy-seminars/2018-11-30-nonprofit-coproduction"]
    assert entry.sequence == 1 and entry.state["location"].startswith("2200 Richcraft Hall")
