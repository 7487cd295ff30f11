"""Measuring helpers for run.py: whole-process runs, output trees, the machine.

Each build runs as its own process; wall time is taken around it and peak RSS
comes from the child's own rusage (``os.wait4``), so one run never sees
another's memory.
"""

from __future__ import annotations

import compileall
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

Stamp = tuple[int, int]  # (inode, mtime_ns)
ENTRY = re.compile(rb"<entry[\s>]")


@dataclass(frozen=True)
class Run:
    """One finished process."""

    wall: float  # seconds, perf_counter around the process
    cpu: float  # user + sys seconds of the process (and children it waited for)
    max_rss_kib: int  # peak resident set size of the largest single process


@dataclass(frozen=True)
class TreeStats:
    """What a build wrote: the size of each file, by relative POSIX path."""

    sizes: Mapping[str, int]

    @property
    def files(self) -> int:
        """Number of files."""
        return len(self.sizes)

    @property
    def bytes(self) -> int:
        """Total size in bytes."""
        return sum(self.sizes.values())

    @property
    def paths(self) -> frozenset[str]:
        """Every relative path."""
        return frozenset(self.sizes)

    def by_extension(self, paths: Iterable[str] | None = None) -> dict[str, tuple[int, int]]:
        """(files, bytes) per extension, of ``paths`` (by default every file)."""
        kinds: dict[str, tuple[int, int]] = {}
        for path in self.sizes if paths is None else paths:
            ext = PurePosixPath(path).suffix or "(none)"
            files, total = kinds.get(ext, (0, 0))
            kinds[ext] = (files + 1, total + self.sizes[path])
        return dict(sorted(kinds.items()))


def run_process(cmd: Sequence[str], log: Path, env: Mapping[str, str]) -> Run:
    """Run ``cmd`` to completion, output to ``log``; raise if it fails."""
    with log.open("wb") as sink:
        start = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=sink, stderr=subprocess.STDOUT, env=dict(env))
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        tail = log.read_text(encoding="utf-8", errors="replace")[-2000:]
        raise RuntimeError(f"exit {proc.returncode}: {' '.join(cmd)}\n{tail}")
    rss = usage.ru_maxrss // 1024 if sys.platform == "darwin" else usage.ru_maxrss
    return Run(wall, usage.ru_utime + usage.ru_stime, rss)


def write_floor(tree: Path, target: Path) -> Run:
    """Write ``tree`` again into ``target``: the same folders, names and bytes, with the
    plainest system calls and nothing else. What any tool that makes this output pays
    the disk, taken in the same run as the builds: on this kind of machine, ten thousand
    folders with two 25 kB files each took 1.6 s to write, and 16 to 22 s half an hour
    later; a cold build's time moves with it."""
    files = sorted(files_under(tree))
    contents = [(path.relative_to(tree), path.read_bytes()) for path in files]
    before, start = os.times(), time.perf_counter()
    made: set[Path] = set()
    for relative, data in contents:
        folder = target / relative.parent
        if folder not in made:
            os.makedirs(folder, exist_ok=True)
            made.add(folder)
        handle = os.open(target / relative, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(handle, view):]
        finally:
            os.close(handle)
    wall, after = time.perf_counter() - start, os.times()
    cpu = after.user - before.user + after.system - before.system
    return Run(wall, cpu, 0)


def files_under(root: Path) -> list[Path]:
    """Every regular file below ``root`` (empty if it does not exist)."""
    return [Path(folder, name) for folder, _, names in os.walk(root) for name in names]


def tree_stats(root: Path) -> TreeStats:
    """The size of every file of the tree at ``root``."""
    return TreeStats({p.relative_to(root).as_posix(): p.stat().st_size for p in files_under(root)})


def snapshot(root: Path) -> dict[str, Stamp]:
    """(inode, mtime_ns) of every file below ``root``."""
    stamps: dict[str, Stamp] = {}
    for path in files_under(root):
        info = path.stat()
        stamps[path.relative_to(root).as_posix()] = (info.st_ino, info.st_mtime_ns)
    return stamps


def touched(before: Mapping[str, Stamp], after: Mapping[str, Stamp]) -> list[str]:
    """Files created, removed, or rewritten (new inode or mtime) between two snapshots."""
    changed = [path for path, stamp in after.items() if before.get(path) != stamp]
    return sorted(changed + [path for path in before if path not in after])


def count_vevents(path: Path) -> int:
    """Number of VEVENTs in an iCalendar file."""
    return path.read_bytes().count(b"BEGIN:VEVENT")


def count_entries(path: Path) -> int:
    """Number of ``<entry>`` elements in an Atom feed."""
    return len(ENTRY.findall(path.read_bytes()))


def median_ratio(pairs: Sequence[tuple[float, float]]) -> float:
    """Median of second / first over paired measurements."""
    return statistics.median(b / a for a, b in pairs)


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, else platform.processor()."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.processor() or "unknown"
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return match[1].strip() if match else platform.processor() or "unknown"


def total_memory() -> int | None:
    """Physical memory in bytes, if the system says."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def filesystem(path: Path) -> str:
    """The filesystem holding ``path``, e.g. ``ext4 (/dev/vda, no journal)``.

    For ext4 it says whether there is a journal, because without one the kernel
    steps over every inode deleted in the last one to six minutes each time it
    makes a file (``recently_deleted`` in ext4's inode allocator): there, a cold
    build right after 20,000 files were removed pays several seconds that a
    journaled ext4, the usual kind, never does."""
    best, kind, device = "", "unknown", ""
    try:
        mounts = Path("/proc/mounts").read_text(encoding="utf-8").splitlines()
    except OSError:
        return kind
    resolved = path.resolve()
    for line in mounts:
        fields = line.split()
        if len(fields) > 2 and resolved.is_relative_to(fields[1]) and len(fields[1]) > len(best):
            best, kind, device = fields[1], fields[2], fields[0]
    if kind != "ext4":
        return kind
    try:
        task = Path("/sys/fs/ext4", Path(device).name, "journal_task").read_text().strip()
    except OSError:
        return f"ext4 ({device})"
    return f"ext4 ({device}, {'no journal' if task == '<none>' else 'journaled'})"


def compiled(package: Path) -> None:
    """Byte-compile ``package`` as installing it would: with ``PYTHONDONTWRITEBYTECODE``
    set (as on these machines) nothing else writes the ``.pyc`` files of a source
    checkout, and every build would pay some 60 ms compiling announcer that an
    installed copy never pays. Python still reads them with that variable set."""
    compileall.compile_dir(package, quiet=1)


def cpu_probe(runs: int = 5, loops: int = 3_000_000) -> list[float]:
    """Seconds a fixed pure-Python loop takes, ``runs`` times: how fast the interpreter
    ran on this host just then. It works in the first-level cache, so it misses what
    slows builds that walk hundreds of megabytes: on 2026-12-07 it stayed within
    0.18-0.32 s while the same build took 10 to 17 s. The baseline's time in the
    same run is the better yardstick between days; this one tells a host that runs
    everything slowly from one that slows only large programs."""
    found = []
    for _ in range(runs):
        started, table = time.perf_counter(), {}
        for number in range(loops):
            table[number & 1023] = number
        found.append(time.perf_counter() - started)
    return found


def machine(workdir: Path) -> dict[str, str | int | None]:
    """The machine and interpreter the figures come from, and the disk they write to."""
    return {
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_bytes": total_memory(),
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "filesystem": filesystem(workdir),
    }


def main(argv: Sequence[str]) -> None:
    """``measure.py floor TREE TARGET``: :func:`write_floor` in a process of its own, so
    the half a gigabyte it reads never counts in the peak memory of builds that the
    benchmark starts later (a child forked from a large parent starts out as large)."""
    if len(argv) != 3 or argv[0] != "floor":
        sys.exit("usage: measure.py floor TREE TARGET")
    run = write_floor(Path(argv[1]), Path(argv[2]))
    print(json.dumps({"wall": run.wall, "cpu": run.cpu}))


if __name__ == "__main__":
    main(sys.argv[1:])
