"""Sharing one build's work between processes, so a build uses every core.

Most of a build is independent work per event or per file. :func:`run` hands
it out in small chunks to this process and children forked from it: they
see the loaded model, the ledger and the compiled templates without any of
it being sent, pull chunks from a shared counter (so a child that drew a big
file does not hold the others up), and hand back only their results, what
:class:`Side` says to collect (the fragments they made, their warnings) and
what their :func:`memo` functions computed. A child pickles that chunk by
chunk, as it goes, into a file in memory (its spool) and only says through
a pipe whether it finished: the parent, done with its own share, reads the
spool instead of waiting for sixty megabytes to be pickled and pushed
through a pipe at the end of a phase.

A child's failure fails the build with the child's own error. Where fork is
not available or not safe (another thread is running, as in ``announcer
serve``), or one job is asked for, the same chunks run in this process, in
order; every result is the same either way, which the tests check byte for
byte.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Hashable, Iterator
from functools import wraps
from multiprocessing.connection import Connection
from typing import IO, Any, Generic, ParamSpec, Protocol, TypeVar

from announcer.errors import AnnouncerError

R = TypeVar("R")
P = ParamSpec("P")
MIN_SHARED = 64  # below this many items, forking costs more than it saves
CHUNKS_EACH = 8  # chunks per process at least, however big the chunks asked for


class Memo(Generic[P, R]):
    """A function's results kept for the process; a build worker sends its new ones back."""

    def __init__(self, function: Callable[P, R], limit: int) -> None:
        self.function, self.limit = function, limit
        self.results: dict[Hashable, R] = {}
        self.fresh: list[Hashable] = []
        wraps(function)(self)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        key = _key(args, kwargs)
        try:
            return self.results[key]
        except KeyError:
            pass
        value = self.function(*args, **kwargs)
        self._store(key, value)
        return value

    def known(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        return _key(args, kwargs) in self.results

    def keep(self, value: R, /, *args: P.args, **kwargs: P.kwargs) -> None:
        """Take ``value`` as the result for these arguments, worked out elsewhere (in a
        batch, say) by the function's own rules."""
        self._store(_key(args, kwargs), value)

    def _store(self, key: Hashable, value: R) -> None:
        if len(self.results) >= self.limit:  # a long-running preview must not grow forever
            self.results.clear()
        self.results[key] = value
        self.fresh.append(key)

    def take(self) -> list[tuple[Hashable, R]]:
        return [(key, self.results[key]) for key in self.fresh if key in self.results]


def _key(args: tuple[object, ...], kwargs: dict[str, object]) -> Hashable:
    return args if not kwargs else (args, tuple(sorted(kwargs.items())))


_MEMOS: list[Memo[..., Any]] = []


def memo(limit: int = 65536) -> Callable[[Callable[P, R]], Memo[P, R]]:
    """Like ``functools.lru_cache``, and what workers compute comes back to the build's
    process, so the next phase's workers start with it (Markdown, dates in words)."""

    def wrap(function: Callable[P, R]) -> Memo[P, R]:
        made = Memo(function, limit)
        _MEMOS.append(made)
        return made

    return wrap


class Side(Protocol):
    """What a child must hand back besides its results, and how the parent takes it."""

    def start(self) -> None:
        """In the child, just after the fork: forget what the parent had collected."""

    def collect(self) -> object:
        """In the child, when its share is done: what to send back (picklable)."""

    def merge(self, collected: object) -> None:
        """In the parent, once per child, in the children's order."""


def jobs_for(requested: int | None) -> int:
    """How many processes to use: ``requested``, else one per core this process may use."""
    if requested is not None:
        if requested < 1:
            raise AnnouncerError(f"--jobs must be 1 or more, not {requested}")
        return requested
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def can_fork() -> bool:
    """Fork copies only the calling thread: with others running, a lock they hold would
    stay held forever in the child."""
    return "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1


def aside(work: Callable[[], object]) -> Callable[[], None]:
    """Start ``work`` in a forked child while this process goes on; the function
    returned waits for it, and raises if it failed. Where forking is not safe,
    ``work`` is done here and now."""
    if not can_fork():
        work()
        return lambda: None
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: its exit code says how it went
        code = 0
        try:
            work()
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)

    def wait() -> None:
        _, status = os.waitpid(pid, 0)
        if status != 0:
            raise AnnouncerError(
                f"a build worker failed (exit status {status}); "
                "run again with --jobs 1 to see the error in one process"
            )

    return wait


def run(
    task: Callable[[range], list[R]],
    count: int,
    jobs: int,
    side: Side | None = None,
    chunk: int = 8,
    explicit: bool = False,
) -> list[R]:
    """``task`` over ``range(count)`` in chunks of at most ``chunk``; the results in
    index order.

    ``task`` gets a range and returns one result per index in it. Small
    workloads stay in this process unless the caller asked for ``jobs``
    (``explicit``), which is how the tests exercise the shared path. Shared,
    each process gets some :data:`CHUNKS_EACH` chunks at least, so that the
    processes finish together however few items there are.
    """
    enough = explicit or count >= MIN_SHARED
    if jobs <= 1 or count <= 1 or not enough or not can_fork():
        return [r for start in range(0, count, chunk) for r in task(_chunk(start, chunk, count))]
    jobs = min(jobs, count)
    return _forked(task, count, jobs, side, max(1, min(chunk, count // (jobs * CHUNKS_EACH))))


def _chunk(start: int, size: int, count: int) -> range:
    return range(start, min(start + size, count))


def _forked(
    task: Callable[[range], list[R]], count: int, jobs: int, side: Side | None, chunk: int
) -> list[R]:
    """``jobs - 1`` children and this process pull chunks from one counter.

    This process works too: its caches stay warm from one phase to the next,
    and the heap it would copy into one more child is not copied.
    """
    context = multiprocessing.get_context("fork")
    sys.stdout.flush()  # else each child would print what the parent had buffered
    sys.stderr.flush()
    counter = context.Value("q", 0)
    children = []
    try:
        for _ in range(jobs - 1):
            receiver, sender = context.Pipe(duplex=False)
            spool = _spool()
            args = (task, count, chunk, counter, side, sender, spool)
            child = context.Process(target=_child, args=args)
            child.start()
            sender.close()
            children.append((child, receiver, spool))
        results = _pull(task, count, chunk, counter)
        for child, receiver, spool in children:
            _wait(child, receiver)
            for found, collected, memos in _parts(spool):
                results.update(found)
                if side is not None:
                    side.merge(collected)
                for made, taken in zip(_MEMOS, memos, strict=True):
                    made.results.update(taken)
    finally:
        for child, receiver, spool in children:
            receiver.close()
            spool.close()
            if child.is_alive():
                child.terminate()
            child.join()
    return [results[i] for i in range(count)]


def _spool() -> IO[bytes]:
    """A file in memory, made before the fork so that parent and child share it."""
    if hasattr(os, "memfd_create"):
        return open(os.memfd_create("announcer-worker", os.MFD_CLOEXEC), "w+b")
    return tempfile.TemporaryFile()


def _pull(
    task: Callable[[range], list[R]],
    count: int,
    chunk: int,
    counter: Any,
    hand: Callable[[dict[int, R]], None] | None = None,
) -> dict[int, R]:
    """Take the next chunk until none is left; the results by index, or each chunk's
    results handed to ``hand`` as they come."""
    found: dict[int, R] = {}
    while True:
        with counter.get_lock():
            start = counter.value
            counter.value = start + chunk
        if start >= count:
            return found
        share = _chunk(start, chunk, count)
        results = dict(zip(share, task(share), strict=True))
        if hand is None:
            found.update(results)
        else:
            hand(results)


def _child(
    task: Callable[[range], list[R]],
    count: int,
    chunk: int,
    counter: Any,
    side: Side | None,
    sender: Connection,
    spool: IO[bytes],
) -> None:
    """Pull chunks until none are left, each chunk's part written to ``spool`` as it is
    done; then say through ``sender`` that all went well, or what went wrong."""

    def hand(found: dict[int, R]) -> None:
        collected = side.collect() if side is not None else None
        memos = [made.take() for made in _MEMOS]
        pickle.dump((found, collected, memos), spool, protocol=pickle.HIGHEST_PROTOCOL)
        _start(side)

    payload: tuple[str, object]
    try:
        _start(side)
        _pull(task, count, chunk, counter, hand)
        spool.flush()
        payload = ("ok", None)
    except BaseException as exc:  # everything goes back to the parent, which decides
        payload = ("error", _portable(exc))
    sender.send_bytes(pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))
    sender.close()


def _start(side: Side | None) -> None:
    """Forget what was handed back already (or, first, what the parent had)."""
    if side is not None:
        side.start()
    for made in _MEMOS:
        made.fresh = []


def _parts(spool: IO[bytes]) -> Iterator[tuple[dict[int, Any], object, list[Any]]]:
    """What a child wrote to its spool, part by part, in the order it wrote them."""
    spool.seek(0)
    while True:
        try:
            yield pickle.load(spool)
        except EOFError:
            return


def _portable(exc: BaseException) -> tuple[BaseException | None, str]:
    """The exception itself when it survives pickling, and its traceback as text."""
    text = "".join(traceback.format_exception(exc))
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return None, text
    return exc, text


def _wait(child: Any, receiver: Connection) -> None:
    """Until the child is done; its failure raised here, as the build's."""
    try:
        status, value = pickle.loads(receiver.recv_bytes())
    except EOFError:
        child.join()
        raise AnnouncerError(
            f"a build worker stopped without finishing (exit code {child.exitcode}); "
            "run again with --jobs 1 to see the error in one process"
        ) from None
    if status == "ok":
        return
    exc, text = value
    if exc is None:
        raise AnnouncerError(f"a build worker failed:\n{text}")
    if not isinstance(exc, AnnouncerError):  # a bug: keep where it happened
        exc.add_note(f"in a build worker:\n{text}")
    raise exc
