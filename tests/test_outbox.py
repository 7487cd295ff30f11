"""The outbox: planned before sent, each state change durable, in-doubt never guessed."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from announcer.delivery.outbox import (
    DB_NAME,
    FileTransport,
    Journal,
    Outbox,
    OutboxError,
    OutboxLockedError,
    PlannedMessage,
    Progress,
    Transition,
    deliver_pending,
    safe_name,
    wire_bytes,
)
from tests.smtp_server import sample_message


def planned(n: int, to: str | tuple[str, ...] = "", **options: object) -> PlannedMessage:
    message = sample_message(n, to, **options)  # type: ignore[arg-type]
    recipient = to if isinstance(to, str) and to else f"person{n}@example.net"
    return PlannedMessage.from_email(
        f"reading/session-{n}|announcement|1|{recipient}",
        message,
        kind="announcement",
        event_key=f"reading/session-{n}",
    )


def state_on_disk(folder: Path, key: str) -> str:
    """Read through a separate connection: what a crash right now would leave."""
    with sqlite3.connect(folder / DB_NAME) as db:
        row = db.execute("SELECT state FROM messages WHERE key = ?", (key,)).fetchone()
    return str(row[0])


# -- planning ---------------------------------------------------------------------------------


def test_planning_the_same_key_again_is_a_no_op(tmp_path: Path) -> None:
    with Outbox.open(tmp_path) as outbox:
        first = outbox.plan([planned(1), planned(2)])
        again = outbox.plan([planned(2), planned(3), planned(3)])
        assert (first.added, first.already_planned) == (2, 0)
        assert (again.added, again.already_planned) == (1, 2)
        assert [m.key for m in outbox.pending()] == [planned(n).key for n in (1, 2, 3)]


def test_a_rerun_after_everything_went_out_sends_nothing(tmp_path: Path) -> None:
    with Outbox.open(tmp_path / "outbox") as outbox:
        outbox.plan([planned(1), planned(2)])
        assert len(deliver_pending(outbox, FileTransport()).sent) == 2
        outbox.plan([planned(1), planned(2)])  # the same announce run, started again
        report = deliver_pending(outbox, FileTransport())
    assert report.sent == [] and report.ok
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 2


def test_from_email_keeps_the_bytes_that_will_go_on_the_wire() -> None:
    message = sample_message(7, ("ann@example.net", "Bob <bob@example.net>"))
    message["Cc"] = "carol@example.net"
    message["Bcc"] = "dave@example.net"
    item = PlannedMessage.from_email("k", message, kind="announcement", event_key="e")
    assert item.sender == "events@example.org"
    assert item.recipients == (
        "ann@example.net", "bob@example.net", "carol@example.net", "dave@example.net",
    )
    assert b"dave@" not in item.raw  # Bcc is envelope only
    assert b"\n" not in item.raw.replace(b"\r\n", b"")
    assert item.raw.endswith(b"\r\n")
    assert item.message_id == "<announcement.7.1@events.example.org>"
    assert message["Bcc"] == "dave@example.net"  # the caller's message is left alone


def test_a_message_without_message_id_cannot_be_planned() -> None:
    message = sample_message(1)
    del message["Message-ID"]
    with pytest.raises(ValueError, match="Message-ID"):
        PlannedMessage.from_email("k", message, kind="announcement", event_key="e")


@pytest.mark.parametrize("address", ["", "a b@example.org", "<x@example.org>", "x@ex\r\nRCPT"])
def test_recipients_smtp_cannot_carry_are_refused_when_planned(address: str) -> None:
    with pytest.raises(ValueError, match="bare email address"):
        PlannedMessage("k", b"x", "events@example.org", (address,), "announcement", "e")


@given(st.binary(max_size=300))
def test_wire_bytes_are_crlf_terminated_and_stable(raw: bytes) -> None:
    wire = wire_bytes(raw)
    assert wire.endswith(b"\r\n")
    assert b"\n" not in wire.replace(b"\r\n", b"") and b"\r" not in wire.replace(b"\r\n", b"")
    assert wire_bytes(wire) == wire


@given(st.lists(st.sampled_from([b"a", b".", b"\r", b"\n", b"\r\n"]), max_size=40).map(b"".join))
def test_wire_bytes_skip_only_what_is_already_in_wire_form(raw: bytes) -> None:
    lines = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    expected = b"\r\n".join(lines) + (b"" if raw.endswith((b"\r", b"\n")) else b"\r\n")
    assert wire_bytes(raw) == expected


@given(st.text(min_size=1, max_size=120), st.text(min_size=1, max_size=120))
def test_safe_names_are_plain_and_tell_keys_apart(first: str, second: str) -> None:
    name = safe_name(first)
    assert all(c.isascii() and (c.isalnum() or c in "._@+-") for c in name)
    assert not name.startswith(".")
    assert (safe_name(second) == name) == (first == second)


# -- the state machine --------------------------------------------------------------------------


def test_file_transport_writes_exactly_what_smtp_would_carry(tmp_path: Path) -> None:
    item = planned(3, eight_bit=True)
    with Outbox.open(tmp_path) as outbox:
        outbox.plan([item])
        report = deliver_pending(outbox, FileTransport())
        entry = outbox.get(item.key)
    path = tmp_path / f"{safe_name(item.key)}.eml"
    assert report.sent == [item.key]
    assert path.read_bytes() == item.raw
    parsed = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert parsed.defects == [] and parsed["Message-ID"] == item.message_id
    assert "Ωμέγα" in parsed.get_body().get_content()  # type: ignore[union-attr]
    assert (entry.state, entry.attempts, entry.via) == ("sent", 1, f"file {path}")
    assert entry.sent_at is not None and entry.reply == f"written to {path}"
    assert not list(tmp_path.glob(".*.tmp"))


def test_an_unwritable_folder_leaves_messages_pending(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with Outbox.open(tmp_path / "outbox") as outbox:
        outbox.plan([planned(1)])
        report = deliver_pending(outbox, FileTransport(blocker))
        entry = outbox.get(planned(1).key)
    assert [issue.key for issue in report.deferred] == [planned(1).key]
    assert entry.state == "pending" and entry.attempts == 1
    assert entry.reply is not None and "could not write" in entry.reply


def interrupt(outbox: Outbox, key: str, via: str) -> None:
    """What a run that died between DATA and the reply leaves behind."""
    with outbox.lock():
        outbox.record([Transition(key, "sending", attempted=True, via=via)])


def test_a_message_interrupted_mid_send_is_in_doubt_until_an_operator_decides(
    tmp_path: Path,
) -> None:
    one, two = planned(1), planned(2)
    with Outbox.open(tmp_path) as outbox:
        outbox.plan([one, two])
        interrupt(outbox, one.key, "smtp mail.example.org:587")
        interrupt(outbox, two.key, "smtp mail.example.org:587")
    with Outbox.open(tmp_path) as outbox:
        report = deliver_pending(outbox, FileTransport())
        assert report.interrupted == [one.key, two.key]
        assert report.in_doubt == [one.key, two.key] and report.sent == []
        assert not list(tmp_path.glob("*.eml"))  # not re-sent by another route either
        again = deliver_pending(outbox, FileTransport())
        assert again.interrupted == [] and again.in_doubt == [one.key, two.key]

        outbox.resolve(one.key, "sent")
        outbox.resolve(two.key, "retry")
        final = deliver_pending(outbox, FileTransport())
        assert final.sent == [two.key] and final.in_doubt == []
        assert outbox.get(one.key).reply is not None and "operator" in str(outbox.get(one.key).reply)
        assert outbox.get(one.key).sent_at is not None


def test_the_file_transport_settles_its_own_doubts_from_the_files(tmp_path: Path) -> None:
    written, missing = planned(1), planned(2)
    transport = FileTransport()
    with Outbox.open(tmp_path) as outbox:
        outbox.plan([written, missing])
        for item in (written, missing):
            interrupt(outbox, item.key, f"file {transport.path_for(outbox, item.key)}")
        transport.path_for(outbox, written.key).write_bytes(written.raw)
        leftover = tmp_path / f".{safe_name(missing.key)}.eml.4242.tmp"
        leftover.write_bytes(missing.raw[:10])  # a write the dead run never finished
        report = deliver_pending(outbox, transport)
        assert not leftover.exists()
        assert report.reconciled == [written.key, missing.key]
        assert report.sent == [missing.key] and report.in_doubt == []
        assert outbox.get(written.key).attempts == 1  # not written a second time
        assert transport.path_for(outbox, missing.key).read_bytes() == missing.raw


def test_resolve_applies_only_to_messages_in_doubt(tmp_path: Path) -> None:
    with Outbox.open(tmp_path) as outbox:
        outbox.plan([planned(1)])
        with pytest.raises(OutboxError, match="is pending, not in doubt"):
            outbox.resolve(planned(1).key, "sent")
        with pytest.raises(OutboxError, match="no message"):
            outbox.resolve("nope", "retry")


def test_an_impossible_transition_rolls_back_its_whole_group(tmp_path: Path) -> None:
    one, two = planned(1), planned(2)
    with Outbox.open(tmp_path) as outbox:
        outbox.plan([one, two])
        with pytest.raises(OutboxError, match="cannot become sent"):
            outbox.record([Transition(one.key, "sending"), Transition(two.key, "sent")])
        assert outbox.summary().pending == 2


def test_recovering_interrupted_runs_needs_the_lock(tmp_path: Path) -> None:
    with Outbox.open(tmp_path) as outbox, pytest.raises(OutboxError, match="lock"):
        outbox.recover_interrupted()


FORMAT_1 = """
CREATE TABLE messages (
    key TEXT PRIMARY KEY, kind TEXT NOT NULL, event_key TEXT NOT NULL, message_id TEXT,
    subject TEXT, sender TEXT NOT NULL, recipients TEXT NOT NULL, raw BLOB NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'in_doubt')),
    attempts INTEGER NOT NULL DEFAULT 0, planned_at REAL NOT NULL, updated_at REAL NOT NULL,
    last_attempt_at REAL, sent_at REAL, reply TEXT, refused TEXT, via TEXT
);
CREATE INDEX messages_by_state ON messages (state);
PRAGMA user_version = 1;
"""


def test_an_outbox_of_format_1_is_upgraded_keeping_every_message(tmp_path: Path) -> None:
    items = [planned(n) for n in (3, 1, 2)]  # planning order is not key order
    with sqlite3.connect(tmp_path / DB_NAME) as db:
        db.executescript(FORMAT_1)
        for item, state in zip(items, ("sent", "in_doubt", "pending"), strict=True):
            db.execute(
                "INSERT INTO messages (key, kind, event_key, message_id, subject, sender,"
                " recipients, raw, state, planned_at, updated_at, reply)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1.0, 2.0, ?)",
                (item.key, item.kind, item.event_key, item.message_id, item.subject,
                 item.sender, f'["{item.recipients[0]}"]', item.raw, state, f"was {state}"),
            )
    with Outbox.open(tmp_path) as outbox:
        assert [e.key for e in outbox.list()] == [item.key for item in items]
        assert [e.state for e in outbox.list()] == ["sent", "in_doubt", "pending"]
        assert outbox.get(items[1].key).reply == "was in_doubt"
        assert all(outbox.raw(item.key) == item.raw for item in items)
        assert outbox.pending() == [items[2]]
        assert deliver_pending(outbox, FileTransport()).sent == [items[2].key]
    with sqlite3.connect(tmp_path / DB_NAME) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2
        columns = [row[1] for row in db.execute("PRAGMA table_info(messages)")]
    assert "raw" not in columns and "state" in columns


def test_an_outbox_of_a_newer_format_is_left_alone(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / DB_NAME) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(OutboxError, match="newer announcer"):
        Outbox.open(tmp_path)


def test_the_outbox_is_durable_sqlite(tmp_path: Path) -> None:
    with Outbox.open(tmp_path) as outbox:
        synchronous = outbox._db.execute("PRAGMA synchronous").fetchone()[0]
    with sqlite3.connect(tmp_path / DB_NAME) as db:
        mode = db.execute("PRAGMA journal_mode").fetchone()[0]
    assert (mode, synchronous) == ("wal", 2)  # 2: FULL


def test_a_durable_change_is_on_disk_when_it_returns_and_later_ones_wait(tmp_path: Path) -> None:
    one, two = planned(1), planned(2)
    with Outbox.open(tmp_path) as outbox:
        outbox.plan([one, two])

        async def run() -> None:
            journal = Journal(outbox)
            await journal.durable(Transition(one.key, "sending", attempted=True))
            assert state_on_disk(tmp_path, one.key) == "sending"
            journal.later(Transition(one.key, "sent", reply="250 OK"))
            assert state_on_disk(tmp_path, one.key) == "sending"
            await asyncio.gather(
                journal.durable(Transition(two.key, "sending", attempted=True)),
                journal.durable(Transition(two.key, "sent", reply="250 OK")),
            )
            assert state_on_disk(tmp_path, one.key) == "sent"
            assert state_on_disk(tmp_path, two.key) == "sent"

        asyncio.run(run())


def test_a_commit_that_must_not_wait_gives_way_to_another_writer(tmp_path: Path) -> None:
    one = planned(1)
    with Outbox.open(tmp_path) as outbox:
        outbox.plan([one])
        blocker = sqlite3.connect(tmp_path / DB_NAME, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        change = Transition(one.key, "sending", attempted=True)
        assert outbox.record([change], wait=False) is False
        blocker.execute("ROLLBACK")
        blocker.close()
        assert state_on_disk(tmp_path, one.key) == "pending"
        assert outbox.record([change], wait=False) is True
        assert state_on_disk(tmp_path, one.key) == "sending"


def test_a_change_that_cannot_be_committed_is_never_dropped_silently(tmp_path: Path) -> None:
    with Outbox.open(tmp_path) as outbox:
        outbox.plan([planned(1)])

        async def run() -> None:
            journal = Journal(outbox)
            journal.later(Transition(planned(1).key, "sent"))  # never was sending: a bug
            with pytest.raises(OutboxError, match="cannot become sent"):
                await journal.flush()
            with pytest.raises(OutboxError, match="cannot become sent"):
                await journal.flush()  # and every flush after says so

        asyncio.run(run())


def test_list_and_summary_say_what_went_where_and_when(tmp_path: Path) -> None:
    items = [planned(n) for n in range(1, 4)]
    seen: list[Progress] = []
    with Outbox.open(tmp_path) as outbox:
        outbox.plan(items)
        deliver_pending(outbox, FileTransport(), progress=seen.append)
        outbox.plan([planned(4)])
        entries = outbox.list()
        summary = outbox.summary()
        only_sent = outbox.list(["sent"], event_key="reading/session-2")
    assert [(p.done, p.total, p.state) for p in seen] == [(n, 3, "sent") for n in (1, 2, 3)]
    assert (summary.sent, summary.pending, summary.total) == (3, 1, 4)
    assert [e.key for e in only_sent] == [items[1].key]
    first = entries[0]
    assert first.recipients == ("person1@example.net",) and first.kind == "announcement"
    assert first.subject == "Session 1: Middlemarch, chapters 1-4"
    assert first.sent_at is not None and first.sent_at >= first.planned_at
    assert entries[3].state == "pending" and entries[3].sent_at is None


# -- the run lock ---------------------------------------------------------------------------------

HOLD_LOCK = """
import sys
from announcer.delivery.outbox import Outbox
outbox = Outbox.open(sys.argv[1])
with outbox.lock():
    print("locked", flush=True)
    sys.stdin.read()
"""


def test_a_second_run_is_refused_while_one_holds_the_lock(tmp_path: Path) -> None:
    with Outbox.open(tmp_path) as first, Outbox.open(tmp_path) as second:
        second.plan([planned(1)])
        with first.lock(), pytest.raises(OutboxLockedError) as refused:
            deliver_pending(second, FileTransport())
        assert str(refused.value) == f"another announce run holds the lock (pid {refused.value.pid})"
        assert second.summary().pending == 1
        assert deliver_pending(second, FileTransport()).sent == [planned(1).key]


def test_the_lock_dies_with_its_process(tmp_path: Path) -> None:
    Outbox.open(tmp_path).close()
    with subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(tmp_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
            with Outbox.open(tmp_path) as outbox:
                with pytest.raises(OutboxLockedError, match=f"pid {holder.pid}\\)"), outbox.lock():
                    pass
                holder.send_signal(signal.SIGKILL)
                holder.wait(10)
                with outbox.lock():
                    assert outbox.locked
        finally:
            holder.kill()


def test_the_cli_lists_in_doubt_keys_and_records_the_operators_decision(
    example_project: Path,
) -> None:
    """``announcer outbox`` names each in-doubt message and takes the verdict on it."""
    from click.testing import CliRunner

    from announcer.cli import main
    from announcer.mail.announce import state_dir

    one, two = planned(1), planned(2)
    folder = state_dir(example_project)
    with Outbox.open(folder) as outbox:
        outbox.plan([one, two])
        interrupt(outbox, one.key, "smtp mail.example.org:587")
        interrupt(outbox, two.key, "smtp mail.example.org:587")
        with outbox.lock():
            outbox.recover_interrupted()
    runner = CliRunner()
    listed = runner.invoke(main, ["-C", str(example_project), "outbox"])
    assert listed.exit_code == 0, listed.output
    assert f"key: {one.key}" in listed.output and "2 in doubt" in listed.output
    decided = runner.invoke(
        main, ["-C", str(example_project), "outbox", "--mark-sent", one.key, "--send-again", two.key]
    )
    assert decided.exit_code == 0, decided.output
    with Outbox.open(folder) as outbox:
        assert (outbox.get(one.key).state, outbox.get(two.key).state) == ("sent", "pending")
    wrong = runner.invoke(main, ["-C", str(example_project), "outbox", "--mark-sent", one.key])
    assert wrong.exit_code == 1 and "is sent, not in doubt" in wrong.output
