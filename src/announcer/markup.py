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
_BLOCK_START = {"p", "h3", "h4", "h5", "h6", "blockquote", "pre"}
_BLOCK_END = {"/p", "/h3", "/h4", "/h5", "/h6", "/blockquote", "/pre", "hr"}


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


class _Text:
    """Walks the tags of our own sanitised HTML; no general HTML parsing is needed."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self.lists: list[int] = []  # 0 for bullets, else the next number
        self.links: list[tuple[str, int]] = []
        self.pre = False

    def convert(self, markup: str) -> str:
        for token in _TOKEN.split(markup):
            if token.startswith("<"):
                self._tag(token)
            elif token:
                self._text(token)
        text = "".join(self.out)
        return _BLANK_LINES.sub(
            "\n\n", "\n".join(line.rstrip() for line in text.split("\n"))
        ).strip()

    def _text(self, token: str) -> None:
        text = htmllib.unescape(token)
        if not self.pre:
            text = _LINE_BREAK.sub(" ", text) if text.strip() else text.replace("\n", "")
        if text:
            self.out.append(text)

    def _tag(self, token: str) -> None:
        name = token[1:].split(None, 1)[0].rstrip(">/").lower() if len(token) > 2 else ""
        if name in ("ul", "ol"):
            self.lists.append(0 if name == "ul" else 1)
            self._newline()
        elif name in ("/ul", "/ol"):
            self.lists.pop()
            self.out.append("\n" if self.lists else "\n\n")
        elif name == "li":
            self._list_item()
        elif name == "a":
            found = _HREF.search(token)
            self.links.append((htmllib.unescape(found[1]) if found else "", len(self.out)))
        elif name == "/a" and self.links:
            self._end_link()
        elif name == "br":
            self.out.append("\n")
        elif name in _BLOCK_START:
            self.pre = name == "pre"
            self._paragraph()
        elif name in _BLOCK_END:
            self.pre = self.pre and name != "/pre"
            self.out.append("\n\n")

    def _paragraph(self) -> None:
        if self.out and not self.lists:
            self.out.append("\n\n")

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
