"""The organiser's commands: init, new, diff, serve, schema, import.

Registered on the main group at the end of :mod:`announcer.cli`. Each command
imports its module when it runs, so ``announcer build`` starts without them. Like the rest
of the CLI, each command parses its arguments, calls one library function and
prints the outcome; errors the user can act on are printed without a traceback
and exit 1.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Any

import click

from announcer.cli_support import friendly, parse_now, project_of
from announcer.errors import AnnouncerError, ValidationFailed
from announcer.workflow import schema as schemas


@click.command("init")
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--title", default="Events", show_default=True, help="The site's title.")
@click.option("--series", default="seminars", show_default=True, help="Slug of the first series.")
@click.option("--timezone", help="IANA timezone of the first series [default: this machine's].")
@friendly
def init(directory: Path, title: str, series: str, timezone: str | None) -> None:
    """Start a new project in DIRECTORY (default: here).

    Writes announcer.yaml, one series with one event, a .gitignore and GitHub
    workflows that check pull requests and publish to GitHub Pages. The result
    builds at once. Refuses a folder that already holds a project.
    """
    from announcer.workflow import scaffold

    report = scaffold.init_project(directory, title=title, series=series, timezone=timezone)
    for path in report.written:
        click.echo(f"created {directory / path}")
    for path in report.kept:
        click.echo(f"kept your existing {directory / path}")
    click.echo(f"\nNext: cd {directory}, edit series/{series}/, then 'announcer serve' to preview.")


@click.command("new")
@click.argument("series")
@click.option("--title", required=True, help="The event's title.")
@click.option("--start", required=True, help='"2027-03-05 12:00", or a date for all day.')
@click.option("--end", default="", help="End time (or last day); default: the series' length.")
@click.option("--duration", default="", help="Length instead of --end: 90m, 1h, 1h30m.")
@click.option("--location", default="", help="Where; default: the series' location.")
@click.option("--speaker", "speakers", multiple=True, help="A speaker's name; repeatable.")
@click.option("--id", "event_id", default="", help="The event id [default: DATE-TITLE-SLUG].")
@click.pass_context
@friendly
def new(ctx: click.Context, /, series: str, **options: Any) -> None:
    """Add an event file to SERIES, named by its date and title.

    The new file is checked by loading the project; if it has errors it is
    removed again. An existing file is never overwritten.
    """
    from announcer.workflow import scaffold

    options["speakers"] = tuple(options["speakers"])
    root = project_of(ctx)
    path, elsewhere = scaffold.new_event(root, scaffold.NewEvent(series=series, **options))
    click.echo(f"created {path}")
    if elsewhere:
        click.echo(
            f"note: the project has {elsewhere} error(s) in other files; run 'announcer check'",
            err=True,
        )


@click.command("schema")
@click.argument("kind", type=click.Choice(schemas.KINDS), required=False)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write all three schemas into this folder instead of printing one.",
)
@friendly
def schema(kind: str | None, out: Path | None) -> None:
    """Print the JSON Schema of announcer.yaml (site), series.yaml or event files.

    Editors that use yaml-language-server (such as VS Code with the YAML
    extension) then complete keys and flag mistakes as you type. With --out,
    the three files are written and the editor settings that use them printed.
    """
    if out is None:
        if kind is None:
            raise click.UsageError("name a schema (site, series or event), or give --out DIR")
        click.echo(schemas.schema_text(kind), nl=False)
        return
    for path in schemas.write_schemas(out):
        click.echo(f"wrote {path}")
    settings = {"yaml.schemas": schemas.editor_settings(out.as_posix())}
    click.echo("\nIn .vscode/settings.json:\n" + json.dumps(settings, indent=2))


@click.command("diff")
@click.option(
    "--against", default="HEAD", show_default=True, metavar="GIT-REV",
    help="Compare the files here with the project as committed at this revision.",
)  # fmt: skip
@click.option(
    "--format", "style", type=click.Choice(["text", "markdown"]), default="text",
    show_default=True, help="markdown: for a pull-request comment.",
)  # fmt: skip
@click.option("--now", metavar="TIME", help="Work out due emails as if it were TIME (ISO 8601).")
@click.pass_context
@friendly
def diff(ctx: click.Context, /, against: str, style: str, now: str | None) -> None:
    """Show what subscribers will see change if the current files are published.

    Per event: added, rescheduled (old -> new time), moved, cancelled,
    removed, and the emails the next 'announce' would send. Removing an
    event instead of cancelling it is warned about: subscribed calendars
    would keep showing it.
    """
    from announcer.workflow import diff as changes
    from announcer.workflow import diffview

    project = project_of(ctx)
    try:
        report = changes.diff(project, against, parse_now(now))
    except ValidationFailed as exc:
        if style != "markdown":
            raise
        click.echo(diffview.errors_markdown(exc.diagnostics), nl=False)
        sys.exit(1)
    click.echo((diffview.markdown if style == "markdown" else diffview.text)(report), nl=False)


@click.command("serve")
@click.option("--port", "-p", default=8000, show_default=True, help="Port on 127.0.0.1 (0: any).")
@click.pass_context
@friendly
def serve(ctx: click.Context, /, port: int) -> None:
    """Preview the site at http://127.0.0.1:PORT/, rebuilt whenever a file changes.

    The build goes to a temporary folder; the project, its output folder and
    its ledger are left alone. Errors show in the browser and here. Stop with
    Ctrl-C.
    """
    from announcer.workflow import serve as live

    try:
        preview = live.Preview(project_of(ctx), port=port, log=click.echo)
    except OSError as exc:
        raise AnnouncerError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None
    try:
        url = preview.start()
        click.echo(f"Preview at {url} - edit and save any file to rebuild; Ctrl-C to stop.")
        signal.signal(signal.SIGTERM, _interrupted)  # a plain kill cleans up too
        preview.wait()
    except KeyboardInterrupt:
        click.echo("stopped")
    finally:
        preview.stop()


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--series", required=True, help="The series to add the events to (made if new).")
@click.option("--timezone", help="Timezone of a new series [default: the calendar's].")
@click.pass_context
@friendly
def import_ics(ctx: click.Context, /, file: Path, series: str, timezone: str | None) -> None:
    """Turn an exported calendar (.ics from Google, Outlook, Indico...) into event files.

    Each event keeps its UID, so subscribers of the old calendar see no
    duplicates. Events announcer cannot express (repeating forever, yearly...)
    are skipped and listed; nothing existing is overwritten.
    """
    from announcer.workflow import importer

    report = importer.import_calendar(project_of(ctx), file, series, timezone)
    if report.created_series:
        click.echo(f"created series/{series}/series.yaml")
    for path in report.written:
        click.echo(f"created {path}")
    for what, why in report.skipped:
        click.echo(f"skipped {what}: {why}", err=True)
    for what, count in sorted(report.ignored.items()):
        click.echo(f"not imported: {what}, in {count} event{'s' if count != 1 else ''}", err=True)
    click.echo(
        f"imported {len(report.written)} event{'s' if len(report.written) != 1 else ''} "
        f"into {series}; {len(report.skipped)} skipped. Run 'announcer check', then commit."
    )
