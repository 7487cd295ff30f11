"""Reusing the last build: skipped work must never mean stale output.

Every test changes one thing a page or calendar depends on, rebuilds, and
checks the output against a build made from scratch in a fresh folder with a
fresh cache: the two must be byte-identical.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest

from announcer import buildstate, pipeline
from announcer.adapters import ics
from announcer.adapters.base import BuildContext, LazyFile, OutputAdapter, OutputFile, select
from announcer.buildstate import stat_of
from announcer.delivery import files as publishing
from announcer.load import project as project_loader
from announcer.model import Event
from tests.conftest import NOW, MakeProject

TALK = "series/s/events/talk.yaml"
PAGE = "s/talk/index.html"


def settle(root: Path) -> Path:
    """Date every input well before the build, as files are that were not just written:
    a file written as a build begins is read again, whatever its stat says."""
    old = time.time_ns() - 10_000_000_000
    for file in root.rglob("*"):
        os.utime(file, ns=(old, old))
    return root


def tree(make_project: MakeProject) -> Path:
    return make_project(
        {
            "announcer.yaml": "base_url: https://example.org/\n",
            "series/s/series.yaml": "title: Seminars\ntimezone: America/Toronto\n",
            TALK: "title: A talk\nstart: 2026-12-04 12:00\nlocation: Room 1\ntags: [one]\n",
            "series/s/events/other.yaml": "title: Another\nstart: 2026-12-11 12:00\ntags: [two]\n",
        }
    )


def edit(file: Path, old: str, new: str) -> None:
    """An organiser's edit to an input file."""
    file.write_text(file.read_text().replace(old, new))


def contents(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def from_scratch(
    root: Path, tmp_path: Path, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> dict[str, bytes]:
    """The same project built in a new folder with an empty cache and the same ledger."""
    monkeypatch.setenv("ANNOUNCER_CACHE_DIR", str(tmp_path / "fresh-cache"))
    fresh = tmp_path / "fresh-out"
    pipeline.build(root, fresh, now=now, save_ledger=False)
    monkeypatch.undo()
    return contents(fresh)


def rebuild_matches_scratch(
    root: Path, out: Path, tmp_path: Path, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> pipeline.BuildResult:
    result = pipeline.build(root, out, now=now)
    assert contents(out) == from_scratch(root, tmp_path, now, monkeypatch)
    return result


class Counting(OutputAdapter):
    name = "counting"
    incremental: ClassVar[bool] = True
    calls: ClassVar[int] = 0

    def files(self, context: BuildContext) -> Iterator[OutputFile]:
        Counting.calls += 1
        yield OutputFile("count.txt", b"x")


def test_unchanged_inputs_run_no_adapter(make_project: MakeProject, tmp_path: Path) -> None:
    root, out = tree(make_project), tmp_path / "out"
    Counting.calls = 0
    pipeline.build(root, out, now=NOW, adapters=[*select(None), Counting()])
    result = pipeline.build(root, out, now=NOW, adapters=[*select(None), Counting()])
    assert Counting.calls == 1
    assert result.report.written == [] and "count.txt" in result.report.unchanged


def test_a_non_incremental_adapter_always_runs(make_project: MakeProject, tmp_path: Path) -> None:
    class Plain(Counting):
        incremental: ClassVar[bool] = False

    root, out = tree(make_project), tmp_path / "out"
    Counting.calls = 0
    pipeline.build(root, out, now=NOW, adapters=[Plain()])
    pipeline.build(root, out, now=NOW, adapters=[Plain()])
    assert Counting.calls == 2


def test_time_passing_marks_the_event_past(
    make_project: MakeProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, out = tree(make_project), tmp_path / "out"
    pipeline.build(root, out, now=NOW)
    assert b"already taken place" not in (out / PAGE).read_bytes().split(b"<script")[0]
    later = datetime(2026, 12, 5, tzinfo=UTC)
    result = rebuild_matches_scratch(root, out, tmp_path, later, monkeypatch)
    assert PAGE in result.report.written
    assert "s/other/index.html" not in result.report.written


@pytest.mark.parametrize(
    ("path", "old", "new", "rewritten"),
    [
        (TALK, "Room 1", "Room 2", {PAGE, "s/talk/event.ics", "calendar.ics"}),
        ("series/s/series.yaml", "title: Seminars", "title: Talks", {PAGE, "s/other/index.html"}),
        ("announcer.yaml", "example.org", "example.net", {PAGE, "feed.atom", "s/talk/event.ics"}),
    ],
)
def test_each_input_change_reaches_every_output_it_shapes(
    make_project: MakeProject,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    old: str,
    new: str,
    rewritten: set[str],
) -> None:
    root, out = tree(make_project), tmp_path / "out"
    pipeline.build(root, out, now=NOW)
    text = (root / path).read_text()
    (root / path).write_text(text.replace(old, new))
    result = rebuild_matches_scratch(root, out, tmp_path, NOW, monkeypatch)
    assert rewritten <= set(result.report.written)


def test_template_overrides_are_part_of_the_key(
    make_project: MakeProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, out = tree(make_project), tmp_path / "out"
    pipeline.build(root, out, now=NOW)
    override = root / "series/s/templates/site/event.html"
    override.parent.mkdir(parents=True)
    override.write_text("<p>first {{ event.title }}</p>\n")
    rebuild_matches_scratch(root, out, tmp_path, NOW, monkeypatch)
    assert (out / PAGE).read_text() == "<p>first A talk</p>\n"
    override.write_text("<p>second {{ event.title }}</p>\n")
    rebuild_matches_scratch(root, out, tmp_path, NOW, monkeypatch)
    assert (out / PAGE).read_text() == "<p>second A talk</p>\n"


def test_a_tampered_output_file_is_restored(make_project: MakeProject, tmp_path: Path) -> None:
    root, out = tree(make_project), tmp_path / "out"
    pipeline.build(root, out, now=NOW)
    original = (out / PAGE).read_bytes()
    (out / PAGE).write_bytes(b"defaced")
    (out / "s/talk/event.ics").unlink()
    result = pipeline.build(root, out, now=NOW)
    assert (out / PAGE).read_bytes() == original
    assert (out / "s/talk/event.ics").exists()
    assert set(result.report.written) == {PAGE, "s/talk/event.ics"}


def test_a_damaged_cache_only_costs_a_full_build(
    make_project: MakeProject, tmp_path: Path, build_cache: Path
) -> None:
    root, out = tree(make_project), tmp_path / "out"
    pipeline.build(root, out, now=NOW)
    before = contents(out)
    for state in build_cache.glob("*.pickle"):
        state.write_bytes(b"\x80\x05garbage")
    pipeline.build(root, out, now=NOW)
    assert contents(out) == before
    assert buildstate.load(root, out).outputs  # written afresh


def test_the_cache_is_never_inside_the_project(make_project: MakeProject, tmp_path: Path) -> None:
    root = tree(make_project)
    pipeline.build(root, tmp_path / "out", now=NOW)
    assert not list(root.rglob("*.pickle"))


def test_a_touched_but_unchanged_file_still_runs_no_adapter(
    make_project: MakeProject, tmp_path: Path
) -> None:
    """A checkout rewrites files with the same bytes: the content signature sees through it."""
    root, out = tree(make_project), tmp_path / "out"
    Counting.calls = 0
    pipeline.build(root, out, now=NOW, adapters=[*select(None), Counting()])
    (root / TALK).write_text((root / TALK).read_text())
    (root / "series/s/events/other.yaml").touch()
    result = pipeline.build(root, out, now=NOW, adapters=[*select(None), Counting()])
    assert Counting.calls == 1 and result.report.written == []


def test_building_as_of_an_earlier_time_renders_again(
    make_project: MakeProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, out = tree(make_project), tmp_path / "out"
    later = datetime(2026, 12, 20, tzinfo=UTC)
    pipeline.build(root, out, now=later)
    assert b"is-past" in (out / "index.html").read_bytes()
    rebuild_matches_scratch(root, out, tmp_path, NOW, monkeypatch)
    assert b'class="event is-past"' not in (out / "index.html").read_bytes()


def test_the_site_of_a_build_that_did_nothing_is_loaded_on_request(
    make_project: MakeProject, tmp_path: Path
) -> None:
    root, out = settle(tree(make_project)), tmp_path / "out"
    first = pipeline.build(root, out, now=NOW)
    second = pipeline.build(root, out, now=NOW)
    assert second.loaded is None  # nothing was parsed
    assert second.site == first.site


def two_series(make_project: MakeProject) -> Path:
    return make_project(
        {
            "announcer.yaml": "base_url: https://example.org/\ncalendar: {size_warning: 100}\n",
            "series/a/series.yaml": "title: A talks\ntimezone: America/Toronto\n",
            "series/b/series.yaml": "title: B talks\ntimezone: Europe/Paris\n",
            "series/a/events/one.yaml": "title: One\nstart: 2026-12-04 12:00\ntags: [red]\n",
            "series/a/events/two.yaml": "title: Two\nstart: 2026-12-11 12:00\ntags: [blue]\n",
            "series/b/events/three.yaml": "title: Three\nstart: 2026-12-05 12:00\ntags: [blue]\n",
        }
    )


def made_files(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The LazyFiles made (not only keyed) in the builds from now on."""
    made: list[str] = []
    real_init = LazyFile.__init__

    def recording(self: LazyFile, path: str, make: Callable[[], bytes], *rest: Any) -> None:
        def record() -> bytes:
            made.append(path)
            return make()

        real_init(self, path, record, *rest)

    monkeypatch.setattr(LazyFile, "__init__", recording)
    return made


def keyed_files(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The LazyFiles whose key is worked out (not taken from the last build) from now on."""
    keyed: list[str] = []
    real_init = LazyFile.__init__

    def recording(
        self: LazyFile, path: str, make: Callable[[], bytes], key: Any = None, *rest: Any
    ) -> None:
        def record() -> str:
            keyed.append(path)
            return key() if callable(key) else key

        real_init(self, path, make, record, *rest)

    monkeypatch.setattr(LazyFile, "__init__", recording)
    return keyed


def test_a_change_makes_only_the_files_that_hold_the_event(
    make_project: MakeProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Listings, feeds and calendars without the event are neither made nor compared."""
    root, out = two_series(make_project), tmp_path / "out"
    pipeline.build(root, out, now=NOW)
    made = made_files(monkeypatch)
    edit(root / "series/a/events/one.yaml", "title: One", "title: One, revised")
    result = pipeline.build(root, out, now=NOW)
    monkeypatch.undo()
    assert contents(out) == from_scratch(root, tmp_path, NOW, monkeypatch)
    holds_one = {
        "index.html", "feed.atom", "feed.rss", "calendar.ics",
        "a/index.html", "a/feed.atom", "a/feed.rss", "a/calendar.ics",
        "a/one/index.html", "a/one/event.ics",
        "tags/red/index.html", "tags/red/feed.atom", "tags/red/feed.rss", "tags/red/calendar.ics",
    }  # fmt: skip
    assert set(made) == holds_one
    assert set(result.report.written) == holds_one
    assert any(w.startswith("b/calendar.ics is ") for w in result.warnings)  # kept, still said


def test_listings_are_made_only_when_what_they_show_changed(
    make_project: MakeProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A listing shows no place: a new place reaches no listing, not even its key."""
    root, out = two_series(make_project), tmp_path / "out"
    edit(root / "series/a/events/one.yaml", "tags: [red]", "tags: [red]\nlocation: Room 1")
    pipeline.build(root, out, now=NOW)
    made, keyed = made_files(monkeypatch), keyed_files(monkeypatch)
    edit(root / "series/a/events/one.yaml", "Room 1", "Room 2")
    result = pipeline.build(root, out, now=NOW)
    listings = {"index.html", "a/index.html", "tags/red/index.html"}
    assert listings.isdisjoint(made) and listings <= set(result.report.unchanged)
    assert listings.isdisjoint(keyed) and "a/one/index.html" in keyed
    assert {"a/one/index.html", "a/one/event.ics", "calendar.ics", "feed.atom"} <= set(made)
    assert contents(out) == from_scratch(root, tmp_path, NOW, monkeypatch)


def test_a_listing_whose_own_text_holds_the_items_marker_is_still_right(
    make_project: MakeProject, tmp_path: Path
) -> None:
    root, out = two_series(make_project), tmp_path / "out"
    edit(root / "series/a/series.yaml", "title: A talks", 'title: A talks\ndescription: "x\\x04items\\x04y"')
    pipeline.build(root, out, now=NOW)
    page = (out / "a/index.html").read_text()
    assert "x\x04items\x04y" in page
    assert page.index("x\x04items\x04y") < page.index(">One<") < page.index(">Two<")
    assert page.count('<li class="event') == 2


def event_files_read(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The event files the loader reads from now on, as shown to the user, in order."""
    read: list[str] = []
    real = project_loader.read_bytes

    def counting(file: Path, shown: str) -> bytes | object:
        read.append(shown)
        return real(file, shown)

    monkeypatch.setattr(project_loader, "read_bytes", counting)
    return read


def test_files_unchanged_since_the_last_build_are_not_even_read(
    make_project: MakeProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, out = settle(two_series(make_project)), tmp_path / "out"
    pipeline.build(root, out, now=NOW)
    read = event_files_read(monkeypatch)
    edit(root / "series/a/events/two.yaml", "Two", "Deux")
    pipeline.build(root, out, now=NOW)
    assert read == ["series/a/events/two.yaml"]
    assert "Deux" in (out / "a/two/index.html").read_text()


def test_the_project_path_as_spelled_does_not_matter(
    make_project: MakeProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`-C project` after `-C /abs/project` is the same project: no event file is read."""
    root, out = settle(tree(make_project)), tmp_path / "out"
    pipeline.build(root.resolve(), out, now=NOW)
    read = event_files_read(monkeypatch)
    monkeypatch.chdir(root.parent)
    result = pipeline.build(Path(root.name), out, now=NOW)
    assert read == [] and result.report.written == []


def test_an_event_that_joins_a_limited_feed_is_in_it_after_a_rebuild(
    make_project: MakeProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build prepares entries only for the events feeds carry: talk A, too early for a
    feed of two, has none stored, and moved after the others it must get one."""
    talks = {f"series/s/events/{n}.yaml": f"title: {n}\nstart: 2026-12-{d} 12:00\n"
             for n, d in (("a", "01"), ("b", "08"), ("c", "15"))}
    root = settle(
        make_project(
            {
                "announcer.yaml": "base_url: https://example.org/\nfeeds: {limit: 2}\n",
                "series/s/series.yaml": "title: Seminars\ntimezone: America/Toronto\n",
                **talks,
            }
        )
    )
    out = tmp_path / "out"
    pipeline.build(root, out, now=NOW)
    assert b"\xe2\x80\x94 a</title>" not in (out / "s/feed.atom").read_bytes()
    edit(root / "series/s/events/a.yaml", "2026-12-01", "2026-12-22")
    rebuild_matches_scratch(root, out, tmp_path, NOW, monkeypatch)
    for kind in ("atom", "rss"):
        assert b"\xe2\x80\x94 a</title>" in (out / f"s/feed.{kind}").read_bytes(), kind


def test_the_output_path_as_spelled_does_not_matter(
    make_project: MakeProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--out public` after `--out /abs/public` is the same output: nothing to do."""
    root, out = settle(tree(make_project)), tmp_path / "out"
    pipeline.build(root, out.resolve(), now=NOW)
    monkeypatch.chdir(tmp_path)
    result = pipeline.build(root, Path("out"), now=NOW)
    assert result.loaded is None and result.report.written == []


@pytest.mark.parametrize(
    "written",
    [
        lambda now: now + 500_000_000,  # as the build began, on a clock with fine times
        lambda now: (now // 1_000_000_000 - 1) * 1_000_000_000,  # the same second, coarsely
    ],
    ids=["fine clock", "whole seconds"],
)
def test_a_file_changed_as_the_last_build_began_is_read_again(
    make_project: MakeProject, tmp_path: Path, written: Callable[[int], int]
) -> None:
    """Same size, same mtime, same inode: only the time it was written says it may differ."""
    root, out = settle(two_series(make_project)), tmp_path / "out"
    talk = root / "series/a/events/two.yaml"
    stamp = written(time.time_ns())
    os.utime(talk, ns=(stamp, stamp))
    pipeline.build(root, out, now=NOW)
    stat = talk.stat()
    with talk.open("r+b") as handle:  # in place: the inode stays
        changed = handle.read().replace(b"Two", b"Owt")
        handle.seek(0)
        handle.write(changed)
    os.utime(talk, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (talk.stat().st_size, talk.stat().st_ino) == (stat.st_size, stat.st_ino)
    pipeline.build(root, out, now=NOW)
    assert "Owt" in (out / "a/two/index.html").read_text()


def shares(cache: Path) -> dict[str, tuple[int, int]]:
    """Each series' file of parsed events in the build cache: (inode, mtime)."""
    found = {}
    for file in cache.glob("*.events-*"):
        stat = file.stat()
        found[file.suffix.removeprefix(".events-")] = (stat.st_ino, stat.st_mtime_ns)
    return found


def test_a_change_stores_again_only_the_parsed_events_of_its_series(
    make_project: MakeProject, tmp_path: Path, build_cache: Path
) -> None:
    root, out = settle(two_series(make_project)), tmp_path / "out"
    pipeline.build(root, out, now=NOW)
    before = shares(build_cache)
    edit(root / "series/a/events/two.yaml", "Two", "Deux")
    pipeline.build(root, out, now=NOW)
    after = shares(build_cache)
    assert set(before) == set(after) == {"a", "b"}
    assert after["a"] != before["a"] and after["b"] == before["b"]


def test_a_lost_share_of_parsed_events_is_stored_again(
    make_project: MakeProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, build_cache: Path
) -> None:
    root, out = settle(two_series(make_project)), tmp_path / "out"
    pipeline.build(root, out, now=NOW)
    next(build_cache.glob("*.events-b")).unlink()
    edit(root / "series/a/events/two.yaml", "Two", "Deux")
    read = event_files_read(monkeypatch)
    pipeline.build(root, out, now=NOW)
    assert sorted(read) == ["series/a/events/two.yaml", "series/b/events/three.yaml"]
    assert set(shares(build_cache)) == {"a", "b"}
    read.clear()
    edit(root / "series/a/events/two.yaml", "Deux", "Zwei")
    pipeline.build(root, out, now=NOW)
    assert read == ["series/a/events/two.yaml"]


def listed_folders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The output folders a build lists to find files no output asked for."""
    listed: list[str] = []
    real = publishing._listing

    def listing(root: str, folder: str) -> tuple[list[str], list[str]]:
        listed.append(folder)
        return real(root, folder)

    monkeypatch.setattr(publishing, "_listing", listing)
    return listed


def change_talk(root: Path, title: str) -> None:
    talk = root / TALK
    lines = talk.read_text().splitlines(keepends=True)
    talk.write_text(
        "".join(f"title: {title}\n" if line.startswith("title:") else line for line in lines)
    )


def test_files_put_into_the_output_by_hand_are_removed(
    make_project: MakeProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Folders whose stat is as the last build left them are not listed, and a file
    added by hand changes its folder's stat."""
    root, out = tree(make_project), tmp_path / "out"
    pipeline.build(root, out, now=NOW)
    settle(out)  # as if built a while ago: the next build can trust the folders' stat
    change_talk(root, "First")
    pipeline.build(root, out, now=NOW)
    (out / "s/other/notes.txt").write_text("mine")
    # In the folder the last build wrote to, within the same tick of the clock: same mtime.
    written = (out / "s/talk").stat()
    (out / "s/talk/extra.txt").write_text("mine")
    os.utime(out / "s/talk", ns=(written.st_atime_ns, written.st_mtime_ns))
    (out / "s/stray").mkdir()
    (out / "s/stray/page.html").write_text("mine")
    listed = listed_folders(monkeypatch)
    change_talk(root, "Second")
    result = pipeline.build(root, out, now=NOW)
    assert {"s/other/notes.txt", "s/stray/page.html", "s/talk/extra.txt"} <= set(
        result.report.removed
    )
    assert not (out / "s/other/notes.txt").exists() and not (out / "s/stray").exists()
    assert "tags/two" not in listed and "s/other" in listed  # untouched by the change
    assert contents(out) == from_scratch(root, tmp_path, NOW, monkeypatch)


def test_a_build_with_nothing_to_do_loads_neither_templates_nor_yaml(
    make_project: MakeProject, tmp_path: Path
) -> None:
    """Its whole cost is starting up and looking at the files: importing Jinja2 and the YAML
    parser was a fifth of it."""
    root, out = settle(tree(make_project)), tmp_path / "out"
    pipeline.build(root, out, now=NOW)
    loaded = "sorted(m for m in ('jinja2', 'yaml') if m in sys.modules)"
    assert fresh_build(root, out, f"len(r.report.written), {loaded}") == ["0", "[]"]


def fresh_build(root: Path, out: Path, shows: str) -> list[str]:
    """Build in a new process, where nothing is imported yet, and print ``shows`` (an
    expression of the result ``r`` and ``sys``): the words it printed."""
    script = (
        "import sys; from pathlib import Path; from datetime import datetime;"
        "from announcer import pipeline;"
        f"r = pipeline.build(Path({str(root)!r}), Path({str(out)!r}),"
        f" now=datetime.fromisoformat({NOW.isoformat()!r}));"
        f"print({shows})"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.split()


def test_the_single_file_of_parsed_events_an_older_version_kept_is_removed(
    make_project: MakeProject, tmp_path: Path, build_cache: Path
) -> None:
    root, out = tree(make_project), tmp_path / "out"
    pipeline.build(root, out, now=NOW)
    record = next(build_cache.glob("*.pickle"))
    legacy = record.with_suffix(".events")
    legacy.write_bytes(b"twenty megabytes of events, once")
    change_talk(root, "Changed")
    pipeline.build(root, out, now=NOW)
    assert not legacy.exists() and shares(build_cache)


RECURRING = (
    "title: Reading group\nstart: 2026-12-02 12:00\nduration: 1h\n"
    "repeat: {every: week, on: [wed], count: 4}\ntags: [red]\n"
)
EDITS: list[tuple[str, str, str]] = [  # (file, old, new); "" as old creates, "" as new deletes
    ("series/a/events/one.yaml", "tags: [red]", "tags: [red, blue]"),  # joins a tag
    ("series/a/events/two.yaml", "tags: [blue]", "tags: [green]"),  # leaves one, makes one
    ("series/b/events/three.yaml", "tags: [blue]", "tags: [blue]\nstatus: cancelled"),
    ("series/a/events/one.yaml", "2026-12-04 12:00", "2026-12-18 12:00"),  # moves in the lists
    ("series/b/events/four.yaml", "", "title: Four\nstart: 2026-12-06 12:00\ntags: [red]\n"),
    ("series/a/events/group.yaml", "", RECURRING),
    (
        "series/a/events/group.yaml",
        "count: 4}",
        "count: 4}\noccurrences:\n  2026-12-09: {status: cancelled}",
    ),
    ("series/a/events/two.yaml", "tags: [green]", ""),  # the event is removed
    ("series/b/events/three.yaml", "title: Three", "title: Three\nlocation: Room 7"),
    ("series/b/events/three.yaml", "Room 7", "Room 8"),  # what no listing shows
    ("series/a/events/group.yaml", "count: 4}", "count: 4}\nabstract: Chapter *two*."),
    ("series/b/series.yaml", "title: B talks", "title: B seminars"),
]


def apply(root: Path, path: str, old: str, new: str) -> None:
    file = root / path
    if not old:
        file.write_text(new)
    elif not new:
        file.unlink()
    else:
        edit(file, old, new)


@pytest.mark.parametrize("jobs", [1, 2])
def test_every_rebuild_in_a_run_of_edits_equals_a_build_from_scratch(
    make_project: MakeProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int
) -> None:
    """Keys taken from the last build (announcer.recall) must never keep a stale file:
    events join and leave tags, move, are cancelled, added, repeated and removed."""
    root, out = two_series(make_project), tmp_path / "out"
    pipeline.build(root, out, now=NOW, jobs=jobs)
    for number, (path, old, new) in enumerate(EDITS):
        apply(root, path, old, new)
        result = pipeline.build(root, out, now=NOW, jobs=jobs)
        assert result.report.written, f"edit {number} changed nothing"
        assert contents(out) == from_scratch(root, tmp_path / str(number), NOW, monkeypatch)


def test_time_passing_takes_events_out_of_calendars_and_marks_them_past(
    make_project: MakeProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No input changes, yet events become past and leave the calendar window."""
    root, out = two_series(make_project), tmp_path / "out"
    edit(root / "announcer.yaml", "size_warning: 100", "size_warning: 100, past_days: 30")
    (root / "series/a/events/group.yaml").write_text(RECURRING)  # its page lists what is past
    pipeline.build(root, out, now=NOW)
    days = [(2026, 12, 3), (2026, 12, 10), (2027, 1, 9)]  # occurrences end one by one
    for number, later in enumerate(datetime(*day, tzinfo=UTC) for day in days):
        result = pipeline.build(root, out, now=later)
        assert contents(out) == from_scratch(root, tmp_path / str(number), later, monkeypatch)
    assert b"One" not in (out / "calendar.ics").read_bytes()  # past the 30-day window
    assert "calendar.ics" in result.report.written


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_change_works_out_keys_only_for_the_files_that_hold_the_event(
    make_project: MakeProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int
) -> None:
    """Every other file's key is the last build's, even when a worker worked it out."""
    root, out = two_series(make_project), tmp_path / "out"
    pipeline.build(root, out, now=NOW, jobs=jobs)
    keyed = keyed_files(monkeypatch)
    edit(root / "series/b/events/three.yaml", "title: Three", "title: Three, revised")
    pipeline.build(root, out, now=NOW)
    assert set(keyed) == {
        "index.html", "feed.atom", "feed.rss", "calendar.ics",
        "b/index.html", "b/feed.atom", "b/feed.rss", "b/calendar.ics",
        "b/three/index.html", "b/three/event.ics",
        "tags/blue/index.html", "tags/blue/feed.atom", "tags/blue/feed.rss", "tags/blue/calendar.ics",
    }  # fmt: skip


def listed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths the adapters list in the builds from now on."""
    found: list[str] = []
    real = pipeline.render

    def recording(
        context: BuildContext, adapters: list[OutputAdapter]
    ) -> Iterator[OutputFile | LazyFile]:
        for item in real(context, adapters):
            found.append(item.path)
            yield item

    monkeypatch.setattr(pipeline, "render", recording)
    return found


def test_the_own_files_of_unchanged_events_are_kept_without_being_listed(
    make_project: MakeProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, out = two_series(make_project), tmp_path / "out"
    pipeline.build(root, out, now=NOW)
    before = {path: stat_of(out / path) for path in contents(out)}
    own = {f"{e}/{name}" for e in ("a/one", "a/two", "b/three") for name in ("index.html", "event.ics")}
    paths = listed(monkeypatch)
    edit(root / "series/b/events/three.yaml", "title: Three", "title: Three, revised")
    result = pipeline.build(root, out, now=NOW)
    kept = own - set(paths)
    assert kept == {"a/one/index.html", "a/one/event.ics", "a/two/index.html", "a/two/event.ics"}
    assert all(stat_of(out / path) == before[path] for path in kept)
    assert kept <= set(result.report.unchanged)
    assert {"b/three/index.html", "b/three/event.ics"} <= set(result.report.written)
    assert "tags/red/calendar.ics" in paths  # shows a/one alone, but is not its own
    paths.clear()
    edit(root / "series/a/events/one.yaml", "title: One", "title: One, revised")
    again = pipeline.build(root, out, now=NOW)  # a kept file is kept again
    assert own - set(paths) == {
        "a/two/index.html", "a/two/event.ics", "b/three/index.html", "b/three/event.ics",
    }  # fmt: skip
    assert {"a/one/index.html", "a/one/event.ics"} <= set(again.report.written)
    assert contents(out) == from_scratch(root, tmp_path, NOW, monkeypatch)


def test_a_ledger_changed_alone_reaches_calendars_and_feeds(
    make_project: MakeProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ledger pulled from a colleague, the event files as they were: the revision is
    part of every key that shows it (SEQUENCE, the feed entry's dates)."""
    root, out = tree(make_project), tmp_path / "out"
    pipeline.build(root, out, now=NOW)
    ledger = json.loads((root / "ledger.json").read_text())
    ledger["events"]["s/talk"]["sequence"] = 5
    ledger["events"]["s/talk"]["modified"] = "2026-11-29T00:00:00Z"
    (root / "ledger.json").write_text(json.dumps(ledger))
    result = rebuild_matches_scratch(root, out, tmp_path, NOW, monkeypatch)
    assert b"SEQUENCE:5" in (out / "s/talk/event.ics").read_bytes()
    assert {"calendar.ics", "feed.atom", "s/talk/event.ics"} <= set(result.report.written)


def test_a_rebuild_takes_its_vtimezones_from_the_last_build(
    make_project: MakeProject, tmp_path: Path
) -> None:
    """Making a VTIMEZONE, and loading icalendar to make it, was a tenth of a one-event
    rebuild: the calendars made again take the last build's, in a process without it."""
    root, out = settle(tree(make_project)), tmp_path / "out"
    pipeline.build(root, out, now=NOW)
    edit(root / TALK, "Room 1", "Room 2")
    shows = "'calendar.ics' in r.report.written, 'icalendar' in sys.modules"
    assert fresh_build(root, out, shows) == ["True", "False"]
    assert b"BEGIN:VTIMEZONE\r\nTZID:America/Toronto" in (out / "calendar.ics").read_bytes()


def test_a_changed_tz_database_entry_makes_the_vtimezone_again(
    make_project: MakeProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, out = tree(make_project), tmp_path / "out"
    pipeline.build(root, out, now=NOW)
    made: list[str] = []
    real = ics._vtimezone
    monkeypatch.setattr(ics, "_vtimezone", lambda *zone: made.append(zone[0]) or real(*zone))
    edit(root / TALK, "Room 1", "Room 2")
    pipeline.build(root, out, now=NOW)
    assert made == []  # kept from the last build
    monkeypatch.setattr(ics, "_tz_entry", lambda tzid: b"an updated entry for " + tzid.encode())
    ics._zone_source.cache_clear()
    edit(root / TALK, "Room 2", "Room 3")
    pipeline.build(root, out, now=NOW)
    ics._zone_source.cache_clear()
    assert "America/Toronto" in made


def test_a_folder_too_new_to_trust_keeps_its_parents_listed(tmp_path: Path) -> None:
    """A folder changed too close to the end of a build is listed again by the next one;
    its parents must be too, or a trusted parent, which lists only the subfolders recorded
    in it, would never lead there again, and what it holds would never be found stale.
    (A run of edits under load left a removed tag's files in place this way.)"""
    out = tmp_path / "out"
    (out / "tags/green").mkdir(parents=True)
    (out / "a").mkdir()
    old = time.time_ns() - 10_000_000_000
    for folder in (out, out / "tags", out / "a"):
        os.utime(folder, ns=(old, old))
    seen = {f: stat for f in ("", "tags", "tags/green", "a") if (stat := stat_of(out / f))}
    settled = publishing._settled(out, seen, publishing.WriteReport())
    assert settled == {"a": seen["a"]}


def pruned(
    make_project: MakeProject, out: Path, starts: list[str], others: tuple[str, ...] = ()
) -> tuple[Path, set[str]]:
    """A project of one event per start (and per start of ``others``, in series ``t``),
    built, then built again after a first edit in series ``s`` with unused pieces added
    to its store, as after many edits (3/5 of the store): a build that works out every
    key and prunes the store. The added pieces' keys come back."""
    events = {
        f"series/{name}/events/e{i:03}.yaml": f"title: Talk {i}\nstart: {start}\n"
        for name, chosen in (("s", starts), ("t", others))
        for i, start in enumerate(chosen)
    }
    root = make_project(
        {
            "announcer.yaml": "base_url: https://example.org/\n",
            "series/s/series.yaml": "title: Seminars\ntimezone: America/Toronto\n",
            **({"series/t/series.yaml": "title: Others\ntimezone: Europe/Paris\n"} if others else {}),
            **events,
        }
    )
    pipeline.build(root, out, now=NOW)
    version, pieces = stored_pieces(root, out)
    unused = {f"unused {i}": b"an old piece" for i in range(len(pieces) * 3 // 5)}
    store = buildstate.state_path(root, out).with_suffix(".fragments")
    store.write_bytes(pickle.dumps((version, {**pieces, **unused})))
    edit(root / "series/s/events/e000.yaml", "Talk 0", "Talk 0, revised")
    pipeline.build(root, out, now=NOW)  # works out every key
    return root, set(unused)


def stored_pieces(root: Path, out: Path) -> tuple[int, dict[str, bytes]]:
    found: tuple[int, dict[str, bytes]]
    found = pickle.loads(buildstate.state_path(root, out).with_suffix(".fragments").read_bytes())
    return found


def test_a_store_of_pieces_grown_past_its_bound_is_pruned_by_the_next_build(
    make_project: MakeProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pieces no file uses any more pile up over many edits; the build that works out
    every key again must store only what it used, however few pieces it made, or every
    later build would work out every key and list every file (seen at 10,000 events)."""
    out = tmp_path / "out"
    root, unused = pruned(make_project, out, [f"2026-12-{1 + i % 28:02} 12:00" for i in range(200)])
    assert not unused & stored_pieces(root, out)[1].keys()
    paths = listed(monkeypatch)
    edit(root / "series/s/events/e001.yaml", "Talk 1", "Talk 1, revised")
    pipeline.build(root, out, now=NOW)
    assert "s/e002/index.html" not in paths  # the own files of unchanged events are kept
    assert "s/e001/index.html" in paths
    assert contents(out) == from_scratch(root, tmp_path, NOW, monkeypatch)


def test_a_pruned_store_keeps_the_vevents_of_calendars_it_did_not_make(
    make_project: MakeProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Series t's calendar was not made by the build that pruned (the edit was in s,
    and t's talks are too old for the site's calendar), nor were its VEVENTs asked for
    ahead (s's 70 talks come first, past the first 64 that decide whether to prepare
    every event): they stay stored, or the next edit in t makes every one again."""
    out = tmp_path / "out"
    starts = [f"2026-12-{1 + i % 28:02} 12:00" for i in range(70)]
    assert len(starts) > pipeline.PROBE
    others = tuple(f"2020-03-{1 + i:02} 12:00" for i in range(20))
    root, unused = pruned(make_project, out, starts, others)
    assert not unused & stored_pieces(root, out)[1].keys()
    made: list[str] = []
    real = ics._Writer._serialise

    def serialise(writer: ics._Writer, event: Event) -> bytes:
        made.append(event.key)
        return real(writer, event)

    monkeypatch.setattr(ics._Writer, "_serialise", serialise)
    edit(root / "series/t/events/e003.yaml", "Talk 3", "Talk 3 revised")
    pipeline.build(root, out, now=NOW)
    assert made == ["t/e003"]
    assert b"SUMMARY:Talk 3 revised" in (out / "t/calendar.ics").read_bytes()
    assert contents(out) == from_scratch(root, tmp_path, NOW, monkeypatch)


def test_a_pruned_store_keeps_the_vtimezones_of_calendars_it_did_not_make(
    make_project: MakeProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An event's own .ics holds a VTIMEZONE for its own years, which no other file
    may use. A build that prunes the store keeps it though the file was not made, so
    the next edit to that event does not load icalendar to make it again."""
    out = tmp_path / "out"
    starts = [f"{2020 + i % 7}-03-{1 + i % 28:02} 12:00" for i in range(100)]
    root, unused = pruned(make_project, out, starts)
    assert not unused & stored_pieces(root, out)[1].keys()
    made: list[tuple[str, int, int]] = []
    real = ics._vtimezone

    def vtimezone(tzid: str, first: int, last: int) -> bytes:
        made.append((tzid, first, last))
        return real(tzid, first, last)

    monkeypatch.setattr(ics, "_vtimezone", vtimezone)
    edit(root / "series/s/events/e003.yaml", "Talk 3", "Talk 3 revised")  # in 2023 only
    pipeline.build(root, out, now=NOW)
    assert made == []
    assert b"SUMMARY:Talk 3 revised" in (out / "s/e003/event.ics").read_bytes()
    assert contents(out) == from_scratch(root, tmp_path, NOW, monkeypatch)
