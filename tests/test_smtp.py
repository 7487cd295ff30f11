"""SMTP delivery against a real server on 127.0.0.1: each message once, or reported.

Needs the fixtures of ``tests/conftest_smtp.py``.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import trustme

from announcer.delivery.outbox import (
    DB_NAME,
    DeliveryReport,
    Outbox,
    OutboxLockedError,
    PlannedMessage,
    Progress,
    deliver_pending,
)
from announcer.delivery.smtp import (
    SmtpAuthenticationError,
    SmtpConfigError,
    SmtpSettings,
    SmtpSetupError,
    SmtpTlsError,
    SmtpTransport,
)
from tests.smtp_server import SmtpServer, StartServer, sample_message

pytest_plugins = ["tests.conftest_smtp"]  # the SMTP server fixtures

USER, PASSWORD = "announcer-test", "correct horse battery staple"
ENV = {"ANNOUNCER_SMTP_USER": USER, "ANNOUNCER_SMTP_PASSWORD": PASSWORD}


def planned(n: int, to: str | tuple[str, ...] = "", **options: Any) -> PlannedMessage:
    recipients = (to,) if isinstance(to, str) and to else to or (f"person{n}@example.net",)
    return PlannedMessage.from_email(
        f"reading/session-{n}|announcement|1|{','.join(recipients)}",
        sample_message(n, recipients, **options),
        kind="announcement",
        event_key=f"reading/session-{n}",
    )


def settings(server: SmtpServer, **overrides: Any) -> SmtpSettings:
    base = SmtpSettings(
        host="127.0.0.1", port=server.port, security="none", timeout=2.0,
        retry_delay=0.02, max_retry_time=5.0, local_hostname="localhost",
    )
    return replace(base, **overrides)


def plain(server: SmtpServer, **overrides: Any) -> SmtpTransport:
    return SmtpTransport(settings(server, **overrides))


def with_auth(
    server: SmtpServer, context: ssl.SSLContext | None, password: str = PASSWORD, **overrides: Any
) -> SmtpTransport:
    security = "tls" if server.mode == "tls" else "starttls"
    return SmtpTransport(
        settings(server, security=security, username_env="ANNOUNCER_SMTP_USER",
                 password_env="ANNOUNCER_SMTP_PASSWORD", **overrides),
        ssl_context=context,
        environ={**ENV, "ANNOUNCER_SMTP_PASSWORD": password},
    )


def send(folder: Path, items: Sequence[PlannedMessage], transport: SmtpTransport,
         progress: Callable[[Progress], None] | None = None) -> DeliveryReport:
    with Outbox.open(folder) as outbox:
        outbox.plan(items)
        return deliver_pending(outbox, transport, progress=progress)


def copies(server: SmtpServer) -> Counter[tuple[str, str]]:
    """How many times each (Message-ID, recipient) arrived."""
    return Counter(
        (str(received.parsed()["Message-ID"]), recipient)
        for received in server.received
        for recipient in received.rcpt_tos
    )


# -- messages arrive intact ------------------------------------------------------------------------


def test_messages_arrive_byte_identical_and_parse_cleanly(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    items = [planned(1), planned(2, eight_bit=True), planned(3, body="x" * 900 + "\n.\n..\n")]
    report = send(tmp_path, items, plain(smtp_server))
    assert sorted(report.sent) == sorted(item.key for item in items) and report.ok  # two workers
    by_id = {str(r.parsed()["Message-ID"]): r for r in smtp_server.received}
    assert len(smtp_server.received) == 3
    for item in items:
        received = by_id[str(item.message_id)]
        assert received.data == item.raw
        assert (received.mail_from, received.rcpt_tos) == (item.sender, item.recipients)
        message = received.parsed()
        assert message.defects == []
        assert all(part.defects == [] for part in message.walk())
    assert "BODY=8BITMIME" in by_id[str(items[1].message_id)].mail_options
    assert "BODY=8BITMIME" not in by_id[str(items[0].message_id)].mail_options
    with Outbox.open(tmp_path) as outbox:
        entry = outbox.get(items[0].key)
    assert entry.state == "sent" and entry.attempts == 1
    assert entry.reply is not None and entry.reply.startswith("250 ")
    assert entry.via == f"smtp 127.0.0.1:{smtp_server.port}"


def test_connections_are_reused_across_messages(tmp_path: Path, smtp_server: SmtpServer) -> None:
    items = [planned(n) for n in range(40)]
    seen: list[Progress] = []
    report = send(tmp_path, items, plain(smtp_server, pool_size=2), seen.append)
    assert len(report.sent) == 40
    assert smtp_server.connections <= 2
    assert sorted(p.done for p in seen) == list(range(1, 41))
    assert {p.total for p in seen} == {40} and {p.state for p in seen} == {"sent"}


def test_rate_limit_spaces_messages(tmp_path: Path, smtp_server: SmtpServer) -> None:
    started = time.monotonic()
    report = send(tmp_path, [planned(n) for n in range(6)], plain(smtp_server, rate_limit=20))
    assert len(report.sent) == 6
    assert time.monotonic() - started >= 5 / 20


def test_utf8_addresses_need_a_server_that_offers_smtputf8(
    tmp_path: Path, start_smtp_server: StartServer
) -> None:
    modern = start_smtp_server(smtputf8=True)
    old = start_smtp_server(smtputf8=False)
    item = planned(1, "josé@example.net")
    assert send(tmp_path / "a", [item], plain(modern)).sent == [item.key]
    assert "SMTPUTF8" in modern.received[0].mail_options
    report = send(tmp_path / "b", [item], plain(old))
    assert [f.key for f in report.failed] == [item.key] and "SMTPUTF8" in report.failed[0].reply
    assert old.received == []


# -- TLS and authentication -------------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_starttls_and_auth(
    tmp_path: Path, start_smtp_server: StartServer, smtp_client_tls: ssl.SSLContext,
    mechanism: str,
) -> None:
    other = {"PLAIN": "LOGIN", "LOGIN": "PLAIN"}[mechanism]
    server = start_smtp_server(mode="starttls", credentials=(USER, PASSWORD), exclude_auth=(other,))
    report = send(tmp_path, [planned(1), planned(2)], with_auth(server, smtp_client_tls))
    assert len(report.sent) == 2
    assert all(r.tls and r.login == USER for r in server.received)
    assert set(server.auth_attempts) == {mechanism}


def test_implicit_tls(
    tmp_path: Path, start_smtp_server: StartServer, smtp_client_tls: ssl.SSLContext
) -> None:
    server = start_smtp_server(mode="tls", credentials=(USER, PASSWORD))
    report = send(tmp_path, [planned(1)], with_auth(server, smtp_client_tls))
    assert report.sent == [planned(1).key]
    assert server.received[0].tls and server.received[0].login == USER


@pytest.mark.parametrize("trust", ["another CA", "system CAs"])
@pytest.mark.parametrize("mode", ["starttls", "tls"])
def test_an_untrusted_certificate_is_refused(
    tmp_path: Path, start_smtp_server: StartServer, trust: str, mode: str
) -> None:
    server = start_smtp_server(mode=mode)
    context = None
    if trust == "another CA":
        context = ssl.create_default_context()
        trustme.CA().configure_trust(context)
    transport = SmtpTransport(settings(server, security=mode), ssl_context=context)
    with pytest.raises(SmtpTlsError, match="could not be verified") as refused:
        send(tmp_path, [planned(1), planned(2)], transport)
    assert server.received == [] and server.handler.counts["MAIL"] == 0
    assert len(refused.value.report.deferred) == 2
    with Outbox.open(tmp_path) as outbox:
        assert outbox.summary().pending == 2


def test_a_wrong_password_stops_the_run_at_once_without_showing_it(
    tmp_path: Path, start_smtp_server: StartServer, smtp_client_tls: ssl.SSLContext
) -> None:
    server = start_smtp_server(mode="starttls", credentials=(USER, PASSWORD))
    wrong = "hunter2-not-the-password"
    transport = with_auth(server, smtp_client_tls, password=wrong, pool_size=2)
    with pytest.raises(SmtpAuthenticationError) as refused:
        send(tmp_path, [planned(n) for n in range(10)], transport)
    text = str(refused.value)
    assert text.startswith("SMTP server rejected the username/password from $ANNOUNCER_SMTP_USER")
    assert "535" in text
    assert wrong not in text and wrong not in repr(refused.value.args)
    assert server.received == [] and server.connections == 1  # no retry, no second worker
    assert len(server.auth_attempts) == 1
    assert len(refused.value.report.deferred) == 10
    with Outbox.open(tmp_path) as outbox:
        assert outbox.summary().pending == 10


def test_a_missing_credential_variable_is_named(
    tmp_path: Path, start_smtp_server: StartServer, smtp_client_tls: ssl.SSLContext
) -> None:
    server = start_smtp_server(mode="starttls", credentials=(USER, PASSWORD))
    transport = SmtpTransport(
        settings(server, security="starttls", username_env="ANNOUNCER_SMTP_USER",
                 password_env="MISSING_PASSWORD_VARIABLE"),
        ssl_context=smtp_client_tls, environ=ENV,
    )
    with pytest.raises(SmtpSetupError, match=r"\$MISSING_PASSWORD_VARIABLE is not set"):
        send(tmp_path, [planned(1)], transport)
    assert server.connections == 0


@pytest.mark.parametrize("host", ["smtp.example.org", "10.0.0.5", "127.0.0.2"])
def test_security_none_is_refused_for_hosts_other_than_this_one(host: str) -> None:
    with pytest.raises(SmtpConfigError, match=f"unencrypted to {host}"):
        SmtpSettings(host=host, security="none")
    for local in ("localhost", "127.0.0.1", "::1", "[::1]"):
        SmtpSettings(host=local, security="none")


def test_a_tls_context_that_does_not_verify_is_refused() -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with pytest.raises(SmtpConfigError, match="must verify"):
        SmtpTransport(SmtpSettings(host="smtp.example.org"), ssl_context=context)


# -- retries and refusals ---------------------------------------------------------------------------


def test_a_temporary_refusal_is_retried_then_delivered_once(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    smtp_server.faults.temp_fail["greylisted@example.net"] = 2
    items = [planned(1), planned(2, "greylisted@example.net"), planned(3)]
    seen: list[Progress] = []
    report = send(tmp_path, items, plain(smtp_server), seen.append)
    assert sorted(report.sent) == sorted(item.key for item in items) and report.ok
    assert set(copies(smtp_server).values()) == {1} and len(copies(smtp_server)) == 3
    assert [p.state for p in seen if p.key == items[1].key] == ["retrying", "retrying", "sent"]
    with Outbox.open(tmp_path) as outbox:
        assert outbox.get(items[1].key).attempts == 3


def test_a_permanent_refusal_fails_that_recipient_and_the_rest_go_out(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    smtp_server.faults.perm_fail.add("gone@example.net")
    alone = planned(2, "gone@example.net")
    shared = planned(4, ("ann@example.net", "gone@example.net", "bob@example.net"))
    items = [planned(1), alone, planned(3), shared]
    report = send(tmp_path, items, plain(smtp_server))
    assert [(f.key, f.reply[:4]) for f in report.failed] == [(alone.key, "550 ")]
    assert sorted(report.sent) == sorted([items[0].key, items[2].key, shared.key])
    assert [(r.key, r.address) for r in report.refused_recipients] == [
        (alone.key, "gone@example.net"), (shared.key, "gone@example.net"),
    ]
    shared_copy = next(r for r in smtp_server.received if len(r.rcpt_tos) > 1)
    assert shared_copy.rcpt_tos == ("ann@example.net", "bob@example.net")
    with Outbox.open(tmp_path) as outbox:
        assert outbox.get(alone.key).state == "failed"
        assert list(outbox.get(shared.key).refused) == ["gone@example.net"]


def scripted_server(replies: dict[bytes, bytes]) -> tuple[int, list[bytes]]:
    """A server offering PIPELINING that answers each command by its verb, and records the lines.

    It serves connections one after the other until the test ends (a daemon thread).
    """
    listener = socket.create_server(("127.0.0.1", 0))
    heard: list[bytes] = []

    def serve() -> None:
        while True:
            connection, _ = listener.accept()
            with connection, connection.makefile("rwb") as stream:
                stream.write(b"220 scripted\r\n")
                stream.flush()
                while line := stream.readline():
                    heard.append(line)
                    verb = line[:4].upper()
                    if verb == b"EHLO":
                        stream.write(b"250-scripted\r\n250 PIPELINING\r\n")
                    elif verb in replies:
                        stream.write(replies[verb])
                    stream.flush()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1], heard


def test_a_pipelined_data_accepted_despite_a_refused_envelope_carries_nothing(
    tmp_path: Path,
) -> None:
    """RCPT got a 451 but DATA a 354 (a broken server): no byte of the message may follow."""
    port, heard = scripted_server({
        b"MAIL": b"250 ok\r\n", b"RCPT": b"451 4.3.0 try later\r\n", b"DATA": b"354 go\r\n",
    })
    transport = SmtpTransport(SmtpSettings(
        host="127.0.0.1", port=port, security="none", timeout=2.0, retry_delay=0.02,
        max_retry_time=0.1, local_hostname="localhost",
    ))
    item = planned(1)
    report = send(tmp_path, [item], transport)
    assert [d.key for d in report.deferred] == [item.key] and "451" in report.deferred[0].reply
    assert b"Subject" not in b"".join(heard)
    assert {line[:4] for line in heard} <= {b"EHLO", b"MAIL", b"RCPT", b"DATA", b"QUIT"}
    with Outbox.open(tmp_path) as outbox:
        assert outbox.get(item.key).state == "pending"


def test_a_reply_to_data_settles_the_message(tmp_path: Path, smtp_server: SmtpServer) -> None:
    smtp_server.faults.data_replies.extend(
        ["452 4.3.1 Insufficient system storage", "554 5.6.0 Message content rejected"]
    )
    items = [planned(1), planned(2), planned(3)]
    report = send(tmp_path, items, plain(smtp_server, pool_size=1))
    assert [(f.key, f.reply) for f in report.failed] == [
        (items[1].key, "554 5.6.0 Message content rejected"),
    ]
    assert sorted(report.sent) == sorted([items[0].key, items[2].key]) and not report.in_doubt
    assert len(smtp_server.received) == 2


def test_a_dropped_connection_mid_run_recovers(tmp_path: Path, smtp_server: SmtpServer) -> None:
    smtp_server.faults.drop_after = 3
    items = [planned(n) for n in range(20)]
    report = send(tmp_path, items, plain(smtp_server, pool_size=2))
    assert len(report.sent) == 20 and report.ok
    assert len(copies(smtp_server)) == 20 and set(copies(smtp_server).values()) == {1}
    assert smtp_server.connections >= 7


def test_a_slow_reply_times_out_and_is_retried(tmp_path: Path, smtp_server: SmtpServer) -> None:
    smtp_server.faults.slow["RCPT"] = (1.0, 1)
    item = planned(1)
    report = send(tmp_path, [item], plain(smtp_server, timeout=0.3))
    assert report.sent == [item.key]
    assert len(smtp_server.received) == 1
    with Outbox.open(tmp_path) as outbox:
        assert outbox.get(item.key).attempts == 2


def test_a_server_that_stays_slow_is_given_up_on_in_bounded_time(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    smtp_server.faults.slow["MAIL"] = (1.0, -1)
    started = time.monotonic()
    report = send(tmp_path, [planned(1), planned(2)],
                  plain(smtp_server, timeout=0.2, max_retry_time=0.8, retry_delay=0.1))
    assert time.monotonic() - started < 4
    assert sorted(d.key for d in report.deferred) == [planned(1).key, planned(2).key]
    assert all("gave up" in d.reply and "Timed out" in d.reply for d in report.deferred)
    assert smtp_server.received == []
    with Outbox.open(tmp_path) as outbox:
        assert outbox.summary().pending == 2


def test_an_unreachable_server_is_reported_in_bounded_time(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once closed
    transport = SmtpTransport(SmtpSettings(
        host="127.0.0.1", port=port, security="none", timeout=0.5, retry_delay=0.05,
        max_retry_time=0.5, local_hostname="localhost",
    ))
    started = time.monotonic()
    report = send(tmp_path, [planned(1), planned(2)], transport)
    assert time.monotonic() - started < 3
    assert len(report.deferred) == 2
    assert all(d.reply.startswith(f"could not reach smtp 127.0.0.1:{port}") for d in report.deferred)


# -- exactly once, or in doubt ----------------------------------------------------------------------


def test_no_reply_to_data_leaves_the_message_in_doubt_not_resent(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    smtp_server.faults.slow["DATA"] = (1.0, 1)  # the server keeps it, the reply comes too late
    doubtful, fine = planned(1), planned(2)
    report = send(tmp_path, [doubtful], plain(smtp_server, timeout=0.3))
    assert report.in_doubt == [doubtful.key] and report.sent == []
    assert not report.ok
    again = send(tmp_path, [doubtful, fine], plain(smtp_server, timeout=0.3))
    assert again.sent == [fine.key] and again.in_doubt == [doubtful.key]
    assert copies(smtp_server)[(str(doubtful.message_id), doubtful.recipients[0])] == 1
    with Outbox.open(tmp_path) as outbox:
        outbox.resolve(doubtful.key, "sent")
        assert outbox.summary().sent == 2


def test_sending_is_on_disk_before_data_and_sent_only_after_the_reply(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    """Read what a crash would leave each time the server holds a message unanswered.

    While the first message waits for its reply, another connection holds the
    database's write lock for a moment, so the second message's ``sending``
    mark cannot commit quickly: its DATA must wait for it all the same.
    """
    seen: list[list[str]] = []
    blocker = sqlite3.connect(tmp_path / DB_NAME, isolation_level=None, check_same_thread=False)

    def look(event: str, nth: int) -> None:
        if event == "DATA":
            with sqlite3.connect(tmp_path / DB_NAME) as db:
                seen.append([row[0] for row in db.execute("SELECT state FROM messages ORDER BY rowid")])
            if nth == 1:
                blocker.execute("BEGIN IMMEDIATE")
                threading.Timer(0.3, blocker.execute, ("ROLLBACK",)).start()

    with Outbox.open(tmp_path) as outbox:
        outbox.plan([planned(n) for n in range(3)])
    smtp_server.faults.on_event = look
    report = send(tmp_path, [], plain(smtp_server, pool_size=1))
    blocker.close()
    assert len(report.sent) == 3
    assert seen == [
        ["sending", "pending", "pending"],
        ["sent", "sending", "pending"],
        ["sent", "sent", "sending"],
    ]


def test_a_second_concurrent_run_is_refused(tmp_path: Path, smtp_server: SmtpServer) -> None:
    busy = threading.Event()
    smtp_server.faults.on_event = lambda event, nth: busy.set() if event == "MAIL" else None
    smtp_server.faults.slow["DATA"] = (0.5, -1)
    with Outbox.open(tmp_path) as outbox:
        outbox.plan([planned(1), planned(2)])
    first = subprocess.Popen(
        [sys.executable, "-c", SENDER, str(tmp_path), str(smtp_server.port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert busy.wait(20)
        with Outbox.open(tmp_path) as outbox, pytest.raises(OutboxLockedError) as refused:
            deliver_pending(outbox, plain(smtp_server))
        assert refused.value.pid == first.pid
        output, errors = first.communicate(timeout=30)
        assert first.returncode == 0, errors
    finally:
        first.kill()
        first.wait()
    assert output.startswith("2 sent") and len(copies(smtp_server)) == 2
    assert set(copies(smtp_server).values()) == {1}


SENDER = """
import sys
from announcer.delivery.outbox import Outbox, deliver_pending
from announcer.delivery.smtp import SmtpSettings, SmtpTransport

folder, port = sys.argv[1], int(sys.argv[2])
settings = SmtpSettings(host="127.0.0.1", port=port, security="none", timeout=5,
                        retry_delay=0.05, max_retry_time=10, local_hostname="localhost")
with Outbox.open(folder) as outbox:
    print(deliver_pending(outbox, SmtpTransport(settings)).describe(), flush=True)
"""

EVENTS = ("MAIL", "RCPT", "DATA", "REPLIED")


def run_sender(folder: Path, server: SmtpServer, kill_at: tuple[str, int] | None) -> int:
    """Run the sender in a child process, SIGKILLed when the server sees ``kill_at``."""
    base = Counter(server.handler.counts)
    child: list[subprocess.Popen[str]] = []
    fired = threading.Event()

    def kill(event: str, nth: int) -> None:
        if kill_at == (event, nth - base[event]) and not fired.is_set():
            fired.set()
            os.kill(child[0].pid, signal.SIGKILL)

    server.faults.on_event = kill if kill_at else None
    child.append(subprocess.Popen(
        [sys.executable, "-c", SENDER, str(folder), str(server.port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    ))
    try:
        _, errors = child[0].communicate(timeout=60)
    finally:
        child[0].kill()
    server.faults.on_event = None
    assert child[0].returncode in (0, -signal.SIGKILL), errors
    return child[0].returncode


@pytest.mark.parametrize("seed", [11, 23, 37, 41, 53])
def test_a_killed_sender_never_duplicates_or_loses_a_message(
    tmp_path: Path, smtp_server: SmtpServer, seed: int
) -> None:
    """Kill the sending process at seeded protocol points, twice, then let it finish."""
    rng = random.Random(seed)
    items = [planned(n) for n in range(12)]
    with Outbox.open(tmp_path) as outbox:
        outbox.plan(items)
    kills = 0
    for _ in range(2):
        with Outbox.open(tmp_path) as outbox:
            remaining = outbox.summary().pending
        if remaining:
            event = rng.choice(EVENTS)
            code = run_sender(tmp_path, smtp_server, (event, rng.randint(1, remaining)))
            kills += code == -signal.SIGKILL
            assert code == -signal.SIGKILL or event == "REPLIED"
    assert kills >= 1
    assert run_sender(tmp_path, smtp_server, None) == 0

    arrived = copies(smtp_server)
    assert max(arrived.values()) == 1  # never twice
    with Outbox.open(tmp_path) as outbox:
        entries = outbox.list()
    in_doubt = 0
    for entry in entries:
        count = arrived[(str(entry.message_id), entry.recipients[0])]
        assert entry.state in ("sent", "in_doubt"), entry  # nothing pending, failed or lost
        if entry.state == "sent":
            assert count == 1, entry
        else:
            in_doubt += 1
    assert in_doubt <= kills * settings(smtp_server).pool_size  # one per connection per kill
