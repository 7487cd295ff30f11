"""``announcer diff``: what subscribers will see change, from real git repositories."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from announcer import ledger as ledgers
from announcer.cli import main
from announcer.load import load_site
from announcer.workflow import diffview
from announcer.workflow.diff import Report, diff

from .conftest import NOW, MakeProject

EVENTS = "series/policy-seminars/events"
OPEN_DATA = f"{EVENTS}/2019-01-25-open-data-cities.yaml"
COPRODUCTION = f"{EVENTS}/2018-11-30-nonprofit-coproduction.yaml"
BUDGETING = f"{EVENTS}/2019-09-20-participatory-budgeting.yaml"


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.org", *args],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def commit(root: Path, message: str = "change") -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "--allow-empty", "-m", message)


@pytest.fixture
def repo(example_project: Path) -> Path:
    git(example_project, "init", "-q", "-b", "main")
    commit(example_project, "the example")
    return example_project


def edit(root: Path, relative: str, old: str, new: str) -> None:
    path = root / relative
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {relative}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def run(root: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["-C", str(root), "diff", "--now", NOW.isoformat(), *args])


def by_ident(report: Report) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    return {c.ident: (c.kinds, c.details) for c in report.changes}


def test_no_change_says_so(repo: Path) -> None:
    report = diff(repo, now=NOW)
    assert report.changes == [] and report.warnings == [] and report.emails == []
    result = run(repo)
    assert result.exit_code == 0, result.output
    assert "no change for subscribers" in result.output
    assert "none" in result.output


def test_each_kind_of_change_is_named_with_before_and_after(repo: Path) -> None:
    edit(repo, OPEN_DATA, "start: 2019-01-25 12:00", "start: 2019-02-01 14:00")
    edit(repo, COPRODUCTION, "location: 5136 Student", "location: Room 2200, Student")
    edit(repo, COPRODUCTION, "status: confirmed", "status: cancelled")
    (repo / BUDGETING).unlink()
    new = repo / EVENTS / "2019-10-04-new-talk.yaml"
    new.write_text("title: A new talk\nstart: 2019-10-04 12:00\n", encoding="utf-8")
    found = by_ident(diff(repo, now=NOW))
    assert found["2019-01-25-open-data-cities"] == (
        ("rescheduled",),
        ("Fri 2019-01-25 12:00-13:30 -> Fri 2019-02-01 14:00-15:30",),
    )
    kinds, details = found["2018-11-30-nonprofit-coproduction"]
    assert kinds == ("cancelled", "moved")
    assert details == (
        "5136 Student Resource Centre, Richcraft Hall, Carleton University -> "
        "Room 2200, Student Resource Centre, Richcraft Hall, Carleton University",
    )
    assert found["2019-09-20-participatory-budgeting"][0] == ("removed",)
    assert found["2019-10-04-new-talk"] == (
        ("added",),
        ("Fri 2019-10-04 12:00-13:00, Richcraft Hall, Carleton University",),
    )
    assert len(found) == 4


def test_removing_instead_of_cancelling_is_warned_about(repo: Path) -> None:
    (repo / BUDGETING).unlink()
    result = run(repo)
    assert result.exit_code == 0, result.output
    assert "- removed      2019-09-20-participatory-budgeting" in result.output
    assert (
        "warning: policy-seminars/2019-09-20-participatory-budgeting was removed instead of "
        "cancelled" in result.output
    )
    assert "status: cancelled" in result.output


def test_cancelling_is_not_warned_about_and_reinstating_is_named(repo: Path) -> None:
    edit(repo, BUDGETING, "tags: [", "status: cancelled\ntags: [")
    edit(repo, f"{EVENTS}/2019-02-15-housing-first.yaml", "status: cancelled", "status: tentative")
    report = diff(repo, now=NOW)
    assert report.warnings == []
    found = by_ident(report)
    assert found["2019-09-20-participatory-budgeting"] == (("cancelled",), ())
    assert found["2019-02-15-housing-first"] == (("reinstated",), ("back on, tentative",))


def test_text_only_edits_are_shown_apart_from_material_changes(repo: Path) -> None:
    edit(repo, OPEN_DATA, 'title: "Open data in', 'title: "Open government data in')
    edit(repo, COPRODUCTION, "Bring your lunch", "Bring a lunch")
    found = by_ident(diff(repo, now=NOW))
    assert found["2019-01-25-open-data-cities"] == (
        ("retitled",),
        (
            "Open data in Canadian cities: who uses it, and for what? -> "
            "Open government data in Canadian cities: who uses it, and for what?",
        ),
    )
    assert found["2018-11-30-nonprofit-coproduction"] == (("edited",), ("abstract",))


def test_a_time_written_another_way_is_no_change(repo: Path) -> None:
    edit(repo, OPEN_DATA, "start: 2019-01-25 12:00", "start: 2019-01-25T17:00:00Z")
    assert diff(repo, now=NOW).changes == []


WEEKLY = """\
title: Reading group
start: 2027-01-15 12:00
duration: 1h
repeat: {every: week, count: 6}
"""


def test_recurring_events_fold_their_occurrences_unless_only_one_changed(repo: Path) -> None:
    path = repo / EVENTS / "2027-01-15-reading-group.yaml"
    path.write_text(WEEKLY, encoding="utf-8")
    (added,) = diff(repo, now=NOW).changes
    assert (added.ident, added.kinds, added.details[-1]) == (
        "2027-01-15-reading-group",
        ("added",),
        "6 occurrences",
    )
    commit(repo)
    path.write_text(WEEKLY + "occurrences:\n  2027-01-22: {status: cancelled}\n", encoding="utf-8")
    found = by_ident(diff(repo, now=NOW))
    assert found == {"2027-01-15-reading-group/2027-01-22": (("cancelled",), ())}
    commit(repo)
    path.write_text(
        WEEKLY.replace("12:00", "13:00").replace("count: 6", "count: 7"), encoding="utf-8"
    )
    (rule,) = diff(repo, now=NOW).changes
    assert rule.kinds == ("rescheduled", "repeat")
    assert rule.details == (
        "Fri 2027-01-15 12:00-13:00 -> Fri 2027-01-15 13:00-14:00",
        "the repeat rule changed",
        "occurrences: 1 added, 6 changed",
    )


def test_against_an_older_revision(repo: Path) -> None:
    first = git(repo, "rev-parse", "HEAD").strip()
    edit(repo, OPEN_DATA, "start: 2019-01-25 12:00", "start: 2019-01-25 11:00")
    commit(repo)
    assert diff(repo, now=NOW).changes == []
    (moved,) = diff(repo, "HEAD~1", now=NOW).changes
    assert moved.kinds == ("rescheduled",)
    report = diff(repo, first[:8], now=NOW)
    assert report.commit == first[:12] and len(report.changes) == 1


def test_unknown_revision_and_no_repository_are_clear_errors(
    repo: Path, example_project: Path, tmp_path: Path
) -> None:
    result = run(repo, "--against", "no-such-branch")
    assert result.exit_code == 1
    assert "there is no commit 'no-such-branch'" in result.output
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "series").mkdir()
    result = run(plain)
    assert result.exit_code == 1
    assert "error: git rev-parse: fatal: not a git repository" in result.output


def test_a_project_new_at_that_revision_lists_every_event_as_added(example_project: Path) -> None:
    git(example_project, "init", "-q", "-b", "main")
    git(example_project, "commit", "-q", "--allow-empty", "-m", "empty")
    report = diff(example_project, now=NOW)
    assert report.notes == ["there was no series/ folder at that revision: every event is new"]
    assert {c.kinds for c in report.changes} == {("added",)}
    assert len(report.changes) == len(list(load_site(example_project).events()))


def test_a_broken_old_revision_is_noted(repo: Path) -> None:
    edit(repo, OPEN_DATA, "start: 2019-01-25 12:00", "start: someday")
    commit(repo)
    edit(repo, OPEN_DATA, "start: someday", "start: 2019-01-25 12:00")
    report = diff(repo, now=NOW)
    assert report.notes == [
        "the project at that revision has 1 error(s) and cannot be compared: "
        "every event is listed as new"
    ]


def test_a_project_in_a_subfolder_of_the_repository(tmp_path: Path, example_project: Path) -> None:
    outer = tmp_path / "outer"
    (outer / "site").parent.mkdir(parents=True)
    example_project.rename(outer / "site")
    git(outer, "init", "-q", "-b", "main")
    commit(outer)
    edit(outer / "site", OPEN_DATA, "start: 2019-01-25 12:00", "start: 2019-01-25 11:00")
    report = diff(outer / "site", now=NOW)
    assert report.notes == []
    (change,) = report.changes
    assert change.kinds == ("rescheduled",)
    git(outer, "mv", "site", "renamed")
    commit(outer)
    assert diff(outer / "renamed", "HEAD~1", now=NOW).notes == [
        "the project did not exist at that revision: every event is new"
    ]


# --- email ---------------------------------------------------------------------------------------

SERIES = """\
title: Talks
timezone: America/Toronto
mailing_list: {to: talks@lists.example.org}
announce:
  - {kind: announcement, days_before: 7}
  - {kind: reminder, days_before: 1}
"""


def test_emails_the_next_announce_would_send(make_project: MakeProject) -> None:
    root = make_project(
        {
            "series/talks/series.yaml": SERIES,
            "series/talks/events/moved.yaml": "title: Moved\nstart: 2026-12-03 12:00\n",
            "series/talks/events/soon.yaml": "title: Soon\nstart: 2026-12-01 12:00\n",
            "series/talks/events/later.yaml": "title: Later\nstart: 2027-02-01 12:00\n",
        }
    )
    site = load_site(root)
    ledger, _ = ledgers.advance(ledgers.Ledger(), ledgers.records(site), NOW - timedelta(days=2))
    for key in ("talks/moved", "talks/soon"):
        ledger = ledgers.record_sent(ledger, key, "announcement", 0, NOW - timedelta(days=1))
    ledgers.save(ledger, root / "ledger.json")
    git(root, "init", "-q", "-b", "main")
    commit(root)
    edit(root, "series/talks/events/moved.yaml", "12:00", "15:00")
    report = diff(root, now=NOW)
    emails = [(e.kind, e.key, e.new) for e in report.emails]
    assert emails == [("update", "talks/moved", True)]
    later = datetime(2026, 11, 30, 12, tzinfo=UTC)
    emails = [(e.kind, e.key, e.new) for e in diff(root, now=later).emails]
    assert emails == [("reminder", "talks/soon", False), ("update", "talks/moved", True)]
    text = diffview.text(diff(root, now=later))
    assert "  update       talks/moved  Moved  (due because of this change)" in text
    assert "  reminder     talks/soon  Soon\n" in text


# --- Markdown for pull requests ------------------------------------------------------------------


def test_markdown_is_a_table_that_shows_organisers_text_as_written(repo: Path) -> None:
    edit(repo, OPEN_DATA, 'title: "Open data in', 'title: "Open *data* | in')
    (repo / BUDGETING).unlink()
    result = run(repo, "--format", "markdown")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == diffview.MARKER
    assert "| Change | Event | Details |" in lines
    row = next(line for line in lines if line.startswith("| retitled |"))
    assert "**Open \\*data\\* \\| in Canadian cities: who uses it, and for what?**" in row
    assert row.count(" | ") == 2  # the escaped pipe did not open a fourth column
    assert "> [!WARNING]" in lines
    assert "#### Emails the next `announce` would send" in result.output


def test_markdown_of_a_broken_tree_lists_the_errors_and_fails(repo: Path) -> None:
    edit(repo, OPEN_DATA, "start: 2019-01-25 12:00", "start: someday")
    result = run(repo, "--format", "markdown")
    assert result.exit_code == 1
    assert result.output.startswith(diffview.MARKER + "\n### announcer check found 1 error\n")
    assert f"- `{OPEN_DATA}` line 2: 'start': 'someday' is not a date or time" in result.output
    text = run(repo)
    assert text.exit_code == 1
    assert f"error: {OPEN_DATA}:2:" in text.output
