"""Links that add an event to web calendars which cannot open an .ics file by URL.

Google Calendar and Outlook on the web each take the event in the query string;
the .ics download covers everything else. Only short text goes in (title,
place, speakers and the page address), because these services cut long URLs.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from urllib.parse import quote

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


def google(event: Event, page_url: str) -> str:
    """A Google Calendar "create event" link; times in UTC, shown in the event's zone."""
    if isinstance(event.start, datetime):
        start, end = event.start, event.finishes
        dates = f"{_google_stamp(start)}/{_google_stamp(end)}"
    else:
        dates = f"{_compact(event.start)}/{_compact(_day_after(event.end))}"
    params = {
        "action": "TEMPLATE",
        "text": event.title,
        "dates": dates,
        "details": details(event, page_url),
        "location": _place(event),
        "ctz": event.timezone,
    }
    return f"{GOOGLE}?{_query(params)}"


def outlook(event: Event, page_url: str, service: str = "outlook_365") -> str:
    """An Outlook on the web "new event" link (Microsoft 365 or Outlook.com)."""
    if isinstance(event.start, datetime):
        start = event.start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        end = event.finishes.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        all_day = "false"
    else:
        start, end, all_day = event.start.isoformat(), _day_after(event.end).isoformat(), "true"
    params = {
        "path": "/calendar/action/compose",
        "rru": "addevent",
        "subject": event.title,
        "startdt": start,
        "enddt": end,
        "allday": all_day,
        "location": _place(event),
        "body": details(event, page_url),
    }
    return f"{OUTLOOK[service]}?{_query(params)}"


def _query(params: Mapping[str, str]) -> str:
    """``urlencode(params, quote_via=quote)``, each text quoted once: the same title, place
    and details go into three links per page."""
    return "&".join(f"{_quoted(key)}={_quoted(value)}" for key, value in params.items())


@lru_cache(maxsize=4096)
def _quoted(value: str) -> str:
    return quote(value, safe="")


def _google_stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _compact(day: date) -> str:
    return day.strftime("%Y%m%d")


def _day_after(day: datetime | date) -> date:
    last = day.date() if isinstance(day, datetime) else day
    return last + timedelta(days=1)
