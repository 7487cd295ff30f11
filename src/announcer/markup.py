"""Markdown, rendered once per text per process, for each medium that needs it.

CommonMark is rendered by markdown-it's Rust implementation (the same rules as
markdown-it, some twenty times faster, which matters at thousands of
abstracts) with raw HTML turned off: ``<script>`` in an abstract is shown as
text. The HTML is then sanitised with nh3, an allow-list sanitiser, as a
second wall: no script, event handler or ``javascript:`` URL gets through.
Plain text, for calendars and text email, is derived from that same HTML, so
both media always say the same thing.
"""

from __future__ import annotations

import html as htmllib
import re
from collections.abc import Iterable
from functools import cache
from typing import TYPE_CHECKING

import markdown_it_pyrs
import nh3

from announcer.workers import memo

if TYPE_CHECKING:
    import markdown_it

# CommonMark without raw HTML: every core rule but html_block and html_inline.
_RULES = [
    "blockquote",
    "code",
    "fence",
    "heading",
    "hr",
    "lheading",
    "list",
    "paragraph",
    "reference",
    "autolink",
    "backticks",
    "emphasis",
    "entity",
    "escape",
    "image",
    "link",
    "newline",
]
# (The stubs want the rule names as literals; they are the names listed above.)
_MD = markdown_it_pyrs.MarkdownIt("zero").enable_many(_RULES)  # type: ignore[arg-type]

_TAGS = {
    "p",
    "br",
    "em",
    "strong",
    "b",
    "i",
    "a",
    "ul",
    "ol",
    "li",
    "blockquote",
    "code",
    "pre",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
}
# Built once: nh3.clean() builds its allow-lists again on every call, which doubled its cost.
_CLEANER = nh3.Cleaner(
    tags=_TAGS,
    attributes={"a": {"href", "title"}},
    url_schemes={"http", "https", "mailto"},
    link_rel="noopener nofollow",
)
_HEADINGS = {"h1": "h3", "h2": "h4", "h3": "h5"}  # page headings outrank the abstract's
_HEADING_TAG = re.compile(r"<(/?)h([1-3])>")
_TOKEN = re.compile(r"(<[^>]*>)")
_HREF = re.compile(r'href="([^"]*)"')
_BLANK_LINES = re.compile(r"\n{3,}")
_LINE_BREAK = re.compile(r"\s*\n\s*")


@memo()
def to_html(source: str) -> str:
    """Safe HTML for ``source``; raw HTML in the Markdown is shown as text, not run."""
    return _CLEANER.clean(_demoted(_render(source)))


def render_ahead(sources: Iterable[str]) -> None:
    """Make :func:`to_html` of every text now, for later calls to find kept.

    Rendering and sanitising are native code, and the rest of a build, run
    between two texts, evicts it from the processor's caches: among a
    10,000-event build's other work a text took some 36 us to render and 50 us
    to sanitise; here, each step over all the texts in turn, 9 and 9 us.
    """
    todo = [source for source in dict.fromkeys(sources) if source and not to_html.known(source)]
    rendered = [_demoted(_render(source)) for source in todo]
    for source, html in zip(todo, rendered, strict=True):
        to_html.keep(_CLEANER.clean(html), source)


def _demoted(html: str) -> str:
    return _HEADING_TAG.sub(lambda m: f"<{m[1]}{_HEADINGS['h' + m[2]]}>", html)


def _render(source: str) -> str:
    """markdown-it's HTML for ``source``.

    The Rust implementation panics on a backtick left open inside a bracket
    (``[`x``, in 0.4.0), and prints the panic before it can be caught. Text with
    both goes to the Python implementation, which follows the same rules; any
    other panic is caught, so one odd abstract cannot stop a build.
    """
    if "`" in source and "[" in source:
        return str(_python_markdown().render(source))
    try:
        return str(_MD.render(source))
    except BaseException as exc:  # a Rust panic is a BaseException; anything else goes on
        if type(exc).__name__ != "PanicException":
            raise
    return str(_python_markdown().render(source))


@cache
def _python_markdown() -> markdown_it.MarkdownIt:
    import markdown_it  # imported only for the inputs the Rust implementation cannot take

    return markdown_it.MarkdownIt("zero").enable(_RULES)


@memo()
def to_text(source: str) -> str:
    """Readable plain text: links become ``text (url)``, list items keep their bullets."""
    return _Text().convert(to_html(source))


def summary(source: str, length: int = 200, end: str = "...") -> str:
    """The text on one line, cut at a word when longer than ``length`` (a page's meta
    description); the rule is Jinja's ``truncate`` with its default leeway of 5, in one
    call instead of a split, a join filter and a truncate filter per page."""
    line = " ".join(to_text(source).split())
    if len(line) <= length + 5:
        return line
    return line[: length - len(end)].rsplit(" ", 1)[0] + end


# What a tag does to the text (0: nothing).
_BULLETS, _NUMBERS, _LIST_END, _ITEM, _LINK, _LINK_END, _BREAK = range(1, 8)
_BLOCK, _PRE, _BLOCK_END, _PRE_END = range(8, 12)
_KINDS = {
    "ul": _BULLETS,
    "ol": _NUMBERS,
    "/ul": _LIST_END,
    "/ol": _LIST_END,
    "li": _ITEM,
    "a": _LINK,
    "/a": _LINK_END,
    "br": _BREAK,
    **dict.fromkeys(("p", "h3", "h4", "h5", "h6", "blockquote"), _BLOCK),
    "pre": _PRE,
    **dict.fromkeys(("/p", "/h3", "/h4", "/h5", "/h6", "/blockquote", "hr"), _BLOCK_END),
    "/pre": _PRE_END,
}
_TAG_KINDS: dict[str, int] = {}  # tag as written -> what it does; our HTML has few distinct tags


def _kind(tag: str) -> int:
    name = tag[1:].split(None, 1)[0].rstrip(">/").lower() if len(tag) > 2 else ""
    found = _KINDS.get(name, 0)
    if found != _LINK:  # links differ by address: not worth keeping
        _TAG_KINDS[tag] = found
    return found


class _Text:
    """Walks the tags of our own sanitised HTML; no general HTML parsing is needed.

    One loop over the text and the tags between them, not a method call per piece:
    at 10,000 events, to_text took some 4 % of a cold build's work, now half that.
    """

    def __init__(self) -> None:
        self.out: list[str] = []
        self.lists: list[int] = []  # 0 for bullets, else the next number
        self.links: list[tuple[str, int]] = []

    def convert(self, markup: str) -> str:
        out, lists, pre, known = self.out, self.lists, False, _TAG_KINDS
        pieces = _TOKEN.split(markup)  # text, tag, text, ..., text
        for at in range(0, len(pieces), 2):
            text = pieces[at]
            if text:
                if "&" in text:
                    text = htmllib.unescape(text)
                if not pre and "\n" in text:
                    text = _LINE_BREAK.sub(" ", text) if text.strip() else text.replace("\n", "")
                if text:
                    out.append(text)
            if at + 1 == len(pieces):
                break
            tag = pieces[at + 1]
            kind = known.get(tag)
            if kind is None:
                kind = _kind(tag)
            if not kind:
                continue
            if kind >= _BLOCK:  # a paragraph, a heading, a quote, code
                if kind <= _PRE:
                    pre = kind == _PRE
                    if out and not lists:
                        out.append("\n\n")
                else:
                    pre = pre and kind != _PRE_END
                    out.append("\n\n")
            elif kind <= _NUMBERS:
                lists.append(0 if kind == _BULLETS else 1)
                self._newline()
            elif kind == _LIST_END:
                lists.pop()
                out.append("\n" if lists else "\n\n")
            elif kind == _ITEM:
                self._list_item()
            elif kind == _LINK:
                found = _HREF.search(tag)
                self.links.append((htmllib.unescape(found[1]) if found else "", len(out)))
            elif kind == _LINK_END:
                if self.links:
                    self._end_link()
            else:  # _BREAK
                out.append("\n")
        text = "\n".join(line.rstrip() for line in "".join(out).split("\n"))
        if "\n\n\n" in text:  # a plain search first: the pattern scans every character
            text = _BLANK_LINES.sub("\n\n", text)
        return text.strip()

    def _newline(self) -> None:
        if self.out and not self.out[-1].endswith("\n"):
            self.out.append("\n")

    def _list_item(self) -> None:
        self._newline()
        number = self.lists[-1] if self.lists else 0
        indent = "  " * max(len(self.lists) - 1, 0)
        self.out.append(f"{indent}{number}. " if number else f"{indent}- ")
        if number:
            self.lists[-1] += 1

    def _end_link(self) -> None:
        url, start = self.links.pop()
        text = "".join(self.out[start:])
        if url and url not in (text, "mailto:" + text):
            self.out.append(f" ({url})")
