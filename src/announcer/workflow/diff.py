"""What a change to the event files will do to subscribers, before it lands.

The project as committed at a git revision (default HEAD) and the project in
the working tree are both loaded, and every ledger record (each event, each
occurrence of a recurring one) is compared by :func:`announcer.ledger.state_of`,
the same snapshot that decides whether calendar apps are sent an update. So
"rescheduled" here means exactly "calendar apps will move it". The emails the
next ``announce`` would send come from :func:`announcer.mail.schedule.plan`,
the pure function ``announce`` itself runs.
"""

from __future__ import annotations

import subprocess
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from announcer import ledger as ledgers
from announcer.errors import ConfigError, ValidationFailed
from announcer.load import load_site
from announcer.mail import schedule
from announcer.model import Event, Site

State = Mapping[str, str]
DETAILS = ("speakers", "abstract", "tags", "url")  # shown on pages and feeds; SEQUENCE stays
ORDER = (
    *("added", "cancelled", "reinstated", "rescheduled", "moved", "retitled", "status"),
    *("repeat", "edited", "removed"),
)


@dataclass(frozen=True)
class Change:
    """One event or occurrence as subscribers will see it change."""

    key: str
    title: str
    kinds: tuple[str, ...]
    details: tuple[str, ...] = ()

    @property
    def series(self) -> str:
        return self.key.split("/", 1)[0]

    @property
    def ident(self) -> str:
        return self.key.split("/", 1)[1]


@dataclass(frozen=True)
class Email:
    """A message the next ``announce`` would send; ``new`` if only this change makes it due."""

    kind: str
    key: str
    title: str
    new: bool


@dataclass
class Report:
    against: str
    commit: str
    now: datetime
    changes: list[Change] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    emails: list[Email] = field(default_factory=list)


def diff(project: Path, against: str = "HEAD", now: datetime | None = None) -> Report:
    """Compare the working tree of ``project`` with the project committed at ``against``."""
    current = load_site(project)  # invalid: ValidationFailed, the caller shows the errors
    commit = resolve(project, against)
    report = Report(against, commit[:12], now or ledgers.utc_now())
    old = load_at(project, commit, report.notes)
    report.changes = compare(old, current)
    report.warnings = removal_warnings(report.changes)
    ledger = ledgers.load(project / current.ledger)
    report.emails, mail_warnings = emails(old, current, ledger, report.now)
    report.warnings += mail_warnings
    return report


# --- the project at a revision -------------------------------------------------------------------


def git(project: Path, *args: str) -> bytes:
    """Run git in ``project``; failures become one line the organiser can act on."""
    try:
        done = subprocess.run(["git", *args], cwd=project, capture_output=True, check=True)
    except FileNotFoundError:
        raise ConfigError("git is not installed; announcer diff compares git revisions") from None
    except subprocess.CalledProcessError as exc:
        message = exc.stderr.decode(errors="replace").strip().splitlines()
        raise ConfigError(f"git {args[0]}: {message[-1] if message else 'failed'}") from None
    return done.stdout


def resolve(project: Path, revision: str) -> str:
    """The full commit id of ``revision``, or a clear error (not a repository, no such rev)."""
    git(project, "rev-parse", "--show-toplevel")
    try:
        return (
            git(project, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
            .decode()
            .strip()
        )
    except ConfigError:
        raise ConfigError(
            f"there is no commit {revision!r} here (try HEAD, main or origin/main)"
        ) from None


def load_at(project: Path, commit: str, notes: list[str]) -> Site:
    """The project as committed: extracted with ``git archive`` into a temporary folder."""
    prefix = git(project, "rev-parse", "--show-prefix").decode().strip()
    top = Path(git(project, "rev-parse", "--show-toplevel").decode().strip())
    with tempfile.TemporaryDirectory(prefix="announcer-diff-") as tmp:
        archive = Path(tmp) / "project.tar"
        try:
            archive.write_bytes(git(top, "archive", "--format=tar", f"{commit}:{prefix}"))
        except ConfigError:
            notes.append("the project did not exist at that revision: every event is new")
            return Site()
        root = Path(tmp) / "project"
        with tarfile.open(archive) as tar:
            tar.extractall(root, filter="data")
        return _load_old(root, notes)


def _load_old(root: Path, notes: list[str]) -> Site:
    if not (root / "series").is_dir():
        notes.append("there was no series/ folder at that revision: every event is new")
        return Site()
    try:
        return load_site(root)
    except ValidationFailed as exc:
        notes.append(
            f"the project at that revision has {len(exc.diagnostics)} error(s) and cannot "
            "be compared: every event is listed as new"
        )
        return Site()


# --- comparing -----------------------------------------------------------------------------------


def compare(old: Site, new: Site) -> list[Change]:
    """Every change, in series and start order; occurrences fold into a changed rule."""
    before, after = _records(old), _records(new)
    changes = []
    for key in sorted(before.keys() | after.keys(), key=lambda k: _order(k, before, after)):
        parent = _parent(key)
        if parent != key and _changed(before.get(parent), after.get(parent)):
            continue  # an occurrence of a changed rule: summarised on the rule's own line
        found = change(key, before.get(key), after.get(key))
        if found is not None:
            changes.append(_with_occurrences(found, before, after))
    return changes


def _records(site: Site) -> dict[str, Event]:
    return {event.key: event for event in ledgers.records(site)}


def _parent(key: str) -> str:
    """``series/id`` for an occurrence ``series/id/date``; the key itself otherwise."""
    return "/".join(key.split("/")[:2])


def _order(key: str, before: Mapping[str, Event], after: Mapping[str, Event]) -> tuple[str, str]:
    event = after.get(key) or before[key]
    return (event.series, f"{event.begins.isoformat()} {key}")


def _changed(old: Event | None, new: Event | None) -> bool:
    return old is None or new is None or ledgers.state_of(old) != ledgers.state_of(new)


def change(key: str, old: Event | None, new: Event | None) -> Change | None:
    """How one record changed, or None when subscribers see no difference."""
    if old is None and new is not None:
        return Change(key, new.title, ("added",), (describe(ledgers.state_of(new)),))
    if new is None and old is not None:
        return Change(key, old.title, ("removed",), (describe(ledgers.state_of(old)),))
    assert old is not None and new is not None
    parts = state_changes(ledgers.state_of(old), ledgers.state_of(new))
    edited = [name for name in DETAILS if getattr(old, name) != getattr(new, name)]
    if edited:
        parts.append(("edited", ", ".join(edited)))
    if not parts:
        return None
    parts.sort(key=lambda part: ORDER.index(part[0]))
    return Change(key, new.title, tuple(k for k, _ in parts), tuple(d for _, d in parts if d))


def state_changes(old: State, new: State) -> list[tuple[str, str]]:
    """The material differences, each as (kind, "before -> after")."""
    parts: list[tuple[str, str]] = []
    if old["status"] != new["status"]:
        parts.append(_status(old["status"], new["status"]))
    if _span(old) != _span(new):
        parts.append(("rescheduled", f"{describe_time(old)} -> {describe_time(new)}"))
    place = (old["location"], old["online_url"]), (new["location"], new["online_url"])
    if place[0] != place[1]:
        parts.append(("moved", f"{_place(old) or 'no place'} -> {_place(new) or 'no place'}"))
    if old["title"] != new["title"]:
        parts.append(("retitled", f"{old['title']} -> {new['title']}"))
    if old.get("repeat") != new.get("repeat"):
        parts.append(("repeat", "the repeat rule changed"))
    return parts


def _status(old: str, new: str) -> tuple[str, str]:
    if new == "cancelled":
        return ("cancelled", "")
    if old == "cancelled":
        return ("reinstated", f"back on, {new}")
    return ("status", f"{old} -> {new}")


def _span(state: State) -> tuple[datetime | date, datetime | date]:
    """Start and end as instants: a timezone rewritten without moving the event is no change."""
    return (_moment(state["start"]), _moment(state["end"]))


def _moment(text: str) -> datetime | date:
    return datetime.fromisoformat(text) if "T" in text else date.fromisoformat(text)


def describe(state: State) -> str:
    """When and where, as a reader of the change wants to see it."""
    place = _place(state)
    return describe_time(state) + (f", {place}" if place else "")


def describe_time(state: State) -> str:
    start, end = _moment(state["start"]), _moment(state["end"])
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        first = f"{start:%a %Y-%m-%d}"
        return first if start == end else f"{first} to {end:%a %Y-%m-%d}"
    if start.date() == end.date():
        return f"{start:%a %Y-%m-%d %H:%M}-{end:%H:%M}"
    return f"{start:%a %Y-%m-%d %H:%M} to {end:%a %Y-%m-%d %H:%M}"


def _place(state: State) -> str:
    return " / ".join(p for p in (state["location"], state["online_url"]) if p)


def _with_occurrences(
    found: Change, before: Mapping[str, Event], after: Mapping[str, Event]
) -> Change:
    """A recurring event's line says how its occurrences changed, in counts and dates."""
    if "/" in found.ident or not _has_occurrences(found.key, before, after):
        return found
    old = {k for k in before if _parent(k) == found.key and k != found.key}
    new = {k for k in after if _parent(k) == found.key and k != found.key}
    moved = [k for k in old & new if _changed(before[k], after[k])]
    counts = [(len(new - old), "added"), (len(old - new), "removed"), (len(moved), "changed")]
    if found.kinds in (("added",), ("removed",)):
        counts = [(len(new or old), "occurrences")]
    summary = ", ".join(f"{n} {word}" for n, word in counts if n)
    if not summary:
        return found
    label = summary if "occurrences" in summary else f"occurrences: {summary}"
    return Change(found.key, found.title, found.kinds, (*found.details, label))


def _has_occurrences(key: str, before: Mapping[str, Event], after: Mapping[str, Event]) -> bool:
    return any(_parent(k) == key and k != key for k in (*before, *after))


def removal_warnings(changes: list[Change]) -> list[str]:
    """Deleting a published event leaves it in every subscriber's calendar; cancelling does not."""
    gone = [c for c in changes if c.kinds == ("removed",) and "/" not in c.ident]
    return [
        f"{c.key} was removed instead of cancelled: calendar apps that already have it keep "
        "showing it. Put the file back with 'status: cancelled' so they drop it."
        for c in gone
    ]


# --- email ---------------------------------------------------------------------------------------


def emails(
    old: Site, new: Site, ledger: ledgers.Ledger, now: datetime
) -> tuple[list[Email], list[str]]:
    """What the next ``announce`` would send after this change, and what only it causes."""
    plan = schedule.plan(new, ledger, now)
    before = {(d.event.key, d.kind) for d in schedule.plan(old, ledger, now).due}
    found = [
        Email(d.kind, d.event.key, d.event.title, (d.event.key, d.kind) not in before)
        for d in plan.due
    ]
    return found, list(plan.warnings)
