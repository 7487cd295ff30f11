"""Calendar descriptions, HTML or plain, turned into the Markdown event files hold.

Exported descriptions come in two shapes: HTML (Google's editor, Outlook's
X-ALT-DESC, Indico's rich text) and plain text with hard line breaks. Both
become Markdown an organiser can read and edit in the YAML file: links stay
links, emphasis and lists survive, every other tag is dropped for its text, and
lines the author kept apart stay apart (as paragraphs, since Markdown joins
single lines).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_HTML = re.compile(
    r"<\s*/?\s*(br|p|div|a|b|i|u|strong|em|ul|ol|li|span|font|html|body|h[1-6])\b", re.I
)
_LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
# Google appends its video-call instructions between these marks; the link is kept elsewhere.
_GOOGLE_MEET = re.compile(r"-::~[:~]*::-.*?-::~[:~]*::-", re.S)
_BLOCKS = {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "table", "tr", "blockquote"}
_EMPHASIS = {"b": "**", "strong": "**", "i": "*", "em": "*"}


def looks_like_html(text: str) -> bool:
    return bool(_HTML.search(text))


def to_markdown(text: str) -> str:
    """Markdown for a description, whichever of the two shapes it came in."""
    text = _GOOGLE_MEET.sub("", text)
    if looks_like_html(text):
        text = _HtmlToMarkdown.convert(text)
    return plain_to_markdown(text)


def plain_to_markdown(text: str) -> str:
    """Paragraphs from lines: a list keeps its items together, other lines stand apart."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    blocks: list[list[str]] = []
    for line in lines:
        if not line.strip():
            blocks.append([])
        elif _LIST_ITEM.match(line) and blocks and blocks[-1] and _LIST_ITEM.match(blocks[-1][-1]):
            blocks[-1].append(line)
        else:
            blocks.append([line])
    return "\n\n".join("\n".join(block) for block in blocks if block).strip()


class _HtmlToMarkdown(HTMLParser):
    """A small, forgiving converter: unknown tags vanish, their text stays."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.links: list[tuple[str, int]] = []  # href, and where its text starts in out
        self.lists: list[str] = []
        self.skipping = 0

    @classmethod
    def convert(cls, html: str) -> str:
        parser = cls()
        parser.feed(html)
        parser.close()
        text = re.sub(r"[ \t]+", " ", "".join(parser.out))
        return re.sub(r" *\n *", "\n", text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "head", "title"):
            self.skipping += 1
        elif tag == "br":
            self.out.append("\n")
        elif tag in _BLOCKS:
            self.out.append("\n\n")
            if tag in ("ul", "ol"):
                self.lists.append(tag)
        elif tag == "li":
            self.out.append("\n" + ("1. " if self.lists[-1:] == ["ol"] else "- "))
        elif tag in _EMPHASIS:
            self.out.append(_EMPHASIS[tag])
        elif tag == "a":
            self.links.append((dict(attrs).get("href") or "", len(self.out)))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head", "title"):
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCKS:
            self.out.append("\n\n")
            if tag in ("ul", "ol") and self.lists:
                self.lists.pop()
        elif tag in _EMPHASIS:
            self.out.append(_EMPHASIS[tag])
        elif tag == "a" and self.links:
            self._close_link(*self.links.pop())

    def _close_link(self, href: str, start: int) -> None:
        label = "".join(self.out[start:]).strip()
        del self.out[start:]
        if not href.startswith(("http://", "https://", "mailto:")):
            self.out.append(label)
        elif label in ("", href, href.removeprefix("mailto:")):
            self.out.append(f"<{href.removeprefix('mailto:')}>")
        else:
            self.out.append(f"[{label}]({href})")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.out.append(data.replace("\n", " "))
