"""The library API the CLI and the tests call: load, check, build, announce.

    load_site  ->  advance the ledger  ->  adapters prepare and render  ->  publish + save ledger

Rendering is shared between processes (:mod:`announcer.workers`): first the
adapters prepare the pieces many files share, event by event, then every
file is made and staged. Files go into a staging folder that replaces the
output only once every adapter has rendered every file, so an error anywhere leaves the
previous output and ledger as they were. The ledger is saved after the output
is in place: were the process killed in between, the ledger lags one build
behind and the next build records the same change again.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING

from announcer import __version__, buildstate, heap, workers
from announcer import ledger as ledgers
from announcer.adapters.base import (
    GROUP,
    BuildContext,
    Fragments,
    LazyFile,
    OutputAdapter,
    OutputFile,
    read_alike,
    select,
)
from announcer.buildstate import BuildState, Stat, digest, stat_of
from announcer.delivery import files as publishing
from announcer.delivery.files import WriteReport, publish
from announcer.errors import ConfigError
from announcer.model import Event, Site
from announcer.recall import Recall
from announcer.recurrence import last_finish

if TYPE_CHECKING:
    from announcer.delivery.outbox import ProgressCallback
    from announcer.load.project import EventCache
    from announcer.mail.announce import AnnounceReport


@dataclass
class BuildResult:
    output: Path
    report: WriteReport
    changes: list[ledgers.Change] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    ledger_saved: bool = False
    loaded: Site | None = None
    project: Path | None = None

    @property
    def site(self) -> Site:
        """The model built from; a build that found nothing to do loads it only if asked."""
        if self.loaded is None:
            assert self.project is not None
            self.loaded = _load_site(self.project)
        return self.loaded


def check(project: Path) -> Site:
    """Validate the project; raises ValidationFailed listing every problem."""
    return _load_site(project)


def _load_site(
    project: Path,
    cache: EventCache | None = None,
    jobs: int = 1,
    unchanged: Collection[str] = (),
) -> Site:
    """:func:`announcer.load.load_site`, imported when first needed: a build that finds
    nothing to do never loads the YAML parser and the validators."""
    from announcer.load import load_site

    return load_site(project, cache, jobs, unchanged)


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
    jobs: int | None = None,
) -> BuildResult:
    """Build the output tree and update the ledger; see the module docstring.

    ``base_url`` replaces the site's (a preview served elsewhere); with
    ``save_ledger=False`` the ledger advances in memory only, so a preview
    never records a change that was not published. ``jobs`` is how many
    processes render (default: one per core); the output does not depend on it.
    """
    resolved = out.resolve() if out is not None else None
    with heap.paused():
        return _build(project.resolve(), resolved, now, adapters, base_url, save_ledger, jobs)


def _build(
    project: Path,
    out: Path | None,
    now: datetime | None,
    adapters: list[OutputAdapter] | None,
    base_url: str | None,
    save_ledger: bool,
    jobs: int | None,
) -> BuildResult:
    """:func:`build` for a resolved ``project`` and ``out``: neither the record of input
    files nor the options a build is compared by may depend on how a path was spelled."""
    clock, started = now or ledgers.utc_now(), time.time_ns()
    state = buildstate.load(project, out)
    options = _options(out, base_url, save_ledger, adapters)
    known_ledger = [Path(state.ledger)] if state.ledger else []
    current = buildstate.input_stats(project, [project / "announcer.yaml", *known_ledger])
    if _untouched(state, options, clock, current):
        report = WriteReport(unchanged=sorted(state.outputs), recorded=state.outputs)
        return BuildResult(Path(state.target), report, project=project)
    state.events = buildstate.load_events(state, project, out)
    unchanged, state.read_ns = buildstate.unchanged_since(state, current), started
    site = _load_site(project, state.events, workers.jobs_for(jobs), unchanged)
    if base_url is not None:
        site = replace(site, base_url=base_url)
    target = output_dir(project, site, out)
    chosen = adapters if adapters is not None else select(site.outputs)
    ledger_path = project / site.ledger
    before, text = ledgers.read(ledger_path)
    # The ledger as the last build left it: its events unchanged since need not be looked
    # at, nor their lines written anew.
    found = digest(str(ledger_path), text)
    last = (before, text) if state.ledger_digest == found else None
    records = list(ledgers.records(site))
    seen = _seen(state, records) if last is not None else frozenset()
    ledger, changes = ledgers.advance(before, records, clock, seen)
    # Everything a build reads, hashed: the ledger's digest apart, since saving changes it.
    inputs = _inputs(project, site, state, target, chosen, save_ledger)
    signature = digest(inputs, found)
    if not changes and _still_valid(state, signature, clock, target, chosen):
        report = WriteReport(unchanged=sorted(state.outputs), recorded=state.outputs)
        state.inputs, state.ledger_digest = current, found
        _remember(state, project, out, options, clock, ledger_path, target, chosen, ("events",))
        return BuildResult(target, report, loaded=site)
    context = BuildContext(
        site=site,
        ledger=ledger,
        project=project,
        now=clock,
        fragments=Fragments(buildstate.load_fragments(project, out)),
        inputs_key=signature,
    )
    recall = Recall.start(
        context,
        digest(options, str(target)),
        (state.scope, state.tokens, state.depends, state.listed),
        (len(context.fragments.known), state.pieces),
    )
    recall.keep(state.outputs, target)
    context.kept = recall.kept
    report = _publish(context, chosen, target, state, jobs, recall)
    saved = save_ledger and ledgers.save(ledger, ledger_path, last)
    if saved:  # what the next build will read
        found = digest(str(ledger_path), ledger_path.read_text(encoding="utf-8"))
        signature = digest(inputs, found)
    # A ledger that holds what this build saw lets the next build skip the events
    # unchanged since; one left behind (a preview does not save) does not.
    state.ledger_digest = found if save_ledger or not changes else ""
    state.signature, state.valid_until = signature, next_change(site, clock)
    state.outputs, state.folders, state.inputs = report.recorded, report.folders, current
    state.scope, state.tokens, state.depends = recall.scope, recall.tokens, recall.fingerprints
    state.listed = recall.listed
    parts = _keep_fragments(context.fragments, recall, state)
    _remember(state, project, out, options, clock, ledger_path, target, chosen, parts)
    warnings = sorted({*context.warnings, *report.notes})  # workers finish in any order
    return BuildResult(target, report, changes, warnings, saved, loaded=site)


def _seen(state: BuildState, records: Iterable[Event]) -> frozenset[str]:
    """Events and occurrences read from the same bytes as in the last build: the ledger
    that build left records them as they are (a token starts with what the event holds)."""
    last = state.tokens
    return frozenset(event.key for event in records if read_alike(last.get(event.key, ""), event))


def _keep_fragments(fragments: Fragments, recall: Recall, state: BuildState) -> tuple[str, ...]:
    """Which parts of the record to write, with the fragments to keep in ``state``.

    A file whose key was taken from the last build asked for none of its pieces,
    so those are kept unseen; a build that worked out every key keeps only what it used.
    """
    if recall.recalled:
        fragments.used = {**fragments.known, **fragments.used}
        state.fragments = fragments.used
        return buildstate.PARTS if fragments.worth_keeping() else ("events",)
    # Every key worked out: the store is pruned, however few pieces this build made;
    # left as it was, it would stay past its bound and every build would prune again.
    state.fragments, state.pieces = fragments.used, len(fragments.used)
    return buildstate.PARTS if fragments.used.keys() != fragments.known.keys() else ("events",)


def _options(
    out: Path | None, base_url: str | None, save_ledger: bool, adapters: list[OutputAdapter] | None
) -> str:
    """What the caller chose, and which adapters are installed: part of "nothing changed"."""
    if adapters is None:
        names = sorted(
            f"{p.name}={p.value}@{p.dist.version if p.dist else ''}"
            for p in entry_points(group=GROUP)
        )
    else:
        names = [f"{type(a).__module__}.{type(a).__qualname__}" for a in adapters]
    return digest(__version__, str(out), repr(base_url), str(save_ledger), *names)


def _untouched(state: BuildState, options: str, now: datetime, current: dict[str, Stat]) -> bool:
    """No input file touched, same options, clock between the last build and its expiry.

    Then the output is what a build would write, and nothing is even parsed.
    """
    if not (state.incremental and state.inputs and state.options == options):
        return False
    if not _in_time(state, now):
        return False
    if current != state.inputs:
        return False
    settled = buildstate.unchanged_since(state, current) | {state.ledger}  # the ledger is ours
    if not settled.issuperset(current):  # written as the last build began: may differ
        return False
    return _intact(state, Path(state.target))


def _remember(
    state: BuildState,
    project: Path,
    out: Path | None,
    options: str,
    now: datetime,
    ledger_path: Path,
    target: Path,
    adapters: list[OutputAdapter],
    parts: tuple[str, ...] = buildstate.PARTS,
) -> None:
    """Record what the next build needs to know it has nothing to do.

    ``state.inputs`` holds the input files as this build found them before
    reading any: a file changed since is then seen as changed next time. Only
    the ledger, which this build wrote, is looked at again.
    """
    state.options, state.built_at, state.target = options, now, str(target)
    state.ledger, state.incremental = str(ledger_path), all(a.incremental for a in adapters)
    state.inputs = {p: s for p, s in state.inputs.items() if p != str(ledger_path)}
    ledger = stat_of(ledger_path)
    if ledger is not None:
        state.inputs[str(ledger_path)] = ledger
    buildstate.save(state, project, out, parts)


def _inputs(
    project: Path,
    site: Site,
    state: BuildState,
    target: Path,
    adapters: list[OutputAdapter],
    save_ledger: bool,
) -> str:
    """Everything a build reads but the ledger, hashed: the inputs, the code. Worked
    out once a build; the signature joins it to the ledger's digest before and after
    saving."""
    parts: list[bytes | str] = [__version__, str(target), repr(site.base_url), str(save_ledger)]
    parts += [type(a).__module__ + "." + type(a).__qualname__ for a in adapters]
    parts += [f"{path}={key}" for path, (key, _) in sorted(state.events.items())]
    for file in _settings_files(project):
        parts += [str(file), file.read_bytes()]
    return digest(*parts)


def _settings_files(project: Path) -> list[Path]:
    """announcer.yaml, series.yaml files and templates: what the event cache does not cover."""
    found = [project / "announcer.yaml", *sorted((project / "series").glob("*/series.yaml"))]
    found += sorted((project / "series").glob("*/templates/**/*"))
    found += sorted((project / "templates").glob("**/*"))
    found += sorted((project / "series").glob("*/*.csv"))
    return [f for f in found if f.is_file()]


def _still_valid(
    state: BuildState, signature: str, now: datetime, target: Path, adapters: list[OutputAdapter]
) -> bool:
    """Whether the last build's output is exactly what this build would write."""
    if not state.outputs or state.signature != signature:
        return False
    if not all(a.incremental for a in adapters):
        return False
    if not _in_time(state, now):
        return False
    return _intact(state, target)


def _intact(state: BuildState, target: Path) -> bool:
    """Whether every file the last build wrote is still as it left it."""
    folder = str(target)
    return all(stat_of(f"{folder}/{path}") == stat for path, (_, stat) in state.outputs.items())


def _in_time(state: BuildState, now: datetime) -> bool:
    """Whether ``now`` lies between the last build's clock and the next change it foresaw."""
    if state.built_at is None or now < state.built_at:
        return False
    return state.valid_until is None or now < state.valid_until


def next_change(site: Site, now: datetime) -> datetime | None:
    """When time alone changes the output: an event ends (it becomes past) or leaves the
    calendar window. Until then, a build with the same inputs writes the same bytes."""
    utc_now = now.astimezone(UTC)  # see adapters.listing.is_past
    moments = [e.utc_finishes for e in ledgers.records(site) if e.utc_finishes > utc_now]
    days = site.calendar.past_days
    if days is not None:
        window = timedelta(days=days)
        moments += [m for m in (last_finish(e) + window for e in site.events()) if m > now]
    return min(moments, default=None)


def _publish(
    context: BuildContext,
    adapters: list[OutputAdapter],
    target: Path,
    last: BuildState,
    jobs: int | None,
    recall: Recall,
) -> WriteReport:
    """Prepare, render and publish, with the loaded model set aside from the collector."""
    share = _sharing(context, jobs)
    with heap.rendering():
        prepare(context, adapters, share)
        files = _listed(context, adapters)
        return publish(files, target, last.outputs, share, last.folders, recall)


def _listed(context: BuildContext, adapters: list[OutputAdapter]) -> list[OutputFile | LazyFile]:
    """Every file of every adapter: twenty thousand objects kept to the end of the build,
    made with the collector paused and then set aside, or every collection while
    rendering would walk them again (half the time listing them took)."""
    with heap.paused():
        files = list(render(context, adapters))
        heap.set_aside()
    return files


def _sharing(context: BuildContext, jobs: int | None) -> publishing.Share:
    """How this build hands out work: to ``jobs`` processes, the context's pieces collected."""
    count = workers.jobs_for(jobs)
    return partial(workers.run, jobs=count, side=context, explicit=jobs is not None)


PROBE = 64  # events prepared here first, to see whether the last build's pieces serve
# Events per chunk when preparing: a chunk's Markdown is rendered in one go, which is
# faster the more texts it holds, and each chunk a worker hands back costs a pickle.
# At 10,000 events, 64 instead of 8 made preparing 7-15 % faster.
PREPARE_CHUNK = 64


def prepare(context: BuildContext, adapters: list[OutputAdapter], share: publishing.Share) -> None:
    """Every adapter's shared pieces, made event by event before any file is.

    The first events are prepared in this process: when the last build's pieces
    served nearly all of them (an incremental build), they will serve the rest
    too, and the few that are missing are made when a file asks for them;
    forking, or even asking for every piece twice, would cost more than it saves.
    """
    events = list(context.site.events())
    preparing = [a for a in adapters if type(a).prepare is not OutputAdapter.prepare]
    if not preparing:
        return

    def task(chunk: range, ahead: bool = False) -> list[None]:
        if ahead:  # pieces will be made: their Markdown first, all in one go
            from announcer.markup import render_ahead

            render_ahead(text for e in events[chunk.start : chunk.stop] for text in e.markdown)
        for adapter in preparing:
            adapter.prepare(context, events[chunk.start : chunk.stop])
        return [None] * len(chunk)

    before = len(context.fragments.made)
    task(range(min(PROBE, len(events))))
    rest = range(min(PROBE, len(events)), len(events))
    if len(context.fragments.made) - before > PROBE // 8:
        share(
            lambda chunk: task(range(chunk.start + rest.start, chunk.stop + rest.start), True),
            len(rest),
            chunk=PREPARE_CHUNK,
        )


def render(context: BuildContext, adapters: list[OutputAdapter]) -> Iterator[OutputFile | LazyFile]:
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
