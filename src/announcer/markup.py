"""Markdown, rendered once per text per process, for each medium that needs it.

HTML output is sanitised with nh3 (an allow-list sanitiser): an abstract can
carry emphasis and links, never a script, an event handler or a
``javascript:`` URL. Plain text is what calendars and text email show.
"""

from __future__ import annotations

from functools import lru_cache

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token

_MD = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_TAGS = {
    "p",
    "br",
    "em",
    "strong",
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
_HEADINGS = {"h1": "h3", "h2": "h4", "h3": "h5"}  # page headings outrank the abstract's


@lru_cache(maxsize=65536)
def to_html(source: str) -> str:
    """Safe HTML for ``source``; raw HTML in the Markdown is shown as text, not run."""
    html = _MD.render(source)
    for big, small in _HEADINGS.items():
        html = html.replace(f"<{big}>", f"<{small}>").replace(f"</{big}>", f"</{small}>")
    return nh3.clean(
        html,
        tags=_TAGS,
        attributes={"a": {"href", "title"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener nofollow",
    )


@lru_cache(maxsize=65536)
def to_text(source: str) -> str:
    """Readable plain text: links become ``text (url)``, list items keep their bullets."""
    lines: list[str] = []
    prefix: list[str] = []
    counters: list[int] = []
    for token in _MD.parse(source):
        _block(token, lines, prefix, counters)
    return "\n".join(lines).strip()


def _block(token: Token, lines: list[str], prefix: list[str], counters: list[int]) -> None:
    if token.type == "bullet_list_open":
        counters.append(0)
    elif token.type == "ordered_list_open":
        counters.append(int(token.attrGet("start") or 1))
    elif token.type in ("bullet_list_close", "ordered_list_close"):
        counters.pop()
        if not counters:
            lines.append("")
    elif token.type == "list_item_open":
        number = counters[-1]
        prefix.append(f"{number}. " if number else "- ")
        if number:
            counters[-1] += 1
    elif token.type == "list_item_close":
        prefix.pop()
    elif token.type == "inline":
        lead = "  " * max(len(prefix) - 1, 0) + (prefix[-1] if prefix else "")
        if prefix:
            prefix[-1] = " " * len(prefix[-1])
        lines.append(lead + _inline(token.children or []))
    elif token.type in ("fence", "code_block"):
        lines.extend(["    " + line for line in token.content.rstrip("\n").split("\n")] + [""])
    elif token.type in ("paragraph_close", "heading_close") and not prefix:
        lines.append("")


def _inline(children: list[Token]) -> str:
    out: list[str] = []
    href: list[str] = []
    start: list[int] = []
    for child in children:
        if child.type in ("text", "code_inline"):
            out.append(child.content)
        elif child.type == "softbreak":
            out.append(" ")
        elif child.type == "hardbreak":
            out.append("\n")
        elif child.type == "link_open":
            href.append(str(child.attrGet("href") or ""))
            start.append(len(out))
        elif child.type == "link_close":
            url, text = href.pop(), "".join(out[start.pop() :])
            if url and url not in (text, "mailto:" + text):
                out.append(f" ({url})")
        elif child.type == "image":
            out.append(child.content)
    return "".join(out)
