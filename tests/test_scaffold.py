"""``announcer init`` and ``announcer new``: working files at once, nothing overwritten."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from announcer import __version__, pipeline
from announcer.cli import main
from announcer.load import load_site
from announcer.workflow import scaffold

from .conftest import NOW, MakeProject

TODAY = date(2026, 11, 28)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def init(root: Path, **options: str) -> scaffold.InitReport:
    return scaffold.init_project(root, today=TODAY, timezone="America/Toronto", **options)


# --- init ----------------------------------------------------------------------------------------


def test_init_writes_a_project_that_builds_at_once(tmp_path: Path) -> None:
    root = tmp_path / "events"
    report = init(root, title="SPPA: Events", series="policy-talks")
    assert sorted(report.written) == sorted(
        [
            "announcer.yaml",
            "series/policy-talks/series.yaml",
            "series/policy-talks/events/2026-12-05-welcome-seminar.yaml",
            ".gitignore",
            ".github/workflows/pr.yml",
            ".github/workflows/pages.yml",
        ]
    )
    result = pipeline.build(root, now=NOW)
    assert result.site.title == "SPPA: Events"
    (series,) = result.site.series
    assert (series.slug, series.timezone) == ("policy-talks", "America/Toronto")
    (event,) = series.events
    assert event.begins == datetime.fromisoformat("2026-12-05T12:00:00-05:00")
    assert (root / "public" / "policy-talks" / "calendar.ics").is_file()
    assert "announcer new policy-talks" in event.abstract


def test_init_workflows_pin_the_installed_version(tmp_path: Path) -> None:
    init(tmp_path)
    for name in ("pr.yml", "pages.yml"):
        text = (tmp_path / ".github" / "workflows" / name).read_text(encoding="utf-8")
        assert f'pip install "announcer=={__version__}"' in text
        assert "__" not in text.replace("__version__", "")


def test_init_refuses_an_existing_project(tmp_path: Path) -> None:
    init(tmp_path)
    before = (tmp_path / "announcer.yaml").read_bytes()
    result = run("init", str(tmp_path))
    assert result.exit_code == 1
    assert "already holds a project" in result.output
    assert (tmp_path / "announcer.yaml").read_bytes() == before


def test_init_refuses_a_series_folder_without_settings(tmp_path: Path) -> None:
    (tmp_path / "series").mkdir()
    with pytest.raises(scaffold.ConfigError, match="already holds a project"):
        init(tmp_path)
    assert not (tmp_path / "announcer.yaml").exists()


def test_init_keeps_existing_files_and_completes_a_gitignore(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("*.pyc\n/public/\n", encoding="utf-8")
    workflow = tmp_path / ".github" / "workflows" / "pages.yml"
    workflow.parent.mkdir(parents=True)
    workflow.write_text("name: mine\n", encoding="utf-8")
    report = init(tmp_path)
    assert report.kept == [".github/workflows/pages.yml"]
    assert workflow.read_text(encoding="utf-8") == "name: mine\n"
    lines = (tmp_path / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert lines[:2] == ["*.pyc", "/public/"]
    assert lines.count("/public/") == 1
    assert "/outbox/" in lines


def test_init_command_reports_and_rejects_bad_timezone(tmp_path: Path) -> None:
    result = run("init", str(tmp_path / "a"), "--timezone", "Toronto")
    assert result.exit_code == 1
    assert "unknown timezone 'Toronto'" in result.output
    assert not (tmp_path / "a" / "announcer.yaml").exists()
    result = run("init", str(tmp_path / "b"), "--timezone", "Europe/Paris", "--series", "talks")
    assert result.exit_code == 0, result.output
    assert "created" in result.output and "announcer serve" in result.output
    assert load_site(tmp_path / "b").series[0].timezone == "Europe/Paris"


def test_init_uses_the_machines_timezone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    assert scaffold.local_timezone() == "Asia/Kolkata"
    monkeypatch.setenv("TZ", "not/a-zone")
    assert scaffold.local_timezone() != "not/a-zone"


# --- new -----------------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    init(tmp_path)
    return tmp_path


def test_new_names_the_file_by_date_and_title_and_it_loads(project: Path) -> None:
    title = 'Rules, practices & "narratives": why do non-profits co-produce services?'
    result = run(
        "-C", str(project), "new", "seminars", "--title", title, "--start", "2027-03-05 12:00",
        "--duration", "90m", "--speaker", "Caitlin McMullin", "--speaker", "Émile Durand",
        "--location", "Room 2200: Richcraft Hall",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    path = project / "series/seminars/events/2027-03-05-rules-practices-narratives-why-do-non-profits.yaml"
    assert f"created {path}" in result.output
    event = next(e for e in load_site(project).events() if e.id == path.stem)
    assert event.title == title
    assert [s.name for s in event.speakers] == ["Caitlin McMullin", "Émile Durand"]
    assert event.location == "Room 2200: Richcraft Hall"
    assert (event.finishes - event.begins).total_seconds() == 90 * 60


def test_new_refuses_to_overwrite(project: Path) -> None:
    args = ["-C", str(project), "new", "seminars", "--title", "Talk", "--start", "2027-03-05"]
    assert run(*args).exit_code == 0
    path = project / "series/seminars/events/2027-03-05-talk.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "# my notes\n", encoding="utf-8")
    result = run(*args)
    assert result.exit_code == 1
    assert "already exists" in result.output
    assert path.read_text(encoding="utf-8").endswith("# my notes\n")
    assert run(*args, "--id", "2027-03-05-talk-2").exit_code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "next friday"], "is not a date or time"),
        (["--start", "2027-03-05 12:00", "--duration", "an hour"], "is not a duration"),
        (["--start", "2027-03-05 12:00", "--end", "13:00"], "is not a date or time"),
    ],
)
def test_new_refuses_malformed_times_before_writing(
    project: Path, args: list[str], message: str
) -> None:
    result = run("-C", str(project), "new", "seminars", "--title", "Talk", *args)
    assert result.exit_code == 1
    assert message in result.output
    assert len(list((project / "series/seminars/events").iterdir())) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "2027-03-14 02:30"], "does not exist in America/Toronto"),
        (["--start", "2027-03-05 12:00", "--end", "2027-03-05 11:00"], "is not after 'start'"),
        (["--start", "2027-03-05", "--end", "2027-03-05 15:00"], "'end' has a time"),
    ],
)
def test_new_removes_a_file_the_loader_rejects(
    project: Path, args: list[str], message: str
) -> None:
    result = run("-C", str(project), "new", "seminars", "--title", "Talk", *args)
    assert result.exit_code == 1
    assert message in result.output
    assert "series/seminars/events/2027-03-" in result.output  # the error names the file
    assert len(list((project / "series/seminars/events").iterdir())) == 1


def test_new_in_an_unknown_series_lists_the_known_ones(project: Path) -> None:
    result = run("-C", str(project), "new", "semnars", "--title", "x", "--start", "2027-03-05")
    assert result.exit_code == 1
    assert "no series 'semnars'" in result.output and "(there is: seminars)" in result.output


def test_new_keeps_its_file_when_only_other_files_are_broken(
    make_project: MakeProject,
) -> None:
    root = make_project(
        {
            "series/talks/series.yaml": "title: Talks\ntimezone: UTC\n",
            "series/talks/events/broken.yaml": "title: x\nstart: soon\n",
        }
    )
    result = run("-C", str(root), "new", "talks", "--title", "Fine", "--start", "2027-01-01")
    assert result.exit_code == 0, result.output
    assert (root / "series/talks/events/2027-01-01-fine.yaml").is_file()
    assert "1 error(s) in other files" in result.output


def test_new_refuses_a_duplicate_uid_it_would_cause(make_project: MakeProject) -> None:
    """An explicit id equal to another file's uid source is caught by loading, not guessed."""
    root = make_project(
        {
            "series/talks/series.yaml": "title: Talks\ntimezone: UTC\n",
            "series/talks/events/zz-other.yaml": (
                "title: x\nstart: 2027-01-01\nuid: 2027-01-02-dup.talks@announcer\n"
            ),
        }
    )
    result = run("-C", str(root), "new", "talks", "--title", "Dup", "--start", "2027-01-02")
    assert result.exit_code == 1
    assert "already used" in result.output
    assert not (root / "series/talks/events/2027-01-02-dup.yaml").exists()


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("Café à Montréal: l'été!", "cafe-a-montreal-l-ete"),
        ("  ", ""),
        ("Open data in Canadian cities: who uses it, and for what purposes exactly?",
         "open-data-in-canadian-cities-who-uses-it-and-for"),
        ("Supercalifragilisticexpialidocious" * 3, ("supercalifragilisticexpialidocious" * 3)[:50]),
    ],
)  # fmt: skip
def test_slugify(title: str, slug: str) -> None:
    assert scaffold.slugify(title) == slug
    assert len(scaffold.slugify(title)) <= scaffold.TITLE_SLUG_LIMIT


def test_event_id_falls_back_when_the_title_has_no_letters() -> None:
    assert scaffold.event_id_for("2027-03-05 12:00", "!!!") == "2027-03-05-event"
    assert scaffold.event_id_for("2027-03-05", "日本語") == "2027-03-05-event"
