"""Builds shared between processes: the same bytes, the same errors, the same cache.

A build forks only from a single-threaded process, and the test session has
threads of its own (the browser tests' web server), so every test here runs
its body in a freshly spawned process (:func:`alone`) and checks there that
the work really was forked.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest

from announcer import buildstate, pipeline, workers
from announcer.adapters.base import BuildContext, LazyFile, OutputAdapter, select
from announcer.errors import AnnouncerError
from tests.conftest import NOW, MakeProject
from tests.test_incremental import contents
from tests.test_site import SAME_INSTANT

T = TypeVar("T")


def alone(function: Callable[..., T], *args: object) -> T:
    """``function(*args)`` in a new single-threaded process; its exceptions re-raised here."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_call, args=(sender, function, args))
    child.start()
    sender.close()
    try:
        ok, value = receiver.recv()
    finally:
        child.join()
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


def _call(sender: Connection, function: Callable[..., object], args: tuple[object, ...]) -> None:
    try:
        sender.send((True, function(*args)))
    except BaseException as exc:
        sender.send((False, exc))


def forking() -> None:
    assert workers.can_fork(), "this process should be able to fork"


def zones_tree(make_project: MakeProject) -> Path:
    """Events at the same instant in three zones, and enough events for several chunks."""
    files = {"announcer.yaml": "base_url: https://example.org/\n", **SAME_INSTANT}
    for day in range(1, 29):
        files[f"series/to/events/day-{day}.yaml"] = (
            f"title: Day {day}\nstart: 2027-02-{day:02d} 12:00\ntags: [t{day % 3}]\n"
            "abstract: |\n  Some *Markdown* text.\n"
        )
    return make_project(files)


def build(root: Path, out: Path, jobs: int, save_ledger: bool = True) -> list[str]:
    forking()
    return pipeline.build(root, out, now=NOW, jobs=jobs, save_ledger=save_ledger).report.written


@pytest.mark.parametrize("jobs", [2, 3])
def test_shared_builds_write_the_same_bytes_as_one_process(
    make_project: MakeProject, tmp_path: Path, jobs: int
) -> None:
    root = zones_tree(make_project)
    alone(build, root, tmp_path / "one", 1, False)
    alone(build, root, tmp_path / "many", jobs, False)
    assert len(contents(tmp_path / "one")) > 60
    assert contents(tmp_path / "one") == contents(tmp_path / "many")


def test_a_shared_build_keeps_what_its_workers_made_for_the_next_build(
    make_project: MakeProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What workers made comes back: the next build after a change reuses it, and is right."""
    root = zones_tree(make_project)
    out = tmp_path / "out"
    assert len(alone(build, root, out, 2)) > 60
    talk = root / "series/to/events/day-3.yaml"
    talk.write_text(talk.read_text().replace("Day 3", "Day three"))
    written = alone(build, root, out, 2)
    assert "Day three" in (out / "to/day-3/index.html").read_text()
    assert "to/day-3/index.html" in written and "to/day-4/index.html" not in written
    monkeypatch.setenv("ANNOUNCER_CACHE_DIR", str(tmp_path / "fresh-cache"))
    alone(build, root, tmp_path / "scratch", 1, False)
    assert contents(out) == contents(tmp_path / "scratch")


class Failing(OutputAdapter):
    """Fails in one lazy file, which a worker makes."""

    name = "failing"
    incremental: ClassVar[bool] = True

    def files(self, context: BuildContext) -> Iterator[LazyFile]:
        for n in range(40):
            yield LazyFile(f"f/{n}.txt", lambda n=n: _boom(n))


def _boom(n: int) -> bytes:
    if n == 33:
        raise AnnouncerError("file 33 cannot be made")
    return b"%d" % n


def build_failing(root: Path, out: Path) -> str:
    forking()
    try:
        pipeline.build(root, out, now=NOW, jobs=2, adapters=[*select(None), Failing()])
    except AnnouncerError as exc:
        return str(exc)
    return "no error"


def test_an_error_in_a_worker_fails_the_build_and_keeps_the_output(
    make_project: MakeProject, tmp_path: Path
) -> None:
    root = zones_tree(make_project)
    out = tmp_path / "out"
    alone(build, root, out, 2)
    before = contents(out)
    assert alone(build_failing, root, out) == "file 33 cannot be made"
    assert contents(out) == before
    assert not out.with_name(f".{out.name}.staging").exists()


PARENT = [0]
MEETING: list[Any] = []  # a barrier every process passes on its first chunk


def meet(processes: int) -> None:
    """Set up, before the fork, a barrier that makes every process take a chunk."""
    PARENT[0] = os.getpid()
    MEETING[:] = [multiprocessing.get_context("fork").Barrier(processes), os.getpid()]


def first_chunk_waits() -> None:
    barrier, owner = MEETING
    if owner != -1:  # each process meets once: its copy of MEETING forgets the barrier
        MEETING[1] = -1
        barrier.wait(timeout=60)


def _dies_in_a_child(chunk: range) -> list[int]:
    first_chunk_waits()
    if os.getpid() != PARENT[0]:
        os._exit(3)
    return list(chunk)


def run_dying() -> str:
    forking()
    meet(2)
    try:
        workers.run(_dies_in_a_child, 20, jobs=2, chunk=2, explicit=True)
    except AnnouncerError as exc:
        return str(exc)
    return "no error"


def test_a_worker_that_dies_fails_the_build_with_a_clear_error() -> None:
    assert "exit code 3" in alone(run_dying)


def _pid_squares(chunk: range) -> list[tuple[int, int]]:
    first_chunk_waits()
    return [(i * i, os.getpid()) for i in chunk]


def run_squares() -> tuple[list[int], set[int], int]:
    forking()
    meet(3)
    found = workers.run(_pid_squares, 200, jobs=3, explicit=True)
    return [square for square, _ in found], {pid for _, pid in found}, os.getpid()


def test_results_come_back_in_order_from_every_process() -> None:
    squares, pids, parent = alone(run_squares)
    assert squares == [i * i for i in range(200)]
    assert parent in pids and len(pids) == 3


def _key_error(chunk: range) -> list[int]:
    first_chunk_waits()
    if os.getpid() != PARENT[0]:
        raise KeyError("missing")
    return list(chunk)


def run_buggy() -> list[str]:
    forking()
    meet(2)
    try:
        workers.run(_key_error, 10, jobs=2, explicit=True)
    except KeyError as exc:
        return list(exc.__notes__)
    return []


def test_a_bug_in_a_worker_keeps_its_type_and_says_where_it_happened() -> None:
    notes = alone(run_buggy)
    assert any("in a build worker" in note and "_key_error" in note for note in notes)


def _pids(chunk: range) -> list[int]:
    return [os.getpid() for _ in chunk]


def test_with_another_thread_running_the_work_stays_in_this_process() -> None:
    """The test session has threads (or not): either way, never fork where it is unsafe."""
    import threading

    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, daemon=True)
    thread.start()
    try:
        found = workers.run(_pids, 100, jobs=2, explicit=True)
    finally:
        stop.set()
        thread.join()
    assert set(found) == {os.getpid()}


def _write_pid(path: Path) -> None:
    path.write_text(str(os.getpid()))


def run_aside(path: Path) -> tuple[int, int]:
    forking()
    wait = workers.aside(lambda: _write_pid(path))
    wait()  # the file is there once this returns
    return int(path.read_text()), os.getpid()


def test_work_set_aside_runs_in_another_process_and_is_waited_for(tmp_path: Path) -> None:
    writer, parent = alone(run_aside, tmp_path / "pid")
    assert writer != parent


def _fails() -> None:
    raise ValueError("cannot write")


def run_failing_aside() -> str:
    forking()
    wait = workers.aside(_fails)
    try:
        wait()
    except AnnouncerError as exc:
        return str(exc)
    return "no error"


def test_work_set_aside_that_fails_fails_the_wait() -> None:
    assert "exit status" in alone(run_failing_aside)


def build_and_read_fragments(root: Path, out: Path) -> int:
    forking()
    pipeline.build(root, out, now=NOW, jobs=2)
    return len(buildstate.load_fragments(root, out))


def test_a_shared_build_saves_its_fragments_from_another_process(
    make_project: MakeProject, tmp_path: Path
) -> None:
    root = zones_tree(make_project)
    assert alone(build_and_read_fragments, root, tmp_path / "out") > 60


def test_with_another_thread_running_work_set_aside_is_done_here(tmp_path: Path) -> None:
    import threading

    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, daemon=True)
    thread.start()
    try:
        wait = workers.aside(lambda: _write_pid(tmp_path / "pid"))
        assert (tmp_path / "pid").read_text() == str(os.getpid())
        wait()
    finally:
        stop.set()
        thread.join()
