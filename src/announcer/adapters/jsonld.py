"""schema.org ``Event`` data for event pages, so search engines show them as events.

The JSON goes inside a ``<script>`` element, where HTML escaping does not apply;
``<``, ``>`` and ``&`` are written as JSON escapes instead, so no text an
organiser types can close the element or open a comment.
"""

from __future__ import annotations

import json
from datetime import date, datetime

from announcer import markup, urls
from announcer.model import Event, Series, Site

SCHEMA = "https://schema.org"
_STATUS = {
    "confirmed": "EventScheduled",
    "tentative": "EventScheduled",
    "cancelled": "EventCancelled",
}


def event_data(event: Event, series: Series, site: Site) -> dict[str, object]:
    """The schema.org Event for ``event``: dates with their UTC offset, status, place, people."""
    data: dict[str, object] = {
        "@context": SCHEMA,
        "@type": "Event",
        "name": event.title,
        "startDate": _moment(event.start),
        "endDate": _moment(event.end),
        "eventStatus": f"{SCHEMA}/{_STATUS[event.status]}",
        "eventAttendanceMode": f"{SCHEMA}/{_mode(event)}",
        "url": urls.absolute(site, urls.event_page(event)),
        "inLanguage": series.language,
    }
    places = _locations(event)
    if places:
        data["location"] = places[0] if len(places) == 1 else places
    if event.abstract.strip():
        data["description"] = markup.to_text(event.abstract)
    if event.speakers:
        data["performer"] = [_person(s.name, s.affiliation, s.url) for s in event.speakers]
    if series.organizer is not None:
        data["organizer"] = {"@type": "Organization", "name": series.organizer.name}
    return data


def script_json(data: object) -> str:
    """JSON that is safe between ``<script>`` tags: no ``</``, ``<!--`` or ``]]>`` can appear."""
    text = json.dumps(data, ensure_ascii=False)  # no indent: the C encoder, 5x faster
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _moment(moment: datetime | date) -> str:
    """ISO 8601 with the offset (``2018-11-30T12:00:00-05:00``), or a date for all-day events."""
    return moment.isoformat()


def _mode(event: Event) -> str:
    if event.online_url and event.location:
        return "MixedEventAttendanceMode"
    if event.online_url:
        return "OnlineEventAttendanceMode"
    return "OfflineEventAttendanceMode"


def _locations(event: Event) -> list[dict[str, object]]:
    places: list[dict[str, object]] = []
    if event.location:
        places.append({"@type": "Place", "name": event.location, "address": event.location})
    if event.online_url:
        places.append({"@type": "VirtualLocation", "url": event.online_url})
    return places


def _person(name: str, affiliation: str, url: str) -> dict[str, object]:
    person: dict[str, object] = {"@type": "Person", "name": name}
    if affiliation:
        person["affiliation"] = {"@type": "Organization", "name": affiliation}
    if url:
        person["url"] = url
    return person
