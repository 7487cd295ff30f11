"""Atom entries and RSS items, written directly.

feedgen builds an object per entry, then an lxml element tree, then its
bytes, twice per event (Atom and RSS): at ten thousand events that was most
of the feeds' time. An entry here is a handful of elements of escaped text,
written exactly as feedgen and lxml wrote them (the tests compare the two
byte for byte); feedgen still writes each feed's own elements. Text must
already be free of characters XML cannot carry (``feeds.clean``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime


@dataclass(frozen=True)
class Link:
    href: str
    rel: str
    type: str


@dataclass(frozen=True)
class Entry:
    """What one feed entry says; times are in UTC."""

    id: str
    title: str
    updated: datetime
    published: datetime
    content: str  # HTML, escaped here
    links: tuple[Link, ...]  # the alternate (page) link last: RSS takes it
    categories: tuple[str, ...]


def text(value: str) -> str:
    """Character data as lxml escapes it."""
    return (
        value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    )


def attribute(value: str) -> str:
    """An attribute value, double-quoted, as lxml escapes it."""
    return text(value).replace('"', "&quot;").replace("\n", "&#10;").replace("\t", "&#9;")


def atom(entry: Entry) -> bytes:
    lines = [
        "<entry>",
        f"  <id>{text(entry.id)}</id>",
        f"  <title>{text(entry.title)}</title>",
        f"  <updated>{entry.updated.isoformat()}</updated>",
        f'  <content type="html">{text(entry.content)}</content>',
    ]
    lines += [
        f'  <link href="{attribute(link.href)}" rel="{attribute(link.rel)}"'
        f' type="{attribute(link.type)}"/>'
        for link in entry.links
    ]
    lines += [f'  <category term="{attribute(term)}"/>' for term in entry.categories]
    lines += [f"  <published>{entry.published.isoformat()}</published>", "</entry>", ""]
    return "\n".join(lines).encode("utf-8")


def rss(entry: Entry) -> bytes:
    lines = [
        "<item>",
        f"  <title>{text(entry.title)}</title>",
        f"  <link>{text(entry.links[-1].href)}</link>",
        f"  <description>{text(entry.content)}</description>",
        f'  <guid isPermaLink="false">{text(entry.id)}</guid>',
    ]
    lines += [f"  <category>{text(term)}</category>" for term in entry.categories]
    lines += [f"  <pubDate>{format_datetime(entry.published)}</pubDate>", "</item>", ""]
    return "\n".join(lines).encode("utf-8")
