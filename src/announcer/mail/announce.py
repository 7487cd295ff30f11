"""Sending what is due: schedule, compose, outbox, deliver, then the ledger.

The order is what makes each message go out at most once, and never silently not:

1. Every message is written to the outbox (durably, under a key naming event,
   kind, revision and recipient) before any is sent; a key planned before is left
   as it is, so a re-run after a crash plans nothing twice.
2. Pending messages that no longer describe their event (it changed, started or
   went away) are withdrawn, so a stale announcement never follows its update.
3. The transport sends what is pending, under the outbox's run lock.
4. The ledger records a due message as soon as one copy of it was accepted, and is
   saved even when delivery stops with an error. The ledger, committed with the
   event files, is what keeps a later run from sending again when the outbox
   database is gone (GitHub Actions starts each run from a fresh checkout).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from announcer import ledger as ledgers
from announcer.delivery.outbox import (
    DB_NAME,
    Decision,
    DeliveryReport,
    FileTransport,
    Outbox,
    OutboxEntry,
    OutboxError,
    OutboxSummary,
    PlannedMessage,
    ProgressCallback,
    State,
    Transition,
    Transport,
    deliver_pending,
)
from announcer.ledger import Ledger
from announcer.load import load_site
from announcer.mail.compose import Composed, compose
from announcer.mail.schedule import EVERYTHING, Due, Plan, Scope, emailed, plan
from announcer.model import Event, Site

STATE_DIR = ".announcer"  # the outbox database; local state, git-ignored


@dataclass
class AnnounceReport:
    """What one ``announce`` run found due, sent and recorded."""

    due: list[Due]
    messages: list[Composed]
    dry_run: bool
    warnings: list[str] = field(default_factory=list)
    transport: str = ""
    delivery: DeliveryReport | None = None
    recorded: list[Due] = field(default_factory=list)
    withdrawn: list[str] = field(default_factory=list)
    ledger_saved: bool = False

    @property
    def ok(self) -> bool:
        """False when something due did not get out (failed, deferred or in doubt)."""
        return self.delivery is None or self.delivery.ok


def state_dir(project: Path) -> Path:
    return project / STATE_DIR


def announce(
    project: Path,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    scope: Scope = EVERYTHING,
    transport: Transport | None = None,
    progress: ProgressCallback | None = None,
) -> AnnounceReport:
    """Send the emails due at ``now``; with ``dry_run``, only work out and render them."""
    site = load_site(project)
    clock = now or ledgers.utc_now()
    ledger_path = project / site.ledger
    found = plan(site, ledgers.load(ledger_path), clock, scope)
    messages = [c for due in found.due for c in compose(site, project, found.ledger, due, clock)]
    report = AnnounceReport(found.due, messages, dry_run, found.warnings)
    if dry_run:
        return report
    chosen = transport or transport_for(site, project)
    report.transport = chosen.name
    with Outbox.open(state_dir(project)) as outbox:
        outbox.plan(planned(messages))
        try:
            with outbox.lock():
                report.withdrawn = withdraw(outbox, site, found, scope, clock)
                report.delivery = deliver_pending(outbox, chosen, progress=progress)
        finally:
            ledger, report.recorded = record(found, messages, outbox, clock)
            report.ledger_saved = ledgers.save(ledger, ledger_path)
    return report


def transport_for(site: Site, project: Path) -> Transport:
    """SMTP when announcer.yaml says so, else ``.eml`` files in the outbox folder."""
    if site.email.smtp is None:
        return FileTransport(project / site.email.outbox)
    from announcer.delivery.smtp import SmtpSettings, SmtpTransport  # aiosmtplib: only if used

    return SmtpTransport(SmtpSettings.from_config(site.email.smtp))


def planned(messages: Sequence[Composed]) -> list[PlannedMessage]:
    return [
        PlannedMessage.from_email(c.key, c.message, kind=c.due.kind, event_key=c.due.event.key)
        for c in messages
    ]


def withdraw(outbox: Outbox, site: Site, found: Plan, scope: Scope, now: datetime) -> list[str]:
    """Mark failed the pending messages that no longer tell the truth; return their keys.

    A message planned for revision 2 that is still pending when the event is at
    revision 3 (or has started, or is gone) would mislead; the current revision's
    message is planned in its place when one is due.
    """
    current = {e.key: e for series in site.series for e in emailed(series)}
    withdrawn = []
    for entry in outbox.list(["pending"]):
        if not scope.includes(entry.event_key):
            continue
        reason = _stale(entry, current.get(entry.event_key), found.ledger, now)
        if reason:
            outbox.record([Transition(entry.key, "failed", reply=f"withdrawn: {reason}")])
            withdrawn.append(entry.key)
    return withdrawn


def _stale(entry: OutboxEntry, event: Event | None, ledger: Ledger, now: datetime) -> str:
    if event is None:
        return "the event is no longer in the event files"
    if now >= event.begins:
        return "the event has started"
    sequence = ledger.revision(event).sequence
    if revision_of(entry.key) != sequence:
        return f"the event changed (revision {sequence} replaces it)"
    return ""


def revision_of(key: str) -> int | None:
    """The SEQUENCE in a key made by :func:`announcer.mail.compose.message_key`."""
    try:
        return int(key.split(" ")[1].split(".")[1])
    except (IndexError, ValueError):
        return None


def record(
    found: Plan, messages: Sequence[Composed], outbox: Outbox, now: datetime
) -> tuple[Ledger, list[Due]]:
    """The ledger with every due message of which at least one copy was accepted.

    One accepted copy is enough: the others stay in the outbox for the next run to
    retry, and recording nothing would make a run without the outbox send the
    accepted copies again.
    """
    ledger, recorded = found.ledger, []
    for due in found.due:
        keys = {c.key for c in messages if c.due is due}
        sent = {e.key for e in outbox.list(["sent"], event_key=due.event.key)}
        if keys & sent:
            for kind in due.covers:
                ledger = ledgers.record_sent(ledger, due.event.key, kind, due.sequence, now)
            recorded.append(due)
    return ledger, recorded


def resolve_in_doubt(project: Path, key: str, decision: Decision) -> None:
    """An operator's verdict on a message the server may or may not have received."""
    folder = state_dir(project)
    if not (folder / DB_NAME).exists():
        raise OutboxError("there is no outbox here yet; nothing has been announced")
    with Outbox.open(folder) as outbox, outbox.lock():
        outbox.resolve(key, decision)


def outbox_status(
    project: Path, states: Sequence[State] | None = None
) -> tuple[OutboxSummary, list[OutboxEntry]]:
    """What the outbox holds, for ``announcer outbox``; empty before the first run."""
    folder = state_dir(project)
    if not (folder / DB_NAME).exists():
        return OutboxSummary(), []
    with Outbox.open(folder) as outbox:
        return outbox.summary(), outbox.list(states)
