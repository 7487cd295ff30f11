"""Building the output tree: atomic, minimal, and open to third-party adapters."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from announcer import __version__, pipeline
from announcer.adapters.base import BuildContext, OutputAdapter, OutputFile, select
from announcer.errors import AnnouncerError, ConfigError
from tests.conftest import NOW, MakeProject

TALK = "series/policy-seminars/events/2018-11-30-nonprofit-coproduction.yaml"


def tree_state(out: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file with its inode and mtime: what 'untouched' means on disk."""
    return {
        p.relative_to(out).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes())
        for p in out.rglob("*")
        if p.is_file()
    }


class Exploding(OutputAdapter):
    name = "exploding"

    def files(self, context: BuildContext) -> Iterator[OutputFile]:
        yield OutputFile("first.txt", b"written before the failure")
        raise RuntimeError("adapter crashed half way")


def test_failed_build_leaves_previous_output_intact(example_project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    pipeline.build(example_project, out, now=NOW)
    before = tree_state(out)
    ledger_before = (example_project / "ledger.json").read_bytes()
    (example_project / TALK).write_text(
        (example_project / TALK).read_text().replace("12:00", "12:30", 1), encoding="utf-8"
    )
    with pytest.raises(RuntimeError, match="half way"):
        pipeline.build(example_project, out, now=NOW, adapters=[*select(None), Exploding()])
    assert tree_state(out) == before
    assert (example_project / "ledger.json").read_bytes() == ledger_before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["example", "out"]  # no stage left


def test_noop_rebuild_touches_no_file(example_project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    pipeline.build(example_project, out, now=NOW)
    before = tree_state(out)
    result = pipeline.build(example_project, out, now=NOW)
    assert result.report.written == [] and result.report.removed == []
    assert tree_state(out) == before


def test_only_affected_files_are_rewritten(example_project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    pipeline.build(example_project, out, now=NOW)
    before = tree_state(out)
    other = example_project / "series/policy-seminars/events/2019-01-25-open-data-cities.yaml"
    other.write_text(
        other.read_text().replace("who uses it", "who really uses it"), encoding="utf-8"
    )
    result = pipeline.build(example_project, out, now=NOW)
    after = tree_state(out)
    changed = {path for path in after if after[path] != before.get(path)}
    assert changed == set(result.report.written)
    assert "policy-seminars/2019-01-25-open-data-cities/event.ics" in changed
    untouched = "policy-seminars/2018-11-30-nonprofit-coproduction/event.ics"
    assert after[untouched] == before[untouched]  # same inode and mtime, not just bytes


def test_stale_files_are_removed(example_project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    pipeline.build(example_project, out, now=NOW)
    (example_project / TALK).unlink()
    result = pipeline.build(example_project, out, now=NOW)
    assert "policy-seminars/2018-11-30-nonprofit-coproduction/event.ics" in result.report.removed
    assert not (out / "policy-seminars/2018-11-30-nonprofit-coproduction").exists()


def test_refuses_to_build_over_the_project(example_project: Path) -> None:
    with pytest.raises(ConfigError, match="holds the project itself"):
        pipeline.build(example_project, example_project, now=NOW)
    assert (example_project / TALK).exists()


def test_adapter_cannot_write_outside_the_output(example_project: Path, tmp_path: Path) -> None:
    class Escaping(OutputAdapter):
        name = "escaping"

        def files(self, context: BuildContext) -> Iterator[OutputFile]:
            yield OutputFile("../evil.txt", b"x")

    with pytest.raises(AnnouncerError, match="outside the output folder"):
        pipeline.build(example_project, tmp_path / "out", now=NOW, adapters=[Escaping()])
    assert not (tmp_path / "evil.txt").exists()


def test_unknown_output_in_settings(example_project: Path, tmp_path: Path) -> None:
    (example_project / "announcer.yaml").write_text("outputs: [ics, sitemap]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown output 'sitemap'"):
        pipeline.build(example_project, tmp_path / "out", now=NOW)


def test_calendar_size_warning(example_project: Path, tmp_path: Path) -> None:
    (example_project / "announcer.yaml").write_text(
        "calendar: {size_warning: 2000, past_days: all}\n", encoding="utf-8"
    )
    result = pipeline.build(example_project, tmp_path / "out", now=NOW)
    assert any(w.startswith("calendar.ics is ") and "Google Calendar" in w for w in result.warnings)


def install_plugin(site_dir: Path) -> None:
    """A third-party package, installed the way pip leaves one: a module and a dist-info."""
    site_dir.mkdir()
    (site_dir / "announcer_hello.py").write_text(
        textwrap.dedent("""
        from announcer.adapters.base import OutputAdapter, OutputFile

        class HelloAdapter(OutputAdapter):
            name = "hello"

            def files(self, context):
                titles = [e.title for e in context.site.events()]
                yield OutputFile("hello.txt", "\\n".join(titles).encode())
    """)
    )
    info = site_dir / "announcer_hello-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: announcer-hello\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[announcer.outputs]\nhello = announcer_hello:HelloAdapter\n"
    )


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "announcer", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def test_third_party_adapter_found_through_entry_points(
    example_project: Path, tmp_path: Path
) -> None:
    plugin = tmp_path / "site-packages"
    install_plugin(plugin)
    env = {"PYTHONPATH": os.pathsep.join([str(plugin), os.environ.get("PYTHONPATH", "")])}
    done = run_cli(
        "build",
        "--out",
        str(tmp_path / "out"),
        "--now",
        NOW.isoformat(),
        cwd=example_project,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "Rules, practices and stories" in (tmp_path / "out/hello.txt").read_text()
    assert (tmp_path / "out/calendar.ics").exists()  # built-ins still run beside it

    (example_project / "announcer.yaml").write_text("outputs: [hello]\n", encoding="utf-8")
    done = run_cli("build", "--out", str(tmp_path / "only"), cwd=example_project, env=env)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "only").iterdir()) == ["hello.txt"]


def test_cli_check_prints_every_error_and_exits_1(make_project: MakeProject) -> None:
    root = make_project(
        {
            "series/s/series.yaml": "title: S\ntimezone: America/Toronto\n",
            "series/s/events/a.yaml": "title: A\nstart: 2027-03-14 02:30\n",
            "series/s/events/b.yaml": "title: B\nstart: 2027-01-15 12:00\nlocaton: Room\n",
        }
    )
    done = run_cli("check", cwd=root)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert lines[0].startswith(
        "error: series/s/events/a.yaml:2: 'start': 2027-03-14 02:30 does not exist"
    )
    assert lines[1] == (
        "error: series/s/events/b.yaml:3: unknown key 'locaton' in an event (did you mean 'location'?)"
    )
    assert lines[2] == "2 errors; nothing was written or sent."
    assert "Traceback" not in done.stderr


def test_cli_check_ok_and_project_option(example_project: Path, tmp_path: Path) -> None:
    done = run_cli("--project", str(example_project), "check", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, "ok: 1 series, 4 events, no errors\n")


def test_cli_build_reports_and_is_atomic_from_the_command_line(example_project: Path) -> None:
    done = run_cli("build", "--now", "2026-11-28T12:00:00+00:00", cwd=example_project)
    assert done.returncode == 0, done.stderr
    assert "written" in done.stdout and (example_project / "public/calendar.ics").exists()


def test_cli_build_jobs_give_the_same_output(example_project: Path, tmp_path: Path) -> None:
    """The command line forks (one thread there); the output does not depend on --jobs."""
    outs = {}
    for jobs in ("1", "2"):
        out = tmp_path / f"out-{jobs}"
        done = run_cli("build", "--now", "2026-11-28T12:00:00+00:00", "--out", str(out),
                       "--jobs", jobs, cwd=example_project)  # fmt: skip
        assert done.returncode == 0, done.stderr
        outs[jobs] = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert outs["1"] == outs["2"] and len(outs["1"]) > 10
    refused = run_cli("build", "--jobs", "0", cwd=example_project)
    assert refused.returncode == 2 and "--jobs" in refused.stderr


def test_cli_version_and_help() -> None:
    done = run_cli("--version", cwd=Path.cwd())
    assert done.stdout.strip() == f"announcer, version {__version__}"
    helped = run_cli("build", "--help", cwd=Path.cwd())
    assert "--out" in helped.stdout and "ledger" in helped.stdout
    console = subprocess.run(
        [str(Path(sys.executable).with_name("announcer")), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert console.stdout == done.stdout


def test_cli_bad_now_is_a_usage_error(example_project: Path) -> None:
    done = run_cli("build", "--now", "tomorrow", cwd=example_project)
    assert done.returncode == 2 and "ISO 8601" in done.stderr
