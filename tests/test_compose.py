"""Composing messages: MIME structure, headers, threading, templates, the .ics, injection."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import icalendar
import pytest
import yaml

from announcer import ledger as ledgers
from announcer import pipeline
from announcer.adapters.ics import IcsAdapter
from announcer.errors import ConfigError
from announcer.ledger import Ledger
from announcer.load import load_site
from announcer.mail import compose, schedule
from announcer.mail.compose import Composed
from announcer.model import Recipient, Site
from tests.conftest import MakeProject
from tests.interop.clients import icaljs_dump

SITE = """
    title: Test Events
    base_url: https://events.example.org/
    email:
      from: "Seminars <seminars@example.org>"
"""
SERIES = """
    title: Policy Seminars
    timezone: America/Toronto
    language: LANGUAGE
    organizer: {name: SPPA Events, email: sppa-events@example.org}
    mailing_list: MAILING
    announce:
      - {kind: announcement, days_before: 7}
      - {kind: reminder, days_before: 1}
"""
TALK = """
    title: Open data in cities
    start: 2026-12-04 12:00
    duration: 90m
    speakers:
      - {name: Ann Smith, affiliation: Carleton University}
    location: Room 2200, Richcraft Hall
    abstract: |
      Who uses *open data*, and for what?
"""
LIST = "{to: seminars@lists.example.org}"
PEOPLE = "{recipients: people.csv, unsubscribe_url: 'https://example.org/unsubscribe?list=seminars&email={email}'}"
ANNOUNCE_AT = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)


def project(
    make_project: MakeProject,
    talk: str = TALK,
    *,
    language: str = "en",
    mailing: str = LIST,
    extra: dict[str, str] | None = None,
) -> Path:
    files = {
        "announcer.yaml": SITE,
        "series/seminars/series.yaml": SERIES.replace("LANGUAGE", language).replace(
            "MAILING", mailing
        ),
        "series/seminars/events/talk.yaml": talk,
        "series/seminars/people.csv": "email,name\nzoe@example.org,Zoë Tremblay\nal@example.org,Al\n",
    }
    return make_project({**files, **(extra or {})})


def due_messages(root: Path, now: datetime, ledger: Ledger | None = None) -> list[Composed]:
    site = load_site(root)
    found = schedule.plan(site, ledger or ledgers.load(root / "ledger.json"), now)
    return [c for d in found.due for c in compose.compose(site, root, found.ledger, d, now)]


def sent(root: Path, now: datetime) -> list[Composed]:
    """Compose what is due and record it in ledger.json, as a successful run would."""
    site = load_site(root)
    found = schedule.plan(site, ledgers.load(root / "ledger.json"), now)
    ledger = found.ledger
    messages = []
    for due in found.due:
        messages.extend(compose.compose(site, root, found.ledger, due, now))
        for kind in due.covers:
            ledger = ledgers.record_sent(ledger, due.event.key, kind, due.sequence, now)
    ledgers.save(ledger, root / "ledger.json")
    return messages


def wire(message: EmailMessage) -> EmailMessage:
    """The message as a client reads it: serialised with CRLF, parsed back strictly."""
    raw = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    for part in parsed.walk():
        assert not part.defects, (part.get_content_type(), part.defects)
    return parsed


def bodies(message: EmailMessage) -> tuple[str, str, bytes]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    calendar = next(p for p in message.iter_attachments() if p.get_content_type() == "text/calendar")
    data = calendar.get_payload(decode=True)  # the exact bytes, CRLF line ends included
    assert isinstance(data, bytes)
    return _lf(text.get_content()), _lf(html.get_content()), data


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n")


def edit(root: Path, old: str, new: str) -> None:
    path = root / "series/seminars/events/talk.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


# -- structure ----------------------------------------------------------------------------------


def test_announcement_is_text_and_html_with_the_event_ics(make_project: MakeProject) -> None:
    root = project(make_project)
    [item] = due_messages(root, ANNOUNCE_AT)
    message = wire(item.message)
    assert message.get_content_type() == "multipart/mixed"
    alternative, calendar = message.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in alternative.iter_parts()] == ["text/plain", "text/html"]
    assert calendar.get_content_type() == "text/calendar"
    assert calendar.get_filename() == "event.ics"
    assert calendar.get_param("method") == "PUBLISH"
    assert calendar.get_content_charset() == "utf-8"
    assert str(message["Subject"]) == "Open data in cities (Dec 4, 2026)"
    assert str(message["To"]) == "seminars@lists.example.org"
    assert str(message["From"]) == "Seminars <seminars@example.org>"
    assert message["Date"].datetime == ANNOUNCE_AT
    assert str(message["List-Id"]) == "Policy Seminars <seminars.events.example.org>"
    assert message["In-Reply-To"] is None and message["List-Unsubscribe"] is None
    assert item.recipient == "seminars@lists.example.org"
    assert item.key == "seminars/talk announcement.0 seminars@lists.example.org"


def test_text_and_html_say_what_when_where_and_who(make_project: MakeProject) -> None:
    [item] = due_messages(project(make_project), ANNOUNCE_AT)
    text, html, _ = bodies(wire(item.message))
    for part in (text, html):
        assert "You are invited to the next event of Policy Seminars." in part
        assert "Friday, December 4, 2026, 12:00\u2009–\u200913:30 EST" in part
        assert "Room 2200, Richcraft Hall" in part
        assert "Ann Smith, Carleton University" in part
        assert "https://events.example.org/seminars/talk/" in part
        assert "https://events.example.org/seminars/talk/event.ics" in part
        assert "webcal://events.example.org/seminars/calendar.ics" in part
    assert "Who uses open data, and for what?" in text
    assert "<em>open data</em>" in html
    assert 'href="https://calendar.google.com/calendar/render?action=TEMPLATE&amp;text=Open%20data' in html
    assert "https://outlook.live.com/calendar/0/deeplink/compose?" in html
    assert "\n-- \n" in text


def test_the_attachment_is_the_published_event_ics(make_project: MakeProject, tmp_path: Path) -> None:
    root = project(make_project)
    out = tmp_path / "out"
    pipeline.build(root, out, now=ANNOUNCE_AT - timedelta(days=3), adapters=[IcsAdapter()])
    [item] = due_messages(root, ANNOUNCE_AT)
    _, _, data = bodies(wire(item.message))
    assert data == (out / "seminars/talk/event.ics").read_bytes()


def test_ical_js_reads_the_attachment_with_the_published_uid_and_sequence(
    make_project: MakeProject, tmp_path: Path
) -> None:
    root = project(make_project)
    sent(root, ANNOUNCE_AT)
    edit(root, "Room 2200", "Room 3300")
    [update] = due_messages(root, ANNOUNCE_AT + timedelta(days=1))
    path = tmp_path / "update.ics"
    path.write_bytes(bodies(wire(update.message))[2])
    dump = icaljs_dump(path)
    assert dump["errors"] == []
    assert dump["calendar"]["METHOD"] == "PUBLISH"
    [event] = dump["events"]
    assert event["uid"] == "talk.seminars@announcer"
    assert event["sequence"] == 1
    assert event["location"] == "Room 3300, Richcraft Hall"
    assert event["start"] == "2026-12-04T17:00:00Z"


def test_cancellation_attaches_a_cancel_with_matching_mime_method(
    make_project: MakeProject, tmp_path: Path
) -> None:
    root = project(make_project)
    sent(root, ANNOUNCE_AT)
    edit(root, "duration: 90m", "duration: 90m\nstatus: cancelled")
    out = tmp_path / "out"
    pipeline.build(root, out, now=ANNOUNCE_AT + timedelta(days=1), adapters=[IcsAdapter()])
    [item] = due_messages(root, ANNOUNCE_AT + timedelta(days=1))
    message = wire(item.message)
    text, html, data = bodies(message)
    calendar = next(iter(message.iter_attachments()))
    assert calendar.get_param("method") == "CANCEL"
    assert str(message["Subject"]) == "Cancelled: Open data in cities (Dec 4, 2026)"
    assert "This event has been cancelled." in text and "This event has been cancelled." in html
    assert "calendar.google.com" not in text + html
    path = tmp_path / "cancel.ics"
    path.write_bytes(data)
    dump = icaljs_dump(path)
    assert dump["errors"] == [] and dump["calendar"]["METHOD"] == "CANCEL"
    published = icalendar.Calendar.from_ical((out / "seminars/talk/event.ics").read_bytes())
    [vevent] = published.walk("VEVENT")
    assert dump["events"][0]["status"] == "CANCELLED"
    assert dump["events"][0]["sequence"] == vevent["SEQUENCE"] == 1
    assert dump["events"][0]["uid"] == str(vevent["UID"])


def test_the_mime_method_always_equals_the_calendar_method(make_project: MakeProject) -> None:
    root = project(make_project)
    messages = sent(root, ANNOUNCE_AT)
    edit(root, "Room 2200", "Room 1")
    messages += sent(root, ANNOUNCE_AT + timedelta(days=1))
    messages += sent(root, datetime(2026, 12, 3, 14, tzinfo=UTC))
    edit(root, "duration: 90m", "duration: 90m\nstatus: cancelled")
    messages += sent(root, datetime(2026, 12, 3, 18, tzinfo=UTC))
    assert [m.due.kind for m in messages] == ["announcement", "update", "reminder", "cancellation"]
    for item in messages:
        part = next(iter(wire(item.message).iter_attachments()))
        data = part.get_payload(decode=True)
        assert isinstance(data, bytes)
        method = re.search(rb"\r\nMETHOD:(\w+)\r\n", data)
        assert method is not None
        assert part.get_param("method") == method.group(1).decode()


# -- identity and threading ---------------------------------------------------------------------


def test_the_same_message_is_the_same_bytes(make_project: MakeProject) -> None:
    """A re-run after a crash must plan exactly what the first run planned."""
    root = project(make_project, mailing=PEOPLE)
    first = [m.message.as_bytes() for m in due_messages(root, ANNOUNCE_AT)]
    assert first == [m.message.as_bytes() for m in due_messages(root, ANNOUNCE_AT)]
    assert b"boundary=\"=_0_" in first[0]


def test_message_ids_are_stable_and_distinct(make_project: MakeProject) -> None:
    root = project(make_project, mailing=PEOPLE)
    first = due_messages(root, ANNOUNCE_AT)
    again = due_messages(root, ANNOUNCE_AT + timedelta(hours=5))
    ids = [str(m.message["Message-ID"]) for m in first]
    assert ids == [str(m.message["Message-ID"]) for m in again]
    assert len(set(ids)) == 2
    assert all(re.fullmatch(r"<announcement\.0\.[0-9a-f]{24}@example\.org>", i) for i in ids)


def test_reminders_updates_and_cancellations_thread_under_the_announcement(
    make_project: MakeProject,
) -> None:
    root = project(make_project, mailing=PEOPLE)
    announcements = {m.recipient: str(m.message["Message-ID"]) for m in sent(root, ANNOUNCE_AT)}
    edit(root, "Room 2200", "Room 1")
    later = sent(root, ANNOUNCE_AT + timedelta(days=1))
    later += sent(root, datetime(2026, 12, 3, 14, tzinfo=UTC))
    assert {m.due.kind for m in later} == {"update", "reminder"}
    for item in later:
        message = wire(item.message)
        root_id = announcements[item.recipient]
        assert str(message["In-Reply-To"]) == root_id
        assert str(message["References"]) == root_id
        assert str(message["Message-ID"]) not in announcements.values()
    assert len({str(m.message["Message-ID"]) for m in later}) == 4


def test_without_an_announcement_reminders_share_a_thread_root(make_project: MakeProject) -> None:
    root = project(make_project)
    series = root / "series/seminars/series.yaml"
    series.write_text(
        series.read_text().replace("  - {kind: announcement, days_before: 7}\n", "")
        .replace("{kind: reminder, days_before: 1}", "{kind: reminder, days_before: 1}\n  - {kind: reminder, days_before: 3}"),
        encoding="utf-8",
    )
    first = sent(root, datetime(2026, 12, 1, 14, tzinfo=UTC))
    second = sent(root, datetime(2026, 12, 3, 14, tzinfo=UTC))
    assert [m.due.revision for m in first + second] == ["reminder.0.3d", "reminder.0.1d"]
    roots = {str(m.message["In-Reply-To"]) for m in first + second}
    assert len(roots) == 1 and roots.pop().startswith("<thread.")


# -- per-recipient mode -------------------------------------------------------------------------


def test_per_recipient_messages_carry_a_personal_one_click_unsubscribe(
    make_project: MakeProject,
) -> None:
    messages = due_messages(project(make_project, mailing=PEOPLE), ANNOUNCE_AT)
    assert [m.recipient for m in messages] == ["zoe@example.org", "al@example.org"]
    zoe = wire(messages[0].message)
    assert str(zoe["To"]) == "Zoë Tremblay <zoe@example.org>"
    url = "https://example.org/unsubscribe?list=seminars&email=zoe%40example.org"
    assert str(zoe["List-Unsubscribe"]) == f"<{url}>"
    assert str(zoe["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    raw = messages[0].message.as_bytes()
    assert f"List-Unsubscribe: <{url}>".encode() in raw  # raw, never RFC 2047-encoded
    text, html, _ = bodies(zoe)
    assert url in text and url.replace("&", "&amp;") in html
    al = wire(messages[1].message)
    assert "email=al%40example.org" in str(al["List-Unsubscribe"])


def test_a_long_unsubscribe_url_stays_one_raw_header(make_project: MakeProject) -> None:
    token = "t" * 300
    mailing = PEOPLE.replace("email={email}", f"email={{email}}&token={token}")
    [zoe, _] = due_messages(project(make_project, mailing=mailing), ANNOUNCE_AT)
    raw = zoe.message.as_bytes(policy=zoe.message.policy.clone(linesep="\r\n"))
    line = next(x for x in raw.split(b"\r\n") if x.startswith(b"List-Unsubscribe:"))
    assert token.encode() in line and b"=?" not in line
    assert token in str(wire(zoe.message)["List-Unsubscribe"])


def test_plain_http_unsubscribe_gets_no_one_click_header(make_project: MakeProject) -> None:
    mailing = PEOPLE.replace("https://", "http://")
    [zoe, _] = due_messages(project(make_project, mailing=mailing), ANNOUNCE_AT)
    assert zoe.message["List-Unsubscribe"] is not None
    assert zoe.message["List-Unsubscribe-Post"] is None


@pytest.mark.parametrize(
    "template",
    ["not a url {email}", "https://example.org/u?e={email}> <https://evil.example", "mailto:{email}"],
)
def test_a_broken_unsubscribe_template_is_refused(make_project: MakeProject, template: str) -> None:
    mailing = f"{{recipients: people.csv, unsubscribe_url: '{template}'}}"
    with pytest.raises(ConfigError, match="unsubscribe_url"):
        due_messages(project(make_project, mailing=mailing), ANNOUNCE_AT)


def test_a_list_message_has_no_unsubscribe_header(make_project: MakeProject) -> None:
    mailing = "{to: seminars@lists.example.org, unsubscribe_url: 'https://example.org/u?e={email}'}"
    [item] = due_messages(project(make_project, mailing=mailing), ANNOUNCE_AT)
    assert item.message["List-Unsubscribe"] is None


def test_no_sender_is_a_config_error(make_project: MakeProject) -> None:
    root = project(make_project, extra={"announcer.yaml": "title: No sender\n"})
    with pytest.raises(ConfigError, match=r"set email\.from"):
        due_messages(root, ANNOUNCE_AT)


# -- injection ----------------------------------------------------------------------------------

HOSTILE_TITLE = 'Talk\r\nBcc: victim@example.com\nX-Injected: yes {{ 7*7 }} <script>alert("t")</script>'


def hostile(make_project: MakeProject) -> Path:
    talk = {
        "title": HOSTILE_TITLE,
        "start": "2026-12-04 12:00",
        "location": '"><img src=x onerror=alert(1)> Room',
        "online_url": "https://example.org/stream?a=1&b='2'&c=%3Cx%3E",
        "speakers": [{"name": "<b>Eve</b>\nBcc: x@example.com", "affiliation": "{{ config }}"}],
        "abstract": "<script>alert('abstract')</script>\n[click](javascript:alert(1)) {% raw %}\n",
    }
    people = 'email,name\neve@example.org,"Eve\r\nBcc: victim@example.com"\n'
    return project(
        make_project,
        yaml.safe_dump(talk, allow_unicode=True),
        mailing=PEOPLE,
        extra={"series/seminars/people.csv": people},
    )


def test_no_field_can_create_a_header(make_project: MakeProject) -> None:
    root = hostile(make_project)
    [item] = due_messages(root, ANNOUNCE_AT)
    message = wire(item.message)
    names = {name.lower() for name in message}
    assert "bcc" not in names and "x-injected" not in names
    assert str(message["Subject"]).startswith("Talk Bcc: victim@example.com X-Injected: yes")
    assert [a.addr_spec for a in message["To"].addresses] == ["eve@example.org"]
    assert message["To"].addresses[0].display_name == "Eve Bcc: victim@example.com"
    raw = item.message.as_bytes(policy=item.message.policy.clone(linesep="\r\n"))
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert not re.search(rb"^(Bcc|X-Injected):", head, re.MULTILINE | re.IGNORECASE)


def test_event_text_is_escaped_in_html_and_never_run_as_a_template(
    make_project: MakeProject,
) -> None:
    [item] = due_messages(hostile(make_project), ANNOUNCE_AT)
    message = wire(item.message)
    text, html, _ = bodies(message)
    assert "{{ 7*7 }}" in str(message["Subject"]) and "49" not in str(message["Subject"])
    assert "{{ 7*7 }}" in text and "{{ 7*7 }}" in html and "49" not in text + html
    assert "{{ config }}" in text and "{{ config }}" in html
    assert "<script" not in html.lower()
    assert "&lt;script&gt;" in html
    assert "<img" not in html and "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<b>Eve</b>" not in html and "&lt;b&gt;Eve&lt;/b&gt;" in html
    assert "javascript:" not in "".join(re.findall(r'href="([^"]*)"', html))
    assert "{% raw %}" in text and "{% raw %}" in html
    assert 'href="https://example.org/stream?a=1&amp;b=&#39;2&#39;&amp;c=%3Cx%3E"' in html


# -- languages and templates --------------------------------------------------------------------


def test_french_series_speaks_french(make_project: MakeProject) -> None:
    root = project(make_project, language="fr")
    sent(root, ANNOUNCE_AT)
    [item] = due_messages(root, datetime(2026, 12, 3, 14, tzinfo=UTC))
    message = wire(item.message)
    text, html, _ = bodies(message)
    assert str(message["Subject"]) == "Rappel\u00a0: Open data in cities (4 déc. 2026)"
    assert "vendredi 4 décembre 2026" in text and "vendredi 4 décembre 2026" in html
    assert "Quand\u00a0: vendredi" in text and "Lieu\u00a0: Room 2200" in text
    assert "Rappel\u00a0: cet événement de la série Policy Seminars approche." in text
    assert '<html lang="fr">' in html
    assert "Google Agenda" in html


def test_site_templates_override_the_package_ones(make_project: MakeProject) -> None:
    root = project(
        make_project,
        extra={
            "templates/email/announcement.txt": "Site text for {{ event.title }}\n",
            "templates/email/subject.txt": "[Seminar] {{ event.title }}\n",
        },
    )
    [item] = due_messages(root, ANNOUNCE_AT)
    text, html, _ = bodies(wire(item.message))
    assert text == "Site text for Open data in cities\n"
    assert "You are invited" in html  # HTML not overridden
    assert str(item.message["Subject"]) == "[Seminar] Open data in cities"


def test_series_templates_override_the_site_ones(make_project: MakeProject) -> None:
    root = project(
        make_project,
        extra={
            "templates/email/subject.txt": "[Site] {{ event.title }}",
            "series/seminars/templates/email/subject.txt": "[Series]\n{{ event.title }}\nBcc: x@example.com",
            "series/seminars/templates/email/announcement.html": (
                "{% extends 'email/base.html' %}{% block intro %}Series intro {{ event.title }}{% endblock %}"
            ),
        },
    )
    [item] = due_messages(root, ANNOUNCE_AT)
    message = wire(item.message)
    assert str(message["Subject"]) == "[Series] Open data in cities Bcc: x@example.com"
    assert message["Bcc"] is None
    assert "Series intro Open data in cities" in bodies(message)[1]


def test_one_line_flattens_every_kind_of_line_break() -> None:
    breaks = "a\r\nb\nc\rd\x0be\x0cf\x1cg\x1dh\x1ei\x85j\u2028k\u2029l\tm\x00n"
    assert compose.one_line(breaks) == "a b c d e f g h i j k l m n"
    assert compose.one_line("Rappel\u00a0:  x ") == "Rappel\u00a0: x"


# -- recurring events ---------------------------------------------------------------------------

READING = """
    title: Reading group
    start: 2026-11-06 12:00
    duration: 1h
    repeat: {every: week, count: 6}
    occurrences:
      2026-12-04: {location: Room 9}
"""


def test_an_occurrence_attaches_the_series_of_dates(make_project: MakeProject, tmp_path: Path) -> None:
    root = project(make_project, READING)
    out = tmp_path / "out"
    pipeline.build(root, out, now=ANNOUNCE_AT, adapters=[IcsAdapter()])
    [item] = [m for m in due_messages(root, ANNOUNCE_AT) if m.due.event.id.endswith("12-04")]
    assert item.due.event.key == "seminars/talk/2026-12-04"
    _, _, data = bodies(wire(item.message))
    assert data == (out / "seminars/talk/event.ics").read_bytes()
    assert b"RRULE:FREQ=WEEKLY;COUNT=6" in data


def test_cancelling_one_date_cancels_only_that_occurrence(
    make_project: MakeProject, tmp_path: Path
) -> None:
    root = project(make_project, READING)
    sent(root, ANNOUNCE_AT)
    edit(root, "{location: Room 9}", "{location: Room 9, status: cancelled}")
    out = tmp_path / "out"
    pipeline.build(root, out, now=ANNOUNCE_AT + timedelta(days=1), adapters=[IcsAdapter()])
    [item] = due_messages(root, ANNOUNCE_AT + timedelta(days=1))
    assert item.due.kind == "cancellation"
    path = tmp_path / "cancel.ics"
    path.write_bytes(bodies(wire(item.message))[2])
    dump = icaljs_dump(path)
    assert dump["errors"] == [] and dump["calendar"]["METHOD"] == "CANCEL"
    [event] = dump["events"]
    assert event["recurrence_id"] is not None and event["recurrence_id"].startswith("2026-12-04")
    assert event["status"] == "CANCELLED"
    published = icalendar.Calendar.from_ical((out / "seminars/talk/event.ics").read_bytes())
    override = next(v for v in published.walk("VEVENT") if "RECURRENCE-ID" in v)
    assert event["sequence"] == override["SEQUENCE"] and event["uid"] == str(override["UID"])


def test_targets_of_a_list_with_several_addresses() -> None:
    from announcer.model import MailingList, Series

    series = Series("s", "S", "UTC", "en", mailing_list=MailingList(to="a@x.org, B <b@y.org>"))
    [target] = compose.targets(series)
    assert [a.addr_spec for a in target.to] == ["a@x.org", "b@y.org"]
    people = MailingList(recipients=(Recipient("C@Z.org", "C"),))
    [person] = compose.targets(Series("s", "S", "UTC", "en", mailing_list=people))
    assert person.identity == "c@z.org" and person.person == people.recipients[0]
    assert compose.sender(Site(email=Site().email.__class__(sender="A <a@b.org>"))).domain == "b.org"
