"""The event model: plain, immutable data that every adapter reads.

Nothing here does I/O. Times are already resolved: a timed event carries aware
datetimes in its own timezone, an all-day event carries dates with an inclusive
``end`` (the last day), exactly as organisers write them. Markdown fields are kept
as source text; each adapter renders them for its own medium.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import Literal
from zoneinfo import ZoneInfo

Status = Literal["confirmed", "tentative", "cancelled"]
Frequency = Literal["day", "week", "month"]
AnnounceKind = Literal["announcement", "reminder"]
Security = Literal["starttls", "tls", "none"]

STATUSES: tuple[Status, ...] = ("confirmed", "tentative", "cancelled")
FREQUENCIES: tuple[Frequency, ...] = ("day", "week", "month")
ANNOUNCE_KINDS: tuple[AnnounceKind, ...] = ("announcement", "reminder")
SECURITIES: tuple[Security, ...] = ("starttls", "tls", "none")


@dataclass(frozen=True)
class Person:
    name: str
    email: str = ""


@dataclass(frozen=True)
class Speaker:
    name: str
    affiliation: str = ""
    bio: str = ""  # Markdown
    url: str = ""


@dataclass(frozen=True)
class Repeat:
    """A recurrence rule, expanded in the event's timezone (12:00 stays 12:00)."""

    every: Frequency
    interval: int = 1
    weekdays: tuple[int, ...] = ()  # 0 = Monday, for weekly repeats
    until: date | None = None  # last date that may hold an occurrence, inclusive
    count: int | None = None
    skip: tuple[date, ...] = ()  # original dates left out (EXDATE)


@dataclass(frozen=True)
class Event:
    """One event, one recurring event, or one occurrence of a recurring event.

    A recurring event has ``repeat`` set and keeps the occurrences it changes in
    ``overrides``; ``expand`` (in :mod:`announcer.recurrence`) turns it into
    occurrences, which are ``Event`` values with ``recurrence_id`` set and an id
    of ``<event-id>/<original date>``.
    """

    series: str
    id: str
    uid: str
    title: str
    start: datetime | date
    end: datetime | date  # all-day: the last day, inclusive
    timezone: str
    speakers: tuple[Speaker, ...] = ()
    location: str = ""
    online_url: str = ""
    url: str = ""
    abstract: str = ""  # Markdown
    tags: tuple[str, ...] = ()
    status: Status = "confirmed"
    repeat: Repeat | None = None
    overrides: tuple[Event, ...] = ()
    recurrence_id: date | None = None
    source: str = ""  # "path:line" it came from, for messages; never published
    origin: str = ""  # a digest of the file (and series defaults) it was read from, or ""

    # Worked out once per event (a build asks a million times); not fields, so equality,
    # repr and replace() ignore them.
    @cached_property
    def key(self) -> str:
        """Unique across the site: the ledger and the output tree use it."""
        return f"{self.series}/{self.id}"

    @property
    def markdown(self) -> Iterator[str]:
        """Its Markdown texts, and those its changed occurrences show instead."""
        for shown in (self, *self.overrides):
            yield shown.abstract
            yield from (speaker.bio for speaker in shown.speakers)

    @property
    def all_day(self) -> bool:
        return not isinstance(self.start, datetime)

    @property
    def cancelled(self) -> bool:
        return self.status == "cancelled"

    @cached_property
    def begins(self) -> datetime:
        """The start as an instant; all-day events begin at midnight in their timezone."""
        if isinstance(self.start, datetime):
            return self.start
        return datetime.combine(self.start, time(), tzinfo=ZoneInfo(self.timezone))

    @cached_property
    def finishes(self) -> datetime:
        """The end as an instant: for all-day events, midnight after the last day."""
        end = self.end_exclusive
        if isinstance(end, datetime):
            return end
        return datetime.combine(end, time(), tzinfo=ZoneInfo(self.timezone))

    # Sorting and past-or-not compare these by the ten thousand: instants in one zone
    # compare field by field, without asking each zone for its offset (four times faster).
    @cached_property
    def utc_begins(self) -> datetime:
        """:attr:`begins` in UTC."""
        return self.begins.astimezone(UTC)

    @cached_property
    def utc_finishes(self) -> datetime:
        """:attr:`finishes` in UTC."""
        return self.finishes.astimezone(UTC)

    @property
    def end_exclusive(self) -> datetime | date:
        """The end as calendars store it: the day after the last day when all-day."""
        return self.end if isinstance(self.end, datetime) else self.end + timedelta(days=1)


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str = ""


@dataclass(frozen=True)
class MailingList:
    """Either one message to a list address, or one message per recipient."""

    to: str = ""
    recipients: tuple[Recipient, ...] = ()
    unsubscribe_url: str = ""  # template with {email}, for per-recipient mode


@dataclass(frozen=True)
class AnnounceRule:
    kind: AnnounceKind
    days_before: int


@dataclass(frozen=True)
class Series:
    slug: str
    title: str
    timezone: str
    language: str
    description: str = ""
    organizer: Person | None = None
    default_duration: timedelta = timedelta(hours=1)
    default_location: str = ""
    mailing_list: MailingList | None = None
    announce: tuple[AnnounceRule, ...] = ()
    events: tuple[Event, ...] = ()  # in start order


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 587
    security: Security = "starttls"
    username_env: str = ""
    password_env: str = ""


@dataclass(frozen=True)
class EmailSettings:
    sender: str = ""
    smtp: SmtpSettings | None = None  # None: messages go to the outbox folder
    outbox: str = "outbox"


@dataclass(frozen=True)
class CalendarSettings:
    past_days: int | None = 365  # combined and tag calendars; None keeps all
    refresh: timedelta = timedelta(hours=6)
    size_warning: int = 900_000  # bytes; Google drops subscriptions near 1 MB


@dataclass(frozen=True)
class FeedSettings:
    limit: int | None = 50  # entries per feed; None keeps all


@dataclass(frozen=True)
class Site:
    title: str = "Events"
    base_url: str = "http://localhost:8000/"
    output: str = "public"
    language: str = "en"
    email: EmailSettings = field(default_factory=EmailSettings)
    outputs: tuple[str, ...] | None = None  # None: every installed adapter
    calendar: CalendarSettings = field(default_factory=CalendarSettings)
    feeds: FeedSettings = field(default_factory=FeedSettings)
    ledger: str = "ledger.json"
    series: tuple[Series, ...] = ()

    def events(self) -> Iterator[Event]:
        """Every event of every series, recurring ones unexpanded."""
        for series in self.series:
            yield from series.events

    def series_by_slug(self, slug: str) -> Series:
        return next(s for s in self.series if s.slug == slug)
