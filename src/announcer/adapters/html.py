"""The static site: an index, a page per series, per event, per occurrence and per tag.

Pages come from Jinja2 templates in the package (``templates/site/``) that a
project's ``templates/`` and a series' ``templates/`` override file by file;
while an event page's templates are the package's, :mod:`pagetext` writes the
same bytes without Jinja, and the listing items likewise.
Whether an event is past is decided at build time from ``context.now`` and
written into the markup together with the event's end as an instant, so a small
script corrects the label when the page is read later; without script the page
is still right as of the build. Internal links are relative, so the site works
from any address; links meant to be copied into other apps are absolute.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC
from functools import cached_property, partial
from pathlib import Path
from typing import TypedDict

import jinja2
from markupsafe import Markup

from announcer import urls
from announcer.adapters import addto, jsonld, listing, pagetext
from announcer.adapters.base import BuildContext, Depends, LazyFile, OutputAdapter, OutputFile
from announcer.adapters.ics import in_window
from announcer.buildstate import digest
from announcer.i18n import labels
from announcer.model import Event, Series
from announcer.recurrence import expand
from announcer.templating import when

STATIC = Path(__file__).resolve().parent.parent / "static"
_LINK = re.compile("\x02([^\x03]*)\x03")  # a link in a listing item, written by each page
_ITEMS = "\x04items\x04"  # where a listing page's items go while its key is worked out


def _marked(target: str) -> str:
    """``link`` in listing items: the target, marked for :data:`_LINK`."""
    return f"\x02{target}\x03"


class Card:
    """An event as listings and pages show it: where its page is, and whether it is past.

    What only a rendered item or page reads is worked out when read: a listing
    whose items are all kept reads nothing but ``past``.
    """

    def __init__(self, event: Event, series: Series, past: bool) -> None:
        self.event, self.series, self.past = event, series, past

    @property
    def lang(self) -> str:
        return self.series.language

    @cached_property
    def page(self) -> str:
        return urls.event_page(self.event)

    @cached_property
    def starts(self) -> str:
        """ISO 8601 with offset, for <time datetime>."""
        return self.event.start.isoformat()

    @cached_property
    def ends(self) -> str:
        """A UTC instant, for the script that marks past events."""
        return listing.utc_stamp(self.event.finishes)

    @property
    def when(self) -> str:
        """The date and time in words; only an item or page actually rendered asks."""
        return when(self.event, self.series.language)


class HtmlAdapter(OutputAdapter):
    name = "html"
    incremental = True

    def files(self, context: BuildContext) -> Iterator[OutputFile | LazyFile]:
        pages = _Pages(context)
        yield OutputFile(urls.STYLESHEET, (STATIC / "style.css").read_bytes())
        yield OutputFile(urls.SCRIPT, (STATIC / "script.js").read_bytes())
        by_series, by_tag = listing.shown_groups(context)
        yield pages.listing_file(urls.SITE_INDEX, pages.shown, pages.index)
        for series in context.site.series:
            own = by_series.get(series.slug, [])
            page = partial(pages.series_page, series, own)
            yield pages.listing_file(urls.series_page(series), own, page, series.slug)
            for event in series.events:
                yield from pages.event_pages(event, series)
        for tag in sorted(by_tag):
            tagged = by_tag[tag]
            calendar = tag in pages.calendar_tags()
            make = partial(pages.tag_page, tag, tagged, calendar)
            yield pages.listing_file(urls.tag_page(tag), tagged, make, tag, calendar)


class _Items:
    """``item`` and ``items`` of a page, made when first called: event pages list nothing.

    Items come as stored, links marked (:meth:`_Pages._items`), and are written
    as seen from ``page``; or, while a listing page is ``shaped``, set aside in
    ``shapes``, with :data:`_ITEMS` in their place.
    """

    def __init__(
        self,
        make: Callable[[], Callable[[Card, bool, bool], bytes]],
        page: str,
        shapes: list[bytes] | None = None,
    ) -> None:
        self.make, self.page, self.shapes = make, page, shapes
        self.made: Callable[[Card, bool, bool], bytes] | None = None

    def _maker(self) -> Callable[[Card, bool, bool], bytes]:
        if self.made is None:
            self.made = self.make()
        return self.made

    def one(self, card: Card, show_series: bool = False, dates_only: bool = False) -> Markup:
        return self._placed(self._maker()(card, show_series, dates_only))

    def many(
        self, cards: Iterable[Card], show_series: bool = False, dates_only: bool = False
    ) -> Markup:
        """Every card's item, joined here rather than by a template loop: a listing holds
        up to the whole site, and the loop cost more than the items, kept from the last build."""
        made = self._maker()
        return self._placed(b"".join([made(card, show_series, dates_only) for card in cards]))

    def _placed(self, stored: bytes) -> Markup:
        if self.shapes is None:
            return Markup(_written(self.page, stored))
        self.shapes.append(stored)
        return Markup(_ITEMS)


def _written(page: str, stored: bytes) -> str:
    """Stored items with their links written as seen from ``page``."""

    def write(found: re.Match[str]) -> str:
        return urls.relative(page, found[1])

    return _LINK.sub(write, stored.decode())


class _Subscribe(TypedDict):
    calendar_url: str
    webcal_url: str


@dataclass(frozen=True)
class _Shape:
    """A listing page rendered with its items set aside: what it shows, unwritten."""

    page: str
    shell: str  # the page, with _ITEMS where items go
    items: list[bytes]

    def key(self) -> str:
        return digest("listing", self.page, self.shell, *self.items)

    def filled(self) -> bytes | None:
        """The page; None when the marker also came from the page's own text."""
        parts = self.shell.split(_ITEMS)
        if len(parts) != len(self.items) + 1:
            return None
        written = [_written(self.page, stored) for stored in self.items]
        joined = [part for pair in zip(parts, [*written, ""], strict=True) for part in pair]
        return "".join(joined).encode("utf-8")


class _Pages:
    """Renders pages; holds what every page of one build shares."""

    def __init__(self, context: BuildContext) -> None:
        self.context = context
        self.site = context.site
        self.series = {s.slug: s for s in context.site.series}
        self.shown = listing.shown(context)
        self.now = context.now.astimezone(UTC)  # see listing.is_past
        self.cards: dict[str, Card] = {}

    def card(self, event: Event) -> Card:
        if event.key not in self.cards:
            series = self.series[event.series]
            self.cards[event.key] = Card(event, series, listing.is_past(event, self.now))
        return self.cards[event.key]

    def sections(self, events: Iterable[Event]) -> dict[str, list[Card]]:
        upcoming, past = listing.split(events, self.now)
        return {"upcoming": [self.card(e) for e in upcoming], "past": [self.card(e) for e in past]}

    def render(
        self,
        template: str,
        path: str,
        language: str,
        scope: Series | None = None,
        shapes: list[bytes] | None = None,
        **values: object,
    ) -> OutputFile:
        """Render with the series' template overrides when ``scope`` is a series; with
        ``shapes``, set the listing's items aside there (:class:`_Items`)."""
        env = self.context.environment(scope.slug if scope else None)
        shared = {
            "site": self.site,
            "page": path,
            "lang": language,
            "words": labels(language),
            "link": partial(urls.relative, path),
            "absolute": partial(urls.absolute, self.site),
            "webcal": urls.webcal,
            "urls": urls,
        }
        items = _Items(partial(self._items, env, shared, scope), path, shapes)
        shared["item"], shared["items"] = items.one, items.many
        html = env.get_template(template).render(**shared, **values)
        return OutputFile(path, html.encode("utf-8"))

    def _items(
        self, env: jinja2.Environment, shared: dict[str, object], scope: Series | None
    ) -> Callable[[Card, bool, bool], bytes]:
        """The ``item`` a listing calls per event: each item's HTML is kept between builds.

        A listing of ten thousand events is mostly items that did not change. An
        item is made with its links marked, not written, and each page writes
        them as seen from itself: the same item serves the index and every tag
        page, where it used to be made once per folder depth.
        """
        language = str(shared["lang"])
        settings = self.context.settings_key(scope.slug if scope else None)
        macro: Callable[[Card, bool, bool], object]
        scoped = scope.slug if scope else None
        if pagetext.used(self.context, scoped, pagetext.ITEM_TEMPLATES):
            macro = partial(pagetext.event_item, language=language, link=_marked)
        else:
            marked = {**shared, "link": _marked}
            macros = env.get_template("site/macros.html").make_module(marked)
            macro = macros.event_item  # type: ignore[attr-defined]

        def item(card: Card, show_series: bool, dates_only: bool) -> bytes:
            # Joined, not hashed: tens of thousands per build, and each part is a digest
            # already or short text without the separator.
            key = "\x1f".join(
                (
                    "item",
                    self.context.identity(card.event),
                    f"{card.past:d}{show_series:d}{dates_only:d}{language}",
                    settings,
                    self.context.settings_key(card.series.slug),
                )
            )
            return self.context.fragments.get(
                key, lambda: str(macro(card, show_series, dates_only)).encode()
            )

        return item

    def listing_file(
        self,
        path: str,
        events: list[Event] | tuple[Event, ...],
        page: Callable[[list[bytes] | None], OutputFile],
        *extra: object,
    ) -> LazyFile:
        """A page listing ``events``, looked at only when what it shows of an event on it
        (:func:`listing.listed_as`) or a setting it shows changed; and then made only
        when the page did.

        When it is looked at, its key is the page rendered with its items' stored
        bytes set aside (a tenth of a one-event rebuild at 10,000 events for
        ``index.html``); the page itself, ten thousand items with their links
        written, is made only when that key moved, and then only writes the
        set-aside items' links.
        """
        keys, overridden = [e.key for e in events], self._overridden()
        held: list[_Shape] = []

        def shaped() -> _Shape:
            if not held:
                shapes: list[bytes] = []
                shell = page(shapes).data.decode("utf-8")
                held.append(_Shape(path, shell, shapes))
            return held[0]

        def key() -> str:
            # An override may show anything at all, so only the full key can tell.
            return digest(shaped().key(), self.context.inputs_key if overridden else "")

        def make() -> bytes:
            found = shaped()
            held.clear()  # twenty thousand items per process, kept no longer than needed
            return found.filled() or page(None).data

        depends = None if overridden else Depends(keys, repr(extra), listed=True)
        return LazyFile(path, make, key, depends)

    def _overridden(self) -> bool:
        """Whether any template override exists: then a page may show anything at all."""
        return any(self.context.overrides(s) for s in (None, *self.series))

    def index(self, shapes: list[bytes] | None = None) -> OutputFile:
        return self.render(
            "site/index.html",
            urls.SITE_INDEX,
            self.site.language,
            shapes=shapes,
            listing=self.sections(self.shown),
            many_series=len(self.site.series) > 1,
        )

    def series_page(
        self, series: Series, events: list[Event], shapes: list[bytes] | None = None
    ) -> OutputFile:
        return self.render(
            "site/series.html",
            urls.series_page(series),
            series.language,
            series,
            shapes,
            series=series,
            listing=self.sections(events),
        )

    def tag_page(
        self, tag: str, tagged: list[Event], calendar: bool, shapes: list[bytes] | None = None
    ) -> OutputFile:
        return self.render(
            "site/tag.html",
            urls.tag_page(tag),
            self.site.language,
            shapes=shapes,
            tag=tag,
            listing=self.sections(tagged),
            many_series=len({e.series for e in tagged}) > 1,
            calendar=calendar,
        )

    def event_pages(self, event: Event, series: Series) -> Iterator[LazyFile]:
        """An event's pages, rendered only when the event, its series or the clock moved them;
        listed only when the last build's page may not serve."""
        if urls.event_page(event) not in self.context.kept:
            render = self.event_page if event.repeat is None else self.recurring_page
            yield self._keyed(event, series, None, partial(render, event, series))
        if event.repeat is None:
            return
        for occurrence in expand(event):
            yield self._keyed(
                occurrence,
                series,
                event,
                partial(self.event_page, occurrence, series, recurring=event),
            )

    def _keyed(
        self, event: Event, series: Series, recurring: Event | None, make: Callable[[], OutputFile]
    ) -> LazyFile:
        path = urls.event_page(event)
        overridden = bool(self.context.overrides(series.slug))

        def key() -> str:
            tokens = self.context.tokens()  # a recurring event's covers its occurrences
            return digest(
                "page",
                tokens[event.key],
                tokens[recurring.key] if recurring is not None else "",
                self.context.settings_key(series.slug),
                self.context.inputs_key if overridden else "",
            )

        # An override may show anything at all, so only the full key can tell.
        if overridden:
            depends = None
        elif recurring is None:
            depends = Depends((event.key,), own=True)
        else:  # an occurrence's page goes with its recurring event's
            depends = Depends((event.key, recurring.key))
        return LazyFile(path, lambda: make().data, key, depends)

    def recurring_page(self, event: Event, series: Series) -> OutputFile:
        return self.render(
            "site/recurring.html",
            urls.event_page(event),
            series.language,
            series,
            event=event,
            series=series,
            listing=self.sections(expand(event)),
            **self._subscribe(series),
        )

    def event_page(
        self, event: Event, series: Series, recurring: Event | None = None
    ) -> OutputFile:
        page_url = urls.absolute(self.site, urls.event_page(event))
        add = addto.links(event, page_url)
        data = jsonld.event_data(event, series, self.site)
        if pagetext.used(self.context, series.slug):
            card, script = self.card(event), Markup(jsonld.script_json(data))
            calendar = self._subscribe(series)["calendar_url"]
            page = pagetext.event_page(
                self.site, series, event, card, recurring, add, script, calendar
            )
            return OutputFile(urls.event_page(event), page.encode("utf-8"))
        return self.render(
            "site/event.html",
            urls.event_page(event),
            series.language,
            series,
            event=event,
            series=series,
            card=self.card(event),
            recurring=recurring,
            add=add,
            jsonld=Markup(jsonld.script_json(data)),
            **self._subscribe(series),
        )

    def _subscribe(self, series: Series) -> _Subscribe:
        calendar = urls.absolute(self.site, urls.series_calendar(series))
        return {"calendar_url": calendar, "webcal_url": urls.webcal(calendar)}

    def calendar_tags(self) -> frozenset[str]:
        """Tags that have a calendar: the ICS adapter leaves out old events, by this rule."""
        cached = self.context.cache.get("html.calendar_tags")
        if isinstance(cached, frozenset):
            return cached
        found = frozenset(tag for event in in_window(self.context) for tag in event.tags)
        self.context.cache["html.calendar_tags"] = found
        return found
