"""Walking a project tree: every file is read, every problem is collected.

A bad file never stops the walk; the caller gets either a whole valid Site or
one ValidationFailed listing every problem in every file.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from announcer import workers
from announcer.buildstate import digest
from announcer.errors import Diagnostic, ValidationFailed, display_path
from announcer.load.events import SeriesDefaults, read_event
from announcer.load.fields import Reader, check_slug
from announcer.load.settings import read_series, read_site
from announcer.load.yamlfile import YamlFile, parse_yaml, read_bytes, read_yaml
from announcer.model import Event, Series, Site

CONFIG_FILE = "announcer.yaml"
SERIES_DIR = "series"
# Event files per chunk when parsing in several processes: fewer, bigger chunks cost
# fewer handovers; at 10,000 events 64 instead of 8 made parsing some 15 % faster.
PARSE_CHUNK = 64


EventCache = dict[str, tuple[str, Event]]
"""Event file (as shown) -> (key of its bytes and series defaults, the event it loaded to)."""


def load_site(
    root: Path,
    cache: EventCache | None = None,
    jobs: int = 1,
    unchanged: Collection[str] = (),
) -> Site:
    """The validated model of the project at ``root``, or ValidationFailed.

    With ``cache`` (what an earlier call left in it), an event file whose
    bytes and series defaults are unchanged is not parsed again; on return
    ``cache`` holds this call's files only. With ``jobs`` above one, the files
    to parse are shared between processes (:mod:`announcer.workers`); the
    model and the problems found are the same. Files named in ``unchanged``
    (as ``str(path)``) are known not to have changed since ``cache`` was
    filled, and are not even read when it holds them.
    """
    walk = _Walk(root, cache, unchanged)
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
    found = [s for s in map(walk.series, _folders(series_root)) if s]
    walk.parse(jobs)
    series = [walk.assemble(s, files) for s, files in found]
    _check_unique_uids(series, walk.problems)
    if walk.problems:
        raise ValidationFailed(walk.problems)
    if cache is not None:
        cache.clear()
        cache.update(walk.fresh)
    return replace(walk.site, series=tuple(series))


@dataclass
class _EventFile:
    """One event file on its way to an Event: read in this process, perhaps parsed in another."""

    shown: str
    stem: str
    series: SeriesDefaults
    data: bytes = b""
    key: str = ""
    unread: Path | None = None  # read where it is parsed: there was nothing to compare it with
    defaults_key: str = ""
    event: Event | None = None
    problems: list[Diagnostic] = field(default_factory=list)


class _Walk:
    """One pass over a project: where problems go, and the event cache in and out."""

    def __init__(self, root: Path, cache: EventCache | None, unchanged: Collection[str]) -> None:
        self.root = root
        self.unchanged = unchanged
        self.problems: list[Diagnostic] = []
        self.known: EventCache = dict(cache or {})
        self.fresh: EventCache = {}
        self.site = _site_settings(root, self.problems)
        self.files: list[_EventFile] = []

    def series(self, folder: Path) -> tuple[Series, list[_EventFile]] | None:
        """The series' own settings, and its event files read (not yet parsed)."""
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
        defaults_key = digest(repr(defaults))
        events = folder / "events"
        shown_events = display_path(events, root)
        files = [
            self.kept(f"{events}/{name}", f"{shown_events}/{name}", defaults, defaults_key)
            or self.read(events / name, f"{shown_events}/{name}", defaults, defaults_key)
            for name in _event_files(events, shown_events, problems)
        ]
        return series, files

    def kept(
        self, file: str, shown: str, series: SeriesDefaults, defaults_key: str
    ) -> _EventFile | None:
        """The cached event of a file untouched since it was loaded, under the same series
        defaults: the usual case, ten thousand times a build, so nothing more is done."""
        known = self.known.get(shown)
        if known is None or file not in self.unchanged or not known[0].endswith(f":{defaults_key}"):
            return None
        stem = shown.rpartition("/")[2].removesuffix(".yaml")
        return _EventFile(shown, stem, series, key=known[0], event=known[1])

    def read(self, file: Path, shown: str, series: SeriesDefaults, defaults_key: str) -> _EventFile:
        """The file's bytes and key (bytes, then series defaults), and the cached event
        when the key is the last build's. A file the cache knows nothing of is read where
        it is parsed, perhaps in a worker."""
        found = _EventFile(shown, file.stem, series)
        if not check_slug(Reader(found.shown, found.problems), None, file.stem, "event id"):
            return found
        known = self.known.get(found.shown)
        if known is None:  # a first build reads ten thousand files: in the workers that parse
            found.unread, found.defaults_key = file, defaults_key
            self.files.append(found)
            return found
        data = read_bytes(file, found.shown)
        if isinstance(data, YamlFile):
            found.problems.extend(data.problems)
            return found
        found.data, found.key = data, f"{digest(data)}:{defaults_key}"
        if known[0] == found.key:
            found.event = known[1]
        else:
            self.files.append(found)
        return found

    def parse(self, jobs: int) -> None:
        """Parse every file the cache could not answer for, in ``jobs`` processes."""
        todo = self.files
        parsed = workers.run(
            lambda chunk: [_parse(todo[i]) for i in chunk], len(todo), jobs, chunk=PARSE_CHUNK
        )
        for file, (event, problems) in zip(todo, parsed, strict=True):
            file.event, file.problems = event, problems
            if event is not None:
                file.key = event.origin  # the key of the bytes it was parsed from

    def assemble(self, series: Series, files: list[_EventFile]) -> Series:
        """The series with its events in order; every file's problems, in file order."""
        events = []
        for file in files:
            self.problems.extend(file.problems)
            if file.event is not None:
                self.fresh[file.shown] = (file.key, file.event)
                events.append(file.event)
        return replace(series, events=tuple(sorted(events, key=lambda e: (e.utc_begins, e.id))))


def _parse(file: _EventFile) -> tuple[Event | None, list[Diagnostic]]:
    """An event file's bytes to an Event, or its problems; may run in a worker."""
    problems: list[Diagnostic] = []
    if file.unread is not None:
        data = read_bytes(file.unread, file.shown)
        if isinstance(data, YamlFile):
            return None, list(data.problems)
        file.data, file.key = data, f"{digest(data)}:{file.defaults_key}"
    parsed = parse_yaml(file.data, file.shown)
    problems.extend(parsed.problems)
    if parsed.root is None:
        return None, problems
    event = read_event(Reader(file.shown, problems), parsed.root, file.stem, file.series)
    if event is not None:
        source = f"{file.shown}:{_key_line(parsed.root, 'uid')}"
        event = replace(event, source=source, origin=file.key)
    return event, problems


def _site_settings(root: Path, problems: list[Diagnostic]) -> Site:
    file = root / CONFIG_FILE
    if not file.exists():
        return Site()
    parsed = read_yaml(file, CONFIG_FILE)
    problems.extend(parsed.problems)
    return read_site(Reader(CONFIG_FILE, problems), parsed.root)


def _folders(parent: Path) -> list[Path]:
    return sorted(p for p in parent.iterdir() if p.is_dir() and not p.name.startswith("."))


def _event_files(events: Path, shown: str, problems: list[Diagnostic]) -> list[str]:
    """The names of the event files in ``events`` (scanned, not stat'ed one by one: a
    series may hold thousands); anything else there is reported."""
    if not events.is_dir():
        return []
    names = []
    with os.scandir(events) as entries:
        found = sorted((entry.name, entry.is_file()) for entry in entries)
    for name, is_file in found:
        if name.startswith("."):
            continue
        if name.endswith(".yaml") and is_file:
            names.append(name)
        else:
            problems.append(
                Diagnostic(
                    f"{shown}/{name}",
                    0,
                    0,
                    "is not an event file (only <event-id>.yaml is read here)",
                    "rename it to end in .yaml, or move it out of events/",
                )
            )
    return names


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
