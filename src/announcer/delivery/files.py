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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from announcer.adapters.base import LazyFile, OutputFile
from announcer.buildstate import Stat, stat_of
from announcer.errors import AnnouncerError

Recorded = dict[str, tuple[str | None, Stat]]
T = TypeVar("T")
Share = Callable[[Callable[[range], list[Any]], int], list[Any]]
"""Runs a task over ``range(count)`` in chunks and returns the results in order."""
Staged = tuple[bool, int]  # (written, size); unchanged files are stat'ed by the parent


def in_order(task: Callable[[range], list[T]], count: int) -> list[T]:
    """The plain :data:`Share`: everything in this process."""
    return task(range(count))


@dataclass
class WriteReport:
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    recorded: Recorded = field(default_factory=dict)  # what the next build may trust

    @property
    def changed(self) -> bool:
        return bool(self.written or self.removed)


def publish(
    files: Iterable[OutputFile | LazyFile],
    out: Path,
    previous: Recorded | None = None,
    share: Share = in_order,
) -> WriteReport:
    """Make ``out`` hold exactly ``files``; see the module docstring for the guarantees."""
    out = out.resolve()
    stage = out.with_name(f".{out.name}.staging")
    if stage.exists():
        shutil.rmtree(stage)  # left by a build that was killed; never published
    report = WriteReport()
    try:
        _Stager(out, stage, previous or {}, report).run(files, share)
        report.removed = sorted(_stale(out, set(report.written) | set(report.unchanged)))
        _commit(stage, out, report)
    finally:
        if stage.exists():
            shutil.rmtree(stage)
    return report


class _Stager:
    """Decides, file by file, whether to keep what is in ``out`` or stage new bytes."""

    def __init__(self, out: Path, stage: Path, previous: Recorded, report: WriteReport) -> None:
        self.out, self.stage, self.previous, self.report = out, stage, previous, report
        self.folders: set[str] = set()

    def run(self, files: Iterable[OutputFile | LazyFile], share: Share) -> None:
        todo = self._untrusted(files)
        staged = share(lambda chunk: [self._stage(*todo[i][:2]) for i in chunk], len(todo))
        for (relative, _, key), (written, size) in zip(todo, staged, strict=True):
            if written:
                self.report.written.append(relative)
                self.report.recorded[relative] = (key, (size, 0, 0))  # stat set after the move
            else:
                self.report.unchanged.append(relative)
                self._record(relative, key, self.out / relative)

    def _untrusted(
        self, files: Iterable[OutputFile | LazyFile]
    ) -> list[tuple[str, OutputFile | LazyFile, str | None]]:
        """Every file to make, in order; files the last build made from the same key are kept."""
        keys: dict[str, str | None] = {}
        todo = []
        for item in files:
            relative = _safe(item.path)
            if relative in keys:
                raise AnnouncerError(
                    f"two outputs want to write {relative}; check the adapters in 'outputs'"
                )
            key = keys[relative] = item.key if isinstance(item, LazyFile) else None
            if key is not None and self._trusted(relative, key):
                self.report.unchanged.append(relative)
                self.report.recorded[relative] = self.previous[relative]
            else:
                todo.append((relative, item, key))
        return todo

    def _stage(self, relative: str, item: OutputFile | LazyFile) -> Staged:
        """Make one file and stage it unless ``out`` holds the same bytes; may run in a worker."""
        data = item.make() if isinstance(item, LazyFile) else item.data
        if _same(self.out / relative, data):
            return False, len(data)
        folder, _, _ = relative.rpartition("/")
        if folder not in self.folders:
            os.makedirs(self.stage / folder, exist_ok=True)
            self.folders.add(folder)
        with open(self.stage / relative, "wb") as handle:
            handle.write(data)
        return True, len(data)

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


def _same(current: Path, data: bytes) -> bool:
    try:
        if current.stat().st_size != len(data):
            return False
        return current.read_bytes() == data
    except OSError:
        return False


def _stale(out: Path, keep: set[str]) -> Iterable[str]:
    """Files in ``out`` no output asked for (paths cut by hand: a site has ten thousand
    folders, and ``os.path.relpath`` on each cost more than listing them)."""
    if not out.is_dir():
        return
    root = str(out)
    for folder, _, names in os.walk(root):
        prefix = folder[len(root) + 1 :].replace(os.sep, "/")
        for name in names:
            relative = f"{prefix}/{name}" if prefix else name
            if relative not in keep:
                yield relative


def _commit(stage: Path, out: Path, report: WriteReport) -> None:
    """Move the staged files into place and drop the stale ones; the first build renames all."""
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
    for relative in report.written:
        found = stat_of(out / relative)
        if found is not None:
            report.recorded[relative] = (report.recorded[relative][0], found)


def _prune(out: Path, removed: list[str]) -> None:
    """Remove folders that removing files left empty."""
    parents = {(out / r).parent for r in removed}
    for folder in sorted(parents, key=lambda p: len(p.parts), reverse=True):
        while folder != out and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent
