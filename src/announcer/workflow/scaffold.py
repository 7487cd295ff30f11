"""Starting a project and adding events without knowing the file format by heart.

``init`` writes a project that builds at once, so an organiser starts from
something working and edits it; ``new`` writes one event file with an id that
sorts by date and reads like the title. Both refuse to overwrite: an event id
is what calendar apps remember, and a project's files are someone's work.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from importlib.resources import files
from pathlib import Path

from announcer import __version__
from announcer.errors import ConfigError, Diagnostic, ValidationFailed, display_path
from announcer.load import load_site
from announcer.load.fields import SLUG
from announcer.load.project import CONFIG_FILE, SERIES_DIR
from announcer.times import TimeError, parse_duration, parse_written, zone

ID_LIMIT = 80
TITLE_SLUG_LIMIT = 50  # the rest of an id is its date; long titles are cut at a word
WORKFLOWS = (".github/workflows/pr.yml", ".github/workflows/pages.yml")
INSTALL = f'pip install "announcer=={__version__}"'
GITIGNORE = ".gitignore"


def skeleton(name: str) -> str:
    """One template of a new project, shipped inside the package."""
    return files("announcer.workflow").joinpath("skeleton", name).read_text(encoding="utf-8")


def fill(text: str, values: dict[str, str]) -> str:
    """Replace ``__NAME__`` markers; workflows use ``${{ }}``, so no brace templating."""
    for name, value in values.items():
        text = text.replace(f"__{name}__", value)
    leftover = re.search(r"__[A-Z_]+__", text)
    assert leftover is None, f"unfilled marker {leftover.group()}"
    return text


def workflow(name: str, install: str = INSTALL) -> str:
    """A GitHub workflow of a new project; ``install`` is the step that installs announcer."""
    return fill(skeleton(name), {"INSTALL": install})


def slugify(text: str, limit: int = TITLE_SLUG_LIMIT) -> str:
    """Lowercase ASCII words joined by '-', accents dropped, cut between words."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+(?:-[a-z0-9]+)*", ascii_text.lower())  # "co-op" stays whole
    slug = ""
    for word in words:
        candidate = f"{slug}-{word}" if slug else word
        if len(candidate) > limit:
            break
        slug = candidate
    return slug or (words[0][:limit] if words else "")


def local_timezone() -> str:
    """The IANA name of this machine's zone, so a new series starts in the right one."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    with contextlib.suppress(OSError):
        candidates.append(os.readlink("/etc/localtime").split("zoneinfo/", 1)[-1])
    for name in candidates:
        try:
            zone(name)
        except TimeError:
            continue
        return name
    return "UTC"


@dataclass(frozen=True)
class InitReport:
    written: list[str]
    kept: list[str]


def init_project(
    root: Path,
    *,
    title: str = "Events",
    series: str = "seminars",
    timezone: str | None = None,
    today: date | None = None,
) -> InitReport:
    """Write a new project under ``root``; refuses a folder that already holds one."""
    tz = timezone or local_timezone()
    _check_new_project(root, series, tz)
    first = (today or date.today()) + timedelta(days=7)
    texts = _project_files(title, series, tz, first)
    report = InitReport([], [])
    for relative, text in texts.items():
        _write_new(root / relative, text, relative, report)
    return report


def _check_new_project(root: Path, series: str, tz: str) -> None:
    for name in (CONFIG_FILE, SERIES_DIR):
        if (root / name).exists():
            raise ConfigError(
                f"{root / name} exists: {root} already holds a project, and init never "
                "overwrites one (use 'announcer new' to add events)"
            )
    if not SLUG.fullmatch(series):
        raise ConfigError(f"series {series!r} is not a valid slug: use a-z, 0-9 and '-'")
    try:
        zone(tz)
    except TimeError as exc:
        raise ConfigError(f"{exc} ({exc.hint})") from None


def _project_files(title: str, series: str, tz: str, first: date) -> dict[str, str]:
    event_id = f"{first.isoformat()}-welcome-seminar"
    values = {
        "TITLE": _quoted(title),
        "SERIES_TITLE": _quoted(series.replace("-", " ").capitalize()),
        "SERIES": series,
        "TIMEZONE": tz,
        "START": f"{first.isoformat()} 12:00",
    }
    return {
        CONFIG_FILE: fill(skeleton("announcer.yaml"), values),
        f"{SERIES_DIR}/{series}/series.yaml": fill(skeleton("series.yaml"), values),
        f"{SERIES_DIR}/{series}/events/{event_id}.yaml": fill(skeleton("event.yaml"), values),
        GITIGNORE: skeleton("gitignore"),
        **{path: workflow(Path(path).name) for path in WORKFLOWS},
    }


def _write_new(path: Path, text: str, relative: str, report: InitReport) -> None:
    """Create ``path``; an existing file is kept (a .gitignore gains the missing lines)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        report.written.append(relative)
        return
    if relative == GITIGNORE:
        old = path.read_text(encoding="utf-8")
        have = {line.strip() for line in old.splitlines()}
        extra = [line for line in text.splitlines() if line.strip() not in have]
        if any(not line.startswith("#") for line in extra):
            path.write_text(old.rstrip("\n") + "\n\n" + "\n".join(extra) + "\n", encoding="utf-8")
            report.written.append(relative)
            return
    report.kept.append(relative)


def _quoted(text: str) -> str:
    """A YAML double-quoted scalar: JSON strings are valid YAML, escapes included."""
    return json.dumps(text, ensure_ascii=False)


@dataclass(frozen=True)
class NewEvent:
    series: str
    title: str
    start: str
    end: str = ""
    duration: str = ""
    location: str = ""
    speakers: tuple[str, ...] = ()
    event_id: str = ""


def new_event(root: Path, spec: NewEvent) -> tuple[Path, int]:
    """Write one event file and check it by loading the project.

    Returns the file and how many problems the project has elsewhere: those are
    not this command's to fix, but the organiser should hear of them.
    """
    folder = _series_folder(root, spec.series)
    _check_times(spec)
    event_id = spec.event_id or event_id_for(spec.start, spec.title)
    if not SLUG.fullmatch(event_id):
        raise ConfigError(f"event id {event_id!r} is not valid: use 1-80 of a-z, 0-9 and '-'")
    path = folder / "events" / f"{event_id}.yaml"
    if path.exists():
        raise ConfigError(
            f"{display_path(path, root)} already exists; announcer never overwrites an event "
            "(pass --id to choose another id, or edit that file)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(event_yaml(spec), encoding="utf-8")
    return path, _validate_new(root, path)


def event_id_for(start: str, title: str) -> str:
    """``<date>-<slug of the title>``: files sort by date and say what they are."""
    day = parse_written(start).day.isoformat()
    slug = slugify(title, min(TITLE_SLUG_LIMIT, ID_LIMIT - len(day) - 1))
    return f"{day}-{slug}" if slug else f"{day}-event"


def _series_folder(root: Path, series: str) -> Path:
    folder = root / SERIES_DIR / series
    if (folder / "series.yaml").is_file():
        return folder
    known = sorted(p.parent.name for p in (root / SERIES_DIR).glob("*/series.yaml"))
    raise ConfigError(
        f"there is no series {series!r} in {root / SERIES_DIR}"
        + (f" (there is: {', '.join(known)})" if known else " (run 'announcer init' first)")
    )


def _check_times(spec: NewEvent) -> None:
    """Refuse malformed times before anything is written, with the loader's own words."""
    parsers: dict[str, Callable[[str], object]] = {
        "start": parse_written,
        "end": parse_written,
        "duration": parse_duration,
    }
    for name, parse in parsers.items():
        value = getattr(spec, name)
        try:
            if value or name == "start":
                parse(value)
        except TimeError as exc:
            raise ConfigError(f"--{name}: {exc} ({exc.hint})") from None
    if spec.end and spec.duration:
        raise ConfigError("give either --end or --duration, not both")


def event_yaml(spec: NewEvent) -> str:
    """The file's text: given values first, optional keys as comments to fill in."""
    lines = [f"title: {_quoted(spec.title)}", f"start: {spec.start.strip()}"]
    if spec.end:
        lines.append(f"end: {spec.end.strip()}")
    if spec.duration:
        lines.append(f"duration: {spec.duration.strip()}")
    if spec.speakers:
        lines.append("speakers:")
        lines += [f"  - name: {_quoted(name)}" for name in spec.speakers]
    else:
        lines += ["# speakers:", "#   - name: Ada Example", "#     affiliation: Example University"]
    lines.append(f"location: {_quoted(spec.location)}" if spec.location else "# location: Room 101")
    lines += ["# abstract: |", "#   What the talk is about. Markdown allowed.", "# tags: [topic]"]
    lines.append("status: confirmed")
    return "\n".join(lines) + "\n"


def _validate_new(root: Path, path: Path) -> int:
    """Load the project; errors in the new file remove it again, others are counted."""
    shown = display_path(path, root)
    try:
        load_site(root)
    except ValidationFailed as exc:
        mine = [d for d in exc.diagnostics if _about(d, shown)]
        if mine:
            path.unlink()
            raise ValidationFailed(mine) from None
        return len(exc.diagnostics)
    return 0


def _about(diagnostic: Diagnostic, shown: str) -> bool:
    return diagnostic.path == shown or shown in diagnostic.message
