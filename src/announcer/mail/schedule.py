"""Which emails are due now: each series' ``announce:`` rules read against the ledger.

Pure: the same site, ledger and clock always give the same answer, so ``--dry-run``
shows exactly what a real run would send, and a run after a crash or a missed day
works out the same messages again. The rules (explained for organisers in
docs/email.md):

* A rule ``days_before: N`` opens at midnight, series time, N calendar days before
  the day the event starts, and closes when the event starts. A daily cron sends it
  on that day whatever its hour; a run that was missed is caught up by the next one;
  an event that has started gets nothing.
* The announcement is the first message about an event; a reminder follows each
  reminder rule. Everything open for one event in one run becomes one message
  (an announcement and a reminder together: the announcement).
* Once the list has heard of an event, a change of its time, place or status
  from what the list was told sends an update (a new title alone does not, though
  calendar apps get it), and cancelling it sends a cancellation, once.

Only occurrences are scheduled for a recurring event: each is an event of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from announcer import ledger as ledgers
from announcer.errors import ConfigError
from announcer.ledger import Ledger, Revision, Sent
from announcer.model import Event, Series, Site
from announcer.recurrence import expand

Kind = Literal["announcement", "reminder", "update", "cancellation"]
KINDS: tuple[Kind, ...] = ("announcement", "reminder", "update", "cancellation")
# When several kinds fall due together, the message is of the first one here.
PRECEDENCE: tuple[Kind, ...] = ("announcement", "update", "reminder")


@dataclass(frozen=True)
class Due:
    """One message due for one event; ``covers`` is every kind the ledger records for it."""

    event: Event
    series: Series
    kind: Kind
    sequence: int
    covers: tuple[Kind, ...]
    days_before: int | None = None  # the reminder rule a reminder answers

    @property
    def revision(self) -> str:
        """This message among all of the event's: kind, SEQUENCE and, for a reminder, its rule.

        Two reminder rules give two reminders of the same revision, so the rule is
        part of the name; nothing else is, so the name is stable across re-runs.
        """
        name = f"{self.kind}.{self.sequence}"
        if self.kind == "reminder" and self.days_before is not None:
            name += f".{self.days_before}d"
        return name


@dataclass(frozen=True)
class Scope:
    """What ``--series`` and ``--event`` narrowed a run to; empty means everything."""

    series: frozenset[str] = frozenset()
    events: frozenset[str] = frozenset()

    def includes(self, key: str) -> bool:
        """Whether an event or occurrence key (``series/id[/date]``) is in scope."""
        slug, _, ident = key.partition("/")
        if self.series and slug not in self.series:
            return False
        return not self.events or any(
            _names(key, wanted) or _names(ident, wanted) for wanted in self.events
        )


EVERYTHING = Scope()


def _names(key: str, wanted: str) -> bool:
    """``talk`` names ``talk`` and every ``talk/<date>`` occurrence."""
    return key == wanted or key.startswith(wanted + "/")


@dataclass(frozen=True)
class Plan:
    """The due messages, and the ledger (advanced to ``now``) whose revisions they carry."""

    ledger: Ledger
    due: list[Due]
    warnings: list[str] = field(default_factory=list)


def plan(site: Site, ledger: Ledger, now: datetime, scope: Scope = EVERYTHING) -> Plan:
    """Everything due at ``now``; the ledger is first brought up to date with the site.

    Advancing here (as ``build`` does) gives each message the SEQUENCE the published
    calendar carries, even when nobody ran ``build`` since the last edit.
    """
    check_scope(site, scope)
    current, _ = ledgers.advance(ledger, ledgers.records(site), now)
    due = [
        item
        for series in site.series
        if audience(series) and (not scope.series or series.slug in scope.series)
        for event in emailed(series)
        if scope.includes(event.key)
        and (item := due_for(event, series, current.revision(event), now)) is not None
    ]
    due.sort(key=lambda item: (item.event.begins, item.event.key))
    return Plan(current, due, warnings(site, current, now, scope))


def check_scope(site: Site, scope: Scope) -> None:
    """A misspelt ``--series`` or ``--event`` must not look like "nothing due"."""
    slugs = {s.slug for s in site.series}
    unknown = sorted(scope.series - slugs)
    if unknown:
        raise ConfigError(f"no series {', '.join(unknown)} (series: {', '.join(sorted(slugs))})")
    keys = [e.key for e in ledgers.records(site)]
    for wanted in sorted(scope.events):
        if not any(Scope(events=frozenset({wanted})).includes(key) for key in keys):
            raise ConfigError(f"no event {wanted!r} (give an event id, id/date or series/id)")


def audience(series: Series) -> bool:
    """Whether anyone would receive this series' email."""
    found = series.mailing_list
    return found is not None and bool(found.to or found.recipients)


def emailed(series: Series) -> Iterator[Event]:
    """The events email is about: single events, and each occurrence of a recurring one."""
    for event in series.events:
        yield from expand(event)


def due_for(event: Event, series: Series, revision: Revision, now: datetime) -> Due | None:
    """The one message due for ``event`` at ``now``, if any (see the module docstring)."""
    if now >= event.begins:
        return None
    sent = revision.announced
    if event.cancelled:
        if sent and not cancellation_told(sent):
            return Due(event, series, "cancellation", revision.sequence, ("cancellation",))
        return None
    kinds: list[Kind] = []
    if not sent and announcement_open(event, series, now):
        kinds.append("announcement")
    if sent and ledgers.changed_since(last_told(sent), revision):
        kinds.append("update")
    reminders = open_reminders(event, series, sent.get("reminder"), now)
    if reminders:
        kinds.append("reminder")
    if not kinds:
        return None
    kind = next(k for k in PRECEDENCE if k in kinds)
    days = min(reminders) if kind == "reminder" else None
    return Due(event, series, kind, revision.sequence, tuple(kinds), days)


def announcement_open(event: Event, series: Series, now: datetime) -> bool:
    return any(opens(event, series, days) <= now for days in _days(series, "announcement"))


def open_reminders(event: Event, series: Series, last: Sent | None, now: datetime) -> list[int]:
    """Reminder rules open now and not answered by a reminder sent since they opened.

    Comparing with when the last reminder went (not its revision) lets a postponed
    event be reminded of again, near its new date, and lets two rules give two reminders.
    """
    return [
        days
        for days in _days(series, "reminder")
        if opens(event, series, days) <= now
        and (last is None or last.at < opens(event, series, days))
    ]


def _days(series: Series, kind: str) -> Iterable[int]:
    return sorted({rule.days_before for rule in series.announce if rule.kind == kind})


def opens(event: Event, series: Series, days_before: int) -> datetime:
    """Midnight, series time, ``days_before`` calendar days before the event's first day.

    ``fold=0`` makes a midnight that a DST change skips or repeats the first instant
    of that day, so no day ever loses its window.
    """
    zone = ZoneInfo(series.timezone)
    first = event.start
    if isinstance(first, datetime):
        first = first.astimezone(zone).date()
    return datetime.combine(first - timedelta(days=days_before), time(), tzinfo=zone)


def last_told(sent: Mapping[str, Sent]) -> Sent:
    """The message of the latest revision the list heard about."""
    return max(sent.values(), key=lambda s: (s.sequence, s.at))


def last_sequence(sent: Mapping[str, Sent]) -> int:
    """The revision the list last heard about."""
    return max(s.sequence for s in sent.values())


def cancellation_told(sent: Mapping[str, Sent]) -> bool:
    """Whether the last thing the list heard was a cancellation.

    At one SEQUENCE an event is either cancelled or not, so a cancellation and
    another kind never share the last revision.
    """
    told = sent.get("cancellation")
    return told is not None and told.sequence == last_sequence(sent)


def warnings(site: Site, ledger: Ledger, now: datetime, scope: Scope) -> list[str]:
    """What will not be sent although an organiser might expect it."""
    found = []
    for series in site.series:
        if scope.series and series.slug not in scope.series:
            continue
        if series.announce and not audience(series):
            found.append(
                f"series {series.slug} has 'announce' rules but nobody to send to "
                "(give mailing_list 'to' or a recipients file with at least one row)"
            )
    found.extend(_vanished(site, ledger, now, scope))
    return found


def _vanished(site: Site, ledger: Ledger, now: datetime, scope: Scope) -> Iterator[str]:
    """Announced events that are gone (file deleted, date excluded): no cancellation goes out."""
    present = {event.key for event in ledgers.records(site)}
    for key, entry in sorted(ledger.entries.items()):
        if key in present or not scope.includes(key) or not entry.announced:
            continue
        if cancellation_told(entry.announced) or _state_start(entry.state) <= now:
            continue
        yield (
            f"{key} was announced and is no longer in the event files, so no cancellation "
            "is sent: put it back with 'status: cancelled' to tell the list"
        )


def _state_start(state: Mapping[str, str]) -> datetime:
    moment = datetime.fromisoformat(state["start"])
    if moment.tzinfo is None:
        return moment.replace(tzinfo=ZoneInfo(state["timezone"]))
    return moment
