"""Atom and RSS feeds: for the site, for each series and for each tag.

One entry per event or occurrence, newest announcement first. Entry ids come
from the UID (plus the date, for an occurrence), so a reader keeps an entry as
the same item for the event's whole life even when files move; ``published`` and
``updated`` come from the ledger, so an entry shows as updated exactly when its
time, place or status changed. Nothing reads the clock: the feed's own date is
its newest entry's, and feedgen's build date and version are overridden, so the
same input and ledger give the same bytes.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache, partial

from babel.dates import format_skeleton
from feedgen.feed import FeedGenerator

from announcer import urls
from announcer.adapters import feedtext, listing, pagetext
from announcer.adapters.base import BuildContext, Depends, LazyFile, OutputAdapter
from announcer.buildstate import digest
from announcer.i18n import labels
from announcer.model import Event, Series
from announcer.recurrence import expand
from announcer.templating import babel_locale
from announcer.workers import memo

GENERATOR = "announcer"
TYPES = {"atom": "application/atom+xml", "rss": "application/rss+xml"}
# Fixed forever: entry ids are uuid5(ENTRY_NAMESPACE, uid[/date]), and readers remember them.
ENTRY_NAMESPACE = uuid.UUID("6f1c8e52-3d4b-5a7e-9c1f-2b8d4e6a0c37")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class FeedSpec:
    """What distinguishes one feed from another: its paths, names and language."""

    atom: str
    rss: str
    page: str
    title: str
    subtitle: str
    language: str
    author: str


class FeedsAdapter(OutputAdapter):
    name = "feeds"
    incremental = True

    def prepare(self, context: BuildContext, events: Sequence[Event]) -> None:
        writer = _Writer(context)
        carried = writer.carried()
        for event in events:
            for shown in expand(event):
                if carried is None or shown.key in carried:
                    writer.entry_xml(shown, "atom")

    def files(self, context: BuildContext) -> Iterator[LazyFile]:
        writer = _Writer(context)
        site, shown = context.site, listing.shown(context)
        by_series, by_tag = listing.shown_groups(context)
        titles = ", ".join(s.title for s in site.series)
        yield from writer.feeds(
            FeedSpec(
                urls.site_feed("atom"),
                urls.site_feed("rss"),
                urls.SITE_INDEX,
                site.title,
                titles or site.title,
                site.language,
                site.title,
            ),
            shown,
        )
        for series in site.series:
            yield from writer.feeds(_series_spec(series), by_series.get(series.slug, []))
        for tag in sorted(by_tag):
            spec = FeedSpec(
                urls.tag_feed(tag, "atom"),
                urls.tag_feed(tag, "rss"),
                urls.tag_page(tag),
                f"{site.title}: {tag}",
                f"{site.title}: {tag}",
                site.language,
                site.title,
            )
            yield from writer.feeds(spec, by_tag[tag])


def _series_spec(series: Series) -> FeedSpec:
    author = series.organizer.name if series.organizer and series.organizer.name else series.title
    return FeedSpec(
        urls.series_feed(series, "atom"),
        urls.series_feed(series, "rss"),
        urls.series_page(series),
        series.title,
        series.description.strip() or series.title,
        series.language,
        author,
    )


def entry_id(event: Event) -> str:
    """``urn:uuid:`` from the UID, and the original date for an occurrence: never the path."""
    name = event.uid
    if event.recurrence_id is not None:
        name += "/" + event.recurrence_id.isoformat()
    return uuid.uuid5(ENTRY_NAMESPACE, name).urn


def entry_title(event: Event, language: str) -> str:
    """Date and speakers first, the way a reader scans a list; cancelled events say so."""
    words = labels(language)
    day = _day(event.begins.date(), language)
    names = ", ".join(s.name for s in event.speakers)
    if names:
        title = words["feed_entry"].format(date=day, speakers=names, title=event.title)
    else:
        title = f"{day} — {event.title}"
    return f"{words['cancelled']}{words['colon']} {title}" if event.cancelled else title


@memo()
def _day(day: date, language: str) -> str:
    """Ten thousand entries fall on a thousand days."""
    return str(format_skeleton("yMMMEd", day, locale=babel_locale(language)))


def clean(text: str) -> str:
    """Drop characters XML 1.0 cannot carry (YAML escapes can produce them)."""
    return _NOT_XML.sub("", text)


class _Writer:
    """Builds each entry once per build and reuses its bytes in every feed that holds it.

    feedgen writes the feed's own elements; the entries, written by
    :mod:`feedtext`, are spliced in before the closing tag, so a feed of ten thousand
    entries costs a concatenation, not ten thousand element trees per feed.
    """

    def __init__(self, context: BuildContext) -> None:
        self.context = context
        self.site = context.site
        self.series = {s.slug: s for s in context.site.series}
        self.entries: dict[tuple[str, str], bytes] = {}
        self.keys: dict[str, str] = {}
        self.built: dict[str, feedtext.Entry] = {}

    def feeds(self, spec: FeedSpec, events: Sequence[Event]) -> Iterator[LazyFile]:
        """The Atom and the RSS feed of ``events``, each assembled when the build gets to it,
        and not at all when its entries and settings are the last build's."""
        # The events' tokens hold what orders and dates the feed (when each event was
        # first seen and last changed) and the site settings hold the limit, so neither
        # the order nor the feed's date is worked out unless the feed is made.
        keys = [event.key for event in events]
        # An empty feed is dated by the whole ledger, so it depends on more than its events.
        depends = Depends(keys) if events else None

        @cache
        def entries() -> str:  # the same for the Atom and the RSS feed
            empty = "" if events else repr(self._fallback())
            tokens = self.context.joined_tokens(keys)
            return digest(empty, self.context.all_settings(), tokens)

        @cache
        def chosen() -> tuple[list[Event], datetime]:  # the same too: ordered once
            newest = self._newest(events)
            return newest, self._updated(newest).astimezone(UTC)

        for kind, path in (("atom", spec.atom), ("rss", spec.rss)):
            key = partial(self._feed_key, kind, path, spec, entries)
            yield LazyFile(path, partial(self.feed, spec, chosen, kind, path), key, depends)

    @staticmethod
    def _feed_key(kind: str, path: str, spec: FeedSpec, entries: Callable[[], str]) -> str:
        return digest("feed", kind, path, repr(spec), entries())

    def feed(
        self,
        spec: FeedSpec,
        chosen: Callable[[], tuple[list[Event], datetime]],
        kind: str,
        path: str,
    ) -> bytes:
        """The feed of ``chosen()``'s events (newest first) and date."""
        events, updated = chosen()
        generator = self._generator(spec, kind, path, updated)
        shell: bytes = (
            generator.atom_str(pretty=True) if kind == "atom" else generator.rss_str(pretty=True)
        )
        close = shell.rindex(b"</feed>" if kind == "atom" else b"</channel>")
        entries = [self.entry_xml(e, kind) for e in events]
        return b"".join([shell[:close], *entries, shell[close:]])  # one copy of 27 MB, not two

    def _newest(self, events: Sequence[Event]) -> list[Event]:
        """Newest announcement first; events announced together, latest start first."""
        ranks = self._ranks()
        if all(event.key in ranks for event in events):
            ordered = sorted(events, key=lambda event: ranks[event.key])
        else:  # not among the events shown: an adapter built on this one
            ordered = sorted(events, key=self._order, reverse=True)
        limit = self.site.feeds.limit
        return ordered if limit is None else ordered[:limit]

    def _order(self, event: Event) -> tuple[datetime, datetime, str]:
        return self.context.ledger.revision(event).first_seen, event.utc_begins, event.key

    def carried(self) -> frozenset[str] | None:
        """The events some feed carries, worked out once per build; None when feeds carry
        every event. With the default limit of 50, a few hundred of ten thousand events:
        entries for the others would be made and never written."""
        limit = self.site.feeds.limit
        if limit is None:
            return None
        found = self.context.cache.get("feeds.carried")
        if not isinstance(found, frozenset):
            found = self.context.cache["feeds.carried"] = frozenset(self._carried(limit))
        return found

    def _carried(self, limit: int) -> Iterator[str]:
        """One pass down the newest-first order, each feed taking events until it holds
        ``limit``: what :meth:`_newest` chooses for the site's, each series' and each
        tag's feed, without sorting each of them."""
        taken: Counter[tuple[str, str]] = Counter()
        for event in self._ranked():
            feeds = [("site", ""), ("series", event.series), *(("tag", t) for t in event.tags)]
            wanted = [feed for feed in feeds if taken[feed] < limit]
            if wanted:
                taken.update(wanted)
                yield event.key

    def _ranks(self) -> dict[str, int]:
        """Every shown event's place in the newest-first order: every feed is a subset,
        and sorting each by the ledger cost more than its entries."""
        found = self.context.cache.get("feeds.ranks")
        if not isinstance(found, dict):
            ranked = self._ranked()
            found = self.context.cache["feeds.ranks"] = {e.key: n for n, e in enumerate(ranked)}
        return found

    def _ranked(self) -> list[Event]:
        """Every shown event, newest announcement first, sorted once per build."""
        found = self.context.cache.get("feeds.ranked")
        if not isinstance(found, list):
            ranked = sorted(listing.shown(self.context), key=self._order, reverse=True)
            found = self.context.cache["feeds.ranked"] = ranked
        return found

    def _updated(self, chosen: Sequence[Event]) -> datetime:
        """The feed's date: its newest change."""
        if not chosen:
            return self._fallback()
        return max(self.context.ledger.revision(e).modified for e in chosen)

    def _fallback(self) -> datetime:
        """An empty feed's date: the site's last change, never the clock."""
        return max((r.modified for r in self.context.ledger.entries.values()), default=EPOCH)

    def _generator(self, spec: FeedSpec, kind: str, path: str, updated: datetime) -> FeedGenerator:
        generator = FeedGenerator()
        generator.id(urls.absolute(self.site, spec.atom))
        generator.title(clean(spec.title))
        generator.subtitle(clean(spec.subtitle))
        generator.author({"name": clean(spec.author)})
        generator.link(href=urls.absolute(self.site, path), rel="self", type=TYPES[kind])
        # RSS takes its <link> from the last link given: the page must come last.
        generator.link(href=urls.absolute(self.site, spec.page), rel="alternate", type="text/html")
        generator.language(spec.language)
        generator.generator(GENERATOR)
        generator.updated(updated)
        return generator

    def entry_xml(self, event: Event, kind: str) -> bytes:
        """One entry (Atom) or item (RSS), serialised once and spliced into every feed."""
        key = (event.key, kind)
        if key not in self.entries:
            stored = self._fragment_key(event)
            both = [
                self.context.fragments.get(f"{stored}:{name}", self._maker(event, name))
                for name in ("atom", "rss")
            ]
            self.entries[(event.key, "atom")], self.entries[(event.key, "rss")] = both
        return self.entries[key]

    def _maker(self, event: Event, kind: str) -> Callable[[], bytes]:
        """Build the entry once for both formats, whichever is asked for first."""

        def make() -> bytes:
            if event.key not in self.built:
                self.built[event.key] = self._build_entry(event)
            entry = self.built[event.key]
            return feedtext.atom(entry) if kind == "atom" else feedtext.rss(entry)

        return make

    def _fragment_key(self, event: Event) -> str:
        """What an entry depends on, for reuse across builds; once per event per build."""
        found = self.keys.get(event.key)
        if found is None:
            settings = self.context.settings_key(event.series)
            found = self.keys[event.key] = f"entry\x1f{settings}\x1f{self.context.stamp_key(event)}"
        return found

    def _build_entry(self, event: Event) -> feedtext.Entry:
        series = self.series[event.series]
        revision = self.context.ledger.revision(event)
        page = urls.absolute(self.site, urls.event_page(event))
        ics = urls.absolute(self.site, urls.event_ics(event))
        return feedtext.Entry(
            id=entry_id(event),
            title=clean(entry_title(event, series.language)),
            updated=revision.modified.astimezone(UTC),
            published=revision.first_seen.astimezone(UTC),
            content=clean(self._content(event, series, page, ics)),
            links=(
                feedtext.Link(ics, "related", "text/calendar"),
                feedtext.Link(page, "alternate", "text/html"),
            ),
            categories=tuple(clean(tag) for tag in event.tags),
        )

    def _content(self, event: Event, series: Series, page: str, ics: str) -> str:
        if pagetext.used(self.context, series.slug, pagetext.ENTRY_TEMPLATES):
            return pagetext.entry_content(event, series, page, ics)
        template = self.context.environment(series.slug).get_template("feed/entry.html")
        return template.render(
            event=event,
            series=series,
            site=self.site,
            words=labels(series.language),
            language=series.language,
            page_url=page,
            ics_url=ics,
        ).strip()
