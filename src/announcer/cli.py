"""The command line: parse arguments, call one library function, print the outcome.

All behaviour lives in :mod:`announcer.pipeline` and friends; this module only
maps it to words and exit codes (0 fine, 1 the input or settings need fixing,
2 the command line itself was wrong).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from announcer import __version__, pipeline
from announcer.cli_support import friendly, parse_now, project_of

if TYPE_CHECKING:
    from announcer.delivery.outbox import Progress, State
    from announcer.mail.announce import AnnounceReport

F = TypeVar("F", bound=Callable[..., Any])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="announcer")
@click.option(
    "--project",
    "-C",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The project folder: the one holding announcer.yaml and series/.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
def main(project: Path, debug: bool) -> None:
    """Publish event series as calendars, feeds, web pages and email.

    Each event is a YAML file in series/<series>/events/. Typical use:

    \b
      announcer check        find every mistake in the event files
      announcer build        write calendars, feeds and pages to public/
      announcer announce     send the emails that are due

    Run any command with --help for details.
    """


@main.command()
@click.pass_context
@friendly
def check(ctx: click.Context) -> None:
    """Check every file and report every error at once.

    Each error is printed as FILE:LINE: what is wrong (what to do). Exits 1 if
    there is any error, 0 if the project is ready to build.
    """
    site = pipeline.check(project_of(ctx))
    events = sum(len(s.events) for s in site.series)
    click.echo(f"ok: {len(site.series)} series, {events} events, no errors")


@main.command()
@click.option(
    "--out",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write here instead of the 'output' folder of announcer.yaml.",
)
@click.option(
    "--now", metavar="TIME", help="Build as if it were TIME (ISO 8601); for tests and archives."
)
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    help="Render in this many processes (default: one per core). The output is the same.",
)
@click.pass_context
@friendly
def build(ctx: click.Context, out: Path | None, now: str | None, jobs: int | None) -> None:
    """Write the calendars, feeds and pages.

    The output folder is replaced all at once: if anything fails, the previous
    output stays as it was. Files whose content did not change are left
    untouched. The ledger file (ledger.json) records each event's revision;
    commit it with your event files.
    """
    result = pipeline.build(project_of(ctx), out, now=parse_now(now), jobs=jobs)
    report = result.report
    click.echo(
        f"built {result.output}: {len(report.written)} written, "
        f"{len(report.unchanged)} unchanged, {len(report.removed)} removed"
    )
    new = sum(1 for c in result.changes if c.before is None)
    if result.changes:
        click.echo(
            f"ledger: {new} new, {len(result.changes) - new} changed "
            "(calendar apps will update them)"
        )
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)


class _Progress:
    """Delivery progress: a bar on a terminal, one plain line per message otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stdout.isatty()
        self.bar: Any = None  # click's ProgressBar, made once the total is known

    def __call__(self, event: Progress) -> None:
        if not self.tty:
            if event.state != "retrying":
                click.echo(f"{event.state:9} {event.key}")
            return
        if self.bar is None:
            self.bar = click.progressbar(length=event.total, label="sending", file=sys.stdout)
            self.bar.__enter__()
        self.bar.update(event.done - self.bar.pos)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


@main.command()
@click.option("--now", metavar="TIME", help="Act as if it were TIME (ISO 8601): tests, backfills.")
@click.option("--dry-run", is_flag=True, help="List and render what is due; send, record nothing.")
@click.option("--series", multiple=True, metavar="SLUG", help="Only this series (repeatable).")
@click.option(
    "--event", "events", multiple=True, metavar="ID", help="Only this event (repeatable)."
)
@click.pass_context
@friendly
def announce(
    ctx: click.Context,
    now: str | None,
    dry_run: bool,
    series: tuple[str, ...],
    events: tuple[str, ...],
) -> None:
    """Send the announcement, reminder, update and cancellation emails that are due.

    Which emails are due follows each series' 'announce' rules and the ledger
    (see docs/email.md); missed runs are caught up. Without 'smtp' settings the
    messages are written as .eml files to the outbox folder. The ledger records
    what was sent, so running again never sends twice: commit ledger.json.
    Exits 1 when a message failed or could not be sent yet.
    """
    progress = _Progress()
    try:
        report = pipeline.announce(
            project_of(ctx),
            now=parse_now(now),
            dry_run=dry_run,
            series=series,
            events=events,
            progress=progress,
        )
    finally:
        progress.close()
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    for due in report.due:
        copies = sum(1 for m in report.messages if m.due is due)
        subject = next((str(m.message["Subject"]) for m in report.messages if m.due is due), "")
        click.echo(
            f"{due.kind:12} {due.event.key} (revision {due.sequence}, "
            f"{copies} message{'s' if copies != 1 else ''}): {subject}"
        )
    if report.dry_run:
        count = len(report.messages)
        click.echo(
            f"dry run: {count} message{'s' if count != 1 else ''} due; nothing sent or recorded"
        )
        return
    _delivery_summary(report)
    if not report.ok:
        click.echo("some messages did not get out: see 'announcer outbox'", err=True)
        sys.exit(1)


def _delivery_summary(report: AnnounceReport) -> None:
    if report.delivery is not None:
        click.echo(f"{report.transport}: {report.delivery.describe()}")
    for key in report.withdrawn:
        click.echo(f"withdrawn (out of date): {key}")
    if report.ledger_saved:
        click.echo(f"ledger: {len(report.recorded)} sent recorded (commit ledger.json)")


@main.command()
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice(["pending", "sending", "sent", "failed", "in_doubt"]),
    help="Only messages in this state (repeatable).",
)
@click.option(
    "--mark-sent",
    "arrived",
    multiple=True,
    metavar="KEY",
    help="An in-doubt message did arrive (checked with the recipient): never resend it.",
)
@click.option(
    "--send-again",
    "again",
    multiple=True,
    metavar="KEY",
    help="An in-doubt message did not arrive: the next announce sends it.",
)
@click.pass_context
@friendly
def outbox(
    ctx: click.Context, states: tuple[str, ...], arrived: tuple[str, ...], again: tuple[str, ...]
) -> None:
    """List what was sent, to whom and when, and what is pending, failed or in doubt.

    A message is in doubt when the connection broke before the server said it
    had the message; it is never sent again on its own. Decide with
    --mark-sent KEY or --send-again KEY (the key is listed under it).
    """
    from announcer.mail.announce import outbox_status, resolve_in_doubt

    for key in arrived:
        resolve_in_doubt(project_of(ctx), key, "sent")
    for key in again:
        resolve_in_doubt(project_of(ctx), key, "retry")
    wanted = [cast("State", state) for state in states] or None
    summary, entries = outbox_status(project_of(ctx), wanted)
    for entry in entries:
        when = entry.sent_at if entry.state == "sent" and entry.sent_at else entry.updated_at
        click.echo(
            f"{entry.state:8} {when:%Y-%m-%d %H:%M}Z {entry.kind:12} {entry.event_key}"
            f" -> {', '.join(entry.recipients)}"
        )
        if entry.state != "sent" and entry.reply:
            click.echo(f"         {entry.reply}")
        if entry.state == "in_doubt":
            click.echo(f"         key: {entry.key}")
    click.echo(
        f"{summary.sent} sent, {summary.pending} pending, {summary.failed} failed, "
        f"{summary.in_doubt} in doubt" + (f", {summary.sending} sending" if summary.sending else "")
    )


# The organiser's commands (announcer.workflow), defined there and registered here.
from announcer.workflow import commands as _workflow  # noqa: E402

main.add_command(_workflow.init)
main.add_command(_workflow.new)
main.add_command(_workflow.schema)
main.add_command(_workflow.diff)
main.add_command(_workflow.serve)
main.add_command(_workflow.import_ics)


def run() -> None:
    """The ``announcer`` command: :func:`main`, then an exit that leaves the heap as it is.

    By the time a command returns, everything it wrote is closed and the ledger
    synced; freeing a build's model object by object on the way out cost a third
    of a second at 10,000 events. Tests call :func:`main` and never get here.
    """
    try:
        main(prog_name="announcer")
        code: object = 0
    except SystemExit as stop:
        code = stop.code
    if not (code is None or isinstance(code, int)):
        print(code, file=sys.stderr)  # what the interpreter does with a message
        code = 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more to say
            stream.flush()
    os._exit(code or 0)
