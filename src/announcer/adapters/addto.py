"""Links that add an event to web calendars which cannot open an .ics file by URL.

Google Calendar and Outlook on the web each take the event in the query string;
the .ics download covers everything else. Only short text goes in (title,
place, speakers and the page address), because these services cut long URLs.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

from announcer.model import Event

GOOGLE = "https://calendar.google.com/calendar/render"
OUTLOOK = {
    "outlook_365": "https://outlook.office.com/calendar/0/deeplink/compose",
    "outlook_com": "https://outlook.live.com/calendar/0/deeplink/compose",
}


def details(event: Event, page_url: str) -> str:
    """Speakers and the event page: enough to find the rest."""
    lines = [s.name + (f" ({s.affiliation})" if s.affiliation else "") for s in event.speakers]
    if event.online_url:
        lines.append(event.online_url)
    lines.append(page_url)
    return "\n".join(lines)


def _place(event: Event) -> str:
    return event.location or event.online_url


def links(event: Event, page_url: str) -> dict[str, str]:
    """The Google Calendar "create event" link and the Outlook on the web "new event"
    links (Microsoft 365 and Outlook.com, with the same query): times in UTC, shown in
    the event's zone by Google; all-day events as whole days."""
    if isinstance(event.start, datetime):
        start, end, all_day = _utc_stamp(event.start), _utc_stamp(event.finishes), "false"
        dates = f"{_compact_stamp(start)}/{_compact_stamp(end)}"
    else:
        last = _day_after(event.end)
        start, end, all_day = event.start.isoformat(), last.isoformat(), "true"
        dates = f"{_compact(event.start)}/{_compact(last)}"
    about, place = details(event, page_url), _place(event)
    google = {
        "action": "TEMPLATE",
        "text": event.title,
        "dates": dates,
        "details": about,
        "location": place,
        "ctz": event.timezone,
    }
    outlook = _query(
        {
            "path": "/calendar/action/compose",
            "rru": "addevent",
            "subject": event.title,
            "startdt": start,
            "enddt": end,
            "allday": all_day,
            "location": place,
            "body": about,
        }
    )
    return {
        "google": f"{GOOGLE}?{_query(google)}",
        **{service: f"{base}?{outlook}" for service, base in OUTLOOK.items()},
    }


def _query(params: Mapping[str, str]) -> str:
    """``urlencode(params, quote_via=quote)``, each text quoted once: the same title, place
    and details go into three links per page."""
    return "&".join(f"{_quoted(key)}={_quoted(value)}" for key, value in params.items())


# urllib.parse.quote(text, safe="") byte by byte, from a table: it makes the same list
# with a Python loop, and a page's links quote some 300 bytes.
_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")
_QUOTED = [chr(byte) if byte in _SAFE else f"%{byte:02X}" for byte in range(256)]


@lru_cache(maxsize=4096)
def _quoted(value: str) -> str:
    return "".join(map(_QUOTED.__getitem__, value.encode()))


def _utc_stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _compact_stamp(stamp: str) -> str:
    """Google's form of a :func:`_utc_stamp`: ``20181130T170000Z``."""
    return stamp.replace("-", "").replace(":", "")


def _compact(day: date) -> str:
    return day.strftime("%Y%m%d")


def _day_after(day: datetime | date) -> date:
    last = day.date() if isinstance(day, datetime) else day
    return last + timedelta(days=1)
