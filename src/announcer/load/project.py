"""Walking a project tree: every file is read, every problem is collected.

A bad file never stops the walk; the caller gets either a whole valid Site or
one ValidationFailed listing every problem in every file.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import yaml

from announcer.errors import Diagnostic, ValidationFailed, display_path
from announcer.load.events import SeriesDefaults, read_event
from announcer.load.fields import Reader, check_slug
from announcer.load.settings import read_series, read_site
from announcer.load.yamlfile import read_yaml
from announcer.model import Event, Series, Site

CONFIG_FILE = "announcer.yaml"
SERIES_DIR = "series"


def load_site(root: Path) -> Site:
    """The validated model of the project at ``root``, or ValidationFailed."""
    problems: list[Diagnostic] = []
    site = _site_settings(root, problems)
    series_root = root / SERIES_DIR
    if not series_root.is_dir():
        problems.append(
            Diagnostic(
                SERIES_DIR,
                0,
                0,
                "there is no series/ folder here",
                "run inside a project, pass --project DIR, or 'announcer init'",
            )
        )
        raise ValidationFailed(problems)
    series = [
        s for s in (_series(folder, root, site, problems) for folder in _folders(series_root)) if s
    ]
    _check_unique_uids(series, problems)
    if problems:
        raise ValidationFailed(problems)
    return replace(site, series=tuple(series))


def _site_settings(root: Path, problems: list[Diagnostic]) -> Site:
    file = root / CONFIG_FILE
    if not file.exists():
        return Site()
    parsed = read_yaml(file, CONFIG_FILE)
    problems.extend(parsed.problems)
    return read_site(Reader(CONFIG_FILE, problems), parsed.root)


def _folders(parent: Path) -> list[Path]:
    return sorted(p for p in parent.iterdir() if p.is_dir() and not p.name.startswith("."))


def _series(folder: Path, root: Path, site: Site, problems: list[Diagnostic]) -> Series | None:
    shown = display_path(folder, root)
    if not check_slug(Reader(shown, problems), None, folder.name, "series slug"):
        return None
    file = folder / "series.yaml"
    if not file.is_file():
        problems.append(
            Diagnostic(
                display_path(file, root),
                0,
                0,
                "is missing",
                "each series folder needs a series.yaml with title and timezone",
            )
        )
        return None
    parsed = read_yaml(file, display_path(file, root))
    problems.extend(parsed.problems)
    if parsed.root is None:
        return None
    series = read_series(
        Reader(parsed.path, problems), parsed.root, folder.name, folder, site, root
    )
    if series is None:
        return None
    defaults = SeriesDefaults(
        series.slug, series.timezone, series.default_duration, series.default_location
    )
    events = [
        e
        for e in (_event(f, root, defaults, problems) for f in _event_files(folder, root, problems))
        if e
    ]
    return replace(series, events=tuple(sorted(events, key=lambda e: (e.begins, e.id))))


def _event_files(folder: Path, root: Path, problems: list[Diagnostic]) -> list[Path]:
    events_dir = folder / "events"
    if not events_dir.is_dir():
        return []
    files = []
    for file in sorted(events_dir.iterdir()):
        if file.name.startswith("."):
            continue
        if file.suffix == ".yaml" and file.is_file():
            files.append(file)
        else:
            problems.append(
                Diagnostic(
                    display_path(file, root),
                    0,
                    0,
                    "is not an event file (only <event-id>.yaml is read here)",
                    "rename it to end in .yaml, or move it out of events/",
                )
            )
    return files


def _event(
    file: Path, root: Path, series: SeriesDefaults, problems: list[Diagnostic]
) -> Event | None:
    shown = display_path(file, root)
    reader = Reader(shown, problems)
    if not check_slug(reader, None, file.stem, "event id"):
        return None
    parsed = read_yaml(file, shown)
    problems.extend(parsed.problems)
    if parsed.root is None:
        return None
    event = read_event(reader, parsed.root, file.stem, series)
    return event and replace(event, source=f"{shown}:{_key_line(parsed.root, 'uid')}")


def _key_line(root: yaml.Node, key: str) -> int:
    """The line of ``key`` in a mapping, or 1: where to point at a site-wide clash."""
    if isinstance(root, yaml.MappingNode):
        for name, _ in root.value:
            if name.value == key:
                return int(name.start_mark.line) + 1
    return 1


def _check_unique_uids(series: list[Series], problems: list[Diagnostic]) -> None:
    seen: dict[str, Event] = {}
    for event in (e for s in series for e in s.events):
        first = seen.setdefault(event.uid.lower(), event)
        if first is not event:
            path, line = event.source.rsplit(":", 1)
            problems.append(
                Diagnostic(
                    path,
                    int(line),
                    0,
                    f"uid {event.uid!r} is already used by {first.source}",
                    "every event needs its own uid; remove or change 'uid:'",
                )
            )
