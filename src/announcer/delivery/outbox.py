"""The outbox: a durable record of every planned email and of what became of it.

Email cannot be taken back, so each message is written down (SQLite, WAL,
``synchronous=FULL``) before anything is sent, marked ``sending`` on disk before
the SMTP DATA command goes out, and marked ``sent`` only after the server's reply
accepted it::

    pending -> sending -> sent | failed | in_doubt
    (sending -> pending when a reply says nothing was taken, e.g. a 4xx)

A run that dies after the mark and before the reply leaves ``sending`` rows. The
next run turns them into ``in_doubt`` and reports them: re-sending could
duplicate the mail, dropping it could lose it, so an operator decides with
:meth:`Outbox.resolve`. (At most one message per connection can be caught so.)

Only one run at a time may send: :meth:`Outbox.lock` takes an ``flock`` on a file
beside the database, which the kernel releases if the process dies.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import copy
import fcntl
import hashlib
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path
from typing import Literal, Protocol

from announcer.errors import AnnouncerError, DeliveryError

State = Literal["pending", "sending", "sent", "failed", "in_doubt"]
Decision = Literal["sent", "retry"]
ProgressState = Literal["sent", "failed", "in_doubt", "deferred", "retrying"]

DB_NAME = "outbox.sqlite"
LOCK_NAME = "outbox.lock"
SCHEMA_VERSION = 2
FILE_BATCH = 64  # messages the file transport marks, writes and syncs together
BUSY_TIMEOUT = 30.0  # seconds to wait for another connection's write lock
QUICK_COMMIT = 0.002  # seconds: commits this quick on average run on the event loop

_LINE_ENDINGS = re.compile(rb"\r\n|\n|\r(?!\n)")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._@+-]+")
_BAD_ADDRESS = re.compile(r"[\s<>\x00-\x1f\x7f]")  # envelope addresses go out as they are

# Which states each state may be entered from; anything else is a bug and aborts the commit.
_ENTERED_FROM: dict[State, tuple[State, ...]] = {
    "pending": ("pending", "sending", "in_doubt"),
    "sending": ("pending",),
    "sent": ("sending", "in_doubt"),
    "failed": ("pending", "sending"),
    "in_doubt": ("sending",),
}

_COLUMNS = (
    "key, kind, event_key, message_id, subject, sender, recipients, state, attempts, "
    "planned_at, updated_at, last_attempt_at, sent_at, reply, refused, via"
)

_MESSAGES = """
CREATE TABLE IF NOT EXISTS {name} (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    event_key TEXT NOT NULL,
    message_id TEXT,
    subject TEXT,
    sender TEXT NOT NULL,
    recipients TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'in_doubt')),
    attempts INTEGER NOT NULL DEFAULT 0,
    planned_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    last_attempt_at REAL,
    sent_at REAL,
    reply TEXT,
    refused TEXT,
    via TEXT
)"""

# The bytes of each message live apart from its state: every state change
# rewrites the row, and 20 KB rewritten twice per message was most of a commit.
_SCHEMA = (
    _MESSAGES.format(name="messages"),
    "CREATE INDEX IF NOT EXISTS messages_by_state ON messages (state)",
    "CREATE TABLE IF NOT EXISTS bodies (key TEXT PRIMARY KEY, raw BLOB NOT NULL)",
)

# Format 1 kept the bytes in a ``raw`` column of ``messages``; planning order is the rowid.
_FROM_FORMAT_1 = (
    "CREATE TABLE bodies (key TEXT PRIMARY KEY, raw BLOB NOT NULL)",
    "INSERT INTO bodies (key, raw) SELECT key, raw FROM messages ORDER BY rowid",
    _MESSAGES.format(name="messages_2"),
    f"INSERT INTO messages_2 (rowid, {_COLUMNS}) SELECT rowid, {_COLUMNS} FROM messages",
    "DROP TABLE messages",
    "ALTER TABLE messages_2 RENAME TO messages",
)


class OutboxError(AnnouncerError):
    """The outbox cannot do what was asked (unknown key, wrong state, newer format)."""


class DeliveryStopped(DeliveryError):
    """A run stopped early for a reason the user must fix; ``report`` says what got out."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.report = DeliveryReport()


class OutboxLockedError(OutboxError):
    """Another process is sending from this outbox right now."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        who = f"pid {pid}" if pid is not None else "pid unknown"
        super().__init__(f"another announce run holds the lock ({who})")


def wire_bytes(raw: bytes) -> bytes:
    """``raw`` with CRLF line ends and a final CRLF: exactly what SMTP DATA carries.

    Storing this form is what lets the file transport and the SMTP server
    receive the very same bytes. Bytes already in that form (every message read
    back from the outbox) are returned as they are, without a regex pass.
    """
    if _in_wire_form(raw):
        return raw
    normalized = _LINE_ENDINGS.sub(b"\r\n", raw)
    return normalized if normalized.endswith(b"\r\n") else normalized + b"\r\n"


def _in_wire_form(raw: bytes) -> bool:
    """Every CR and every LF belongs to a CRLF pair, and the last line ends with one."""
    pairs = raw.count(b"\r\n")
    return raw.endswith(b"\r\n") and raw.count(b"\r") == pairs == raw.count(b"\n")


def safe_name(key: str) -> str:
    """A file name for ``key``: readable, and unique through a hash of the whole key."""
    stem = _UNSAFE_NAME.sub("_", key).strip("._-")[:80] or "message"
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]
    return f"{stem}-{digest}"


@dataclass(frozen=True)
class PlannedMessage:
    """One message to one envelope, identified by the caller's idempotency ``key``."""

    key: str
    raw: bytes
    sender: str
    recipients: tuple[str, ...]
    kind: str
    event_key: str
    message_id: str | None = None
    subject: str | None = None

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError("a planned message needs a non-empty key")
        if not self.recipients:
            raise ValueError(f"message {self.key!r} has no recipients")
        bad = [to for to in self.recipients if not to or _BAD_ADDRESS.search(to)]
        if _BAD_ADDRESS.search(self.sender):  # an empty sender is the null reverse-path
            bad.insert(0, self.sender)
        if bad:
            raise ValueError(f"message {self.key!r}: {bad[0]!r} is not a bare email address")
        object.__setattr__(self, "recipients", tuple(self.recipients))
        object.__setattr__(self, "raw", wire_bytes(self.raw))

    @classmethod
    def from_email(
        cls,
        key: str,
        message: EmailMessage,
        *,
        kind: str,
        event_key: str,
        sender: str | None = None,
        recipients: Sequence[str] | None = None,
    ) -> PlannedMessage:
        """Serialize ``message`` once, as it will go on the wire (Bcc removed, CRLF).

        The envelope defaults to the Sender/From and To/Cc/Bcc headers.
        """
        message_id = message["Message-ID"]
        if message_id is None:
            raise ValueError(f"message {key!r} has no Message-ID; set a stable one before planning")
        envelope_to = tuple(recipients) if recipients is not None else _header_recipients(message)
        envelope_from = sender if sender is not None else _header_sender(message, key)
        return cls(
            key=key,
            raw=_serialize(message),
            sender=envelope_from,
            recipients=envelope_to,
            kind=kind,
            event_key=event_key,
            message_id=str(message_id),
            subject=None if message["Subject"] is None else str(message["Subject"]),
        )


def _serialize(message: EmailMessage) -> bytes:
    if message["Bcc"] is not None or message["Resent-Bcc"] is not None:
        message = copy.deepcopy(message)
        del message["Bcc"]
        del message["Resent-Bcc"]
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


def _header_recipients(message: EmailMessage) -> tuple[str, ...]:
    fields = [str(value) for name in ("To", "Cc", "Bcc") for value in message.get_all(name, [])]
    seen: dict[str, None] = {}
    for _, address in getaddresses(fields):
        if address:
            seen.setdefault(address, None)
    return tuple(seen)


def _header_sender(message: EmailMessage, key: str) -> str:
    for name in ("Sender", "From"):
        value = message[name]
        if value is not None:
            addresses = [address for _, address in getaddresses([str(value)]) if address]
            if addresses:
                return addresses[0]
    raise ValueError(f"message {key!r} has no From address to use as the envelope sender")


_PLANNED_FIELDS = tuple(f.name for f in fields(PlannedMessage))


@dataclass(frozen=True)
class PlanResult:
    added: int
    already_planned: int


@dataclass(frozen=True)
class OutboxEntry:
    """What the outbox knows about one message, for ``announcer outbox``."""

    key: str
    kind: str
    event_key: str
    message_id: str | None
    subject: str | None
    sender: str
    recipients: tuple[str, ...]
    state: State
    attempts: int
    planned_at: datetime
    updated_at: datetime
    last_attempt_at: datetime | None
    sent_at: datetime | None
    reply: str | None
    refused: Mapping[str, str]
    via: str | None


@dataclass(frozen=True)
class OutboxSummary:
    pending: int = 0
    sending: int = 0
    sent: int = 0
    failed: int = 0
    in_doubt: int = 0

    @property
    def total(self) -> int:
        return self.pending + self.sending + self.sent + self.failed + self.in_doubt


@dataclass(frozen=True, slots=True)
class Transition:
    """One state change; ``attempted`` counts a new SMTP transaction (or file write)."""

    key: str
    state: State
    reply: str | None = None
    attempted: bool = False
    refused: Mapping[str, str] | None = None
    via: str | None = None
    at: float = field(default_factory=time.time)


def _when(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _entry(row: sqlite3.Row) -> OutboxEntry:
    planned_at, updated_at = _when(row["planned_at"]), _when(row["updated_at"])
    assert planned_at is not None and updated_at is not None
    return OutboxEntry(
        key=row["key"],
        kind=row["kind"],
        event_key=row["event_key"],
        message_id=row["message_id"],
        subject=row["subject"],
        sender=row["sender"],
        recipients=tuple(json.loads(row["recipients"])),
        state=row["state"],
        attempts=row["attempts"],
        planned_at=planned_at,
        updated_at=updated_at,
        last_attempt_at=_when(row["last_attempt_at"]),
        sent_at=_when(row["sent_at"]),
        reply=row["reply"],
        refused=json.loads(row["refused"]) if row["refused"] else {},
        via=row["via"],
    )


def _update_sql(state: State) -> str:
    allowed = ", ".join(f"'{s}'" for s in _ENTERED_FROM[state])
    return (
        "UPDATE messages SET state = :state, updated_at = :at,"
        " reply = coalesce(:reply, reply), refused = coalesce(:refused, refused),"
        " via = coalesce(:via, via), attempts = attempts + :attempted,"
        " last_attempt_at = CASE WHEN :attempted THEN :at ELSE last_attempt_at END,"
        " sent_at = CASE WHEN :state = 'sent' THEN :at ELSE sent_at END"
        f" WHERE key = :key AND state IN ({allowed})"
    )


_UPDATES: dict[State, str] = {state: _update_sql(state) for state in _ENTERED_FROM}


class Outbox:
    """The SQLite-backed record of planned messages; see the module docstring."""

    def __init__(self, folder: Path, connection: sqlite3.Connection) -> None:
        self.folder = folder
        self._db = connection
        self._db_lock = threading.Lock()  # the journal writes from a worker thread
        self._busy_timeout = BUSY_TIMEOUT  # as the connection was opened
        self._lock_fd: int | None = None
        self._lock_depth = 0

    @classmethod
    def open(cls, folder: str | os.PathLike[str]) -> Outbox:
        """Open (creating if needed) the outbox kept in ``folder``."""
        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(
            path / DB_NAME, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT
        )
        connection.row_factory = sqlite3.Row
        try:
            _prepare(connection, path / DB_NAME)
        except BaseException:
            connection.close()
            raise
        return cls(path, connection)

    def close(self) -> None:
        while self._lock_depth:
            self._release()
        with self._db_lock:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- planning -------------------------------------------------------------------------

    def plan(self, messages: Iterable[PlannedMessage]) -> PlanResult:
        """Record ``messages`` before any is sent; a key planned before is left alone."""
        now = time.time()
        planned = builtins.list(messages)
        with self._transaction() as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO messages (key, kind, event_key, message_id, subject,"
                " sender, recipients, planned_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [_plan_row(message, now) for message in planned],
            )
            added = db.total_changes - before
            db.executemany(
                "INSERT OR IGNORE INTO bodies (key, raw) VALUES (?, ?)",
                [(message.key, message.raw) for message in planned],
            )
        return PlanResult(added=added, already_planned=len(planned) - added)

    # -- the run lock -----------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run lock; re-entrant within this object, exclusive across processes."""
        self._acquire()
        try:
            yield
        finally:
            self._release()

    @property
    def locked(self) -> bool:
        return self._lock_depth > 0

    def _acquire(self) -> None:
        if self._lock_depth:
            self._lock_depth += 1
            return
        path = self.folder / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise OutboxLockedError(holder) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd, self._lock_depth = fd, 1

    def _release(self) -> None:
        self._lock_depth -= 1
        if self._lock_depth == 0 and self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def _require_lock(self) -> None:
        if not self._lock_depth:
            raise OutboxError("this needs the outbox run lock; use 'with outbox.lock():'")

    # -- state changes ----------------------------------------------------------------------

    def recover_interrupted(self) -> builtins.list[str]:
        """Turn ``sending`` rows left by a dead run into ``in_doubt``; return their keys.

        Needs the lock: without it, a live run's in-flight messages would be taken.
        """
        self._require_lock()
        with self._transaction() as db:
            rows = db.execute("SELECT key FROM messages WHERE state = 'sending'")
            keys = [row[0] for row in rows]
            db.execute(
                "UPDATE messages SET state = 'in_doubt', updated_at = ?,"
                " reply = 'the run sending it stopped before the server replied to DATA'"
                " WHERE state = 'sending'",
                (time.time(),),
            )
        return keys

    def record(self, transitions: Sequence[Transition], *, wait: bool = True) -> bool:
        """Apply ``transitions`` in one durable transaction (all or none).

        With ``wait=False``, when another connection holds the write lock, change
        nothing and return False at once instead of waiting for it.
        """
        if not transitions:
            return True
        try:
            with self._transaction(wait=wait) as db:
                for change in transitions:
                    cursor = db.execute(_UPDATES[change.state], _params(change))
                    if cursor.rowcount != 1:
                        raise OutboxError(
                            f"message {change.key!r} cannot become {change.state} now"
                        )
        except _Busy:
            return False
        return True

    def resolve(self, key: str, decision: Decision) -> None:
        """An operator's verdict on an in-doubt message: it did arrive, or send it again."""
        if decision not in ("sent", "retry"):
            raise ValueError(f"decision must be 'sent' or 'retry', not {decision!r}")
        entry = self.get(key)
        if entry.state != "in_doubt":
            raise OutboxError(f"message {key!r} is {entry.state}, not in doubt")
        now = time.time()
        with self._transaction() as db:
            if decision == "sent":
                db.execute(
                    "UPDATE messages SET state = 'sent', updated_at = ?,"
                    " sent_at = coalesce(last_attempt_at, ?),"
                    " reply = 'marked sent by an operator (the server never confirmed it)'"
                    " WHERE key = ? AND state = 'in_doubt'",
                    (now, now, key),
                )
            else:
                db.execute(
                    "UPDATE messages SET state = 'pending', updated_at = ?,"
                    " reply = 'queued again by an operator' WHERE key = ? AND state = 'in_doubt'",
                    (now, key),
                )

    # -- reading -------------------------------------------------------------------------------

    def pending(self) -> builtins.list[PlannedMessage]:
        """Messages still to send, in the order they were planned."""
        rows = self._query(
            "SELECT key, raw, sender, recipients, kind, event_key, message_id, subject"
            " FROM messages JOIN bodies USING (key)"
            " WHERE state = 'pending' ORDER BY messages.rowid"
        )
        return [_read_back(row) for row in rows]

    def raw(self, key: str) -> bytes:
        rows = self._query("SELECT raw FROM bodies WHERE key = ?", (key,))
        if not rows:
            raise OutboxError(f"no message with key {key!r} in the outbox")
        return bytes(rows[0]["raw"])

    def get(self, key: str) -> OutboxEntry:
        rows = self._query(f"SELECT {_COLUMNS} FROM messages WHERE key = ?", (key,))
        if not rows:
            raise OutboxError(f"no message with key {key!r} in the outbox")
        return _entry(rows[0])

    def keys(self, state: State) -> builtins.list[str]:
        return [
            row[0]
            for row in self._query(
                "SELECT key FROM messages WHERE state = ? ORDER BY rowid", (state,)
            )
        ]

    def summary(self) -> OutboxSummary:
        """How many messages are in each state."""
        counts = {
            row[0]: row[1]
            for row in self._query("SELECT state, count(*) FROM messages GROUP BY state")
        }
        return OutboxSummary(**counts)

    def list(
        self, states: Iterable[State] | None = None, *, event_key: str | None = None
    ) -> builtins.list[OutboxEntry]:
        """Entries in planning order, optionally only some states or one event."""
        sql = f"SELECT {_COLUMNS} FROM messages WHERE 1"
        params: builtins.list[object] = []
        if states is not None:
            wanted = builtins.list(states)
            sql += f" AND state IN ({', '.join('?' * len(wanted))})"
            params.extend(wanted)
        if event_key is not None:
            sql += " AND event_key = ?"
            params.append(event_key)
        return [_entry(row) for row in self._query(sql + " ORDER BY rowid", params)]

    # -- plumbing ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self, *, wait: bool = True) -> Iterator[sqlite3.Connection]:
        with self._db_lock:
            self._begin(wait)
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _begin(self, wait: bool) -> None:
        """Take the write lock; without ``wait``, raise ``_Busy`` if someone else has it."""
        self._wait_for_lock(BUSY_TIMEOUT if wait else 0.0)
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if not wait and exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:  # or extended
                raise _Busy from None
            raise

    def _wait_for_lock(self, seconds: float) -> None:
        """Set SQLite's busy timeout, only when it changes (a run's commits all use one)."""
        if seconds != self._busy_timeout:
            self._db.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")
            self._busy_timeout = seconds

    def _query(self, sql: str, params: Sequence[object] = ()) -> builtins.list[sqlite3.Row]:
        with self._db_lock:
            self._wait_for_lock(BUSY_TIMEOUT)
            return self._db.execute(sql, params).fetchall()


class _Busy(Exception):
    """Another connection holds the write lock (and the caller would rather not wait)."""


def _prepare(db: sqlite3.Connection, path: Path) -> None:
    mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise OutboxError(f"cannot use write-ahead logging for {path} (got {mode})")
    db.execute("PRAGMA synchronous = FULL")
    db.execute("BEGIN IMMEDIATE")  # another process may be opening it too
    try:
        _create_or_upgrade(db, path)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _create_or_upgrade(db: sqlite3.Connection, path: Path) -> None:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise OutboxError(f"{path} was written by a newer announcer (format {version})")
    if version == SCHEMA_VERSION:
        return
    if version == 1:
        for statement in _FROM_FORMAT_1:
            db.execute(statement)
    for statement in _SCHEMA:
        db.execute(statement)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _plan_row(message: PlannedMessage, now: float) -> tuple[object, ...]:
    return (
        message.key,
        message.kind,
        message.event_key,
        message.message_id,
        message.subject,
        message.sender,
        json.dumps(builtins.list(message.recipients)),
        now,
        now,
    )


def _read_back(row: sqlite3.Row) -> PlannedMessage:
    """A message as it was planned: checked, and put in wire form, before it was stored.

    Built without ``__post_init__``, whose checks passed when it was planned;
    repeating its scan of every byte for line ends cost 40 µs per 20 KB message.
    """
    values = {name: row[name] for name in _PLANNED_FIELDS}  # a missing column fails loudly
    values["recipients"] = tuple(json.loads(values["recipients"]))
    message = object.__new__(PlannedMessage)
    for name, value in values.items():
        object.__setattr__(message, name, value)
    return message


def _params(change: Transition) -> dict[str, object]:
    return {
        "key": change.key,
        "state": change.state,
        "at": change.at,
        "reply": change.reply,
        "refused": json.dumps(dict(change.refused)) if change.refused else None,
        "via": change.via,
        "attempted": int(change.attempted),
    }


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode("ascii").strip())
    except (OSError, ValueError, UnicodeDecodeError):
        return None


# -- delivery runs -------------------------------------------------------------------------------


class Journal:
    """Writes state changes to the outbox in group commits.

    Every change queued when a commit starts goes into that transaction, so
    concurrent workers share one fsync. ``durable`` returns only once its change
    is on disk (the ``sending`` mark before DATA); ``later`` changes (``sent``,
    after the server's reply) go into the next commit without anyone waiting. A
    crash before it leaves the message ``sending``, hence in doubt: never wrongly
    sent, never lost.

    Commits run on the event loop while they take under ``QUICK_COMMIT`` on
    average: handing a sub-millisecond commit to a thread costs more CPU than the
    commit. On a slow disk, or when another connection holds the write lock,
    they run in a thread, so the connections carry on meanwhile.
    """

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox
        self._queued: builtins.list[Transition] = []
        self._waiters: builtins.list[asyncio.Future[None]] = []
        self._writer: asyncio.Task[None] | None = None
        self._failure: Exception | None = None  # a failed commit fails every later flush
        self._commit_time = 0.0  # seconds, a moving average

    def later(self, change: Transition) -> None:
        self._queued.append(change)
        self._start()

    async def durable(self, change: Transition) -> None:
        self._queued.append(change)
        await self.flush()

    async def flush(self) -> None:
        """Wait until every change queued so far is committed."""
        if self._failure is not None:
            raise self._failure
        if not self._queued and self._writer is None:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._start()
        await waiter

    def _start(self) -> None:
        if self._writer is None:
            self._writer = asyncio.create_task(self._write())

    async def _write(self) -> None:
        try:
            while self._queued or self._waiters:
                await asyncio.sleep(0)  # changes made in the same step join this commit
                batch, self._queued = self._queued, []
                waiters, self._waiters = self._waiters, []
                try:
                    await self._commit(batch)
                except Exception as exc:  # every waiter must learn of it
                    self._failure = self._failure or exc
                    _settle(waiters, exc)
                else:
                    _settle(waiters, None)
        finally:
            self._writer = None

    async def _commit(self, batch: Sequence[Transition]) -> None:
        if self._commit_time < QUICK_COMMIT:
            started = time.perf_counter()
            if self._outbox.record(batch, wait=False):
                self._note(time.perf_counter() - started)
                return
        await asyncio.to_thread(self._record_timed, batch)

    def _record_timed(self, batch: Sequence[Transition]) -> None:
        started = time.perf_counter()
        self._outbox.record(batch)
        self._note(time.perf_counter() - started)

    def _note(self, seconds: float) -> None:
        self._commit_time += (seconds - self._commit_time) / 5


def _settle(waiters: Iterable[asyncio.Future[None]], error: Exception | None) -> None:
    for waiter in waiters:
        if waiter.done():
            continue
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(error)


@dataclass(frozen=True)
class Progress:
    """One message settled (or going to be retried) during a delivery run."""

    key: str
    state: ProgressState
    done: int
    total: int
    detail: str | None = None


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class MessageIssue:
    key: str
    reply: str


@dataclass(frozen=True)
class RecipientIssue:
    key: str
    address: str
    reply: str


@dataclass
class DeliveryReport:
    """What one delivery run did; ``in_doubt`` lists every message awaiting a verdict."""

    sent: builtins.list[str] = field(default_factory=builtins.list)
    failed: builtins.list[MessageIssue] = field(default_factory=builtins.list)
    deferred: builtins.list[MessageIssue] = field(default_factory=builtins.list)
    refused_recipients: builtins.list[RecipientIssue] = field(default_factory=builtins.list)
    in_doubt: builtins.list[str] = field(default_factory=builtins.list)
    interrupted: builtins.list[str] = field(default_factory=builtins.list)
    reconciled: builtins.list[str] = field(default_factory=builtins.list)

    @property
    def ok(self) -> bool:
        return not (self.failed or self.deferred or self.refused_recipients or self.in_doubt)

    def describe(self) -> str:
        parts = [
            f"{len(self.sent)} sent",
            f"{len(self.failed)} failed",
            f"{len(self.deferred)} deferred",
            f"{len(self.in_doubt)} in doubt",
        ]
        if self.refused_recipients:
            parts.append(f"{len(self.refused_recipients)} recipients refused")
        return ", ".join(parts)


class DeliveryRun:
    """The messages one run sets out to send, and the one place their outcomes are recorded."""

    def __init__(
        self,
        outbox: Outbox,
        messages: Sequence[PlannedMessage],
        journal: Journal,
        progress: ProgressCallback | None = None,
        report: DeliveryReport | None = None,
    ) -> None:
        self.outbox = outbox
        self.messages = messages
        self.report = report if report is not None else DeliveryReport()
        self._journal = journal
        self._progress = progress
        self._begun: set[str] = set()
        self._done = 0

    async def begin(self, message: PlannedMessage, *, via: str) -> None:
        """Durably mark ``message`` as being sent; must return before its bytes are handed over."""
        await self._journal.durable(Transition(message.key, "sending", attempted=True, via=via))
        self._begun.add(message.key)

    def sent(
        self, message: PlannedMessage, reply: str, refused: Mapping[str, str] | None = None
    ) -> None:
        refused = refused or {}
        self._change(message, "sent", reply, refused)
        self.report.sent.append(message.key)
        self._note_refused(message, refused)
        self._tell(message, "sent", reply, settled=True)

    def failed(
        self, message: PlannedMessage, reply: str, refused: Mapping[str, str] | None = None
    ) -> None:
        refused = refused or {}
        self._change(message, "failed", reply, refused)
        self.report.failed.append(MessageIssue(message.key, reply))
        self._note_refused(message, refused)
        self._tell(message, "failed", reply, settled=True)

    def in_doubt(self, message: PlannedMessage, reason: str) -> None:
        self._change(message, "in_doubt", reason)
        self._tell(message, "in_doubt", reason, settled=True)

    def retrying(self, message: PlannedMessage, reply: str) -> None:
        """A transient failure: nothing was accepted, so sending again is safe."""
        self._change(message, "pending", reply)
        self._tell(message, "retrying", reply, settled=False)

    def deferred(self, message: PlannedMessage, reply: str, *, attempted: bool = True) -> None:
        """Left pending for a later run (retry time used up, or the run stopped)."""
        if attempted:
            self._change(message, "pending", reply)
        self.report.deferred.append(MessageIssue(message.key, reply))
        self._tell(message, "deferred", reply, settled=True)

    def withdraw(self, message: PlannedMessage, reason: str) -> None:
        """Undo :meth:`begin` when the bytes were never handed over (the run is stopping)."""
        if message.key in self._begun:
            self._change(message, "pending", reason)

    def _change(
        self,
        message: PlannedMessage,
        state: State,
        reply: str,
        refused: Mapping[str, str] | None = None,
    ) -> None:
        begun = message.key in self._begun
        self._begun.discard(message.key)
        change = Transition(
            message.key, state, reply=reply, attempted=not begun, refused=refused or None
        )
        self._journal.later(change)

    def _note_refused(self, message: PlannedMessage, refused: Mapping[str, str]) -> None:
        self.report.refused_recipients.extend(
            RecipientIssue(message.key, address, reply) for address, reply in refused.items()
        )

    def _tell(
        self, message: PlannedMessage, state: ProgressState, detail: str, *, settled: bool
    ) -> None:
        self._done += settled
        if self._progress is not None:
            self._progress(Progress(message.key, state, self._done, len(self.messages), detail))


class Transport(Protocol):
    """Something that can deliver the messages of a run (SMTP, or files for previews)."""

    @property
    def name(self) -> str:
        """Recorded with each attempt, e.g. ``smtp mail.example.org:587``."""
        ...

    def reconcile(self, outbox: Outbox) -> builtins.list[str]:
        """Settle in-doubt messages this transport can prove the fate of; return their keys."""
        ...

    async def send(self, run: DeliveryRun) -> None:
        """Deliver ``run.messages``, reporting each outcome to ``run``."""
        ...


async def deliver(
    outbox: Outbox, transport: Transport, *, progress: ProgressCallback | None = None
) -> DeliveryReport:
    """Send every pending message once, under the run lock; report what happened.

    Errors the user must act on (bad password, untrusted certificate) raise a
    ``DeliveryError`` whose ``report`` says what was sent before the stop.
    """
    with outbox.lock():
        report = DeliveryReport(interrupted=outbox.recover_interrupted())
        report.reconciled = transport.reconcile(outbox)
        journal = Journal(outbox)
        run = DeliveryRun(outbox, outbox.pending(), journal, progress, report)
        try:
            await transport.send(run)
        except DeliveryStopped as exc:
            await journal.flush()
            report.in_doubt = outbox.keys("in_doubt")
            exc.report = report
            raise
        finally:
            await asyncio.shield(journal.flush())
        report.in_doubt = outbox.keys("in_doubt")
        return report


def deliver_pending(
    outbox: Outbox, transport: Transport, *, progress: ProgressCallback | None = None
) -> DeliveryReport:
    """:func:`deliver` for synchronous callers such as the CLI."""
    return asyncio.run(deliver(outbox, transport, progress=progress))


# -- the file transport --------------------------------------------------------------------------


@dataclass(frozen=True)
class FileTransport:
    """Delivers by writing each message to ``<folder>/<safe-name>.eml``.

    For projects without an SMTP server: the files hold byte for byte what SMTP
    would have carried, and go through the same states, so switching to SMTP
    later never re-sends what was already "sent" as a file. ``folder`` defaults
    to the outbox folder.
    """

    folder: Path | None = None

    @property
    def name(self) -> str:
        return "file"

    def path_for(self, outbox: Outbox, key: str) -> Path:
        return (self.folder or outbox.folder) / f"{safe_name(key)}.eml"

    def reconcile(self, outbox: Outbox) -> builtins.list[str]:
        """A written file is proof: in-doubt files that exist intact are sent, missing ones pending.

        ``os.replace`` is atomic, so a file is either complete or absent; the
        temporary files a killed run left are removed (the run lock is held).
        """
        for stale in (self.folder or outbox.folder).glob(".*.eml.*.tmp"):
            stale.unlink(missing_ok=True)
        settled = []
        for entry in outbox.list(["in_doubt"]):
            if not entry.via or not entry.via.startswith("file "):
                continue
            path = Path(entry.via.removeprefix("file "))
            if _holds(path, outbox.raw(entry.key)):
                outbox.resolve(entry.key, "sent")
            elif not path.exists():
                outbox.resolve(entry.key, "retry")
            else:
                continue
            settled.append(entry.key)
        return settled

    async def send(self, run: DeliveryRun) -> None:
        """Write in batches: one commit marks a batch ``sending``, one directory sync ends it.

        A crash mid-batch leaves it in doubt, and :meth:`reconcile` settles that
        from the files themselves on the next run.
        """
        for start in range(0, len(run.messages), FILE_BATCH):
            batch = run.messages[start : start + FILE_BATCH]
            paths = [self.path_for(run.outbox, message.key) for message in batch]
            pairs = list(zip(batch, paths, strict=True))
            await asyncio.gather(*(run.begin(m, via=f"file {p}") for m, p in pairs))
            errors = [_write_file(path, message.raw) for message, path in pairs]
            _sync_directories({path.parent for path in paths})
            for (message, path), error in zip(pairs, errors, strict=True):
                if error is None:
                    run.sent(message, f"written to {path}")
                else:  # nothing was written: safe to try again next run
                    run.deferred(message, f"could not write {path}: {error}")


def _holds(path: Path, data: bytes) -> bool:
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that it is durably either all there or not at all."""
    error = _write_file(path, data)
    if error is not None:
        raise error
    _sync_directories([path.parent])


def _write_file(path: Path, data: bytes) -> OSError | None:
    """Write through a synced temporary file and rename it into place (directory not synced)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink()
        return exc
    return None


def _sync_directories(folders: Iterable[Path]) -> None:
    """Make renames into ``folders`` durable."""
    for folder in folders:
        fd = os.open(folder, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
