"""What the last build of a project into an output folder knew, to skip work next time.

A build records, per output file, the key its bytes were made from and the
file's size, mtime and inode as written; the serialised fragments (VEVENTs,
feed entries) it may splice again; each event file's content hash with the
event it loaded to; a signature of every input; and the first instant at
which the passage of time alone would change the output. The next build
reuses all of it that still matches, and does nothing at all when nothing
changed and that instant has not come.

The state lives in the user's cache folder, never in the project: it is
pickled, and a pickle from a cloned repository must never be loaded. Losing
it costs one full build; it is never needed for correctness.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from announcer import __version__
from announcer.model import Event

FORMAT = 1
Stat = tuple[int, int, int]  # size, mtime_ns, inode


@dataclass
class BuildState:
    signature: str = ""
    valid_until: datetime | None = None
    outputs: dict[str, tuple[str | None, Stat]] = field(default_factory=dict)
    fragments: dict[str, bytes] = field(default_factory=dict)
    events: dict[str, tuple[str, Event]] = field(default_factory=dict)


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
    """The last build's state, or an empty one when there is none or it is unusable.

    The fragments, by far the largest part, stay on disk until a build that
    renders asks for them (:func:`load_fragments`).
    """
    state = _read(state_path(project, out))
    return state if isinstance(state, BuildState) else BuildState()


def load_fragments(project: Path, out: Path | None) -> dict[str, bytes]:
    found = _read(state_path(project, out).with_suffix(".fragments"))
    return found if isinstance(found, dict) else {}


def save(state: BuildState, project: Path, out: Path | None) -> None:
    path = state_path(project, out)
    fragments, state.fragments = state.fragments, {}
    try:
        _write(path.with_suffix(".fragments"), fragments)
        _write(path, state)
    finally:
        state.fragments = fragments


def _read(path: Path) -> object:
    try:
        with path.open("rb") as handle:
            stored = pickle.load(handle)
    except Exception:  # missing, truncated, or from another version: rebuild from scratch
        return None
    if not isinstance(stored, tuple) or len(stored) != 2 or stored[0] != FORMAT:
        return None
    return stored[1]


def _write(path: Path, value: object) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            pickle.dump((FORMAT, value), handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only or full cache folder only costs speed next time


def stat_of(path: Path) -> Stat | None:
    try:
        found = path.stat()
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
