"""HTML the default templates make ten thousand times, written directly, byte for byte.

Jinja spends three quarters of an event page's time in its own machinery (the
layout's blocks, the macros imported with context, a call or a look-up for
every value): at 10,000 events that was a sixth of a cold build. As feed
entries' XML (``feedtext``) and VEVENTs (``icstext``) are, the event page,
the listing item and a feed entry's HTML are written here instead, but only
where none of the templates each is made from is overridden (:func:`applies`):
an override decides, through Jinja. ``tests/test_pagetext.py`` builds the
fixture projects both ways and compares every file, so a change to one of
these templates must be made here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import Protocol

from markupsafe import Markup, escape

from announcer import markup, urls
from announcer.adapters.base import BuildContext
from announcer.i18n import labels
from announcer.model import Event, Series, Site
from announcer.templating import when

# What an event page is made from: base.html lays it out, event.html fills it,
# with place, people_and_abstract and subscribe from macros.html.
TEMPLATES = ("site/base.html", "site/event.html", "site/macros.html", "site/script.html")
ITEM_TEMPLATES = ("site/macros.html",)  # the event_item macro of the listings
ENTRY_TEMPLATES = ("feed/entry.html",)  # the HTML inside a feed entry


class Shown(Protocol):
    """What a page or a listing item reads of an event's card (``html.Card``)."""

    @property
    def past(self) -> bool: ...
    @property
    def starts(self) -> str: ...
    @property
    def ends(self) -> str: ...
    @property
    def when(self) -> str: ...
    @property
    def event(self) -> Event: ...
    @property
    def series(self) -> Series: ...
    @property
    def lang(self) -> str: ...
    @property
    def page(self) -> str: ...


def applies(project: Path, series: str | None, names: tuple[str, ...] = TEMPLATES) -> bool:
    """Whether none of ``names`` is overridden for ``series`` (None: for the site's own
    pages, the index and the tag pages)."""
    folders = [project / "templates"]
    if series is not None:
        folders.append(project / "series" / series / "templates")
    return not any((folder / name).is_file() for folder in folders for name in names)


def used(context: BuildContext, series: str | None, names: tuple[str, ...] = TEMPLATES) -> bool:
    """:func:`applies`, looked up once per build (a preview server sees a new override
    at its next build)."""
    key = f"pagetext\x1f{series}\x1f{names}"
    found = context.cache.get(key)
    if found is None:
        found = context.cache[key] = applies(context.project, series, names)
    return bool(found)


def event_page(
    site: Site,
    series: Series,
    event: Event,
    card: Shown,
    recurring: Event | None,
    add: Mapping[str, str],
    jsonld: Markup,
    calendar_url: str,
) -> str:
    """``site/event.html`` in its layout, for the page at ``urls.event_page(event)``."""
    page = urls.event_page(event)
    words = _labels(series.language)

    def link(target: str) -> str:
        return urls.relative(page, target)

    title = _escape(event.title)
    series_title = _escape(series.title)
    cancelled = f"{words.cancelled}: " if event.cancelled else ""
    head = (
        f'<meta name="description" content="{_escape(markup.summary(event.abstract, 200))}">\n'
        if event.abstract.strip()
        else ""
    )
    crumbs = f'<li><a href="{_escape(link(urls.series_page(series)))}">{series_title}</a></li>\n'
    if recurring is not None:
        crumbs += (
            f'<li><a href="{_escape(link(urls.event_page(recurring)))}">'
            f"{_escape(recurring.title)}</a></li>"
        )
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{_escape(series.language)}">\n'
        "<head>\n"
        '<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{cancelled}{title} · {series_title}</title>\n"
        f'<link rel="canonical" href="{_escape(urls.absolute(site, page))}">\n'
        '<link rel="icon" href="data:,">\n'
        f'<link rel="stylesheet" href="{_escape(link(urls.STYLESHEET))}">\n'
        f'<link rel="alternate" type="application/atom+xml" title="{series_title}" '
        f'href="{_escape(link(urls.series_feed(series, "atom")))}">\n'
        f'<link rel="alternate" type="application/rss+xml" title="{series_title}" '
        f'href="{_escape(link(urls.series_feed(series, "rss")))}">\n'
        f'{head}<script type="application/ld+json">\n{jsonld}\n</script>\n'
        "</head>\n"
        "<body>\n"
        '<header class="site-header">\n'
        '<nav class="crumbs">\n'
        "<ol>\n"
        f'<li><a href="{_escape(link(urls.SITE_INDEX))}">{_escape(site.title)}</a></li>\n'
        f"{crumbs}</ol>\n"
        "</nav>\n"
        "</header>\n"
        "<main>\n"
        f"{_main(event, series, card, recurring, add, calendar_url, link, words)}"
        "</main>\n"
        f"{_footer(site, link, words)}"
        f'<script src="{_escape(link(urls.SCRIPT))}"></script>\n'
        "</body>\n"
        "</html>\n"
    )


def _main(
    event: Event,
    series: Series,
    card: Shown,
    recurring: Event | None,
    add: Mapping[str, str],
    calendar_url: str,
    link: _Link,
    words: SimpleNamespace,
) -> str:
    """The ``main`` block of ``site/event.html``."""
    colon = words.colon
    states = _states(event, card.past)
    parts = [
        f'<article class="event-page{states}" data-ends="{_escape(card.ends)}">\n'
        f'<p class="notice notice-past" data-past-notice{"" if card.past else " hidden"}>'
        f"{words.past_event}</p>\n"
    ]
    if event.cancelled:
        parts.append(
            f'<p class="notice notice-cancelled"><strong>{words.cancelled}{colon}'
            f"</strong> {words.cancelled_notice}</p>\n"
        )
    elif event.status == "tentative":
        parts.append(
            f'<p class="notice"><strong>{words.tentative}{colon}</strong> '
            f"{words.tentative_notice}</p>\n"
        )
    starts = _escape(card.starts)
    parts.append(
        f"<h1>{_escape(event.title)}</h1>\n"
        '<dl class="facts">\n'
        f"<dt>{words.when}</dt>\n"
        f'<dd><time datetime="{starts}">{_escape(card.when)}</time>\n'
    )
    if not event.all_day:
        parts.append(
            f'<br><span class="your-time" data-your-time data-start="{starts}" '
            f'data-end="{_escape(event.end.isoformat())}" data-tz="{_escape(event.timezone)}" '
            f"hidden>{words.your_time}{colon} <span data-value></span></span>\n"
        )
    parts.append(f"</dd>\n{_place(event, words)}\n</dl>\n")
    if not event.cancelled:
        download = words.download_series_ics if recurring is not None else words.download_ics
        parts.append(
            '<section class="add" aria-labelledby="add-heading">\n'
            f'<h2 id="add-heading">{words.add_to_calendar}</h2>\n'
            '<ul class="buttons">\n'
            f'<li><a class="button primary" href="{_escape(link(urls.event_ics(event)))}" '
            f'type="text/calendar" download>{download}</a></li>\n'
            f'<li><a class="button" href="{_escape(add["google"])}" rel="nofollow noopener">'
            f"{words.google_calendar}</a></li>\n"
            f'<li><a class="button" href="{_escape(add["outlook_365"])}" rel="nofollow noopener">'
            f"{words.outlook_365}</a></li>\n"
            f'<li><a class="button" href="{_escape(add["outlook_com"])}" rel="nofollow noopener">'
            f"{words.outlook_com}</a></li>\n"
            "</ul>\n"
            "</section>\n"
        )
    parts.append(f"{_people_and_abstract(event, words)}\n")
    if event.url:
        parts.append(
            f'<p><a href="{_escape(event.url)}" rel="nofollow noopener">{words.more_info}</a></p>'
        )
    if event.tags:
        tags = " ".join(
            f'<a class="tag" href="{_escape(link(urls.tag_page(tag)))}">{_escape(tag)}</a>'
            for tag in event.tags
        )
        parts.append(f'<p class="tags">{words.tags}{colon}\n{tags}</p>\n')
    parts.append(f"{_subscribe(series, calendar_url, link, words)}\n</article>\n")
    return "".join(parts)


class _Link(Protocol):
    def __call__(self, target: str, /) -> str: ...


def _escape(text: str) -> str:
    """``markupsafe.escape``, the same five entities, as a plain string: a page escapes
    some forty values, and making each a ``Markup`` cost twice the escaping."""
    if type(text) is not str:
        return str(escape(text))
    return (
        text.replace("&", "&amp;")
        .replace(">", "&gt;")
        .replace("<", "&lt;")
        .replace("'", "&#39;")
        .replace('"', "&#34;")
    )


def _states(event: Event, past: bool) -> str:
    """The classes a page's article and a listing item add for a cancelled or past event."""
    return (" is-cancelled" if event.cancelled else "") + (" is-past" if past else "")


@lru_cache(maxsize=16)
def _labels(language: str) -> SimpleNamespace:
    """The labels of ``language``, escaped once: every page shows twenty-odd of them."""
    return SimpleNamespace(**{key: _escape(text) for key, text in labels(language).items()})


def _place(event: Event, words: SimpleNamespace) -> str:
    """The ``place`` macro."""
    text = ""
    if event.location:
        text += f"<dt>{words.location}</dt>\n<dd>{_escape(event.location)}</dd>\n"
    if event.online_url:
        text += (
            f"<dt>{words.online}</dt>\n"
            f'<dd><a href="{_escape(event.online_url)}" rel="nofollow noopener">'
            f"{words.join_online}</a></dd>\n"
        )
    return text


def _people_and_abstract(event: Event, words: SimpleNamespace) -> str:
    """The ``people_and_abstract`` macro."""
    parts = []
    if event.speakers:
        heading = words.speaker if len(event.speakers) == 1 else words.speakers
        parts.append(
            '<section class="speakers" aria-labelledby="speakers-heading">\n'
            f'<h2 id="speakers-heading">{heading}</h2>\n'
        )
        for speaker in event.speakers:
            name = _escape(speaker.name)
            if speaker.url:
                name = f'<a href="{_escape(speaker.url)}" rel="nofollow noopener">{name}</a>'
            parts.append(f'<div class="speaker">\n<h3>{name}</h3>\n')
            if speaker.affiliation:
                parts.append(f'<p class="affiliation">{_escape(speaker.affiliation)}</p>')
            if speaker.bio:
                parts.append(f'<div class="bio">{markup.to_html(speaker.bio)}</div>')
            parts.append("</div>\n")
        parts.append("</section>\n")
    if event.abstract.strip():
        parts.append(
            '<section class="abstract" aria-labelledby="abstract-heading">\n'
            f'<h2 id="abstract-heading">{words.abstract}</h2>\n'
            f"{markup.to_html(event.abstract)}\n"
            "</section>\n"
        )
    return "".join(parts)


def _subscribe(series: Series, calendar_url: str, link: _Link, words: SimpleNamespace) -> str:
    """The ``subscribe`` macro, as the event page calls it."""
    apps = ""
    if calendar_url:
        apps = (
            f'<li><a class="button" href="{_escape(urls.webcal(calendar_url))}">'
            f"{words.subscribe_app}</a></li>\n"
            f'<li><a class="button" href="{_escape(calendar_url)}">'
            f"{words.calendar_address}</a></li>\n"
        )
    return (
        '<section class="subscribe" aria-labelledby="subscribe-heading">\n'
        f'<h2 id="subscribe-heading">{words.subscribe}</h2>\n'
        '<ul class="buttons">\n'
        f"{apps}"
        f'<li><a class="button" href="{_escape(link(urls.series_feed(series, "atom")))}" '
        f'type="application/atom+xml">{words.feed_atom}</a></li>\n'
        f'<li><a class="button" href="{_escape(link(urls.series_feed(series, "rss")))}" '
        f'type="application/rss+xml">{words.feed_rss}</a></li>\n'
        "</ul>\n"
        "</section>\n"
    )


def _footer(site: Site, link: _Link, words: SimpleNamespace) -> str:
    """The ``footer`` block of ``site/base.html``."""
    calendar = urls.webcal(urls.absolute(site, urls.SITE_CALENDAR))
    return (
        '<footer class="site-footer">\n'
        f"<p>{words.subscribe_all}{words.colon}\n"
        f'<a href="{_escape(calendar)}">{words.subscribe_app}</a> ·\n'
        f'<a href="{_escape(link(urls.site_feed("atom")))}">{words.feed_atom}</a> ·\n'
        f'<a href="{_escape(link(urls.site_feed("rss")))}">{words.feed_rss}</a></p>\n'
        "</footer>\n"
    )


def event_item(card: Shown, show_series: bool, dates_only: bool, language: str, link: _Link) -> str:
    """The ``event_item`` macro, on a page in ``language``, links made by ``link``."""
    event, words = card.event, _labels(card.lang)
    states = _states(event, card.past)
    own = f' lang="{_escape(card.lang)}"' if card.lang != language else ""
    starts, when = _escape(card.starts), _escape(card.when)
    shown = f'<time datetime="{starts}">{when}</time>' if dates_only else _escape(event.title)
    if event.cancelled:
        badge = f'<span class="badge badge-cancelled">{words.cancelled}</span>'
    elif event.status == "tentative":
        badge = f'<span class="badge">{words.tentative}</span>'
    else:
        badge = ""
    if dates_only:
        meta = f'<p class="meta">{_escape(event.location)}</p>' if event.location else ""
    else:
        meta = f'<p class="meta"><time datetime="{starts}">{when}</time></p>\n'
        if event.speakers:
            names = ", ".join(_escape(speaker.name) for speaker in event.speakers)
            meta += f'<p class="meta">{names}</p>'
    if show_series:
        meta += (
            f'<p class="meta series-name"><a href="{_escape(link(urls.series_page(card.series)))}">'
            f"{_escape(card.series.title)}</a></p>"
        )
    return (
        f'<li class="event{states}" data-ends="{_escape(card.ends)}"{own}>\n'
        f'<h3 class="event-title"><a href="{_escape(link(card.page))}">{shown}</a></h3>\n'
        '<p class="badges">\n'
        f'{badge}<span class="badge badge-past" data-past-notice{"" if card.past else " hidden"}>'
        f"{words.past_short}</span>\n"
        "</p>\n"
        f"{meta}</li>\n"
    )


def entry_content(event: Event, series: Series, page_url: str, ics_url: str) -> str:
    """``feed/entry.html``: what a feed entry says of the event, links absolute."""
    words = _labels(series.language)
    colon = words.colon
    parts = []
    if event.cancelled:
        parts.append(f"<p><strong>{words.cancelled_notice}</strong></p>\n")
    elif event.status == "tentative":
        parts.append(f"<p><strong>{words.tentative}{colon}</strong> {words.tentative_notice}</p>\n")
    parts.append(
        f"<p><strong>{words.when}{colon}</strong> {_escape(when(event, series.language))}</p>\n"
    )
    if event.location:
        parts.append(f"<p><strong>{words.location}{colon}</strong> {_escape(event.location)}</p>\n")
    if event.online_url:
        parts.append(
            f"<p><strong>{words.online}{colon}</strong> "
            f'<a href="{_escape(event.online_url)}">{words.join_online}</a></p>\n'
        )
    if event.speakers:
        heading = words.speaker if len(event.speakers) == 1 else words.speakers
        parts.append(f"<p><strong>{heading}{colon}</strong></p>\n<ul>\n")
        for speaker in event.speakers:
            affiliation = f", {_escape(speaker.affiliation)}" if speaker.affiliation else ""
            parts.append(f"<li>{_escape(speaker.name)}{affiliation}</li>\n")
        parts.append("</ul>\n")
    more = f' · <a href="{_escape(event.url)}">{words.more_info}</a>' if event.url else ""
    parts.append(
        f"{markup.to_html(event.abstract)}\n"
        f'<p><a href="{_escape(page_url)}">{words.event_page}</a> · '
        f'<a href="{_escape(ics_url)}">{words.add_to_calendar} (.ics)</a>{more}</p>'
    )
    return "".join(parts).strip()
