"""Every rule of the input contract: one invalid tree each, with file, line and message.

Each case writes a tiny project with one mistake and asserts the exact
diagnostic a user would read, then that ``build`` refused to write anything.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from announcer import pipeline
from announcer.errors import ValidationFailed
from announcer.load import load_site
from tests.conftest import NOW, MakeProject

SERIES = "title: Seminars\ntimezone: America/Toronto\n"
EVENT = "series/s/events/talk.yaml"


def problems(root: Path) -> list[str]:
    with pytest.raises(ValidationFailed) as caught:
        load_site(root)
    return [str(d) for d in caught.value.diagnostics]


def tree(event: str, series: str = SERIES, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"series/s/series.yaml": series, EVENT: event, **(extra or {})}


CASES = {
    "unknown key, with a suggestion": (
        tree("title: T\nstart: 2027-01-15 12:00\nspeker: {name: A}\n"),
        "series/s/events/talk.yaml:3: unknown key 'speker' in an event (did you mean 'speaker'?)",
    ),
    "missing title": (
        tree("start: 2027-01-15 12:00\n"),
        "series/s/events/talk.yaml:1: an event has no 'title' (add 'title: ...')",
    ),
    "wrong type": (
        tree("title: [a, b]\nstart: 2027-01-15 12:00\n"),
        "series/s/events/talk.yaml:1: 'title' must be text, found a list",
    ),
    "end before start": (
        tree("title: T\nstart: 2027-01-15 12:00\nend: 2027-01-15 11:00\n"),
        "series/s/events/talk.yaml:3: 'end' (2027-01-15 11:00) is not after 'start' (2027-01-15 12:00)",
    ),
    "spring-forward gap": (
        tree("title: T\nstart: 2027-03-14 02:30\n"),
        "series/s/events/talk.yaml:2: 'start': 2027-03-14 02:30 does not exist in America/Toronto "
        "(clocks spring forward that night) (pick a time outside the skipped hour)",
    ),
    "fall-back overlap": (
        tree("title: T\nstart: 2027-11-07 01:30\n"),
        "series/s/events/talk.yaml:2: 'start': 2027-11-07 01:30 happens twice in America/Toronto "
        "(clocks go back that night) (add the UTC offset you mean, e.g. -04:00 or -05:00)",
    ),
    "unknown event timezone": (
        tree("title: T\nstart: 2027-01-15 12:00\ntimezone: Mars/Olympus\n"),
        "series/s/events/talk.yaml:3: unknown timezone 'Mars/Olympus'",
    ),
    "unknown series timezone": (
        tree("title: T\nstart: 2027-01-15 12:00\n", series="title: S\ntimezone: EST5\n"),
        "series/s/series.yaml:2: unknown timezone 'EST5'",
    ),
    "all-day end with a time": (
        tree("title: T\nstart: 2027-01-15\nend: 2027-01-16 10:00\n"),
        "series/s/events/talk.yaml:3: 'end' has a time but 'start' is a date (an all-day event)",
    ),
    "all-day end before start": (
        tree("title: T\nstart: 2027-01-15\nend: 2027-01-14\n"),
        "series/s/events/talk.yaml:3: 'end' (2027-01-14) is before 'start' (2027-01-15)",
    ),
    "end and duration": (
        tree("title: T\nstart: 2027-01-15 12:00\nend: 2027-01-15 13:00\nduration: 1h\n"),
        "series/s/events/talk.yaml:4: give either 'end' or 'duration', not both",
    ),
    "bad duration": (
        tree("title: T\nstart: 2027-01-15 12:00\nduration: an hour\n"),
        "series/s/events/talk.yaml:3: 'duration': 'an hour' is not a duration (write 90m, 1h or 1h30m)",
    ),
    "not a date": (
        tree("title: T\nstart: next friday\n"),
        "series/s/events/talk.yaml:2: 'start': 'next friday' is not a date or time",
    ),
    "bad status": (
        tree("title: T\nstart: 2027-01-15 12:00\nstatus: postponed\n"),
        "series/s/events/talk.yaml:3: 'status' is 'postponed' (use one of: confirmed, tentative, cancelled)",
    ),
    "bad tag": (
        tree("title: T\nstart: 2027-01-15 12:00\ntags: [ok, Public Policy]\n"),
        "series/s/events/talk.yaml:3: tag 'Public Policy' is not a valid tag "
        "(use 1-80 lowercase letters, digits and '-', e.g. 'public-policy')",
    ),
    "javascript url": (
        tree("title: T\nstart: 2027-01-15 12:00\nurl: javascript:alert(1)\n"),
        "series/s/events/talk.yaml:3: 'url' is not a web address: 'javascript:alert(1)'",
    ),
    "url with markup characters": (
        tree('title: T\nstart: 2027-01-15 12:00\nonline_url: "https://x.org/a?b=\\"><script>"\n'),
        "series/s/events/talk.yaml:3: 'online_url' is not a web address",
    ),
    "duplicate key": (
        tree("title: T\nstart: 2027-01-15 12:00\ntitle: U\n"),
        "series/s/events/talk.yaml:3: 'title' is given twice in an event (keep one of them)",
    ),
    "bad event id": (
        {
            "series/s/series.yaml": SERIES,
            "series/s/events/My Talk.yaml": "title: T\nstart: 2027-01-15\n",
        },
        "series/s/events/My Talk.yaml: event id 'My Talk' is not a valid event id",
    ),
    "bad series slug": (
        {"series/Big_Series/series.yaml": SERIES},
        "series/Big_Series: series slug 'Big_Series' is not a valid series slug",
    ),
    "missing series.yaml": (
        {"series/s/events/talk.yaml": "title: T\nstart: 2027-01-15\n"},
        "series/s/series.yaml: is missing",
    ),
    "series without timezone": (
        tree("title: T\nstart: 2027-01-15\n", series="title: S\n"),
        "series/s/series.yaml:1: series.yaml has no 'timezone' (add 'timezone: ...')",
    ),
    "duplicate uid": (
        tree(
            "title: T\nstart: 2027-01-15\nuid: same@x\n",
            extra={"series/s/events/other.yaml": "title: U\nstart: 2027-01-16\nuid: same@x\n"},
        ),
        "series/s/events/other.yaml:3: uid 'same@x' is already used by series/s/events/talk.yaml:3",
    ),
    "repeat without end": (
        tree("title: T\nstart: 2027-01-15 12:00\nrepeat: {every: week}\n"),
        "series/s/events/talk.yaml:3: 'repeat' has no end (add 'until: YYYY-MM-DD' or 'count: N')",
    ),
    "until before start": (
        tree("title: T\nstart: 2027-01-15 12:00\nrepeat:\n  every: week\n  until: 2027-01-01\n"),
        "series/s/events/talk.yaml:5: 'until' (2027-01-01) is before the first 'start' (2027-01-15)",
    ),
    "occurrence that is not one": (
        tree(
            "title: T\nstart: 2027-01-15 12:00\nrepeat: {every: week, count: 3}\n"
            "occurrences:\n  2027-01-16: {status: cancelled}\n"
        ),
        "series/s/events/talk.yaml:5: 2027-01-16 is not an occurrence of this event",
    ),
    "occurrences without repeat": (
        tree(
            "title: T\nstart: 2027-01-15 12:00\noccurrences:\n  2027-01-16: {status: cancelled}\n"
        ),
        "series/s/events/talk.yaml:4: 'occurrences' needs a 'repeat' rule in the same file",
    ),
    "weekday not in on": (
        tree("title: T\nstart: 2027-01-15 12:00\nrepeat: {every: week, on: [mon], count: 2}\n"),
        "series/s/events/talk.yaml:3: 'start' (2027-01-15) is a fri, not in 'on'",
    ),
    "occurrence in a spring-forward gap": (
        tree("title: T\nstart: 2027-03-07 02:30\nrepeat: {every: week, count: 3}\n"),
        "series/s/events/talk.yaml:3: the occurrence on 2027-03-14: 2027-03-14 02:30 does not exist in "
        "America/Toronto (clocks spring forward that night) (add that date to 'except', or choose another time)",
    ),
    "remote plain smtp": (
        tree(
            "title: T\nstart: 2027-01-15\n",
            extra={"announcer.yaml": "email:\n  smtp: {host: smtp.example.org, security: none}\n"},
        ),
        "announcer.yaml:2: 'security: none' would send mail and passwords in clear to smtp.example.org",
    ),
    "relative base_url": (
        tree("title: T\nstart: 2027-01-15\n", extra={"announcer.yaml": "base_url: events/\n"}),
        "announcer.yaml:1: 'base_url' is not an absolute web address: 'events/'",
    ),
    "invalid yaml": (
        tree("title: T\nstart: [2027-01-15\n"),
        "series/s/events/talk.yaml:3: is not valid YAML",
    ),
    "empty file": (tree(""), "series/s/events/talk.yaml:1: is empty"),
    "two documents": (
        tree("title: T\nstart: 2027-01-15\n---\ntitle: U\n"),
        "series/s/events/talk.yaml:1: holds 2 YAML documents",
    ),
    "not a mapping": (
        tree("- title: T\n"),
        "series/s/events/talk.yaml:1: an event must be a mapping of keys, found a list",
    ),
    "python tag is not run": (
        tree("title: !!python/object/apply:os.system ['touch pwned']\nstart: 2027-01-15\n"),
        "series/s/events/talk.yaml:1: 'title' must be text, found a list",
    ),
    "wrong extension": (
        tree("title: T\nstart: 2027-01-15\n", extra={"series/s/events/notes.yml": "title: x\n"}),
        "series/s/events/notes.yml: is not an event file",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_rule_reports_file_line_and_what_to_do(
    case: str, make_project: MakeProject, tmp_path: Path
) -> None:
    files, expected = CASES[case]
    root = make_project(files)
    found = problems(root)
    assert any(line.startswith(expected) for line in found), found
    out = tmp_path / "out"
    with pytest.raises(ValidationFailed):
        pipeline.build(root, out, now=NOW)
    assert not out.exists()
    assert not (root / "ledger.json").exists()
    assert not (Path.cwd() / "pwned").exists()


def test_all_errors_of_all_files_in_one_run(make_project: MakeProject) -> None:
    root = make_project(
        {
            "series/s/series.yaml": SERIES,
            "series/s/events/a.yaml": "title: A\nstart: 2027-02-30 12:00\n",
            "series/s/events/b.yaml": "title: B\nstart: 2027-01-15 12:00\nend: 2027-01-15 11:00\nbogus: 1\n",
            "series/t/series.yaml": "title: T\ntimezone: Nowhere/City\n",
        }
    )
    found = problems(root)
    assert [line.split(":")[0] + ":" + line.split(":")[1] for line in found] == [
        "series/s/events/a.yaml:2",
        "series/s/events/b.yaml:3",
        "series/s/events/b.yaml:4",
        "series/t/series.yaml:2",
    ]


def test_alias_bomb_is_refused_quickly(make_project: MakeProject) -> None:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for n in range(1, 10):
        prev = chr(ord("a") + n - 1)
        name = chr(ord("a") + n)
        lines.append(
            f"{name}: &{name} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]"
        )
    root = make_project(tree("\n".join(lines) + "\n"))
    assert problems(root) == [
        "series/s/events/talk.yaml:1: expands to too many values "
        "(YAML aliases (*name) that repeat large parts are not allowed)"
    ]


def test_binary_garbage_and_huge_files(make_project: MakeProject) -> None:
    root = make_project(tree("title: T\nstart: 2027-01-15\n"))
    (root / "series/s/events/binary.yaml").write_bytes(b"title: x\n\x00\x01\x02\xff")
    (root / "series/s/events/latin1.yaml").write_bytes("title: caf\xe9\n".encode("latin-1"))
    (root / "series/s/events/huge.yaml").write_bytes(b"title: " + b"x" * (1024 * 1024 + 1))
    found = problems(root)
    assert any(p.startswith("series/s/events/binary.yaml:2: contains a NUL byte") for p in found)
    assert any(p.startswith("series/s/events/latin1.yaml:1: is not UTF-8 text") for p in found)
    assert any(
        p.startswith("series/s/events/huge.yaml: is 1,048,584 bytes, over the 1 MiB limit")
        for p in found
    )


def test_files_read_in_workers_report_the_same_problems(make_project: MakeProject) -> None:
    """A first build reads each event file where it parses it, in a worker when there
    are many: unreadable files are reported there just as in one process."""
    talks = {f"series/s/events/talk-{n:03}.yaml": f"title: T{n}\nstart: 2027-01-15\n" for n in range(80)}
    root = make_project({"series/s/series.yaml": SERIES, **talks})
    (root / "series/s/events/binary.yaml").write_bytes(b"title: x\n\x00\x01\x02\xff")
    (root / "series/s/events/huge.yaml").write_bytes(b"title: " + b"x" * (1024 * 1024 + 1))
    (root / "series/s/events/talk-041.yaml").write_text("title: [unclosed\n")
    found = []
    for jobs in (1, 2):
        with pytest.raises(ValidationFailed) as caught:
            load_site(root, cache={}, jobs=jobs)
        found.append([str(d) for d in caught.value.diagnostics])
    assert found[0] == found[1]
    assert [line.split(":")[0] for line in found[0]] == [
        "series/s/events/binary.yaml",
        "series/s/events/huge.yaml",
        "series/s/events/talk-041.yaml",
    ]


def test_yaml_1_1_surprises_mean_what_they_look_like(make_project: MakeProject) -> None:
    root = make_project(
        tree("title: yes\nstart: 2027-01-15 12:00\nlocation: 12:30\ntags: [no, on]\n")
    )
    event = load_site(root).series[0].events[0]
    assert (event.title, event.location, event.tags) == ("yes", "12:30", ("no", "on"))


def test_explicit_offset_is_the_instant_written(make_project: MakeProject) -> None:
    root = make_project(tree("title: T\nstart: 2027-11-07T01:30:00-05:00\nduration: 30m\n"))
    event = load_site(root).series[0].events[0]
    assert event.start.isoformat() == "2027-11-07T01:30:00-05:00"
    assert str(event.start.tzinfo) == "America/Toronto"
    assert event.end.isoformat() == "2027-11-07T02:00:00-05:00"


def test_defaults_from_series(make_project: MakeProject) -> None:
    root = make_project(
        tree(
            "title: T\nstart: 2027-01-15 12:00\n",
            series=SERIES + "default_duration: 1h30m\ndefault_location: Room 1\n",
        )
    )
    event = load_site(root).series[0].events[0]
    assert (event.end.isoformat(), event.location) == ("2027-01-15T13:30:00-05:00", "Room 1")
    assert event.uid == "talk.s@announcer"


def test_all_day_end_is_inclusive(make_project: MakeProject) -> None:
    root = make_project(tree("title: T\nstart: 2027-06-02\nend: 2027-06-04\n"))
    event = load_site(root).series[0].events[0]
    assert (str(event.start), str(event.end), str(event.end_exclusive)) == (
        "2027-06-02",
        "2027-06-04",
        "2027-06-05",
    )
