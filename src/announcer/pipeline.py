"""The library API the CLI and the tests call: load, check, build, announce.

    load_site  ->  advance the ledger  ->  adapters render  ->  publish + save ledger

Files stream from the adapters into a staging folder that replaces the output
only once every adapter has rendered every file, so an error anywhere leaves the
previous output and ledger as they were. The ledger is saved after the output
is in place: were the process killed in between, the ledger lags one build
behind and the next build records the same change again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from announcer import ledger as ledgers
from announcer.adapters.base import BuildContext, OutputAdapter, OutputFile, select
from announcer.delivery.files import WriteReport, publish
from announcer.errors import ConfigError
from announcer.load import load_site
from announcer.model import Site

if TYPE_CHECKING:
    from announcer.delivery.outbox import ProgressCallback
    from announcer.mail.announce import AnnounceReport


@dataclass
class BuildResult:
    site: Site
    output: Path
    report: WriteReport
    changes: list[ledgers.Change] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    ledger_saved: bool = False


def check(project: Path) -> Site:
    """Validate the project; raises ValidationFailed listing every problem."""
    return load_site(project)


def output_dir(project: Path, site: Site, out: Path | None = None) -> Path:
    """Where the build goes; refuses folders whose replacement would destroy the project."""
    target = (out if out is not None else project / site.output).resolve()
    root = project.resolve()
    if target == root or root.is_relative_to(target) or target == root / "series":
        raise ConfigError(
            f"refusing to build into {target}: it holds the project itself "
            "(set 'output' in announcer.yaml to a folder of its own, like 'public')"
        )
    return target


def build(
    project: Path,
    out: Path | None = None,
    *,
    now: datetime | None = None,
    adapters: list[OutputAdapter] | None = None,
    base_url: str | None = None,
    save_ledger: bool = True,
) -> BuildResult:
    """Build the output tree and update the ledger; see the module docstring.

    ``base_url`` replaces the site's (a preview served elsewhere); with
    ``save_ledger=False`` the ledger advances in memory only, so a preview
    never records a change that was not published.
    """
    site = load_site(project)
    if base_url is not None:
        site = replace(site, base_url=base_url)
    target = output_dir(project, site, out)
    clock = now or ledgers.utc_now()
    ledger_path = project / site.ledger
    ledger, changes = ledgers.advance(ledgers.load(ledger_path), ledgers.records(site), clock)
    context = BuildContext(site=site, ledger=ledger, project=project, now=clock)
    chosen = adapters if adapters is not None else select(site.outputs)
    report = publish(render(context, chosen), target)
    saved = save_ledger and ledgers.save(ledger, ledger_path)
    return BuildResult(site, target, report, changes, context.warnings, saved)


def render(context: BuildContext, adapters: list[OutputAdapter]) -> Iterator[OutputFile]:
    """Every file of every adapter, one at a time."""
    for adapter in adapters:
        yield from adapter.files(context)


def announce(
    project: Path,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    series: Iterable[str] = (),
    events: Iterable[str] = (),
    progress: ProgressCallback | None = None,
) -> AnnounceReport:
    """Send the emails due now (see :mod:`announcer.mail.announce` for the guarantees)."""
    from announcer.mail.announce import announce as run  # mail and SMTP load only when used
    from announcer.mail.schedule import Scope

    scope = Scope(frozenset(series), frozenset(events))
    return run(project, now=now, dry_run=dry_run, scope=scope, progress=progress)
