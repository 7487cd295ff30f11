"""A straightforward single-file site builder: what a user writes in an afternoon.

Usage: python benchmarks/baseline.py PROJECT_DIR OUT_DIR

Reads an announcer project tree and writes the contract's output tree with the
usual libraries used the usual way (yaml.safe_load, icalendar, feedgen, jinja2,
markdown-it-py). It is the reference point for benchmarks: honest and complete
(every calendar and feed carries every event it covers), neither tuned nor slowed.
It does not validate input beyond what the libraries do.
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import yaml
from feedgen.feed import FeedGenerator
from icalendar import Calendar, vCalAddress
from icalendar import Event as VEvent
from jinja2 import DictLoader, Environment, select_autoescape
from markdown_it import MarkdownIt
from markupsafe import Markup

MD = MarkdownIt("commonmark", {"html": False})
PRODID = "-//announcer benchmarks//baseline//EN"

TEMPLATES = {
    "base.html": """<!doctype html>
<html lang="{{ lang }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{% block title %}{% endblock %}</title>
{% block head %}{% endblock %}
<style>
body { font-family: system-ui, sans-serif; max-width: 48rem; margin: auto; padding: 1rem; }
.past { color: #666; } .cancelled { text-decoration: line-through; }
</style>
</head>
<body>
{% block body %}{% endblock %}
</body>
</html>
""",
    "macros.html": """{% macro listing(upcoming, past) -%}
<ul class="upcoming">
{% for ev in upcoming %}
<li{% if ev.status == 'cancelled' %} class="cancelled"{% endif %}>
<a href="{{ ev.page_url }}">{{ ev.title }}</a> &mdash; {{ ev | when }}
{% if ev.status == 'cancelled' %}<strong>Cancelled</strong>{% endif %}</li>
{% endfor %}
</ul>
{% if past %}
<ul class="past">
{% for ev in past %}
<li class="past{% if ev.status == 'cancelled' %} cancelled{% endif %}">
<a href="{{ ev.page_url }}">{{ ev.title }}</a> &mdash; {{ ev | when }} (past)</li>
{% endfor %}
</ul>
{% endif %}
{%- endmacro %}
{% macro feeds(prefix) -%}
<link rel="alternate" type="application/atom+xml" href="{{ prefix }}feed.atom">
<link rel="alternate" type="application/rss+xml" href="{{ prefix }}feed.rss">
<link rel="alternate" type="text/calendar" href="{{ prefix }}calendar.ics">
{%- endmacro %}
""",
    "index.html": """{% extends "base.html" %}
{% from "macros.html" import listing, feeds %}
{% block title %}{{ site.title }}{% endblock %}
{% block head %}{{ feeds(site.base_url) }}{% endblock %}
{% block body %}
<h1>{{ site.title }}</h1>
<p><a href="calendar.ics">Subscribe to all events</a> &middot; <a href="feed.atom">Atom</a>
&middot; <a href="feed.rss">RSS</a></p>
{% for s, upcoming, past in sections %}
<section>
<h2><a href="{{ s.url }}">{{ s.title }}</a></h2>
<p>{{ s.description }}</p>
{{ listing(upcoming, past) }}
</section>
{% endfor %}
{% endblock %}
""",
    "series.html": """{% extends "base.html" %}
{% from "macros.html" import listing, feeds %}
{% block title %}{{ series.title }}{% endblock %}
{% block head %}{{ feeds(series.url) }}{% endblock %}
{% block body %}
<p><a href="{{ site.base_url }}">{{ site.title }}</a></p>
<h1>{{ series.title }}</h1>
<p>{{ series.description }}</p>
<p><a href="calendar.ics">Subscribe</a> &middot; <a href="feed.atom">Atom</a>
&middot; <a href="feed.rss">RSS</a></p>
{{ listing(upcoming, past) }}
{% endblock %}
""",
    "event.html": """{% extends "base.html" %}
{% block title %}{{ ev.title }} &middot; {{ ev.series.title }}{% endblock %}
{% block body %}
<p><a href="{{ ev.series.url }}">{{ ev.series.title }}</a></p>
<article{% if ev.status == 'cancelled' %} class="cancelled"{% endif %}>
<h1>{{ ev.title }}</h1>
{% if ev.status == 'cancelled' %}<p><strong>This event is cancelled.</strong></p>{% endif %}
{% if ev.status == 'tentative' %}<p><em>Tentative.</em></p>{% endif %}
<p class="when">{{ ev | when }}</p>
{% if ev.location %}<p class="where">{{ ev.location }}</p>{% endif %}
{% if ev.online_url %}<p><a href="{{ ev.online_url }}">Join online</a></p>{% endif %}
{% for sp in ev.speakers %}
<section class="speaker">
<h2>{{ sp.name }}{% if sp.affiliation %}, {{ sp.affiliation }}{% endif %}</h2>
{% if sp.bio %}{{ sp.bio | markdown }}{% endif %}
</section>
{% endfor %}
<section class="abstract">{{ ev.abstract | markdown }}</section>
{% if ev.tags %}<p class="tags">{% for t in ev.tags %}
<a href="{{ site.base_url }}tags/{{ t }}/feed.atom">{{ t }}</a>{% endfor %}</p>{% endif %}
{% if ev.url %}<p><a href="{{ ev.url }}">More information</a></p>{% endif %}
<p><a href="event.ics">Add to calendar</a></p>
</article>
{% endblock %}
""",
    "entry.html": """<p>{{ ev | when }}{% if ev.location %}, {{ ev.location }}{% endif %}</p>
{% if ev.status == 'cancelled' %}<p><strong>Cancelled.</strong></p>{% endif %}
{% if ev.speakers %}<p>{% for sp in ev.speakers %}{{ sp.name }}{% if sp.affiliation %}
({{ sp.affiliation }}){% endif %}{% if not loop.last %}, {% endif %}{% endfor %}</p>{% endif %}
{{ ev.abstract | markdown }}
""",
}


@dataclass
class Site:
    """announcer.yaml."""

    title: str
    base_url: str
    language: str


@dataclass
class Series:
    """One series.yaml and its events."""

    slug: str
    title: str
    description: str
    tz: ZoneInfo
    language: str
    organizer: dict[str, str]
    url: str
    events: list[Event]


@dataclass
class Event:
    """One event file, with times resolved (``end`` is exclusive for all-day events)."""

    series: Series
    id: str
    title: str
    start: date | datetime
    end: date | datetime
    speakers: list[dict[str, str]]
    location: str
    online_url: str
    url: str
    abstract: str
    tags: list[str]
    status: str
    uid: str
    stamp: datetime
    page_url: str

    @property
    def all_day(self) -> bool:
        """True for date-only events."""
        return not isinstance(self.start, datetime)


def parse_duration(text: str) -> timedelta:
    """'90m', '1h', '1h30m' -> timedelta."""
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?", str(text).strip())
    if not match or not any(match.groups()):
        raise ValueError(f"bad duration {text!r}")
    return timedelta(hours=int(match[1] or 0), minutes=int(match[2] or 0))


def parse_when(value: Any, tz: ZoneInfo) -> date | datetime:
    """A YAML date, datetime or 'YYYY-MM-DD HH:MM' string, made timezone-aware."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when if when.tzinfo else when.replace(tzinfo=tz)


def load_yaml(path: Path) -> dict[str, Any]:
    """Read one YAML mapping (an empty file is an empty mapping)."""
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def load_site(project: Path) -> Site:
    """announcer.yaml with defaults."""
    path = project / "announcer.yaml"
    data = load_yaml(path) if path.exists() else {}
    base_url = str(data.get("base_url", "http://localhost/"))
    return Site(
        title=data.get("title", "Events"),
        base_url=base_url if base_url.endswith("/") else base_url + "/",
        language=data.get("language", "en"),
    )


def event_times(data: dict[str, Any], series_tz: ZoneInfo, default: timedelta) -> tuple[
    date | datetime, date | datetime
]:
    """Start and (exclusive) end of an event."""
    tz = ZoneInfo(data["timezone"]) if "timezone" in data else series_tz
    start = parse_when(data["start"], tz)
    if not isinstance(start, datetime):
        last = parse_when(data.get("end", start), tz)
        return start, last + timedelta(days=1)
    if "end" in data:
        return start, parse_when(data["end"], tz)
    if "duration" in data:
        return start, start + parse_duration(data["duration"])
    return start, start + default


def load_event(path: Path, series: Series, site: Site, default: timedelta,
               default_location: str) -> Event:
    """Read one event file."""
    data = load_yaml(path)
    start, end = event_times(data, series.tz, default)
    speakers = data.get("speakers") or ([data["speaker"]] if "speaker" in data else [])
    host = urlsplit(site.base_url).hostname or "localhost"
    mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC).replace(microsecond=0)
    return Event(
        series=series, id=path.stem, title=str(data["title"]), start=start, end=end,
        speakers=speakers, location=data.get("location", default_location),
        online_url=data.get("online_url", ""), url=data.get("url", ""),
        abstract=data.get("abstract", ""), tags=list(data.get("tags", [])),
        status=data.get("status", "confirmed"),
        uid=data.get("uid", f"{path.stem}.{series.slug}@{host}"), stamp=mtime,
        page_url=f"{series.url}{path.stem}/",
    )


def load_series(folder: Path, site: Site) -> Series:
    """Read series.yaml and every event file of one series."""
    data = load_yaml(folder / "series.yaml")
    series = Series(
        slug=folder.name, title=data.get("title", folder.name),
        description=data.get("description", ""), tz=ZoneInfo(data["timezone"]),
        language=data.get("language", site.language), organizer=data.get("organizer", {}),
        url=f"{site.base_url}{folder.name}/", events=[],
    )
    default = parse_duration(data.get("default_duration", "1h"))
    location = data.get("default_location", "")
    for path in sorted((folder / "events").glob("*.yaml")):
        series.events.append(load_event(path, series, site, default, location))
    return series


def sort_key(ev: Event) -> datetime:
    """Start as an aware datetime (all-day events start at local midnight)."""
    if isinstance(ev.start, datetime):
        return ev.start
    return datetime.combine(ev.start, time(), tzinfo=ev.series.tz)


def end_instant(ev: Event) -> datetime:
    """End as an aware datetime."""
    if isinstance(ev.end, datetime):
        return ev.end
    return datetime.combine(ev.end, time(), tzinfo=ev.series.tz)


def split_by_time(events: Iterable[Event], now: datetime) -> tuple[list[Event], list[Event]]:
    """Upcoming events (soonest first) and past events (latest first)."""
    ordered = sorted(events, key=sort_key)
    upcoming = [ev for ev in ordered if end_instant(ev) > now]
    past = [ev for ev in reversed(ordered) if end_instant(ev) <= now]
    return upcoming, past


def format_when(ev: Event) -> str:
    """Human-readable date and time of an event."""
    if not isinstance(ev.start, datetime):
        last = ev.end - timedelta(days=1)
        text = f"{ev.start:%A %d %B %Y}"
        return text if last == ev.start else f"{text} to {last:%A %d %B %Y}"
    assert isinstance(ev.end, datetime)
    end = ev.end.astimezone(ev.start.tzinfo)
    return f"{ev.start:%A %d %B %Y, %H:%M}\u2013{end:%H:%M} ({ev.start.tzinfo})"


def make_env() -> Environment:
    """Jinja2 environment with the inline templates and two filters."""
    env = Environment(loader=DictLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    env.filters["markdown"] = lambda text: Markup(MD.render(text or ""))
    env.filters["when"] = format_when
    return env


def ics_description(ev: Event) -> str:
    """Plain-text DESCRIPTION: speakers, abstract (Markdown source), links."""
    parts = [", ".join(
        f"{sp['name']} ({sp['affiliation']})" if sp.get("affiliation") else sp["name"]
        for sp in ev.speakers
    ), ev.abstract.strip()]
    if ev.online_url:
        parts.append(f"Online: {ev.online_url}")
    return "\n\n".join(p for p in parts if p)


def make_vevent(ev: Event) -> VEvent:
    """One VEVENT."""
    vevent = VEvent()
    vevent.add("uid", ev.uid)
    vevent.add("dtstamp", ev.stamp)
    vevent.add("dtstart", ev.start)
    vevent.add("dtend", ev.end)
    vevent.add("summary", ev.title)
    vevent.add("description", ics_description(ev))
    if ev.location:
        vevent.add("location", ev.location)
    vevent.add("url", ev.page_url)
    vevent.add("status", ev.status.upper())
    if ev.tags:
        vevent.add("categories", ev.tags)
    organizer = ev.series.organizer
    if organizer.get("email"):
        address = vCalAddress(f"mailto:{organizer['email']}")
        if organizer.get("name"):
            address.params["cn"] = organizer["name"]
        vevent.add("organizer", address)
    return vevent


def write_calendar(path: Path, name: str, events: Iterable[Event]) -> None:
    """A calendar with one VEVENT per event and the VTIMEZONEs they use."""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("x-wr-calname", name)
    for ev in sorted(events, key=sort_key):
        cal.add_component(make_vevent(ev))
    cal.add_missing_timezones()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cal.to_ical())


def make_feed(site: Site, title: str, url: str, language: str, events: list[Event],
              env: Environment) -> FeedGenerator:
    """A feed with one entry per event, newest first."""
    fg = FeedGenerator()
    fg.id(url)
    fg.title(title)
    fg.author({"name": site.title})
    fg.link(href=url, rel="alternate")
    fg.link(href=f"{url}feed.atom", rel="self")
    fg.description(title)
    fg.language(language)
    updated = max((ev.stamp for ev in events), default=datetime(2000, 1, 1, tzinfo=UTC))
    fg.updated(updated)
    fg.lastBuildDate(updated)
    entry_template = env.get_template("entry.html")
    for ev in sorted(events, key=sort_key, reverse=True):
        entry = fg.add_entry(order="append")
        entry.id(ev.page_url)
        entry.title(f"Cancelled: {ev.title}" if ev.status == "cancelled" else ev.title)
        entry.link(href=ev.page_url)
        entry.content(entry_template.render(ev=ev), type="html")
        entry.published(ev.stamp)
        entry.updated(ev.stamp)
        for tag in ev.tags:
            entry.category(term=tag)
    return fg


def write_feeds(folder: Path, fg: FeedGenerator, rss: bool = True) -> None:
    """feed.atom (and feed.rss) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    fg.atom_file(str(folder / "feed.atom"))
    if rss:
        fg.rss_file(str(folder / "feed.rss"))


def write_html(path: Path, text: str) -> None:
    """Write one page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def build_site(out: Path, site: Site, all_series: list[Series], env: Environment,
               now: datetime) -> None:
    """Top-level index, calendar and feeds."""
    events = [ev for s in all_series for ev in s.events]
    sections = [(s, *split_by_time(s.events, now)) for s in all_series]
    html = env.get_template("index.html").render(site=site, sections=sections,
                                                 lang=site.language)
    write_html(out / "index.html", html)
    write_calendar(out / "calendar.ics", site.title, events)
    write_feeds(out, make_feed(site, site.title, site.base_url, site.language, events, env))


def build_series(out: Path, site: Site, series: Series, env: Environment,
                 now: datetime) -> None:
    """A series' page, calendar and feeds."""
    folder = out / series.slug
    upcoming, past = split_by_time(series.events, now)
    html = env.get_template("series.html").render(
        site=site, series=series, upcoming=upcoming, past=past, lang=series.language)
    write_html(folder / "index.html", html)
    write_calendar(folder / "calendar.ics", series.title, series.events)
    feed = make_feed(site, series.title, series.url, series.language, series.events, env)
    write_feeds(folder, feed)


def build_event(out: Path, site: Site, ev: Event, env: Environment) -> None:
    """An event's page and its single-event calendar."""
    folder = out / ev.series.slug / ev.id
    html = env.get_template("event.html").render(site=site, ev=ev, lang=ev.series.language)
    write_html(folder / "index.html", html)
    write_calendar(folder / "event.ics", ev.title, [ev])


def build_tags(out: Path, site: Site, events: list[Event], env: Environment) -> None:
    """tags/<tag>/calendar.ics and feed.atom for every tag used."""
    by_tag: dict[str, list[Event]] = defaultdict(list)
    for ev in events:
        for tag in ev.tags:
            by_tag[tag].append(ev)
    for tag, tagged in sorted(by_tag.items()):
        folder = out / "tags" / tag
        title = f"{site.title}: {tag}"
        write_calendar(folder / "calendar.ics", title, tagged)
        url = f"{site.base_url}tags/{tag}/"
        write_feeds(folder, make_feed(site, title, url, site.language, tagged, env), rss=False)


def build(project: Path, out: Path, now: datetime | None = None) -> None:
    """Read the project tree at ``project`` and write the output tree to ``out``."""
    now = now or datetime.now(UTC)
    site = load_site(project)
    all_series = [load_series(folder, site)
                  for folder in sorted((project / "series").iterdir()) if folder.is_dir()]
    env = make_env()
    build_site(out, site, all_series, env, now)
    for series in all_series:
        build_series(out, site, series, env, now)
        for ev in series.events:
            build_event(out, site, ev, env)
    build_tags(out, site, [ev for s in all_series for ev in s.events], env)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("project", type=Path, help="project directory (with series/)")
    parser.add_argument("out", type=Path, help="output directory")
    args = parser.parse_args(argv)
    build(args.project, args.out)


if __name__ == "__main__":
    main()
