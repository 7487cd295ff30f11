"""Event pages, listing items and feed entries written directly (``adapters/pagetext.py``)
are the bytes the templates render.

Each project is built twice, once as shipped and once with everything sent
through Jinja, and the two trees must be equal file for file. When this fails
after a change to ``site/event.html``, ``base.html``, ``macros.html``,
``script.html`` or ``feed/entry.html``, make the same change in ``pagetext.py``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from markupsafe import Markup, escape

from announcer.adapters import pagetext
from announcer.load import load_site
from announcer.pipeline import build
from announcer.templating import PACKAGE_TEMPLATES
from tests.conftest import MakeProject
from tests.sitebuild import EARLY, SITE_FIXTURES

LATE = datetime(2030, 1, 1, tzinfo=UTC)  # after every event: each page says "past"

# What the example and the tricky project leave out: no speakers, no abstract, no
# place; a speaker with a page but no affiliation; a bio with no affiliation; two
# zones; an event with a page of its own and three tags.
VARIETY = {
    "announcer.yaml": """
        title: Variety
        base_url: https://example.org/
        """,
    "series/talks/series.yaml": """
        title: Talks & "More"
        timezone: Europe/London
        default_duration: 90m
        """,
    "series/talks/events/2027-01-05-bare.yaml": """
        title: Nothing but a title
        start: 2027-01-05 10:00
        """,
    "series/talks/events/2027-01-06-people.yaml": """
        title: People <and> pages
        start: 2027-01-06 16:00
        timezone: Asia/Tokyo
        speakers:
          - name: Ana
            url: https://example.org/ana
          - name: Bo
            bio: Works on *things*.
        abstract: "   "
        online_url: https://meet.example.org/x
        url: https://example.org/more
        tags: [one, two, three]
        """,
}


def trees(project: Path, tmp_path: Path, now: datetime) -> tuple[dict[str, bytes], ...]:
    """The output as shipped and with every page through Jinja; checks the first wrote
    every event page directly."""
    pages, items = _spied(pagetext.event_page), _spied(pagetext.event_item)
    entries = _spied(pagetext.entry_content)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pagetext, "event_page", pages)
        patch.setattr(pagetext, "event_item", items)
        patch.setattr(pagetext, "entry_content", entries)
        build(project, tmp_path / "direct", now=now, jobs=1, save_ledger=False)
    single = sum(1 for event in load_site(project).events() if event.repeat is None)
    assert pages.calls >= single > 0, "the event pages were not written directly"
    assert items.calls >= single, "the listing items were not written directly"
    assert entries.calls >= single, "the feed entries were not written directly"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pagetext, "applies", lambda *overridden: False)
        build(project, tmp_path / "jinja", now=now, jobs=1, save_ledger=False)
    return _read(tmp_path / "direct"), _read(tmp_path / "jinja")


class _spied:
    def __init__(self, function: Callable[..., str]) -> None:
        self.function, self.calls = function, 0

    def __call__(self, *args: object, **kwargs: object) -> str:
        self.calls += 1
        return self.function(*args, **kwargs)


def _read(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def assert_same(direct: dict[str, bytes], jinja: dict[str, bytes]) -> None:
    assert direct.keys() == jinja.keys()
    differ = [path for path in direct if direct[path] != jinja[path]]
    if differ:  # the first difference, line by line, to see what to change
        first = differ[0]
        ours, theirs = direct[first].decode().splitlines(), jinja[first].decode().splitlines()
        line = next(
            (i for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b),
            min(len(ours), len(theirs)),
        )
        context = (ours[line : line + 2], theirs[line : line + 2])
        pytest.fail(f"{len(differ)} files differ; {first}, line {line + 1}: {context}")


@pytest.mark.parametrize("now", [EARLY, LATE], ids=["upcoming", "past"])
def test_the_tricky_projects_pages_are_the_templates_bytes(tmp_path: Path, now: datetime) -> None:
    project = tmp_path / "tricky"
    shutil.copytree(SITE_FIXTURES / "tricky", project)
    assert_same(*trees(project, tmp_path, now))


def test_the_examples_pages_are_the_templates_bytes(example_project: Path, tmp_path: Path) -> None:
    """The example overrides an email template, which leaves its pages to pagetext."""
    assert (example_project / "templates").is_dir()
    assert_same(*trees(example_project, tmp_path, datetime(2019, 1, 1, tzinfo=UTC)))


def test_pages_with_nothing_or_everything_are_the_templates_bytes(
    make_project: MakeProject, tmp_path: Path
) -> None:
    assert_same(*trees(make_project(VARIETY), tmp_path, EARLY))


# Where each template's override marks the page: inside what an event page shows of it.
MARKED_AFTER = {
    "site/base.html": "<main>",
    "site/event.html": "</h1>",
    "site/macros.html": '<section class="subscribe" aria-labelledby="subscribe-heading">',
    "site/script.html": "</script>",
}


@pytest.mark.parametrize("name", pagetext.TEMPLATES)
def test_an_override_of_any_template_of_the_page_goes_through_jinja(
    make_project: MakeProject, tmp_path: Path, name: str
) -> None:
    """Overridden for one series: its pages show the override; the other series' don't."""
    project = make_project(
        {**VARIETY, "series/other/series.yaml": "title: Other\ntimezone: UTC\n"}
        | {"series/other/events/2027-02-01-x.yaml": "title: X\nstart: 2027-02-01 10:00\n"}
    )
    original = (PACKAGE_TEMPLATES / name).read_text(encoding="utf-8")
    where = MARKED_AFTER[name]
    assert where in original, name
    marked = original.replace(where, where + "<!-- overridden -->", 1)
    override = project / "series/talks/templates" / name
    override.parent.mkdir(parents=True)
    override.write_text(marked, encoding="utf-8")
    assert not pagetext.applies(project, "talks") and pagetext.applies(project, "other")
    build(project, tmp_path / "out", now=EARLY, jobs=1, save_ledger=False)
    talks = (tmp_path / "out/talks/2027-01-05-bare/index.html").read_text(encoding="utf-8")
    other = (tmp_path / "out/other/2027-02-01-x/index.html").read_text(encoding="utf-8")
    assert "<!-- overridden -->" in talks and "<!-- overridden -->" not in other


def test_an_override_of_the_macros_shapes_the_listing_items(
    make_project: MakeProject, tmp_path: Path
) -> None:
    project = make_project(VARIETY)
    original = (PACKAGE_TEMPLATES / "site/macros.html").read_text(encoding="utf-8")
    assert '<p class="badges">' in original
    override = project / "templates/site/macros.html"
    override.parent.mkdir(parents=True)
    override.write_text(original.replace('<p class="badges">', '<p class="badges" x>'))
    assert not pagetext.applies(project, None, pagetext.ITEM_TEMPLATES)
    build(project, tmp_path / "out", now=EARLY, jobs=1, save_ledger=False)
    for page in ("index.html", "talks/index.html", "tags/one/index.html"):
        assert '<p class="badges" x>' in (tmp_path / "out" / page).read_text(), page


def test_an_override_of_the_entry_template_shapes_that_series_feed_entries(
    make_project: MakeProject, tmp_path: Path
) -> None:
    project = make_project(VARIETY)
    original = (PACKAGE_TEMPLATES / "feed/entry.html").read_text(encoding="utf-8")
    override = project / "series/talks/templates/feed/entry.html"
    override.parent.mkdir(parents=True)
    override.write_text(original + "OVERRIDDEN-ENTRY")
    assert not pagetext.applies(project, "talks", pagetext.ENTRY_TEMPLATES)
    build(project, tmp_path / "out", now=EARLY, jobs=1, save_ledger=False)
    shown = {"talks/feed.atom": 2, "talks/feed.rss": 2, "feed.atom": 2, "tags/one/feed.atom": 1}
    for feed, entries in shown.items():
        assert (tmp_path / "out" / feed).read_text().count("OVERRIDDEN-ENTRY") == entries, feed


@given(st.text())
def test_text_is_escaped_as_markupsafe_escapes_it(text: str) -> None:
    assert pagetext._escape(text) == str(escape(text))


def test_markup_is_not_escaped_twice() -> None:
    assert pagetext._escape(Markup("<b>&amp;</b>")) == "<b>&amp;</b>"
