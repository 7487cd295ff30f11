"""What every command shares: errors as plain lines, and which project it works on."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from announcer.errors import AnnouncerError, ValidationFailed

F = TypeVar("F", bound=Callable[..., Any])


def friendly(command: F) -> F:
    """Print AnnouncerError as plain lines and exit 1; tracebacks only with --debug."""

    @wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ValidationFailed as exc:
            for diagnostic in exc.diagnostics:
                click.echo(f"error: {diagnostic}", err=True)
            count = len(exc.diagnostics)
            plural = "s" if count != 1 else ""
            click.echo(f"{count} error{plural}; nothing was written or sent.", err=True)
            sys.exit(1)
        except AnnouncerError as exc:
            if click.get_current_context().find_root().params.get("debug"):
                raise
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)

    return run  # type: ignore[return-value]


def parse_now(value: str | None) -> datetime | None:
    """``--now``: ISO 8601, UTC unless an offset is given."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("use ISO 8601, e.g. 2018-11-23T09:00:00-05:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def project_of(ctx: click.Context) -> Path:
    """The --project folder of the root command (default: here)."""
    return Path(ctx.find_root().params.get("project") or ".")
