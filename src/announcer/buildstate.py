"""What the last build of a project into an output folder knew, to skip work next time.

A build records, per output file, the key its bytes were made from and the
file's size, mtime and inode as written; the serialised fragments (VEVENTs,
feed entries, listing items) it may splice again; each event file's content
hash with the event it loaded to; a signature of every input and the size,
mtime and inode of every input file; and the first instant at which the
passage of time alone would change the output. The next build reuses all of
it that still matches, and does nothing at all, without even parsing a file,
when no input file was touched and that instant has not come.

The state lives in the user's cache folder, never in the project: it is
pickled, and a pickle from a cloned repository must never be loaded. Losing
it costs one full build; it is never needed for correctness.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path

from announcer import __version__, workers
from announcer.model import Event

FORMAT = 6
PARTS = ("events", "fragments")
Stat = tuple[int, int, int]  # size, mtime_ns, inode
RACY_COARSE_NS = 2_000_000_000  # files changed this close to a build's start are read again
RACY_FINE_NS = 50_000_000  # the same, where mtimes have sub-second precision


@dataclass
class BuildState:
    """The small record read first; ``events`` and ``fragments`` are read when needed."""

    signature: str = ""
    valid_until: datetime | None = None
    outputs: dict[str, tuple[str | None, Stat]] = field(default_factory=dict)
    folders: dict[str, Stat] = field(default_factory=dict)  # output folders, as it left them
    inputs: dict[str, Stat] = field(default_factory=dict)  # every input file, as last built
    read_ns: int = 0  # wall clock when that build began reading its inputs
    options: str = ""  # the build's parameters: output, base URL, adapters, version
    target: str = ""  # the output folder it wrote
    ledger: str = ""  # the ledger file it read and saved
    ledger_digest: str = ""  # its path and text, when it holds every event that build saw
    built_at: datetime | None = None
    incremental: bool = False  # every adapter declared itself incremental
    fragments: dict[str, bytes] = field(default_factory=dict)
    events: dict[str, tuple[str, Event]] = field(default_factory=dict)
    event_shares: dict[str, str] = field(default_factory=dict)  # series -> digest, as saved
    # What lets the next build take keys instead of working them out (announcer.recall):
    scope: str = ""
    tokens: dict[str, str] = field(default_factory=dict)  # event or occurrence -> token
    depends: dict[str, str] = field(default_factory=dict)  # output -> fingerprint
    listed: dict[str, str] = field(default_factory=dict)  # shown event -> listed token
    pieces: int = 0  # fragments kept when the last build worked out every key


def cache_dir() -> Path:
    """``$ANNOUNCER_CACHE_DIR``, else ``$XDG_CACHE_HOME/announcer``, else ``~/.cache/announcer``."""
    explicit = os.environ.get("ANNOUNCER_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "announcer"


def state_path(project: Path, out: Path | None) -> Path:
    """One state per project and ``--out`` (None: the folder announcer.yaml names)."""
    chosen = str(out.resolve()) if out is not None else ""
    name = f"{project.resolve()}\0{chosen}\0{__version__}".encode()
    return cache_dir() / f"{hashlib.blake2b(name, digest_size=16).hexdigest()}.pickle"


def load(project: Path, out: Path | None) -> BuildState:
    """The last build's small record, or an empty one when there is none or it is unusable.

    The parsed events and the fragments, by far the largest parts, stay on disk
    until a build that must load or render asks for them (:func:`load_events`,
    :func:`load_fragments`).
    """
    state = _read(state_path(project, out))
    return state if isinstance(state, BuildState) else BuildState()


def load_fragments(project: Path, out: Path | None) -> dict[str, bytes]:
    """The last build's fragments; empty when missing or unusable."""
    found = _read(state_path(project, out).with_suffix(".fragments"))
    return found if isinstance(found, dict) else {}


def load_events(state: BuildState, project: Path, out: Path | None) -> dict[str, tuple[str, Event]]:
    """The last build's parsed events, kept in one file per series. A share that cannot be
    read is forgotten, so this build writes it again."""
    path = state_path(project, out)
    found: dict[str, tuple[str, Event]] = {}
    for series in list(state.event_shares):
        share = _read(_share_path(path, series))
        if isinstance(share, dict):
            found.update(share)
        else:
            del state.event_shares[series]
    return found


def save(
    state: BuildState, project: Path, out: Path | None, parts: tuple[str, ...] = PARTS
) -> None:
    """Write the small record and the ``parts`` this build holds (the others stay as they are)."""
    path = state_path(project, out)
    held = {part: getattr(state, part) for part in PARTS}
    for part in PARTS:
        setattr(state, part, {})
    waits: list[Callable[[], None]] = []
    try:
        if "fragments" in parts:  # the largest part (90 MB at 10,000 events): written meanwhile
            fragments = path.with_suffix(".fragments")
            waits.append(workers.aside(partial(_write, fragments, held["fragments"], plain=True)))
        if "events" in parts:
            state.event_shares = _save_events(path, held["events"], state.event_shares)
        _write(path, state, plain=True)
    finally:
        for wait in waits:
            wait()
        for part, value in held.items():
            setattr(state, part, value)


def _save_events(
    path: Path, events: dict[str, tuple[str, Event]], saved: dict[str, str]
) -> dict[str, str]:
    """Each series' parsed events in a file of its own, written only when one of them
    changed: pickling all 10,000 events again cost 0.2 s of a one-change rebuild."""
    shares: dict[str, dict[str, tuple[str, Event]]] = {}
    for shown, entry in events.items():
        shares.setdefault(_series_of(shown), {})[shown] = entry
    kept: dict[str, str] = {}
    for series, share in sorted(shares.items()):
        key = digest(*(f"{shown}\0{entry[0]}" for shown, entry in sorted(share.items())))
        if saved.get(series) == key or _write(_share_path(path, series), share):
            kept[series] = key
    for series in set(saved) - set(kept):
        _share_path(path, series).unlink(missing_ok=True)
    path.with_suffix(".events").unlink(missing_ok=True)  # where format 2 kept all of them
    return kept


def _series_of(shown: str) -> str:
    """``series/<slug>/events/<file>`` -> ``<slug>``."""
    return shown.rsplit("/", 3)[-3]


def _share_path(path: Path, series: str) -> Path:
    return path.with_suffix(f".events-{series}")


def input_stats(project: Path, extra: list[Path]) -> dict[str, Stat]:
    """Size, mtime and inode of every file a build reads: a cheap test for "nothing changed"."""
    found: dict[str, Stat] = {}
    for folder in (project / "series", project / "templates"):
        for parent, dirs, names in os.walk(folder):
            dirs.sort()
            for name in names:  # strings, not Paths: a build looks at ten thousand
                _add_stat(found, os.path.join(parent, name))
    for path in extra:
        _add_stat(found, str(path))
    return found


def unchanged_since(state: BuildState, current: dict[str, Stat]) -> set[str]:
    """Input files whose size, mtime and inode are as the last build found them, and
    whose mtime is clearly older than that build: a file written while it read, or in the
    same tick of the file system's clock, is read again (as git does with its index)."""
    return {
        path
        for path, stat in current.items()
        if state.inputs.get(path) == stat and written_before(stat[1], state.read_ns)
    }


def written_before(mtime_ns: int, moment_ns: int) -> bool:
    """Whether a file with this mtime was last written clearly before ``moment_ns``, so a
    change made after that moment must show as another mtime."""
    return mtime_ns < moment_ns - _tick(mtime_ns)


def _tick(mtime_ns: int) -> int:
    """How far apart two writes may be and still get the same mtime: whole seconds mean a
    file system that keeps no finer times (FAT keeps even seconds); others tick at most
    every few milliseconds."""
    return RACY_COARSE_NS if mtime_ns % 1_000_000_000 == 0 else RACY_FINE_NS


def _add_stat(found: dict[str, Stat], path: str) -> None:
    stat = stat_of(path)
    if stat is not None:
        found[path] = stat


def _read(path: Path) -> object:
    try:
        with path.open("rb") as handle:
            stored = pickle.load(handle)
    except Exception:  # missing, truncated, or from another version: rebuild from scratch
        return None
    if not isinstance(stored, tuple) or len(stored) != 2 or stored[0] != FORMAT:
        return None
    return stored[1]


def _write(path: Path, value: object, plain: bool = False) -> bool:
    """Whether ``value`` was written; a read-only or full cache folder only costs speed.

    ``plain`` values (the record, the fragments: dictionaries of strings, bytes and
    tuples of them) are pickled without the memo that notes every object for later
    references: a string shared by two dictionaries is then written twice (the record
    grows from 14 to 17 MB at 10,000 events), but pickling it takes 11 ms, not 38.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            pickler = pickle.Pickler(handle, protocol=pickle.HIGHEST_PROTOCOL)
            pickler.fast = plain  # no memo; such values never refer to themselves
            pickler.dump((FORMAT, value))
        os.replace(tmp, path)
    except OSError:
        return False
    return True


def stat_of(path: Path | str) -> Stat | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_size, found.st_mtime_ns, found.st_ino


def digest(*parts: bytes | str) -> str:
    """A short content key: blake2b over the parts, kept apart so no two lists collide."""
    hasher = hashlib.blake2b(digest_size=16)
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        hasher.update(b"%d:" % len(data))
        hasher.update(data)
    return hasher.hexdigest()
