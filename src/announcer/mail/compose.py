"""One email per due message and recipient, rendered from templates.

Each message is multipart/alternative text + HTML with the event's .ics attached:
the very calendar the site publishes (same UID, same SEQUENCE), with a METHOD of
PUBLISH, or CANCEL for a cancellation, and the MIME ``method=`` taken from the same
value so the two can never disagree (Outlook rejects a message where they do).

Everything in the headers is built here, never by a template, from values with
their line breaks removed: no event text can add a header. Message-IDs are derived
from (event, kind, revision, recipient) alone, so a re-run or a crash produces the
same IDs, and replies, reminders and cancellations thread under the announcement.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage, MIMEPart
from email.policy import EmailPolicy
from email.utils import format_datetime, getaddresses
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from babel.dates import format_date

from announcer import templating, urls
from announcer.adapters import addto
from announcer.adapters.base import BuildContext
from announcer.adapters.ics import event_calendar
from announcer.errors import ConfigError
from announcer.i18n import labels
from announcer.ledger import Ledger
from announcer.mail.schedule import Due
from announcer.model import Event, Recipient, Series, Site

# Characters Python's str.splitlines() breaks on, plus tabs: none may reach a header.
_BREAKS = re.compile(r"[\r\n\t\v\f\x1c-\x1e\x85\u2028\u2029]+")
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")
_SPACES = re.compile(r" {2,}")
_PHRASE_SPECIALS = re.compile(r'[()<>@,;:\\".\[\]]')
_URL = re.compile(r"https?://[^\s<>\"]+")
_VERBATIM = frozenset({"list-unsubscribe", "list-unsubscribe-post"})


class MailPolicy(EmailPolicy):
    """The default policy, except that List-Unsubscribe is never RFC 2047-encoded.

    Python encodes a header it cannot fold at whitespace, and a long unsubscribe URL
    has none; mail providers read the header raw, so an encoded URL would be dead.
    """

    def fold(self, name: str, value: str) -> str:
        if name.lower() in _VERBATIM and str(value).isascii():
            return f"{name}: {value}{self.linesep}"
        return str(super().fold(name, value))

    def fold_binary(self, name: str, value: str) -> bytes:
        if name.lower() in _VERBATIM and str(value).isascii():
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return bytes(super().fold_binary(name, value))


POLICY = MailPolicy()


@dataclass(frozen=True)
class Composed:
    """One message for one envelope recipient; ``key`` is the outbox's idempotency key."""

    due: Due
    recipient: str
    key: str
    message: EmailMessage


@dataclass(frozen=True)
class _Target:
    """Whom one message goes to: the list address(es), or one person."""

    identity: str  # what the Message-ID and the outbox key are derived from
    to: tuple[Address, ...]
    person: Recipient | None = None


def one_line(text: str) -> str:
    """``text`` fit for a header: line breaks and control characters become spaces."""
    return _SPACES.sub(" ", _CONTROLS.sub(" ", _BREAKS.sub(" ", text))).strip(" ")


def compose(site: Site, project: Path, ledger: Ledger, due: Due, now: datetime) -> list[Composed]:
    """Every message ``due`` sends: one to the list, or one per recipient."""
    shared = _Shared.of(site, project, ledger, due, now)
    return [
        Composed(due, target.identity, message_key(due, target.identity), shared.message(target))
        for target in targets(due.series)
    ]


def message_key(due: Due, identity: str) -> str:
    """``<series>/<event> <kind>.<sequence>[.<N>d] <recipient>``: readable and stable."""
    return f"{due.event.key} {due.revision} {identity}"


def targets(series: Series) -> list[_Target]:
    """The list address as one target, or each recipient as one."""
    found = series.mailing_list
    if found is None:
        return []
    if found.to:
        to = tuple(_address(name, address) for name, address in getaddresses([one_line(found.to)]))
        return [_Target(", ".join(a.addr_spec for a in to).lower(), to)]
    return [_Target(r.email.lower(), (_address(r.name, r.email),), r) for r in found.recipients]


def _address(name: str, address: str) -> Address:
    try:
        return Address(display_name=one_line(name), addr_spec=one_line(address))
    except (ValueError, IndexError) as exc:
        raise ConfigError(f"{address!r} cannot be used as an email address ({exc})") from None


def sender(site: Site) -> Address:
    """The From address of announcer.yaml, checked before anything is planned."""
    pairs = getaddresses([one_line(site.email.sender)])
    if not site.email.sender.strip() or len(pairs) != 1 or "@" not in pairs[0][1]:
        raise ConfigError(
            "announcer.yaml: set email.from to the address announcements come from, "
            'like "Seminars <seminars@example.org>"'
        )
    return _address(*pairs[0])


@dataclass(frozen=True)
class _Shared:
    """What every recipient's copy of one due message has in common, worked out once."""

    site: Site
    project: Path
    due: Due
    now: datetime
    sender: Address
    domain: str
    calendar: bytes
    method: str
    announced: int | None  # the revision the announcement went out for, if it did
    context: Mapping[str, Any]

    @classmethod
    def of(cls, site: Site, project: Path, ledger: Ledger, due: Due, now: datetime) -> _Shared:
        source = sender(site)
        method = "CANCEL" if due.kind == "cancellation" else "PUBLISH"
        build = BuildContext(site=site, ledger=ledger, project=project, now=now)
        calendar = attachment(build, due.event, due.series, method)
        sent = ledger.revision(due.event).announced.get("announcement")
        domain = source.domain.lower() or urlsplit(site.base_url).hostname or "localhost"
        context = template_context(site, due)
        announced = sent.sequence if sent else None
        return cls(site, project, due, now, source, domain, calendar, method, announced, context)

    def message(self, target: _Target) -> EmailMessage:
        text, html, subject = render(self.project, self.due, self.context, target)
        message = EmailMessage(policy=POLICY)
        message["Subject"] = subject
        message["From"] = self.sender
        message["To"] = target.to
        message["Date"] = format_datetime(self.now)
        message["Message-ID"] = self.message_id(self.due.revision, target)
        self.thread(message, target)
        self.list_headers(message, target)
        message.set_content(text, cte="quoted-printable")
        message.add_alternative(html, subtype="html", cte="quoted-printable")
        message.add_attachment(
            self.calendar,
            maintype="text",
            subtype="calendar",
            filename="event.ics",
            params={"method": self.method, "charset": "utf-8"},
        )
        for part in message.iter_parts():
            _tidy(part)
        _boundaries(message, str(message["Message-ID"]))
        return message

    def message_id(self, revision: str, target: _Target) -> str:
        """Stable per (event, kind, revision, recipient); no clock, no randomness."""
        seed = f"{self.due.event.uid}\0{self.due.event.key}\0{target.identity}"
        digest = hashlib.sha256(seed.encode("utf-8")).hexdigest()[:24]
        return f"<{revision}.{digest}@{self.domain}>"

    def thread(self, message: EmailMessage, target: _Target) -> None:
        """Everything after the announcement replies to it (or to a stable thread root)."""
        if self.due.kind == "announcement":
            return
        root = (
            self.message_id(f"announcement.{self.announced}", target)
            if self.announced is not None
            else self.message_id("thread", target)
        )
        message["In-Reply-To"] = root
        message["References"] = root

    def list_headers(self, message: EmailMessage, target: _Target) -> None:
        series = self.due.series
        host = urlsplit(self.site.base_url).hostname or self.domain
        phrase = one_line(_PHRASE_SPECIALS.sub("", series.title)) or series.slug
        message["List-Id"] = f"{phrase} <{series.slug}.{host}>"
        unsubscribe = unsubscribe_url(series, target.person)
        if unsubscribe:
            message["List-Unsubscribe"] = f"<{unsubscribe}>"
            if unsubscribe.startswith("https://"):  # RFC 8058 one-click needs HTTPS
                message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"


def _tidy(part: MIMEPart) -> None:
    """Sub-parts need no MIME-Version of their own (Python adds one to each)."""
    del part["MIME-Version"]
    if part.is_multipart():
        for child in part.iter_parts():
            _tidy(child)


def _boundaries(message: MIMEPart, seed: str) -> None:
    """Boundaries from the Message-ID, so the same message is the same bytes every time.

    They begin with ``=_``, which quoted-printable and base64 bodies cannot contain.
    """
    digest = hashlib.sha256(seed.encode("utf-8")).hexdigest()[:24]
    for depth, part in enumerate(p for p in message.walk() if p.is_multipart()):
        part.set_boundary(f"=_{depth}_{digest}")


def unsubscribe_url(series: Series, person: Recipient | None) -> str:
    """The series' unsubscribe URL template with this recipient's address filled in.

    Only per-recipient messages get one: a list address has its own list manager.
    The address is percent-encoded, so it cannot end the URL or the header.
    """
    template = series.mailing_list.unsubscribe_url.strip() if series.mailing_list else ""
    if person is None or not template:
        return ""
    url = template.replace("{email}", quote(person.email, safe=""))
    if not _URL.fullmatch(url) or len(url) > 900:
        raise ConfigError(
            f"series {series.slug}: unsubscribe_url must be one http(s) address without "
            f"spaces, quotes or angle brackets, like https://example.org/unsubscribe?e={{email}}"
        )
    return url


def attachment(build: BuildContext, event: Event, series: Series, method: str) -> bytes:
    """The published event.ics; for one cancelled date of a series, just that date."""
    if event.recurrence_id is None:
        return event_calendar(build, event, method)
    master = next(e for e in series.events if e.id == event.id.split("/")[0])
    changed = event.recurrence_id in {o.recurrence_id for o in master.overrides}
    part = event if method == "CANCEL" and changed else None
    return event_calendar(build, master, method, part)


def template_context(site: Site, due: Due) -> dict[str, Any]:
    """What every template gets, besides the recipient (see email/base.txt)."""
    event, series = due.event, due.series
    page = urls.absolute(site, urls.event_page(event))
    calendar = urls.absolute(site, urls.series_calendar(series))
    return {
        "kind": due.kind,
        "event": event,
        "series": series,
        "site": site,
        "language": series.language,
        "words": labels(series.language),
        "when_text": templating.when(event, series.language),
        "day": format_date(event.start, "medium", locale=templating.babel_locale(series.language)),
        "page_url": page,
        "ics_url": urls.absolute(site, urls.event_ics(event)),
        "add": addto.links(event, page),
        "calendar_url": calendar,
        "webcal_url": urls.webcal(calendar),
    }


def render(
    project: Path, due: Due, shared: Mapping[str, Any], target: _Target
) -> tuple[str, str, str]:
    """The text part, the HTML part and the subject, from the series' templates."""
    env = templating.environment(project, due.series.slug)
    context = {
        **shared,
        "recipient": target.person,
        "unsubscribe_url": unsubscribe_url(due.series, target.person),
    }
    subject = one_line(env.get_template("email/subject.txt").render(context))
    context["subject"] = subject
    text = env.get_template(f"email/{due.kind}.txt").render(context)
    html = env.get_template(f"email/{due.kind}.html").render(context)
    return text, html, subject
