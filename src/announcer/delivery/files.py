"""Publishing the output tree all at once, rewriting only what changed.

Files are staged in a sibling folder: a file whose bytes did not change is
hard-linked from the current output (same inode, same mtime, so rsync and
static hosts see nothing new), the others are written fresh. Only when every
file is staged does the stage replace the output. A build that fails before
that point leaves the previous output exactly as it was; a build that changed
nothing touches nothing at all.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from announcer.adapters.base import OutputFile
from announcer.errors import AnnouncerError


@dataclass
class WriteReport:
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.written or self.removed)


def publish(files: Iterable[OutputFile], out: Path) -> WriteReport:
    """Make ``out`` hold exactly ``files``; see the module docstring for the guarantees."""
    out = out.resolve()
    stage = out.with_name(f".{out.name}.staging")
    if stage.exists():
        shutil.rmtree(stage)  # left by a build that was killed; never published
    report = WriteReport()
    try:
        _stage(files, out, stage, report)
        report.removed = sorted(_stale(out, set(report.written) | set(report.unchanged)))
        if report.changed or not out.is_dir():
            _swap(stage, out)
    finally:
        if stage.exists():
            shutil.rmtree(stage)
    return report


def _stage(files: Iterable[OutputFile], out: Path, stage: Path, report: WriteReport) -> None:
    seen: set[str] = set()
    for item in files:
        relative = _safe(item.path)
        if relative in seen:
            raise AnnouncerError(
                f"two outputs want to write {relative}; check the adapters in 'outputs'"
            )
        seen.add(relative)
        target, current = stage / relative, out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if _same(current, item.data) and _link(current, target):
            report.unchanged.append(relative)
        else:
            target.write_bytes(item.data)
            report.written.append(relative)


def _safe(path: str) -> str:
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


def _link(current: Path, target: Path) -> bool:
    try:
        os.link(current, target)
    except OSError:  # a filesystem without hard links: copy, keeping the mtime
        try:
            shutil.copy2(current, target)
        except OSError:
            return False
    return True


def _stale(out: Path, keep: set[str]) -> Iterable[str]:
    if not out.is_dir():
        return
    for path in out.rglob("*"):
        if path.is_file() or path.is_symlink():
            relative = path.relative_to(out).as_posix()
            if relative not in keep:
                yield relative


def _swap(stage: Path, out: Path) -> None:
    """Replace ``out`` with ``stage``; the old tree is removed only once the new one is in place."""
    old = out.with_name(f".{out.name}.previous")
    if old.exists():
        shutil.rmtree(old)
    if out.exists():
        os.replace(out, old)
    os.replace(stage, out)
    if old.exists():
        shutil.rmtree(old)
