"""``announcer.yaml`` and ``series.yaml``: the settings around the events."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from pathlib import Path

import yaml

from announcer.errors import Diagnostic
from announcer.load.fields import Fields, Reader
from announcer.model import (
    ANNOUNCE_KINDS,
    SECURITIES,
    AnnounceRule,
    CalendarSettings,
    EmailSettings,
    FeedSettings,
    MailingList,
    Person,
    Recipient,
    Series,
    Site,
    SmtpSettings,
)
from announcer.times import TimeError, parse_duration, zone

SITE_KEYS = (
    "title",
    "base_url",
    "output",
    "language",
    "email",
    "outputs",
    "calendar",
    "feeds",
    "ledger",
)
EMAIL_KEYS = ("from", "smtp", "outbox")
SMTP_KEYS = ("host", "port", "security", "username_env", "password_env")
CALENDAR_KEYS = ("past_days", "refresh", "size_warning")
SERIES_KEYS = (
    "title",
    "description",
    "timezone",
    "language",
    "organizer",
    "default_duration",
    "default_location",
    "mailing_list",
    "announce",
)
LIST_KEYS = ("to", "recipients", "unsubscribe_url")
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
_LANGUAGE = re.compile(r"[a-z]{2,3}(?:[-_][A-Za-z]{2,4})?")
_EMAIL = re.compile(r"[^@\s<>\",;]+@[^@\s<>\",;]+\.[^@\s<>\",;]+")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def read_site(reader: Reader, root: yaml.Node | None) -> Site:
    """Site settings; a missing ``announcer.yaml`` means every default."""
    fields = reader.mapping(root, "announcer.yaml", SITE_KEYS) if root is not None else None
    if fields is None:
        return Site()
    base_url = fields.text("base_url", Site.base_url).strip()
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", base_url):
        fields.error(
            "base_url",
            f"'base_url' is not an absolute web address: {base_url!r}",
            "write it like https://events.example.org/",
        )
    outputs = tuple(name for name, _ in fields.texts("outputs")) if "outputs" in fields else None
    return Site(
        title=fields.text("title", Site.title).strip(),
        base_url=base_url.rstrip("/") + "/",
        output=fields.text("output", Site.output),
        language=_language(fields, "en"),
        email=_email(reader, fields.get("email")),
        outputs=outputs,
        calendar=_calendar(reader, fields.get("calendar")),
        feeds=_feeds(reader, fields.get("feeds")),
        ledger=fields.text("ledger", Site.ledger),
    )


def _language(fields: Fields, default: str) -> str:
    value = fields.text("language", default).strip()
    if not _LANGUAGE.fullmatch(value):
        fields.error(
            "language",
            f"'language' {value!r} is not a language code",
            "use a code like en, fr or en-CA",
        )
        return default
    return value


def _email(reader: Reader, node: yaml.Node | None) -> EmailSettings:
    fields = reader.mapping(node, "'email'", EMAIL_KEYS)
    if fields is None:
        return EmailSettings()
    smtp = reader.mapping(fields.get("smtp"), "'smtp'", SMTP_KEYS)
    return EmailSettings(
        sender=fields.text("from").strip(),
        smtp=_smtp(smtp) if smtp else None,
        outbox=fields.text("outbox", EmailSettings.outbox),
    )


def _smtp(fields: Fields) -> SmtpSettings | None:
    if not fields.require("host"):
        return None
    host = fields.text("host").strip()
    security = fields.choice("security", SECURITIES, "starttls")
    if security == "none" and host not in LOCAL_HOSTS:
        fields.error(
            "security",
            f"'security: none' would send mail and passwords in clear to {host}",
            "use starttls or tls; 'none' is only for localhost",
        )
    for key in ("username_env", "password_env"):
        if key in fields and not _ENV_NAME.fullmatch(fields.text(key)):
            fields.error(
                key,
                f"{key!r} must name an environment variable, like ANNOUNCER_SMTP_USER",
                "never put the credential itself in this file",
            )
    default_port = {"tls": 465, "starttls": 587, "none": 25}[security]
    return SmtpSettings(
        host=host,
        port=fields.integer("port", minimum=1) or default_port,
        security=security,
        username_env=fields.text("username_env"),
        password_env=fields.text("password_env"),
    )


def _calendar(reader: Reader, node: yaml.Node | None) -> CalendarSettings:
    fields = reader.mapping(node, "'calendar'", CALENDAR_KEYS)
    if fields is None:
        return CalendarSettings()
    refresh = fields.parsed("refresh", parse_duration) or CalendarSettings.refresh
    return CalendarSettings(
        past_days=_limit(fields, "past_days", CalendarSettings.past_days),
        refresh=refresh,
        size_warning=fields.integer("size_warning", 1) or CalendarSettings.size_warning,
    )


def _feeds(reader: Reader, node: yaml.Node | None) -> FeedSettings:
    fields = reader.mapping(node, "'feeds'", ("limit",))
    return (
        FeedSettings(limit=_limit(fields, "limit", FeedSettings.limit))
        if fields
        else FeedSettings()
    )


def _limit(fields: Fields, key: str, default: int | None) -> int | None:
    """A count where ``all`` means no limit."""
    if fields.text(key).strip().lower() == "all":
        return None
    value = fields.integer(key, minimum=0)
    return default if value is None else value


def read_series(
    reader: Reader, root: yaml.Node, slug: str, folder: Path, site: Site, root_dir: Path
) -> Series | None:
    fields = reader.mapping(root, "series.yaml", SERIES_KEYS)
    if fields is None or not fields.require("title", "timezone"):
        return None
    tz = fields.text("timezone").strip()
    try:
        zone(tz)
    except TimeError as exc:
        fields.error("timezone", str(exc), exc.hint)
    return Series(
        slug=slug,
        title=fields.text("title").strip(),
        timezone=tz,
        language=_language(fields, site.language),
        description=fields.text("description"),
        organizer=_organizer(reader, fields.get("organizer")),
        default_duration=fields.parsed("default_duration", parse_duration) or timedelta(hours=1),
        default_location=fields.text("default_location").strip(),
        mailing_list=_mailing_list(reader, fields.get("mailing_list"), folder, root_dir),
        announce=_announce(reader, fields),
    )


def _organizer(reader: Reader, node: yaml.Node | None) -> Person | None:
    fields = reader.mapping(node, "'organizer'", ("name", "email"))
    if fields is None or not fields.require("name"):
        return None
    email = fields.text("email").strip()
    if email and not _EMAIL.fullmatch(email):
        fields.error("email", f"{email!r} is not an email address")
    return Person(name=fields.text("name").strip(), email=email)


def _announce(reader: Reader, fields: Fields) -> tuple[AnnounceRule, ...]:
    node = fields.get("announce")
    if node is None:
        return ()
    if not isinstance(node, yaml.SequenceNode):
        fields.error(
            "announce",
            "'announce' must be a list of rules",
            "write e.g. '- {kind: announcement, days_before: 7}'",
        )
        return ()
    rules = []
    for item in node.value:
        rule = reader.mapping(item, "an 'announce' rule", ("kind", "days_before"))
        if rule is None or not rule.require("kind", "days_before"):
            continue
        days = rule.integer("days_before", minimum=0)
        kind = rule.choice("kind", ANNOUNCE_KINDS, "announcement")
        if days is not None:
            rules.append(AnnounceRule(kind=kind, days_before=days))
    return tuple(rules)


def _mailing_list(
    reader: Reader, node: yaml.Node | None, folder: Path, root_dir: Path
) -> MailingList | None:
    fields = reader.mapping(node, "'mailing_list'", LIST_KEYS)
    if fields is None:
        return None
    to = fields.text("to").strip()
    if to and not _EMAIL.search(to):
        fields.error("to", f"{to!r} is not an email address")
    if bool(to) == ("recipients" in fields):
        fields.error(
            None,
            "'mailing_list' needs exactly one of 'to' or 'recipients'",
            "'to' sends one message to a list; 'recipients' one per person",
        )
        return None
    recipients: tuple[Recipient, ...] = ()
    if "recipients" in fields:
        recipients = _recipients(reader, fields, folder / fields.text("recipients"), root_dir)
    return MailingList(to=to, recipients=recipients, unsubscribe_url=fields.text("unsubscribe_url"))


def _recipients(
    reader: Reader, fields: Fields, file: Path, root_dir: Path
) -> tuple[Recipient, ...]:
    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        fields.error(
            "recipients",
            f"cannot read the recipients file {file.name}: {exc}",
            "give a UTF-8 CSV file with columns email,name, relative to the series folder",
        )
        return ()
    shown = file.relative_to(root_dir).as_posix() if file.is_relative_to(root_dir) else str(file)
    csv_reader = Reader(shown, reader.problems)
    found: dict[str, Recipient] = {}
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        _recipient(csv_reader, number, row, found)
    return tuple(found.values())


def _recipient(reader: Reader, line: int, row: list[str], found: dict[str, Recipient]) -> None:
    if not row or not "".join(row).strip() or (line == 1 and row[0].strip().lower() == "email"):
        return
    email, name = row[0].strip(), (row[1].strip() if len(row) > 1 else "")
    if not _EMAIL.fullmatch(email):
        reader.problems.append(
            Diagnostic(
                reader.path,
                line,
                1,
                f"{email!r} is not an email address",
                "one recipient per line: email,name",
            )
        )
    elif email.lower() not in found:
        found[email.lower()] = Recipient(email=email, name=name)
