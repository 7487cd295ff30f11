"""Markdown as plain text: what calendar descriptions, JSON-LD and text email show.

Each expected text is written out by hand from the rules in
``announcer.markup.to_text``: blocks apart by a blank line, a soft line break
as a space, links as ``text (url)`` unless the text is the address, list
items with their bullets or numbers, code as written.
"""

from __future__ import annotations

import pytest

from announcer import markup

CASES = [
    (
        "One line\nand its continuation.\n\nA second paragraph.",
        "One line and its continuation.\n\nA second paragraph.",
    ),
    ("*Very* **much** `so`.", "Very much so."),
    ("# Title\n\nBody text.", "Title\n\nBody text."),
    ("Read [the paper](https://example.org/p).", "Read the paper (https://example.org/p)."),
    ("See <https://example.org/>.", "See https://example.org/."),
    ("Write to <ana@example.org>.", "Write to ana@example.org."),
    ("Fish & chips <b>not bold</b>", "Fish & chips <b>not bold</b>"),
    ("- one\n- two", "- one\n- two"),
    ("1. one\n2. two\n   - a\n   - b\n3. three", "1. one\n2. two\n  - a\n  - b\n3. three"),
    ("Before.\n\n- item\n\nAfter.", "Before.\n\n- item\n\nAfter."),
    ("```\nfirst  \n  second\n```\n\nAfter.", "first\n  second\n\nAfter."),
    ("> Quoted\n> words.", "Quoted words."),
    ("- loose\n\n- items", "- loose\n\n- items"),
    ("    indented code\n\n- then a list", "indented code\n\n- then a list"),
    ("Above.\n\n***\n\nBelow.", "Above.\n\nBelow."),
]


@pytest.mark.parametrize(("source", "expected"), CASES)
def test_plain_text_follows_the_rules(source: str, expected: str) -> None:
    assert markup.to_text(source) == expected


def test_a_link_inside_a_list_item_keeps_its_address() -> None:
    source = "- [Slides](https://example.org/s.pdf)\n- [https://example.org](https://example.org)"
    assert markup.to_text(source) == "- Slides (https://example.org/s.pdf)\n- https://example.org"


def test_summary_is_one_line_cut_at_a_word() -> None:
    source = "First paragraph.\n\n" + "word " * 60
    found = markup.summary(source, 40)
    assert found == "First paragraph. word word word word..."
    assert "\n" not in found and len(found) <= 40
