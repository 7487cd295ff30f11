"""The schedule: what is due when, catching up missed runs, never twice, across DST."""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from announcer import ledger as ledgers
from announcer.errors import ConfigError
from announcer.ledger import Ledger
from announcer.load import load_site
from announcer.mail import schedule
from announcer.mail.schedule import Due, Scope
from announcer.model import (
    AnnounceRule,
    Event,
    MailingList,
    Recipient,
    Series,
    Site,
)
from announcer.times import TimeError, wall_clock
from tests.conftest import MakeProject

TORONTO = ZoneInfo("America/Toronto")
LIST = MailingList(to="list@example.org")


def talk(start: datetime | date, **changes: object) -> Event:
    end = start + timedelta(hours=1) if isinstance(start, datetime) else start
    zone = start.tzinfo.key if isinstance(start, datetime) else "America/Toronto"  # type: ignore[union-attr]
    event = Event(
        "talks", "talk", "talk.talks@announcer", "A talk", start, end, zone, location="Room 1"
    )
    return dataclasses.replace(event, **changes)  # type: ignore[arg-type]


def site_with(
    *events: Event,
    rules: Sequence[tuple[str, int]] = (("announcement", 7), ("reminder", 1)),
    timezone: str = "America/Toronto",
    mailing_list: MailingList | None = LIST,
) -> Site:
    series = Series(
        slug="talks",
        title="Talks",
        timezone=timezone,
        language="en",
        mailing_list=mailing_list,
        announce=tuple(AnnounceRule(kind, days) for kind, days in rules),  # type: ignore[arg-type]
        events=events,
    )
    return Site(series=(series,))


def run(site: Site, ledger: Ledger, now: datetime) -> tuple[Ledger, list[Due]]:
    """One announce run that sends everything due, recorded as announce records it."""
    found = schedule.plan(site, ledger, now)
    current = found.ledger
    for due in found.due:
        for kind in due.covers:
            current = ledgers.record_sent(current, due.event.key, kind, due.sequence, now)
    return current, found.due


def runs(site: Site, times: Sequence[datetime]) -> list[tuple[datetime, Due]]:
    """Runs at ``times`` from an empty ledger; what each sent."""
    ledger, sent = Ledger(), list[tuple[datetime, Due]]()
    for now in times:
        ledger, due = run(site, ledger, now)
        sent.extend((now, d) for d in due)
    return sent


def local(day: date, hour: int = 9) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=TORONTO)


FRIDAY = datetime(2026, 12, 4, 12, 0, tzinfo=TORONTO)


# -- the windows -------------------------------------------------------------------------------


def test_announcement_opens_at_local_midnight_seven_days_before() -> None:
    site = site_with(talk(FRIDAY))
    opens = datetime(2026, 11, 27, 0, 0, tzinfo=TORONTO)
    assert schedule.plan(site, Ledger(), opens - timedelta(seconds=1)).due == []
    due = schedule.plan(site, Ledger(), opens).due
    assert [(d.kind, d.covers, d.sequence) for d in due] == [("announcement", ("announcement",), 0)]


def test_a_missed_day_is_caught_up_by_the_next_run() -> None:
    """Cron was down on day 7: the announcement goes out on day 6, the reminder on day 1."""
    site = site_with(talk(FRIDAY))
    days = [FRIDAY.date() - timedelta(days=n) for n in (8, 6, 5, 2, 1, 0)]
    sent = runs(site, [local(d) for d in days])
    assert [(t.date(), d.kind) for t, d in sent] == [
        (date(2026, 11, 28), "announcement"),
        (date(2026, 12, 3), "reminder"),
    ]


def test_an_event_that_started_gets_nothing() -> None:
    site = site_with(talk(FRIDAY))
    assert schedule.plan(site, Ledger(), FRIDAY).due == []
    assert schedule.plan(site, Ledger(), FRIDAY + timedelta(days=30)).due == []
    assert len(schedule.plan(site, Ledger(), FRIDAY - timedelta(minutes=1)).due) == 1


def test_announcement_and_reminder_due_together_are_one_announcement() -> None:
    site = site_with(talk(FRIDAY))
    sent = runs(site, [local(date(2026, 12, 3)), local(date(2026, 12, 3), 15)])
    assert [(d.kind, d.covers) for _, d in sent] == [("announcement", ("announcement", "reminder"))]


def test_reminder_on_the_day_of_a_fall_back_change() -> None:
    """Sunday 1 November 2026 has 25 hours in Toronto; the reminder opens at its midnight."""
    monday = datetime(2026, 11, 2, 12, 0, tzinfo=TORONTO)
    site = site_with(talk(monday), rules=[("reminder", 1)])
    midnight = datetime(2026, 11, 1, 0, 0, tzinfo=TORONTO)
    assert midnight.utcoffset() == timedelta(hours=-4)
    assert schedule.opens(talk(monday), site.series[0], 1) == midnight
    assert schedule.plan(site, Ledger(), midnight - timedelta(seconds=1)).due == []
    assert [d.kind for d in schedule.plan(site, Ledger(), midnight).due] == ["reminder"]


def test_a_midnight_that_does_not_exist_opens_at_the_first_instant_of_the_day() -> None:
    """Santiago springs forward at midnight: 6 September 2026 begins at 01:00."""
    zone = ZoneInfo("America/Santiago")
    event = talk(datetime(2026, 9, 7, 12, 0, tzinfo=zone))
    site = site_with(event, rules=[("reminder", 1)], timezone="America/Santiago")
    opens = schedule.opens(event, site.series[0], 1)
    assert opens.astimezone(UTC) == datetime(2026, 9, 6, 4, 0, tzinfo=UTC)
    assert opens.astimezone(UTC).astimezone(zone).hour == 1


def test_windows_follow_the_series_timezone() -> None:
    """08:00 on Friday in Tokyo is Thursday in the event's own UTC: days count in Tokyo."""
    tokyo = ZoneInfo("Asia/Tokyo")
    event = talk(datetime(2026, 12, 3, 23, 0, tzinfo=ZoneInfo("UTC")))
    site = site_with(event, rules=[("reminder", 1)], timezone="Asia/Tokyo")
    assert schedule.opens(event, site.series[0], 1) == datetime(2026, 12, 3, tzinfo=tokyo)


def test_all_day_event_days_count_from_its_date() -> None:
    event = talk(date(2026, 12, 4))
    site = site_with(event)
    assert event.begins == datetime(2026, 12, 4, tzinfo=TORONTO)
    assert schedule.opens(event, site.series[0], 7) == datetime(2026, 11, 27, tzinfo=TORONTO)
    assert [d.kind for _, d in runs(site, [local(date(2026, 12, 3))])] == ["announcement"]


def test_two_reminder_rules_give_two_reminders_with_their_own_names() -> None:
    site = site_with(talk(FRIDAY), rules=[("reminder", 7), ("reminder", 1)])
    sent = runs(site, [local(FRIDAY.date() - timedelta(days=n)) for n in range(9, -1, -1)])
    assert [(t.date().day, d.revision) for t, d in sent] == [
        (27, "reminder.0.7d"),
        (3, "reminder.0.1d"),
    ]


def test_reminder_only_series_sends_no_announcement() -> None:
    site = site_with(talk(FRIDAY), rules=[("reminder", 2)])
    sent = runs(site, [local(FRIDAY.date() - timedelta(days=n)) for n in range(10, -1, -1)])
    assert [d.kind for _, d in sent] == ["reminder"]


def test_without_rules_or_audience_nothing_is_due() -> None:
    assert schedule.plan(site_with(talk(FRIDAY), rules=()), Ledger(), local(date(2026, 12, 3))).due == []
    silent = site_with(talk(FRIDAY), mailing_list=None)
    found = schedule.plan(silent, Ledger(), local(date(2026, 12, 3)))
    assert found.due == []
    assert any("nobody to send to" in w for w in found.warnings)
    empty = site_with(talk(FRIDAY), mailing_list=MailingList(recipients=()))
    assert schedule.plan(empty, Ledger(), local(date(2026, 12, 3))).due == []


def test_recipients_mode_is_an_audience() -> None:
    people = MailingList(recipients=(Recipient("a@example.org"),))
    site = site_with(talk(FRIDAY), mailing_list=people)
    assert len(schedule.plan(site, Ledger(), local(date(2026, 12, 3))).due) == 1


# -- updates and cancellations -------------------------------------------------------------------


def announced(site: Site, when: datetime) -> Ledger:
    ledger, due = run(site, Ledger(), when)
    assert [d.kind for d in due] == ["announcement"]
    return ledger


def test_a_new_room_after_the_announcement_sends_one_update() -> None:
    first = site_with(talk(FRIDAY))
    ledger = announced(first, local(date(2026, 11, 27)))
    moved = site_with(talk(FRIDAY, location="Room 2"))
    ledger, due = run(moved, ledger, local(date(2026, 11, 29)))
    assert [(d.kind, d.sequence, d.revision) for d in due] == [("update", 1, "update.1")]
    ledger, due = run(moved, ledger, local(date(2026, 11, 30)))
    assert due == []


def test_nothing_changed_means_no_update() -> None:
    site = site_with(talk(FRIDAY))
    ledger = announced(site, local(date(2026, 11, 27)))
    assert run(site, ledger, local(date(2026, 11, 29)))[1] == []


def test_a_change_before_anything_was_sent_needs_no_update() -> None:
    site = site_with(talk(FRIDAY))
    ledger, _ = run(site, Ledger(), local(date(2026, 11, 20)))  # seen, nothing due yet
    moved = site_with(talk(FRIDAY, location="Room 2"))
    _, due = run(moved, ledger, local(date(2026, 11, 27)))
    assert [(d.kind, d.sequence) for d in due] == [("announcement", 1)]


def test_an_update_and_a_reminder_due_together_are_one_update() -> None:
    ledger = announced(site_with(talk(FRIDAY)), local(date(2026, 11, 27)))
    moved = site_with(talk(FRIDAY, location="Room 2"))
    ledger, due = run(moved, ledger, local(date(2026, 12, 3)))
    assert [(d.kind, d.covers) for d in due] == [("update", ("update", "reminder"))]
    assert run(moved, ledger, local(date(2026, 12, 3), 18))[1] == []


def test_postponed_event_gets_its_reminder_again_near_the_new_date() -> None:
    site = site_with(talk(FRIDAY))
    ledger = announced(site, local(date(2026, 11, 27)))
    ledger, due = run(site, ledger, local(date(2026, 12, 3)))
    assert [d.kind for d in due] == ["reminder"]
    later = site_with(talk(FRIDAY + timedelta(days=14)))
    ledger, due = run(later, ledger, local(date(2026, 12, 3), 15))
    assert [d.kind for d in due] == ["update"]
    assert run(later, ledger, local(date(2026, 12, 10)))[1] == []
    assert [d.kind for d in run(later, ledger, local(date(2026, 12, 17)))[1]] == ["reminder"]


def test_cancelling_an_announced_event_sends_one_cancellation() -> None:
    ledger = announced(site_with(talk(FRIDAY)), local(date(2026, 11, 27)))
    cancelled = site_with(talk(FRIDAY, status="cancelled"))
    ledger, due = run(cancelled, ledger, local(date(2026, 11, 28)))
    assert [(d.kind, d.revision) for d in due] == [("cancellation", "cancellation.1")]
    assert run(cancelled, ledger, local(date(2026, 12, 3)))[1] == []  # and no reminder
    retitled = site_with(talk(FRIDAY, status="cancelled", title="A talk (off)"))
    assert run(retitled, ledger, local(date(2026, 12, 3)))[1] == []


def test_a_cancelled_event_nobody_heard_of_sends_nothing() -> None:
    site = site_with(talk(FRIDAY, status="cancelled"))
    assert runs(site, [local(FRIDAY.date() - timedelta(days=n)) for n in range(9, -1, -1)]) == []


def test_reinstated_then_cancelled_again() -> None:
    ledger = announced(site_with(talk(FRIDAY)), local(date(2026, 11, 27)))
    steps = [
        (talk(FRIDAY, status="cancelled"), "cancellation"),
        (talk(FRIDAY), "update"),
        (talk(FRIDAY, status="cancelled"), "cancellation"),
    ]
    for day, (event, kind) in enumerate(steps, start=28):
        ledger, due = run(site_with(event), ledger, local(date(2026, 11, day)))
        assert [d.kind for d in due] == [kind]


def test_a_change_after_the_start_sends_nothing() -> None:
    ledger = announced(site_with(talk(FRIDAY)), local(date(2026, 11, 27)))
    cancelled = site_with(talk(FRIDAY, status="cancelled"))
    assert run(cancelled, ledger, FRIDAY + timedelta(minutes=5))[1] == []


def test_an_announced_event_that_vanished_is_a_warning() -> None:
    ledger = announced(site_with(talk(FRIDAY)), local(date(2026, 11, 27)))
    found = schedule.plan(site_with(), ledger, local(date(2026, 11, 28)))
    assert found.due == []
    assert [w for w in found.warnings if "talks/talk was announced" in w]
    assert schedule.plan(site_with(), ledger, FRIDAY + timedelta(hours=2)).warnings == []


# -- recurring events and narrowing -------------------------------------------------------------


READING = """
    title: Reading group
    start: 2026-11-06 12:00
    duration: 1h
    repeat: {every: week, count: 6}
    occurrences:
      2026-11-27: {status: cancelled}
"""


@pytest.fixture
def reading(make_project: MakeProject) -> Path:
    return make_project({
        "series/club/series.yaml": """
            title: Club
            timezone: America/Toronto
            mailing_list: {to: club@example.org}
            announce: [{kind: announcement, days_before: 3}]
        """,
        "series/club/events/reading.yaml": READING,
        "series/club/events/solo.yaml": "title: Solo\nstart: 2026-11-20 15:00\n",
    })


def test_each_occurrence_is_announced_on_its_own(reading: Path) -> None:
    site = load_site(reading)
    times = [local(date(2026, 11, 1) + timedelta(days=n)) for n in range(45)]
    sent = runs(site, times)
    keys = [d.event.key for _, d in sent if d.event.id.startswith("reading")]
    assert keys == [
        f"club/reading/2026-{day}" for day in ("11-06", "11-13", "11-20", "12-04", "12-11")
    ]
    assert all(d.kind == "announcement" for _, d in sent)


def test_cancelling_one_announced_occurrence(reading: Path) -> None:
    ledger, due = run(load_site(reading), Ledger(), local(date(2026, 12, 2)))
    assert [(d.kind, d.event.key) for d in due] == [("announcement", "club/reading/2026-12-04")]
    file = reading / "series/club/events/reading.yaml"
    cancelled = READING + "      2026-12-04: {status: cancelled}\n"
    file.write_text(textwrap.dedent(cancelled).lstrip(), encoding="utf-8")
    _, due = run(load_site(reading), ledger, local(date(2026, 12, 2), 15))
    assert [(d.kind, d.event.key) for d in due] == [("cancellation", "club/reading/2026-12-04")]


def test_scope_narrows_to_a_series_or_an_event(reading: Path) -> None:
    site = load_site(reading)
    now = local(date(2026, 11, 18))
    everything = {d.event.key for d in schedule.plan(site, Ledger(), now).due}
    assert everything == {"club/reading/2026-11-20", "club/solo"}
    for wanted, keys in [
        ("solo", {"club/solo"}),
        ("club/solo", {"club/solo"}),
        ("reading", {"club/reading/2026-11-20"}),
        ("reading/2026-11-20", {"club/reading/2026-11-20"}),
    ]:
        scope = Scope(events=frozenset({wanted}))
        assert {d.event.key for d in schedule.plan(site, Ledger(), now, scope).due} == keys
    assert len(schedule.plan(site, Ledger(), now, Scope(series=frozenset({"club"}))).due) == 2


def test_a_misspelt_scope_is_an_error_not_an_empty_run(reading: Path) -> None:
    site = load_site(reading)
    with pytest.raises(ConfigError, match="no series clubs"):
        schedule.plan(site, Ledger(), NOW_CLUB, Scope(series=frozenset({"clubs"})))
    with pytest.raises(ConfigError, match="no event 'sol'"):
        schedule.plan(site, Ledger(), NOW_CLUB, Scope(events=frozenset({"sol"})))


NOW_CLUB = local(date(2026, 11, 18))


def test_the_plan_carries_the_advanced_ledger(reading: Path) -> None:
    site = load_site(reading)
    found = schedule.plan(site, Ledger(), NOW_CLUB)
    assert {e.key for e in ledgers.records(site)} <= set(found.ledger.entries)
    assert schedule.plan(site, found.ledger, NOW_CLUB).due == found.due


# -- properties ---------------------------------------------------------------------------------

ZONES = ["America/Toronto", "Europe/Paris", "Australia/Lord_Howe", "America/Santiago", "UTC"]
# Days with a DST change in at least one of ZONES, so windows straddle them.
DST_DAYS = [
    date(2026, 3, 8), date(2026, 3, 29), date(2026, 4, 5), date(2026, 9, 6),
    date(2026, 10, 4), date(2026, 10, 25), date(2026, 11, 1),
]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Site, Event, list[datetime]]:
    zone_name = draw(st.sampled_from(ZONES))
    event_zone = draw(st.sampled_from([zone_name, *ZONES]))  # often the series', not always
    zone = ZoneInfo(event_zone)
    day = draw(st.sampled_from(DST_DAYS)) + timedelta(days=draw(st.integers(-3, 12)))
    if draw(st.booleans()):
        naive = datetime.combine(day, datetime.min.time()).replace(
            hour=draw(st.integers(0, 23)), minute=draw(st.sampled_from([0, 30]))
        )
        try:
            start: datetime | date = wall_clock(naive, zone)
        except TimeError:
            assume(False)
            raise
    else:
        start = day
    event = dataclasses.replace(talk(FRIDAY), start=start, end=start, timezone=event_zone)
    if isinstance(start, datetime):
        event = dataclasses.replace(event, end=start + timedelta(hours=1))
    kinds = st.sampled_from(["announcement", "reminder"])
    rules = draw(st.lists(st.tuples(kinds, st.integers(0, 10)), max_size=4))
    site = site_with(event, rules=rules, timezone=zone_name)
    return site, site.series[0].events[0], draw(run_times(event.begins))


@st.composite
def run_times(draw: st.DrawFn, begins: datetime) -> list[datetime]:
    """A daily cron that misses days, or runs at arbitrary minutes: from 13 days before to after."""
    base = begins - timedelta(days=13)
    if draw(st.booleans()):
        hour = draw(st.integers(0, 23))
        first = base.replace(hour=hour, minute=0, second=0)
        kept = draw(st.lists(st.booleans(), min_size=15, max_size=15))
        return [first + timedelta(days=n) for n, keep in enumerate(kept) if keep]
    minutes = draw(st.lists(st.integers(0, 15 * 24 * 60), max_size=40, unique=True))
    return [base + timedelta(minutes=m) for m in sorted(minutes)]


def first_run_on_or_after(times: Sequence[datetime], day: date, zone: ZoneInfo, begins: datetime) -> datetime | None:
    """The oracle: the first run whose local date is ``day`` or later, before the start."""
    return next((t for t in times if t.astimezone(zone).date() >= day and t < begins), None)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_each_rule_is_met_at_its_first_run_and_never_again(
    scenario: tuple[Site, Event, list[datetime]],
) -> None:
    site, event, times = scenario
    series = site.series[0]
    zone = ZoneInfo(series.timezone)
    first_day = event.start.astimezone(zone).date() if isinstance(event.start, datetime) else event.start
    sent = runs(site, times)
    names = [d.revision for _, d in sent]
    assert len(names) == len(set(names)), "a message was sent twice"
    assert all(t < event.begins for t, _ in sent), "something went out after the start"
    assert len({t for t, _ in sent}) == len(sent), "two messages for one event in one run"
    reminders = {r.days_before for r in series.announce if r.kind == "reminder"}
    expected_reminders = {
        t for d in reminders
        if (t := first_run_on_or_after(times, first_day - timedelta(days=d), zone, event.begins))
    }
    assert {t for t, d in sent if "reminder" in d.covers} == expected_reminders
    announcements = [r.days_before for r in series.announce if r.kind == "announcement"]
    opening = first_run_on_or_after(
        times, first_day - timedelta(days=max(announcements, default=0)), zone, event.begins
    )
    first_message = min((t for t, _ in sent), default=None)
    expect_announcement = bool(announcements) and opening is not None and (
        first_message is None or first_message >= opening
    )
    assert [t for t, d in sent if d.kind == "announcement"] == ([opening] if expect_announcement else [])
    assert all(d.kind in ("announcement", "reminder") for _, d in sent)


EDITS = st.sampled_from(["room", "title", "later", "earlier", "cancel", "reinstate", "none"])


def edited(event: Event, edit: str, original: Event) -> Event:
    if edit == "room":
        return dataclasses.replace(event, location=event.location + "+")
    if edit == "title":
        return dataclasses.replace(event, title=event.title + "!")
    if edit in ("later", "earlier"):
        shift = timedelta(days=2 if edit == "later" else -1)
        return dataclasses.replace(event, start=event.start + shift, end=event.end + shift)
    if edit == "cancel":
        return dataclasses.replace(event, status="cancelled")
    if edit == "reinstate":
        return dataclasses.replace(event, status=original.status)
    return event


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.lists(EDITS, max_size=40))
def test_after_every_run_the_list_knows_the_current_revision(
    scenario: tuple[Site, Event, list[datetime]], edits: list[str]
) -> None:
    site, original, times = scenario
    event, ledger, names = original, Ledger(), list[str]()
    for now, edit in zip(times, edits + ["none"] * len(times), strict=False):
        event = edited(event, edit, original)
        current = dataclasses.replace(site, series=(dataclasses.replace(site.series[0], events=(event,)),))
        ledger, due = run(current, ledger, now)
        names.extend(d.revision for d in due)
        assert len(due) <= 1
        assert all(now < d.event.begins for d in due)
        heard = ledger.revision(event).announced
        if heard and now < event.begins:
            if event.cancelled:
                assert schedule.cancellation_told(heard), "a cancellation was not sent"
            else:
                told = schedule.last_told(heard)
                assert not ledgers.changed_since(told, ledger.revision(event)), "an update was missed"
        if not event.cancelled or not heard:
            assert "cancellation" not in {d.kind for d in due}
    assert len(names) == len(set(names)), "a message was sent twice"


def test_ledger_round_trip_keeps_the_schedule(tmp_path: Path) -> None:
    """What GitHub Actions does between runs: the ledger goes through ledger.json."""
    site = site_with(talk(FRIDAY))
    path = tmp_path / "ledger.json"
    sent: list[str] = []
    for day in range(20, 36):
        now = local(date(2026, 11, 1) + timedelta(days=day - 1), 7) + timedelta(seconds=0.75)
        ledger, due = run(site, ledgers.load(path), now)
        ledgers.save(ledger, path)
        sent.extend(d.kind for d in due)
    assert sent == ["announcement", "reminder"]


def test_a_new_title_alone_sends_no_update_but_a_new_room_does() -> None:
    event = talk(FRIDAY)
    site = site_with(event)
    first = local(FRIDAY - timedelta(days=7), 9)
    ledger, due = run(site, Ledger(), first)
    assert [d.kind for d in due] == ["announcement"]
    renamed = dataclasses.replace(event, title="A better title")
    ledger, due = run(site_with(renamed), ledger, first + timedelta(hours=1))
    assert due == [] and ledger.revision(renamed).sequence == 1
    moved = dataclasses.replace(renamed, location="Room 2200")
    ledger, due = run(site_with(moved), ledger, first + timedelta(hours=2))
    assert [d.kind for d in due] == ["update"] and due[0].event.title == "A better title"
