"""Walking a project tree: every file is read, every problem is collected.

A bad file never stops the walk; the caller gets either a whole valid Site or
one ValidationFailed listing every problem in every file.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import yaml

from announcer.buildstate import digest
from announcer.errors import Diagnostic, ValidationFailed, display_path
from announcer.load.events import SeriesDefaults, read_event
from announcer.load.fields import Reader, check_slug
from announcer.load.settings import read_series, read_site
from announcer.load.yamlfile import YamlFile, parse_yaml, read_bytes, read_yaml
from announcer.model import Event, Series, Site

CONFIG_FILE = "announcer.yaml"
SERIES_DIR = "series"


EventCache = dict[str, tuple[str, Event]]
"""Event file (as shown) -> (key of its bytes and series defaults, the event it loaded to)."""


def load_site(root: Path, cache: EventCache | None = None) -> Site:
    """The validated model of the project at ``root``, or ValidationFailed.

    With ``cache`` (what an earlier call left in it), an event file whose
    bytes and series defaults are unchanged is not parsed again; on return
    ``cache`` holds this call's files only.
    """
    walk = _Walk(root, cache)
    series_root = root / SERIES_DIR
    if not series_root.is_dir():
        walk.problems.append(
            Diagnostic(
                SERIES_DIR,
                0,
                0,
                "there is no series/ folder here",
                "run inside a project, pass --project DIR, or 'announcer init'",
            )
        )
        raise ValidationFailed(walk.problems)
    series = [s for s in map(walk.series, _folders(series_root)) if s]
    _check_unique_uids(series, walk.problems)
    if walk.problems:
        raise ValidationFailed(walk.problems)
    if cache is not None:
        cache.clear()
        cache.update(walk.fresh)
    return replace(walk.site, series=tuple(series))


class _Walk:
    """One pass over a project: where problems go, and the event cache in and out."""

    def __init__(self, root: Path, cache: EventCache | None) -> None:
        self.root = root
        self.problems: list[Diagnostic] = []
        self.known: EventCache = dict(cache or {})
        self.fresh: EventCache = {}
        self.site = _site_settings(root, self.problems)

    def series(self, folder: Path) -> Series | None:
        root, problems = self.root, self.problems
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
            Reader(parsed.path, problems), parsed.root, folder.name, folder, self.site, root
        )
        if series is None:
            return None
        defaults = SeriesDefaults(
            series.slug, series.timezone, series.default_duration, series.default_location
        )
        files = _event_files(folder, root, problems)
        events = [e for e in (self.event(f, defaults) for f in files) if e]
        return replace(series, events=tuple(sorted(events, key=lambda e: (e.begins, e.id))))

    def event(self, file: Path, series: SeriesDefaults) -> Event | None:
        shown = display_path(file, self.root)
        reader = Reader(shown, self.problems)
        if not check_slug(reader, None, file.stem, "event id"):
            return None
        data = read_bytes(file, shown)
        if isinstance(data, YamlFile):
            self.problems.extend(data.problems)
            return None
        key = digest(data, repr(series))
        known = self.known.get(shown)
        if known is not None and known[0] == key:
            self.fresh[shown] = known
            return known[1]
        event = self._parse(data, shown, reader, file.stem, series)
        if event is not None:
            self.fresh[shown] = (key, event)
        return event

    def _parse(
        self, data: bytes, shown: str, reader: Reader, event_id: str, series: SeriesDefaults
    ) -> Event | None:
        parsed = parse_yaml(data, shown)
        self.problems.extend(parsed.problems)
        if parsed.root is None:
            return None
        event = read_event(reader, parsed.root, event_id, series)
        return event and replace(event, source=f"{shown}:{_key_line(parsed.root, 'uid')}")


def _site_settings(root: Path, problems: list[Diagnostic]) -> Site:
    file = root / CONFIG_FILE
    if not file.exists():
        return Site()
    parsed = read_yaml(file, CONFIG_FILE)
    problems.extend(parsed.problems)
    return read_site(Reader(CONFIG_FILE, problems), parsed.root)


def _folders(parent: Path) -> list[Path]:
    return sorted(p for p in parent.iterdir() if p.is_dir() and not p.name.startswith("."))


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
