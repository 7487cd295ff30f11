"""The command line: parse arguments, call one library function, print the outcome.

All behaviour lives in :mod:`announcer.pipeline` and friends; this module only
maps it to words and exit codes (0 fine, 1 the input or settings need fixing,
2 the command line itself was wrong).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from announcer import __version__, pipeline
from announcer.errors import AnnouncerError, ValidationFailed

F = TypeVar("F", bound=Callable[..., Any])


def _friendly(command: F) -> F:
    """Print AnnouncerError as plain lines and exit 1; tracebacks only with --debug."""

    @wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ValidationFailed as exc:
            for diagnostic in exc.diagnostics:
                click.echo(f"error: {diagnostic}", err=True)
            count = len(exc.diagnostics)
            click.echo(
                f"{count} error{'s' if count != 1 else ''}; nothing was written or sent.", err=True
            )
            sys.exit(1)
        except AnnouncerError as exc:
            if click.get_current_context().find_root().params.get("debug"):
                raise
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)

    return run  # type: ignore[return-value]


def _project(ctx: click.Context) -> Path:
    return Path(ctx.find_root().params["project"])


def _parse_now(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("use ISO 8601, e.g. 2018-11-23T09:00:00-05:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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
@_friendly
def check(ctx: click.Context) -> None:
    """Check every file and report every error at once.

    Each error is printed as FILE:LINE: what is wrong (what to do). Exits 1 if
    there is any error, 0 if the project is ready to build.
    """
    site = pipeline.check(_project(ctx))
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
@click.pass_context
@_friendly
def build(ctx: click.Context, out: Path | None, now: str | None) -> None:
    """Write the calendars, feeds and pages.

    The output folder is replaced all at once: if anything fails, the previous
    output stays as it was. Files whose content did not change are left
    untouched. The ledger file (ledger.json) records each event's revision;
    commit it with your event files.
    """
    result = pipeline.build(_project(ctx), out, now=_parse_now(now))
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


# The organiser's commands (announcer.workflow), defined there and registered here.
from announcer.workflow import commands as _workflow  # noqa: E402

main.add_command(_workflow.init)
main.add_command(_workflow.new)
main.add_command(_workflow.schema)
main.add_command(_workflow.diff)
main.add_command(_workflow.serve)
