"""The W3C Feed Validation Service's rules that can be checked offline.

Each function returns the problems it finds as readable strings (empty: valid),
so a failing test says what a validator would have said. The rules follow RFC
4287 (Atom 1.0), the RSS 2.0 specification and the validator's warnings that
matter to readers: self links that name the feed's own address, absolute URLs,
RFC 3339 / RFC 822 dates, unique ids, and no relative links or script in HTML
content.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import datetime
from html.parser import HTMLParser
from urllib.parse import urlsplit

ATOM = "{http://www.w3.org/2005/Atom}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
RFC822 = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} ([+-]\d{4}|GMT)"
)
LANGUAGE = re.compile(r"[a-zA-Z]{2,3}(-[a-zA-Z0-9]{1,8})*")
UUID_URN = re.compile(
    r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
)
ATOM_FEED = {"author", "category", "contributor", "generator", "icon", "id", "link", "logo",
             "rights", "subtitle", "title", "updated", "entry"}  # fmt: skip
ATOM_ENTRY = {"author", "category", "content", "contributor", "id", "link", "published",
              "rights", "source", "summary", "title", "updated"}  # fmt: skip
RSS_CHANNEL = {"title", "link", "description", "language", "copyright", "managingEditor",
               "webMaster", "pubDate", "lastBuildDate", "category", "generator", "docs",
               "cloud", "ttl", "image", "rating", "textInput", "skipHours", "skipDays",
               "item", f"{ATOM}link"}  # fmt: skip
RSS_ITEM = {"title", "link", "description", "author", "category", "comments", "enclosure",
            "guid", "pubDate", "source", f"{CONTENT}encoded"}  # fmt: skip
RISKY_TAGS = {"script", "iframe", "object", "embed", "style", "form", "meta", "link", "base"}


def is_absolute(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))


def html_problems(html: str, where: str) -> list[str]:
    """The validator's ContainsRelRef and SecurityRisk checks on escaped HTML content."""
    parser = _Html()
    parser.feed(html)
    problems = []
    for tag, attrs in parser.tags:
        if tag in RISKY_TAGS:
            problems.append(f"{where}: HTML content holds <{tag}>")
        for name, value in attrs.items():
            if name.startswith("on"):
                problems.append(f"{where}: HTML content has an event handler {name}=")
            if name in ("href", "src") and not (is_absolute(value) or value.startswith("mailto:")):
                problems.append(f"{where}: HTML content has a relative or unsafe URL {value!r}")
    return problems


def _parse(data: bytes) -> ET.Element | None:
    try:
        return ET.fromstring(data)
    except ET.ParseError:
        return None


def _one(parent: ET.Element, tag: str, where: str, problems: list[str]) -> ET.Element | None:
    found = parent.findall(tag)
    if len(found) != 1:
        problems.append(f"{where}: {len(found)} <{tag.split('}')[-1]}> elements, expected 1")
        return None
    return found[0]


def _text(element: ET.Element | None) -> str:
    return "" if element is None else (element.text or "")


def atom_problems(data: bytes, url: str) -> list[str]:
    """Problems of an Atom 1.0 document served at ``url``."""
    problems: list[str] = []
    root = _parse(data)
    if root is None:
        return ["not well-formed XML"]
    if root.tag != f"{ATOM}feed":
        return [f"root element is {root.tag}, not atom:feed"]
    if not LANGUAGE.fullmatch(root.get(XML_LANG, "en")):
        problems.append(f"xml:lang {root.get(XML_LANG)!r} is not a language tag")
    problems += _unknown(root, ATOM_FEED, "feed")
    feed_id = _text(_one(root, f"{ATOM}id", "feed", problems))
    if not urlsplit(feed_id).scheme:
        problems.append(f"feed id {feed_id!r} is not an absolute IRI")
    _one(root, f"{ATOM}title", "feed", problems)
    updated = _text(_one(root, f"{ATOM}updated", "feed", problems))
    if not RFC3339.fullmatch(updated):
        problems.append(f"feed updated {updated!r} is not RFC 3339")
    problems += _atom_links(root, "feed", url)
    entries = root.findall(f"{ATOM}entry")
    has_author = root.find(f"{ATOM}author/{ATOM}name") is not None
    ids = Counter(_text(e.find(f"{ATOM}id")) for e in entries)
    problems += [f"entry id {i!r} appears {n} times" for i, n in ids.items() if n > 1]
    for number, entry in enumerate(entries, 1):
        problems += _atom_entry(entry, f"entry {number}", has_author, updated)
    return problems


def _unknown(element: ET.Element, allowed: set[str], where: str) -> list[str]:
    names = {child.tag.removeprefix(ATOM) for child in element}
    return [f"{where}: unknown element {name}" for name in sorted(names - allowed)]


def _atom_links(parent: ET.Element, where: str, self_url: str | None) -> list[str]:
    problems = []
    links = parent.findall(f"{ATOM}link")
    alternates = Counter(
        (link.get("type"), link.get("hreflang"))
        for link in links
        if link.get("rel", "alternate") == "alternate"
    )
    problems += [f"{where}: duplicate alternate link {k}" for k, n in alternates.items() if n > 1]
    problems += [
        f"{where}: link href {link.get('href')!r} is not absolute"
        for link in links
        if not is_absolute(link.get("href", ""))
    ]
    if self_url is not None:
        selves = [link for link in links if link.get("rel") == "self"]
        if [s.get("href") for s in selves] != [self_url]:
            problems.append(f"{where}: self link {[s.get('href') for s in selves]} != {self_url}")
        elif selves[0].get("type") != "application/atom+xml":
            problems.append(f"{where}: self link type {selves[0].get('type')!r}")
    return problems


def _atom_entry(entry: ET.Element, where: str, feed_author: bool, feed_updated: str) -> list[str]:
    problems = _unknown(entry, ATOM_ENTRY, where)
    entry_id = _text(_one(entry, f"{ATOM}id", where, problems))
    if not UUID_URN.fullmatch(entry_id) and not is_absolute(entry_id):
        problems.append(f"{where}: id {entry_id!r} is neither a urn:uuid nor an absolute URL")
    title = _one(entry, f"{ATOM}title", where, problems)
    if title is not None and title.get("type", "text") != "text":
        problems.append(f"{where}: title type {title.get('type')!r}, expected text")
    updated = _text(_one(entry, f"{ATOM}updated", where, problems))
    published = [_text(p) for p in entry.findall(f"{ATOM}published")]
    for stamp in [updated, *published]:
        if not RFC3339.fullmatch(stamp):
            problems.append(f"{where}: date {stamp!r} is not RFC 3339")
    if len(published) > 1:
        problems.append(f"{where}: more than one published")
    if _later(updated, feed_updated):
        problems.append(f"{where}: updated {updated} is after the feed's {feed_updated}")
    if not feed_author and entry.find(f"{ATOM}author/{ATOM}name") is None:
        problems.append(f"{where}: no author, and the feed has none")
    problems += _atom_links(entry, where, None)
    content = entry.find(f"{ATOM}content")
    if content is None and not any(
        link.get("rel", "alternate") == "alternate" for link in entry.findall(f"{ATOM}link")
    ):
        problems.append(f"{where}: neither content nor an alternate link")
    if content is not None and content.get("type") == "html":
        problems += html_problems(content.text or "", where)
    return problems


def _later(stamp: str, than: str) -> bool:
    if not (RFC3339.fullmatch(stamp) and RFC3339.fullmatch(than)):
        return False
    return datetime.fromisoformat(stamp) > datetime.fromisoformat(than)


def rss_problems(data: bytes, url: str) -> list[str]:
    """Problems of an RSS 2.0 document served at ``url``."""
    root = _parse(data)
    if root is None:
        return ["not well-formed XML"]
    if root.tag != "rss" or root.get("version") != "2.0":
        return [f"root element is {root.tag} version {root.get('version')}, not rss 2.0"]
    problems: list[str] = []
    channel = _one(root, "channel", "rss", problems)
    if channel is None:
        return problems
    names = {child.tag for child in channel}
    problems += [f"channel: unknown element {n}" for n in sorted(names - RSS_CHANNEL)]
    for tag in ("title", "link", "description"):
        if not _text(_one(channel, tag, "channel", problems)).strip():
            problems.append(f"channel: empty <{tag}>")
    if not is_absolute(_text(channel.find("link"))):
        problems.append("channel: link is not absolute")
    language = channel.find("language")
    if language is not None and not LANGUAGE.fullmatch(_text(language)):
        problems.append(f"channel: language {_text(language)!r}")
    for tag in ("lastBuildDate", "pubDate"):
        for stamp in channel.findall(tag):
            if not RFC822.fullmatch(_text(stamp)):
                problems.append(f"channel: {tag} {_text(stamp)!r} is not RFC 822")
    selves = [link for link in channel.findall(f"{ATOM}link") if link.get("rel") == "self"]
    if [(s.get("href"), s.get("type")) for s in selves] != [(url, "application/rss+xml")]:
        problems.append(f"channel: atom:link self is {[s.attrib for s in selves]}, not {url}")
    items = channel.findall("item")
    guids = Counter(_text(i.find("guid")) for i in items)
    problems += [f"guid {g!r} appears {n} times" for g, n in guids.items() if n > 1]
    for number, item in enumerate(items, 1):
        problems += _rss_item(item, f"item {number}")
    return problems


def _rss_item(item: ET.Element, where: str) -> list[str]:
    names = {child.tag for child in item}
    problems = [f"{where}: unknown element {n}" for n in sorted(names - RSS_ITEM)]
    if not ({"title", "description"} & names):
        problems.append(f"{where}: neither title nor description")
    guid = item.find("guid")
    if guid is None:
        problems.append(f"{where}: no guid")
    elif guid.get("isPermaLink", "true") == "true" and not is_absolute(_text(guid)):
        problems.append(f"{where}: permalink guid {_text(guid)!r} is not a URL")
    if "link" in names and not is_absolute(_text(item.find("link"))):
        problems.append(f"{where}: link is not absolute")
    for stamp in item.findall("pubDate"):
        if not RFC822.fullmatch(_text(stamp)):
            problems.append(f"{where}: pubDate {_text(stamp)!r} is not RFC 822")
    description = item.find("description")
    if description is not None:
        problems += html_problems(description.text or "", where)
    return problems
