"""Publishing the output tree, rewriting only what changed.

Every changed file is first written into a staging folder beside the output;
only when every adapter has produced every file are the staged files moved
into place, each with an atomic rename, and the files no longer produced
removed. A build that fails before that point leaves the previous output
exactly as it was; a file whose bytes did not change is never touched (same
inode, same mtime, so rsync and static hosts see nothing new); a first build
appears all at once, by renaming the whole staging folder.

A :class:`~announcer.adapters.base.LazyFile` whose key and on-disk file are
what the last build recorded is not even rendered. The rest are made and
staged by ``share``, which may hand them to worker processes
(:mod:`announcer.workers`); only the moves into place happen here.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol, TypeVar

from announcer import heap
from announcer.adapters.base import LazyFile, OutputFile
from announcer.buildstate import Stat, stat_of, written_before
from announcer.errors import AnnouncerError
from announcer.recall import Recall

Recorded = dict[str, tuple[str | None, Stat]]
Folders = dict[str, Stat]
"""Output folders ('' is the output itself) whose stat says they hold what a build left."""
T = TypeVar("T")


class Share(Protocol):
    """Runs a task over ``range(count)`` in chunks of at most ``chunk`` items (perhaps
    in several processes) and returns the results in order."""

    def __call__(
        self, task: Callable[[range], list[Any]], count: int, chunk: int = ...
    ) -> list[Any]: ...


Staged = tuple[Stat | None, int, str | None]  # (stat if written, size, key)
Todo = tuple[str, OutputFile | LazyFile, str | None]  # (path, file, key unless worked out later)


def in_order(task: Callable[[range], list[T]], count: int, chunk: int = 0) -> list[T]:
    """The plain :data:`Share`: everything in this process."""
    return task(range(count))


@dataclass
class WriteReport:
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    recorded: Recorded = field(default_factory=dict)  # what the next build may trust
    folders: Folders = field(default_factory=dict)  # the same, for folders
    notes: list[str] = field(default_factory=list)  # what files' sizes call for

    @property
    def changed(self) -> bool:
        return bool(self.written or self.removed)


def publish(
    files: Iterable[OutputFile | LazyFile],
    out: Path,
    previous: Recorded | None = None,
    share: Share = in_order,
    folders: Folders | None = None,
    recall: Recall | None = None,
) -> WriteReport:
    """Make ``out`` hold exactly ``files``; see the module docstring for the guarantees.

    ``previous`` and ``folders`` are the last build's ``recorded`` and ``folders``;
    ``recall`` says which of its keys still hold without working them out.
    """
    out = out.resolve()
    stage = out.with_name(f".{out.name}.staging")
    if stage.exists():
        shutil.rmtree(stage)  # left by a build that was killed; never published
    report = WriteReport()
    try:
        _Stager(out, stage, previous or {}, report, recall or Recall()).run(files, share)
        keep = set(report.written) | set(report.unchanged)
        stale, seen = _stale(out, keep, previous or {}, folders or {})
        report.removed = sorted(stale)
        _commit(stage, out, report)
        report.folders = _settled(out, seen, report)
    finally:
        if stage.exists():
            shutil.rmtree(stage)
    return report


class _Stager:
    """Decides, file by file, whether to keep what is in ``out`` or stage new bytes."""

    def __init__(
        self, out: Path, stage: Path, previous: Recorded, report: WriteReport, recall: Recall
    ) -> None:
        self.out, self.stage, self.previous, self.report = out, stage, previous, report
        self.recall = recall
        self.folders: set[str] = set()

    def run(self, files: Iterable[OutputFile | LazyFile], share: Share) -> None:
        with heap.paused():  # a record per file, kept to the end
            todo = self._untrusted(files)
        staged = share(lambda chunk: [self._stage(*todo[i]) for i in chunk], len(todo))
        for (relative, item, _), (written, size, key) in zip(todo, staged, strict=True):
            self._note(item, size)
            if written is not None:  # its stat as staged: a rename keeps size, mtime and inode
                self.report.written.append(relative)
                self.report.recorded[relative] = (key, written)
            else:
                self.report.unchanged.append(relative)
                self._record(relative, key, self.out / relative)

    def _untrusted(self, files: Iterable[OutputFile | LazyFile]) -> list[Todo]:
        """Every file to make or to check, in order; files whose key the last build's
        record vouches for, and which are on disk as it left it, are kept here.

        A key that must be worked out is worked out where the file would be made,
        perhaps in another process (:meth:`_stage`): twenty thousand keys off the
        one process that lists the files in a first build, and the keys of listing
        pages, which render them, off it in every build.
        """
        seen: set[str] = set()
        todo: list[Todo] = []
        for item in files:
            relative = _safe(item.path)
            if relative in seen:
                raise AnnouncerError(
                    f"two outputs want to write {relative}; check the adapters in 'outputs'"
                )
            seen.add(relative)
            key = self._key(relative, item)
            if key is not None and self._trusted(relative, key):
                self.report.unchanged.append(relative)
                self.report.recorded[relative] = self.previous[relative]
                self._note(item, self.previous[relative][1][0])
            else:
                todo.append((relative, item, key))
        self._keep(self.recall.kept - seen)
        return todo

    def _keep(self, kept: AbstractSet[str]) -> None:
        """Own files of unchanged events, left unlisted: kept as the last build recorded them."""
        ordered = sorted(kept)  # the record, like the output, the same from build to build
        self.recall.carry(ordered)
        self.report.unchanged += ordered
        self.report.recorded.update((relative, self.previous[relative]) for relative in ordered)

    def _key(self, relative: str, item: OutputFile | LazyFile) -> str | None:
        """The item's key when known without work: the last build's when nothing it
        depends on changed, or a plain string; None when it must be worked out."""
        if not isinstance(item, LazyFile):
            return None
        if item.depends is not None and self.recall.unchanged(relative, item.depends):
            known = self.previous.get(relative)
            if known is not None and known[0] is not None:
                self.recall.recalled += 1
                return known[0]
        return None if callable(item.key) else item.key

    def _note(self, item: OutputFile | LazyFile, size: int) -> None:
        if isinstance(item, LazyFile) and item.size_note is not None:
            note = item.size_note(size)
            if note:
                self.report.notes.append(note)

    def _stage(self, relative: str, item: OutputFile | LazyFile, key: str | None) -> Staged:
        """Make one file and stage it unless ``out`` holds the same bytes; may run in a worker.

        A file whose key is worked out here is not made when the last build wrote it from
        the same key and it is on disk as that build left it."""
        if isinstance(item, LazyFile):
            if key is None and item.key is not None:
                key = item.key() if callable(item.key) else item.key
                if self._trusted(relative, key):
                    return None, self.previous[relative][1][0], key
            data = item.make()
        else:
            data = item.data
        if _same(f"{self.out}/{relative}", data):
            return None, len(data), key
        folder, _, _ = relative.rpartition("/")
        if folder not in self.folders:
            os.makedirs(self.stage / folder, exist_ok=True)
            self.folders.add(folder)
        return _written(f"{self.stage}/{relative}", data), len(data), key

    def _trusted(self, relative: str, key: str) -> bool:
        known = self.previous.get(relative)
        if known is None or known[0] != key:
            return False
        try:
            found = os.stat(f"{self.out}/{relative}")
        except OSError:
            return False
        return (found.st_size, found.st_mtime_ns, found.st_ino) == known[1]

    def _record(self, relative: str, key: str | None, current: Path) -> None:
        found = stat_of(current)
        if found is not None:
            self.report.recorded[relative] = (key, found)


def _safe(path: str) -> str:
    """The path as written when it is plainly relative (the usual case, checked without
    pathlib: a build checks tens of thousands), else normalised, or refused."""
    parts = path.split("/")
    if all(part not in ("", ".", "..") for part in parts) and "\\" not in path:
        return path
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts or "\\" in path:
        raise AnnouncerError(
            f"an output adapter asked to write outside the output folder: {path!r}"
        )
    return pure.as_posix()


def _same(current: str, data: bytes) -> bool:
    try:
        if os.stat(current).st_size != len(data):
            return False
        with open(current, "rb") as handle:
            return handle.read() == data
    except OSError:
        return False


def _written(path: str, data: bytes) -> Stat:
    """A new file holding ``data``, and its stat. Plain system calls: a buffered file
    object costs three more (a stat, a terminal check, a seek), twenty thousand times
    in a first build."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        left = memoryview(data)
        while left:
            left = left[os.write(fd, left) :]
        found = os.fstat(fd)
    finally:
        os.close(fd)
    return found.st_size, found.st_mtime_ns, found.st_ino


def _stale(
    out: Path, keep: set[str], previous: Recorded, known: Folders
) -> tuple[list[str], Folders]:
    """Files in ``out`` no output asked for, and the stat of every folder on the way.

    A folder whose stat is as the last build left it holds what that build wrote
    there and the folders it had, so only changed or unknown folders are listed:
    listing ten thousand folders cost 0.2-0.9 s, a stat of each 0.05 s.
    """
    files_in: dict[str, list[str]] = {}
    for relative in previous:
        folder, _, name = relative.rpartition("/")
        files_in.setdefault(folder, []).append(name)
    folders_in: dict[str, list[str]] = {}
    for folder in known:
        if folder:
            folders_in.setdefault(folder.rpartition("/")[0], []).append(folder)
    root, stale, seen, todo = str(out), [], {}, [""]
    while todo:
        folder = todo.pop()
        stat = stat_of(f"{root}/{folder}" if folder else root)
        if stat is None:
            continue
        seen[folder] = stat
        if known.get(folder) == stat:
            names, children = files_in.get(folder, []), folders_in.get(folder, [])
        else:
            names, children = _listing(root, folder)
        prefix = f"{folder}/" if folder else ""
        stale += [prefix + name for name in names if prefix + name not in keep]
        todo += children
    return stale, seen


def _listing(root: str, folder: str) -> tuple[list[str], list[str]]:
    """The files and the folders (as output paths) in ``folder``."""
    names, children = [], []
    with os.scandir(f"{root}/{folder}" if folder else root) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                children.append(f"{folder}/{entry.name}" if folder else entry.name)
            else:
                names.append(entry.name)
    return names, children


def _settled(out: Path, seen: Folders, report: WriteReport) -> Folders:
    """The folders' stat for the next build: those this build changed, taken again; any
    changed too recently to tell a later change from this one, left out (listed next time),
    and so are its parents: a folder trusted as it was lists only the subfolders recorded
    in it, so one left out under a trusted parent would never be visited again."""
    touched = {""}
    for relative in (*report.written, *report.removed):
        parts = relative.split("/")[:-1]
        touched.update("/".join(parts[:depth]) for depth in range(1, len(parts) + 1))
    found = {folder: stat for folder, stat in seen.items() if folder not in touched}
    root = str(out)
    for folder in touched:
        stat = stat_of(f"{root}/{folder}" if folder else root)
        if stat is not None:
            found[folder] = stat
    now = time.time_ns()
    settled = {folder: stat for folder, stat in found.items() if written_before(stat[1], now)}
    for folder in found.keys() - settled.keys():
        while folder:
            folder = folder.rpartition("/")[0]
            settled.pop(folder, None)
    return settled


def _commit(stage: Path, out: Path, report: WriteReport) -> None:
    """Move the staged files into place and drop the stale ones; the first build renames all.

    A rename keeps a file's size, mtime and inode, so each is recorded as it was staged.
    """
    if not out.is_dir():
        stage.mkdir(parents=True, exist_ok=True)
        os.replace(stage, out)
    else:
        for relative in report.written:
            target = out / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(stage / relative, target)
        for relative in report.removed:
            (out / relative).unlink(missing_ok=True)
        _prune(out, report.removed)


def _prune(out: Path, removed: list[str]) -> None:
    """Remove folders that removing files left empty."""
    parents = {(out / r).parent for r in removed}
    for folder in sorted(parents, key=lambda p: len(p.parts), reverse=True):
        while folder != out and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent
