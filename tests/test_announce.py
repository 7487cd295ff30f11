"""``announce`` end to end: the file outbox, a real SMTP server on 127.0.0.1, the CLI.

What must hold: each message goes out once, across re-runs, crashes and lost
outboxes (GitHub Actions); what is due but could not go out is retried or
reported; what went out is what a client parses cleanly.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from click.testing import CliRunner

from announcer import ledger as ledgers
from announcer import pipeline
from announcer.cli import main
from announcer.delivery.outbox import Outbox
from announcer.delivery.smtp import SmtpSettings, SmtpTransport
from announcer.errors import AnnouncerError, DeliveryError
from announcer.mail import announce as mail
from announcer.mail.schedule import Scope
from tests.conftest import MakeProject
from tests.interop.clients import icaljs_dump
from tests.smtp_server import SmtpServer

if TYPE_CHECKING:
    from tests.conftest_smtp import StartServer

pytest_plugins = ["tests.conftest_smtp"]

SITE = """
    title: Test Events
    base_url: https://events.example.org/
    email:
      from: "Seminars <seminars@example.org>"
"""
SERIES = """
    title: Policy Seminars
    timezone: America/Toronto
    mailing_list: MAILING
    announce:
      - {kind: announcement, days_before: 7}
      - {kind: reminder, days_before: 1}
"""
TALK = """
    title: Open data in cities
    start: 2026-12-04 12:00
    location: Room 2200
"""
PEOPLE = "{recipients: people.csv, unsubscribe_url: 'https://example.org/u?e={email}'}"
ADDRESSES = ("ann@example.org", "bob@example.org", "cy@example.org")
WEEK_BEFORE = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
DAY_BEFORE = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
TALK_FILE = "series/seminars/events/talk.yaml"


def project(make_project: MakeProject, *, mailing: str = PEOPLE, site: str = SITE) -> Path:
    people = "email,name\n" + "".join(f"{a},{a[:3].title()}\n" for a in ADDRESSES)
    return make_project({
        "announcer.yaml": site,
        "series/seminars/series.yaml": SERIES.replace("MAILING", mailing),
        "series/seminars/people.csv": people,
        TALK_FILE: TALK,
    })


def with_smtp(make_project: MakeProject, server: SmtpServer, mailing: str = PEOPLE) -> Path:
    smtp = f"  smtp: {{host: 127.0.0.1, port: {server.port}, security: none}}\n"
    return project(make_project, mailing=mailing, site=SITE.rstrip() + "\n" + "    " + smtp)


def parsed(data: bytes) -> EmailMessage:
    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    for part in message.walk():
        assert not part.defects, (part.get_content_type(), part.defects)
    return message


def announced(root: Path) -> dict[str, dict[str, object]]:
    data = json.loads((root / "ledger.json").read_text(encoding="utf-8"))
    return {k: v.get("announced", {}) for k, v in data["events"].items()}


def edit(root: Path, old: str, new: str) -> None:
    path = root / TALK_FILE
    path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")


def emls(root: Path) -> dict[str, bytes]:
    folder = root / "outbox"
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.eml"))} if folder.exists() else {}


# -- the embedded default: .eml files ------------------------------------------------------------


def test_without_smtp_each_message_is_an_eml_file(make_project: MakeProject) -> None:
    root = project(make_project)
    report = pipeline.announce(root, now=WEEK_BEFORE)
    assert report.ok and report.transport == "file"
    assert [d.kind for d in report.recorded] == ["announcement"]
    files = emls(root)
    assert len(files) == 3
    recipients: set[str] = set()
    for data in files.values():
        assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
        message = parsed(data)
        recipients.update(a.addr_spec for a in message["To"].addresses)
        assert str(message["Subject"]).startswith("Open data in cities")
    assert recipients == set(ADDRESSES)
    told = announced(root)["seminars/talk"]["announcement"]
    assert (told["at"], told["sequence"], told["state"]["location"]) == ("2026-11-27T14:00:00Z", 0, "Room 2200")


def test_a_rerun_sends_nothing_again(make_project: MakeProject) -> None:
    root = project(make_project)
    pipeline.announce(root, now=WEEK_BEFORE)
    before = emls(root)
    again = pipeline.announce(root, now=WEEK_BEFORE + timedelta(hours=3))
    assert again.due == [] and again.delivery is not None and again.delivery.sent == []
    assert emls(root) == before


def test_dry_run_renders_but_sends_and_records_nothing(make_project: MakeProject) -> None:
    root = project(make_project)
    report = pipeline.announce(root, now=WEEK_BEFORE, dry_run=True)
    assert [m.recipient for m in report.messages] == list(ADDRESSES)
    assert report.delivery is None and not report.ledger_saved
    assert not (root / "outbox").exists() and not (root / ".announcer").exists()
    assert not (root / "ledger.json").exists()


def test_a_lost_outbox_database_does_not_resend(make_project: MakeProject) -> None:
    """GitHub Actions: each run starts from a fresh checkout; only the ledger is committed."""
    root = project(make_project)
    pipeline.announce(root, now=WEEK_BEFORE)
    ledger_file = (root / "ledger.json").read_bytes()
    for folder in (root / ".announcer", root / "outbox"):
        for path in folder.iterdir():
            path.unlink()
    report = pipeline.announce(root, now=WEEK_BEFORE + timedelta(days=1))
    assert report.due == [] and emls(root) == {}
    assert (root / "ledger.json").read_bytes() == ledger_file


def test_the_reminder_follows_and_the_started_event_gets_nothing(make_project: MakeProject) -> None:
    root = project(make_project)
    kinds = []
    for now in (WEEK_BEFORE, DAY_BEFORE, DAY_BEFORE + timedelta(hours=1), DAY_BEFORE + timedelta(days=2)):
        kinds.append([d.kind for d in pipeline.announce(root, now=now).recorded])
    assert kinds == [["announcement"], ["reminder"], [], []]
    assert len(emls(root)) == 6


# -- a real SMTP server ------------------------------------------------------------------------


def test_smtp_delivers_one_clean_message_per_recipient(
    make_project: MakeProject, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    root = with_smtp(make_project, smtp_server)
    report = pipeline.announce(root, now=WEEK_BEFORE)
    assert report.ok and report.transport == f"smtp 127.0.0.1:{smtp_server.port}"
    received = smtp_server.received
    assert sorted(r.rcpt_tos for r in received) == [(a,) for a in ADDRESSES]
    assert {r.mail_from for r in received} == {"seminars@example.org"}
    for item in received:
        message = parsed(item.data)
        assert message["Bcc"] is None
        assert str(message["List-Unsubscribe"]).startswith("<https://example.org/u?e=")
        calendar = next(iter(message.iter_attachments()))
        assert calendar.get_content_type() == "text/calendar"
        path = tmp_path / "received.ics"
        data = calendar.get_payload(decode=True)
        assert isinstance(data, bytes)
        path.write_bytes(data)
        dump = icaljs_dump(path)
        assert dump["errors"] == [] and dump["calendar"]["METHOD"] == calendar.get_param("method")
        assert dump["events"][0]["uid"] == "talk.seminars@announcer"
    pipeline.announce(root, now=WEEK_BEFORE + timedelta(hours=1))
    assert len(smtp_server.received) == 3


def test_the_eml_file_is_exactly_what_smtp_carries(
    make_project: MakeProject, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    mailing = "{to: seminars@lists.example.org}"
    by_file = project(make_project, mailing=mailing)
    pipeline.announce(by_file, now=WEEK_BEFORE)
    [eml] = emls(by_file).values()
    by_smtp = tmp_path / "smtp-copy"
    by_file.rename(by_smtp)
    by_smtp_root = with_smtp(make_project, smtp_server, mailing=mailing)
    pipeline.announce(by_smtp_root, now=WEEK_BEFORE)
    [received] = smtp_server.received
    assert received.data.replace(b"\r\n", b"\n") == eml.replace(b"\r\n", b"\n")


def test_updates_and_cancellations_reach_the_server_threaded(
    make_project: MakeProject, smtp_server: SmtpServer
) -> None:
    root = with_smtp(make_project, smtp_server, mailing="{to: seminars@lists.example.org}")
    pipeline.announce(root, now=WEEK_BEFORE)
    edit(root, "Room 2200", "Room 3300")
    pipeline.announce(root, now=WEEK_BEFORE + timedelta(days=1))
    edit(root, "location: Room 3300", "location: Room 3300\nstatus: cancelled")
    pipeline.announce(root, now=WEEK_BEFORE + timedelta(days=2))
    pipeline.announce(root, now=DAY_BEFORE)
    messages = [parsed(r.data) for r in smtp_server.received]
    assert [str(m["Subject"]).split(":")[0] for m in messages] == [
        "Open data in cities (Dec 4, 2026)", "Changed", "Cancelled",
    ]
    first = str(messages[0]["Message-ID"])
    assert [str(m["In-Reply-To"]) for m in messages[1:]] == [first, first]
    methods = [next(iter(m.iter_attachments())).get_param("method") for m in messages]
    assert methods == ["PUBLISH", "PUBLISH", "CANCEL"]
    assert set(announced(root)["seminars/talk"]) == {"announcement", "update", "cancellation"}


def settings_for(server: SmtpServer, **changes: Any) -> SmtpSettings:
    """Settings for a test server; short retries so deferral tests stay quick."""
    base = SmtpSettings(host="127.0.0.1", port=server.port, security="none")
    return replace(base, max_retry_time=0.3, retry_delay=0.05, **changes)


def test_a_refused_recipient_fails_and_the_others_are_recorded(
    make_project: MakeProject, smtp_server: SmtpServer
) -> None:
    smtp_server.faults.perm_fail.add("bob@example.org")
    root = with_smtp(make_project, smtp_server)
    report = mail.announce(root, now=WEEK_BEFORE, transport=SmtpTransport(settings_for(smtp_server)))
    assert not report.ok
    assert sorted(r.rcpt_tos[0] for r in smtp_server.received) == ["ann@example.org", "cy@example.org"]
    assert [d.kind for d in report.recorded] == ["announcement"]  # the list heard; no resend
    failed = [e for e in mail.outbox_status(root)[1] if e.state == "failed"]
    assert [e.recipients for e in failed] == [("bob@example.org",)]


def test_a_deferred_recipient_is_retried_by_the_next_run_alone(
    make_project: MakeProject, smtp_server: SmtpServer
) -> None:
    smtp_server.faults.temp_fail["cy@example.org"] = 100
    root = with_smtp(make_project, smtp_server)
    transport = SmtpTransport(settings_for(smtp_server))
    first = mail.announce(root, now=WEEK_BEFORE, transport=transport)
    assert first.delivery is not None and len(first.delivery.deferred) == 1 and not first.ok
    assert len(smtp_server.received) == 2
    smtp_server.faults.temp_fail.clear()
    second = mail.announce(root, now=WEEK_BEFORE + timedelta(hours=1), transport=transport)
    assert second.ok and second.due == []
    assert [r.rcpt_tos for r in smtp_server.received[2:]] == [("cy@example.org",)]


def test_a_stale_pending_message_is_withdrawn_when_the_event_changes(
    make_project: MakeProject, smtp_server: SmtpServer
) -> None:
    for address in ADDRESSES:
        smtp_server.faults.temp_fail[address] = 100
    root = with_smtp(make_project, smtp_server)
    transport = SmtpTransport(settings_for(smtp_server))
    first = mail.announce(root, now=WEEK_BEFORE, transport=transport)
    assert first.recorded == [] and smtp_server.received == []
    smtp_server.faults.temp_fail.clear()
    edit(root, "Room 2200", "Room 3300")
    second = mail.announce(root, now=WEEK_BEFORE + timedelta(hours=2), transport=transport)
    assert len(second.withdrawn) == 3 and all(" announcement.0 " in k for k in second.withdrawn)
    assert [d.revision for d in second.recorded] == ["announcement.1"]
    received = [parsed(r.data) for r in smtp_server.received]
    assert len(received) == 3 and all(str(m["Message-ID"]).startswith("<announcement.1.") for m in received)
    states = {e.key: (e.state, e.reply) for e in mail.outbox_status(root)[1]}
    assert all(
        state == "failed" and reply and reply.startswith("withdrawn: the event changed")
        for key, (state, reply) in states.items() if " announcement.0 " in key
    )


def test_a_crash_before_the_ledger_is_saved_sends_nothing_twice(
    make_project: MakeProject, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = with_smtp(make_project, smtp_server)
    real_save = ledgers.save

    def crash(*args: object) -> bool:
        raise KeyboardInterrupt

    monkeypatch.setattr(ledgers, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        pipeline.announce(root, now=WEEK_BEFORE)
    assert len(smtp_server.received) == 3 and not (root / "ledger.json").exists()
    monkeypatch.setattr(ledgers, "save", real_save)
    report = pipeline.announce(root, now=WEEK_BEFORE + timedelta(minutes=5))
    assert [d.kind for d in report.recorded] == ["announcement"]
    assert report.delivery is not None and report.delivery.sent == []
    assert len(smtp_server.received) == 3
    assert "announcement" in announced(root)["seminars/talk"]


def test_verified_starttls_with_auth_from_the_environment(
    make_project: MakeProject,
    start_smtp_server: StartServer,
    smtp_client_tls: ssl.SSLContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = start_smtp_server(mode="starttls", credentials=("mailer", "s3cret"))
    root = project(make_project)
    monkeypatch.setenv("MAIL_USER", "mailer")
    monkeypatch.setenv("MAIL_PASSWORD", "wrong")
    settings = settings_for(server, security="starttls", username_env="MAIL_USER", password_env="MAIL_PASSWORD")
    transport = SmtpTransport(settings, ssl_context=smtp_client_tls)
    with pytest.raises(DeliveryError):
        mail.announce(root, now=WEEK_BEFORE, transport=transport)
    assert server.received == [] and announced(root)["seminars/talk"] == {}  # saved, nothing sent
    monkeypatch.setenv("MAIL_PASSWORD", "s3cret")
    report = mail.announce(root, now=WEEK_BEFORE + timedelta(minutes=1), transport=transport)
    assert report.ok and len(server.received) == 3
    assert all(r.tls and r.login == "mailer" for r in server.received)
    assert all(b"s3cret" not in r.data for r in server.received)


def test_an_untrusted_certificate_stops_the_run(
    make_project: MakeProject, start_smtp_server: StartServer
) -> None:
    server = start_smtp_server(mode="starttls")
    root = project(make_project)
    transport = SmtpTransport(settings_for(server, security="starttls"))  # system CAs only
    with pytest.raises(DeliveryError):
        mail.announce(root, now=WEEK_BEFORE, transport=transport)
    assert server.received == []


# -- narrowing and locking ---------------------------------------------------------------------


def test_series_and_event_narrow_a_run(make_project: MakeProject) -> None:
    root = project(make_project)
    (root / "series/seminars/events/other.yaml").write_text(
        "title: Other\nstart: 2026-12-04 15:00\n", encoding="utf-8"
    )
    report = mail.announce(root, now=WEEK_BEFORE, scope=Scope(events=frozenset({"other"})))
    assert [d.event.key for d in report.recorded] == ["seminars/other"]
    rest = pipeline.announce(root, now=WEEK_BEFORE, series=["seminars"])
    assert [d.event.key for d in rest.recorded] == ["seminars/talk"]
    with pytest.raises(AnnouncerError, match="no event 'nope'"):
        pipeline.announce(root, now=WEEK_BEFORE, events=["nope"])


def test_a_run_stops_while_another_holds_the_lock(make_project: MakeProject) -> None:
    root = project(make_project)
    with Outbox.open(root / ".announcer") as other, other.lock():
        result = CliRunner().invoke(main, ["-C", str(root), "announce", "--now", WEEK_BEFORE.isoformat()])
    assert result.exit_code == 1
    assert "another announce run holds the lock" in result.output
    assert emls(root) == {} and announced(root)["seminars/talk"] == {}


# -- the command line --------------------------------------------------------------------------


@pytest.fixture
def cli_project(make_project: MakeProject) -> Path:
    return project(make_project)


def invoke(root: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["-C", str(root), *args])
    return result.exit_code, result.output


def test_cli_dry_run_lists_what_is_due(cli_project: Path) -> None:
    code, out = invoke(cli_project, "announce", "--now", "2026-11-27T09:00:00-05:00", "--dry-run")
    assert code == 0
    assert "announcement seminars/talk (revision 0, 3 messages): Open data in cities (Dec 4, 2026)" in out
    assert "dry run: 3 messages due; nothing sent or recorded" in out
    assert emls(cli_project) == {}


def test_cli_dry_run_on_the_example_says_one_message(example_project: Path) -> None:
    code, out = invoke(example_project, "announce", "--now", "2019-09-13T08:00:00Z", "--dry-run")
    assert code == 0, out
    assert (
        "announcement policy-seminars/2019-09-20-participatory-budgeting (revision 0, 1 message): "
        "[SPPA Seminar] Participatory budgeting: lessons from ten Canadian municipalities"
    ) in out
    assert "dry run: 1 message due; nothing sent or recorded" in out


def test_cli_sends_lists_the_outbox_and_sends_nothing_twice(cli_project: Path) -> None:
    code, out = invoke(cli_project, "announce", "--now", "2026-11-27T09:00:00-05:00")
    assert code == 0, out
    assert out.count("sent      seminars/talk announcement.0 ") == 3  # plain lines: no TTY
    assert "file: 3 sent, 0 failed, 0 deferred, 0 in doubt" in out
    assert "ledger: 1 sent recorded (commit ledger.json)" in out
    code, out = invoke(cli_project, "announce", "--now", "2026-11-27T10:00:00-05:00")
    assert code == 0 and "file: 0 sent" in out and "announcement" not in out
    code, out = invoke(cli_project, "outbox")
    assert code == 0
    lines = [line for line in out.splitlines() if line.startswith("sent ")]
    assert len(lines) == 3 and all("announcement seminars/talk -> " in line for line in lines)
    assert {line.rsplit(" ", 1)[1] for line in lines} == set(ADDRESSES)
    assert out.splitlines()[-1] == "3 sent, 0 pending, 0 failed, 0 in doubt"


def test_cli_outbox_before_any_run(cli_project: Path) -> None:
    code, out = invoke(cli_project, "outbox")
    assert (code, out) == (0, "0 sent, 0 pending, 0 failed, 0 in doubt\n")
    assert not (cli_project / ".announcer").exists()


def test_cli_reports_failures_with_exit_1(make_project: MakeProject, smtp_server: SmtpServer) -> None:
    smtp_server.faults.perm_fail.add("ann@example.org")
    root = with_smtp(make_project, smtp_server)
    code, out = invoke(root, "announce", "--now", WEEK_BEFORE.isoformat())
    assert code == 1
    assert "1 failed" in out and "see 'announcer outbox'" in out
    code, out = invoke(root, "outbox", "--state", "failed")
    [line] = [line for line in out.splitlines() if " -> " in line]
    assert line.startswith("failed ") and line.endswith("-> ann@example.org")


def test_cli_errors_are_one_clean_line(cli_project: Path) -> None:
    code, out = invoke(cli_project, "announce", "--series", "nope", "--dry-run")
    assert code == 1 and out.startswith("error: no series nope") and "Traceback" not in out
    code, out = invoke(cli_project, "announce", "--now", "yesterday")
    assert code == 2 and "ISO 8601" in out


def test_the_example_project_announces_its_last_talk(example_project: Path, tmp_path: Path) -> None:
    report = pipeline.announce(example_project, now=datetime(2019, 9, 13, 8, 0, tzinfo=UTC))
    assert [(d.kind, d.event.id) for d in report.recorded] == [
        ("announcement", "2019-09-20-participatory-budgeting")
    ]
    [data] = emls(example_project).values()
    message = parsed(data)
    assert [a.addr_spec for a in message["To"].addresses] == ["sppa-seminars@lists.example.org"]
    # The project's templates/email/subject.txt puts the list's tag before the package's wording.
    assert message["Subject"].startswith("[SPPA Seminar] ")
    assert "Participatory budgeting" in message["Subject"]
    assert "Friday, September 20, 2019" in str(message.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    out = tmp_path / "out"
    pipeline.build(example_project, out, now=datetime(2019, 9, 13, 9, 0, tzinfo=UTC))
    attached = next(iter(message.iter_attachments())).get_payload(decode=True)
    assert attached == (out / "policy-seminars/2019-09-20-participatory-budgeting/event.ics").read_bytes()



# -- the scheduled GitHub workflow -------------------------------------------------------------

WORKFLOW = Path(__file__).resolve().parent.parent / ".github/workflows/announce.yml"


def workflow_steps() -> dict[str, dict[str, Any]]:
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert workflow[True]["schedule"][0]["cron"]  # YAML 1.1 reads the key 'on' as True
    assert workflow["permissions"] == {"contents": "write"}
    assert workflow["concurrency"]["cancel-in-progress"] is False
    return {s.get("name", s.get("uses", "")): s for s in workflow["jobs"]["announce"]["steps"]}


def test_the_workflow_announces_then_always_commits_the_ledger() -> None:
    steps = workflow_steps()
    assert "announcer announce\n" in steps["Send what is due"]["run"]
    keep = steps["Keep the ledger"]
    assert "always()" in keep["if"] and "git add -- ledger.json" in keep["run"]
    assert list(steps).index("Send what is due") < list(steps).index("Keep the ledger")


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=T", "-c", "user.email=t@example.org", *args],
        cwd=cwd, check=True, capture_output=True, text=True,
    ).stdout


def test_the_ledger_step_survives_a_push_made_meanwhile(tmp_path: Path) -> None:
    """Someone pushes during the run: their commit is kept, and so is this run's ledger."""
    remote, runner, other = tmp_path / "remote.git", tmp_path / "runner", tmp_path / "other"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(tmp_path, "clone", "-q", str(remote), str(runner))
    (runner / "ledger.json").write_text("{}\n", encoding="utf-8")
    (runner / "talk.yaml").write_text("title: A\n", encoding="utf-8")
    git(runner, "add", "-A")
    git(runner, "commit", "-qm", "start")
    git(runner, "push", "-q", "origin", "HEAD:main")
    git(tmp_path, "clone", "-q", str(remote), str(other))
    (other / "talk.yaml").write_text("title: B\n", encoding="utf-8")
    git(other, "commit", "-qam", "edit meanwhile")
    git(other, "push", "-q")
    (runner / "ledger.json").write_text('{"sent": true}\n', encoding="utf-8")
    script = workflow_steps()["Keep the ledger"]["run"]
    env = {**os.environ, "RUNNER_TEMP": str(tmp_path), "GITHUB_REF_NAME": "main"}
    subprocess.run(["bash", "-e", "-c", script], cwd=runner, env=env, check=True, timeout=60)
    check = tmp_path / "check"
    git(tmp_path, "clone", "-q", str(remote), str(check))
    assert (check / "talk.yaml").read_text(encoding="utf-8") == "title: B\n"
    assert (check / "ledger.json").read_text(encoding="utf-8") == '{"sent": true}\n'
