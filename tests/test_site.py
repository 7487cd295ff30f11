"""The static site as files: which pages exist, what they say, and that text stays text."""

from __future__ import annotations

import dataclasses
import json
import posixpath
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest

from announcer import ledger as ledgers
from announcer import markup, urls
from announcer.adapters import listing as listings
from announcer.adapters.base import BuildContext, LazyFile
from announcer.adapters.html import HtmlAdapter
from announcer.load import load_site
from announcer.model import Event, Site, Speaker
from announcer.recurrence import expand
from announcer.templating import PACKAGE_TEMPLATES, when
from tests.conftest import NOW, MakeProject
from tests.sitebuild import EARLY, build_into

pytest_plugins = ["tests.conftest_site"]

EXAMPLE_EVENT = "policy-seminars/2018-11-30-nonprofit-coproduction/index.html"
CANCELLED_EVENT = "policy-seminars/2019-02-15-housing-first/index.html"
STATIC_STYLE = PACKAGE_TEMPLATES.parent / "static" / "style.css"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
STATIC_SCRIPT = PACKAGE_TEMPLATES.parent / "static" / "script.js"
SITE_SCRIPT = re.compile(r"(\.\./)*script\.js")


class Page(HTMLParser):
    """A parsed page: elements with their attributes, visible text, scripts."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.scripts: list[tuple[dict[str, str], str]] = []
        self.words: list[str] = []
        self._open: list[tuple[str, dict[str, str], bool]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        self.elements.append((tag, attributes))
        if tag not in VOID:
            hidden = "hidden" in attributes or tag in ("script", "style", "title")
            self._open.append((tag, attributes, hidden))

    def handle_endtag(self, tag: str) -> None:
        if self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if self._open and self._open[-1][0] == "script":
            self.scripts.append((self._open[-1][1], data))
        elif not any(hidden for _, _, hidden in self._open):
            self.words.append(data)

    @property
    def text(self) -> str:
        """What a reader sees with no script and no CSS (hidden elements left out)."""
        return " ".join("".join(self.words).split())

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [
            a
            for t, a in self.elements
            if t == tag and all(a.get(k.rstrip("_")) == v for k, v in attrs.items())
        ]

    def hrefs(self) -> list[str]:
        return [a["href"] for t, a in self.elements if t == "a" and "href" in a]


def squash(text: str) -> str:
    return " ".join(text.split())


def page(out: Path, path: str) -> Page:
    return Page((out / path).read_text(encoding="utf-8"))


def shown(site: Site) -> list[Event]:
    return [o for e in site.events() for o in expand(e)]


def expected_pages(site: Site) -> set[str]:
    pages = {urls.SITE_INDEX}
    for series in site.series:
        pages.add(urls.series_page(series))
        for event in series.events:
            pages.add(urls.event_page(event))
            pages.update(urls.event_page(o) for o in expand(event) if event.repeat)
    pages.update(urls.tag_page(t) for e in shown(site) for t in e.tags)
    return pages


def test_every_page_is_written(example_project: Path, site_project: Path, tmp_path: Path) -> None:
    for project in (example_project, site_project):
        out = tmp_path / "out" / project.name
        build_into(project, out, NOW)
        site = load_site(project)
        written = {str(p.relative_to(out)) for p in out.rglob("*.html")}
        assert written == expected_pages(site)
        assert (out / "style.css").read_bytes() == STATIC_STYLE.read_bytes()
        assert (out / "script.js").read_bytes() == STATIC_SCRIPT.read_bytes()
    assert "seminaire/atelier/2027-03-12/index.html" in written
    assert "seminaire/atelier/index.html" in written


def test_an_event_page_shows_what_the_poster_shows(example_project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build_into(example_project, out, NOW)
    site = load_site(example_project)
    event = next(e for e in site.events() if e.id == "2018-11-30-nonprofit-coproduction")
    html = page(out, EXAMPLE_EVENT)
    text = html.text
    assert event.title in text
    assert squash(when(event, "en")) == "Friday, November 30, 2018, 12:00 – 13:00 EST"
    assert squash(when(event, "en")) in text
    speaker = event.speakers[0]
    assert f"{speaker.name} {speaker.affiliation}" in text
    assert squash(markup.to_text(speaker.bio)) in text
    assert event.location in text
    assert "rules set by funders and governments" in text
    for tag in event.tags:
        assert f"../../tags/{tag}/" in html.hrefs()
    assert html.find("html", lang="en")
    assert html.find("time", datetime="2018-11-30T12:00:00-05:00")


def _at(start: datetime | date, end: datetime | date, zone: str) -> Event:
    return Event(series="s", id="e", uid="u", title="t", start=start, end=end, timezone=zone)


def _zoned(zone: str, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=ZoneInfo(zone))  # type: ignore[misc]


def _talk(zone: str, day: tuple[int, int, int], hours: tuple[int, int]) -> Event:
    """From one whole hour to another on one day, in ``zone``."""
    start, end = (_zoned(zone, *day, hour) for hour in hours)
    return _at(start, end, zone)


def test_dates_in_words_follow_each_zone_and_season() -> None:
    """One process says them all, in this order: a part kept from an earlier event
    (the same hours, the same zone in another season) must not leak into a later one."""
    toronto, paris, noon = "America/Toronto", "Europe/Paris", (12, 13)
    said = [
        (
            _talk(toronto, (2018, 11, 30), noon),
            "en",
            "Friday, November 30, 2018, 12:00 – 13:00 EST",
        ),
        (_talk(toronto, (2019, 6, 14), noon), "en", "Friday, June 14, 2019, 12:00 – 13:00 EDT"),
        (_talk(paris, (2019, 6, 14), noon), "en", "Friday, June 14, 2019, 12:00 – 13:00 CEST"),
        (
            _talk(toronto, (2018, 11, 30), noon),
            "fr-CA",
            "vendredi 30 novembre 2018, 12 h 00 – 13 h 00 HNE",
        ),
        (
            _talk(toronto, (2019, 6, 14), noon),
            "fr-CA",
            "vendredi 14 juin 2019, 12 h 00 – 13 h 00 HAE",
        ),
        (_talk(paris, (2019, 6, 14), noon), "fr", "vendredi 14 juin 2019, 12:00 – 13:00 CEST"),
        (_talk(paris, (2019, 1, 14), noon), "en", "Monday, January 14, 2019, 12:00 – 13:00 CET"),
        (
            _at(_zoned(toronto, 2019, 6, 14, 9), _zoned(toronto, 2019, 6, 15, 17), toronto),
            "en",
            "Friday, June 14, 2019 9:00 AM – Saturday, June 15, 2019 5:00 PM EDT",
        ),
        (
            _at(date(2019, 6, 14), date(2019, 6, 15), toronto),
            "en",
            "Friday, June 14, 2019 – Saturday, June 15, 2019",
        ),
        (_at(date(2019, 6, 14), date(2019, 6, 14), toronto), "fr", "vendredi 14 juin 2019"),
    ]
    assert [squash(when(event, language)) for event, language, _ in said] == [
        words for _, _, words in said
    ]


def test_add_to_calendar_and_subscribe_links(example_project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build_into(example_project, out, NOW)
    hrefs = page(out, EXAMPLE_EVENT).hrefs()
    assert "event.ics" in hrefs
    assert (out / posixpath.dirname(EXAMPLE_EVENT) / "event.ics").is_file()
    google = parse_qs(urlsplit(next(h for h in hrefs if "calendar.google.com" in h)).query)
    assert google["dates"] == ["20181130T170000Z/20181130T180000Z"]
    assert google["ctz"] == ["America/Toronto"]
    assert google["text"][0].startswith("Rules, practices and stories")
    page_url = "https://events.example.org/policy-seminars/2018-11-30-nonprofit-coproduction/"
    assert page_url in google["details"][0]
    for host in ("outlook.office.com", "outlook.live.com"):
        outlook = parse_qs(urlsplit(next(h for h in hrefs if host in h)).query)
        assert outlook["startdt"] == ["2018-11-30T17:00:00Z"]
        assert outlook["enddt"] == ["2018-11-30T18:00:00Z"]
        assert outlook["allday"] == ["false"]
    assert "webcal://events.example.org/policy-seminars/calendar.ics" in hrefs
    assert "https://events.example.org/policy-seminars/calendar.ics" in hrefs
    assert {"../feed.atom", "../feed.rss"} <= set(hrefs)


def test_all_day_events_link_whole_days(site_project: Path, tmp_path: Path) -> None:
    build_into(site_project, tmp_path / "out", EARLY)
    hrefs = page(tmp_path / "out", "seminaire/2027-04-01-journees/index.html").hrefs()
    google = parse_qs(urlsplit(next(h for h in hrefs if "google" in h)).query)
    assert google["dates"] == ["20270401/20270403"]
    outlook = parse_qs(urlsplit(next(h for h in hrefs if "outlook.live" in h)).query)
    assert (outlook["startdt"], outlook["enddt"], outlook["allday"]) == (
        ["2027-04-01"],
        ["2027-04-03"],
        ["true"],
    )


def listing(out: Path, path: str) -> tuple[list[str], list[str]]:
    """Titles in the upcoming and the past list of a page, in order."""
    html = (out / path).read_text(encoding="utf-8")
    upcoming, _, past = html.partition('data-list="past"')
    return _titles(upcoming), _titles(past)


def _titles(html: str) -> list[str]:
    return re.findall(r'<h3 class="event-title"><a href="([^"]+)">', html)


def test_upcoming_first_and_past_marked_at_build_time(
    example_project: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    build_into(example_project, out, datetime(2019, 2, 1, tzinfo=UTC))
    upcoming, past = listing(out, "index.html")
    assert upcoming == [
        "policy-seminars/2019-02-15-housing-first/",
        "policy-seminars/2019-09-20-participatory-budgeting/",
    ]
    assert past == [
        "policy-seminars/2019-01-25-open-data-cities/",
        "policy-seminars/2018-11-30-nonprofit-coproduction/",
    ]
    label = "Past event: this event has already taken place"
    assert label in page(out, EXAMPLE_EVENT).text
    future = "policy-seminars/2019-09-20-participatory-budgeting/index.html"
    assert label not in page(out, future).text
    assert page(out, future).find("article", **{"data-ends": "2019-09-20T17:00:00Z"})


def test_an_event_is_past_once_it_has_ended(example_project: Path, tmp_path: Path) -> None:
    label = "Past event: this event has already taken place"
    during = datetime(2018, 11, 30, 17, 59, tzinfo=UTC)  # 12:59 in Ottawa, still on
    build_into(example_project, tmp_path / "during", during)
    assert label not in page(tmp_path / "during", EXAMPLE_EVENT).text
    build_into(example_project, tmp_path / "after", datetime(2018, 11, 30, 18, tzinfo=UTC))
    assert label in page(tmp_path / "after", EXAMPLE_EVENT).text


def test_listings_order_and_split_by_instant_across_zones() -> None:
    """Paris at 18:00 starts before Toronto at 12:15 the same day; at 12:35 in Toronto
    the Paris talk is over and the Toronto one is still on. Wall clocks say otherwise."""
    paris, toronto = ZoneInfo("Europe/Paris"), ZoneInfo("America/Toronto")
    in_paris = _event("paris", datetime(2026, 1, 15, 18, 0, tzinfo=paris), 30, "Europe/Paris")
    in_toronto = _event(
        "toronto", datetime(2026, 1, 15, 12, 15, tzinfo=toronto), 30, "America/Toronto"
    )
    assert sorted([in_toronto, in_paris], key=listings.start_order) == [in_paris, in_toronto]
    now = datetime(2026, 1, 15, 12, 35, tzinfo=toronto)
    assert listings.split([in_toronto, in_paris], now) == ([in_toronto], [in_paris])
    assert listings.split([in_toronto, in_paris], now.astimezone(UTC)) == ([in_toronto], [in_paris])


def _event(name: str, start: datetime, minutes: int, zone: str) -> Event:
    end = start + timedelta(minutes=minutes)
    return Event(
        series="s",
        id=name,
        uid=f"{name}@example.org",
        title=name,
        start=start,
        end=end,
        timezone=zone,
    )


def test_cancelled_events_are_marked_not_removed(example_project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build_into(example_project, out, datetime(2019, 2, 1, tzinfo=UTC))
    html = page(out, CANCELLED_EVENT)
    assert "Cancelled: This event has been cancelled." in html.text
    assert html.find("article", class_="event-page is-cancelled")
    assert not any("calendar.google.com" in h for h in html.hrefs()), "no add-to-calendar"
    index = (out / "index.html").read_text(encoding="utf-8")
    item = index[index.index('class="event is-cancelled"') :]
    assert item.index("2019-02-15-housing-first") < item.index("Cancelled</span>") < 400


def test_json_ld_describes_the_event(example_project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build_into(example_project, out, NOW)
    data = json_ld(page(out, CANCELLED_EVENT))
    assert data["@type"] == "Event"
    assert data["eventStatus"] == "https://schema.org/EventCancelled"
    assert data["startDate"] == "2019-02-15T12:00:00-05:00"
    assert data["eventAttendanceMode"] == "https://schema.org/MixedEventAttendanceMode"
    assert data["location"][0]["name"].startswith("5136 Student Resource Centre")
    assert data["location"][1] == {
        "@type": "VirtualLocation",
        "url": "https://stream.example.org/sppa",
    }
    assert [p["name"] for p in data["performer"]] == ["Amélie Gagnon", "Sam Okafor"]
    assert data["performer"][1]["affiliation"]["name"] == "City of Ottawa"
    confirmed = json_ld(page(out, EXAMPLE_EVENT))
    assert confirmed["eventStatus"] == "https://schema.org/EventScheduled"
    assert confirmed["location"]["@type"] == "Place"


def json_ld(html: Page) -> dict[str, object]:
    (found,) = [text for attrs, text in html.scripts if attrs.get("type") == "application/ld+json"]
    data = json.loads(found)
    assert isinstance(data, dict)
    return data


def test_text_that_looks_like_html_stays_text_everywhere(
    site_project: Path, tmp_path: Path
) -> None:
    """Every text field of the tricky project holds markup or script: none may run."""
    out = tmp_path / "out"
    build_into(site_project, out, EARLY)
    for path in sorted(out.rglob("*.html")):
        html = page(out, str(path.relative_to(out)))
        assert_nothing_injected(html, str(path))
    regles = page(out, "seminaire/2027-03-02-regles/index.html")
    for text in (
        "Règles <b>gras</b> & \"guillemets\" <script>alert('title')</script>",
        "Zoé Lefèvre <img src=x onerror=alert('speaker')>",
        "Université d'Évry & CNRS <i>Paris-Saclay</i>",
        "Économiste. <script>alert('bio')</script>",
        "Salle « 2 » </script><script>alert('location')</script>",
        "<script>alert('abstract')</script> <img src=x onerror=alert('img')>",
        "<a href=\"javascript:alert('raw-link')\">lien brut</a>",
        "Talks <b>&amp;</b> \"Events\" </title><script>alert('site')</script>",
        "Séminaire « Économie & Société » <script>alert('series')</script>",
    ):
        assert text in regles.text, text
    assert json_ld(regles)["name"] == (
        "Règles <b>gras</b> & \"guillemets\" <script>alert('title')</script>"
    )
    cancelled = page(out, "seminaire/2027-03-09-annule/index.html")
    assert "Annulé ? Non : « Ça » ]]> --> </script><!-- fin" in cancelled.text
    english = page(out, "evening-talks/2027-05-06-talk/index.html")
    assert "{{ 7*7 }} and {% raw %}" in english.text


def assert_nothing_injected(html: Page, where: str) -> None:
    """No script but the site's own file; inline, only JSON-LD, which browsers never run."""
    tags = [attrs for tag, attrs in html.elements if tag == "script"]
    assert len(tags) in (1, 2), where
    external = [attrs for attrs in tags if attrs.get("type") != "application/ld+json"]
    assert len(external) == 1 and set(external[0]) == {"src"}, (where, external)
    assert SITE_SCRIPT.fullmatch(external[0]["src"]), (where, external)
    for attrs, text in html.scripts:
        assert attrs.get("type") == "application/ld+json", (where, text[:80])
        assert "<" not in text and json.loads(text), where
    for tag, attrs in html.elements:
        assert tag not in ("img", "iframe", "object", "embed", "svg", "form"), (where, tag)
        assert not [a for a in attrs if a.startswith("on")], (where, tag, attrs)
        for name in ("href", "src", "action"):
            value = attrs.get(name, "").strip().lower()
            assert not value.startswith(("javascript:", "data:text", "vbscript:")), (where, value)


def test_markdown_is_rendered_and_sanitised(site_project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build_into(site_project, out, EARLY)
    html = (out / "seminaire/2027-03-02-regles/index.html").read_text(encoding="utf-8")
    assert "<em>emphase</em>" in html
    assert '<a href="https://example.org/zoe" rel="noopener nofollow">sa page</a>' in html
    assert "<code>&lt;/script&gt;</code>" in html


def test_markdown_the_rust_renderer_panics_on_renders_quietly(
    make_project: MakeProject, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """markdown-it-pyrs 0.4.0 panics on a backtick left open in a bracket, and prints
    the panic; such a text goes to markdown-it-py, which follows the same rules."""
    awkward = "See [`the notes and *this*"
    assert markup.to_html(awkward) == "<p>See [`the notes and <em>this</em></p>\n"
    root = make_project(
        {
            "series/s/series.yaml": "title: S\ntimezone: America/Toronto\n",
            "series/s/events/talk.yaml": f"title: T\nstart: 2027-01-08 12:00\nabstract: '{awkward}'\n",
        }
    )
    build_into(root, tmp_path / "out", EARLY)
    assert "<em>this</em>" in (tmp_path / "out/s/talk/index.html").read_text()
    assert "panicked" not in capfd.readouterr().err


def test_a_panic_of_the_rust_renderer_falls_back_to_the_python_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """For a panic no known text triggers: caught as what it is, and nothing else."""

    class PanicException(BaseException):  # pyo3's, by name: it has no importable home
        pass

    class Panicking:
        def render(self, source: str) -> str:
            raise PanicException("index out of bounds")

    monkeypatch.setattr(markup, "_MD", Panicking())
    assert markup._render("*plain*") == "<p><em>plain</em></p>\n"

    class Interrupting:
        def render(self, source: str) -> str:
            raise KeyboardInterrupt

    monkeypatch.setattr(markup, "_MD", Interrupting())
    with pytest.raises(KeyboardInterrupt):
        markup._render("*plain*")


def test_markdown_made_ahead_is_what_one_call_makes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cold build renders its texts in one go (render_ahead); each must be kept as
    to_html itself would make it, and sent back from a worker like any other."""
    monkeypatch.setattr(markup.to_html, "results", {})
    monkeypatch.setattr(markup.to_html, "fresh", [])
    texts = [
        "# A heading\n\nSome *text* and [a link](https://example.org/x).",
        "<script>alert(1)</script> and [bad](javascript:alert(1))",
        "See [`the notes and *this*",  # the Rust renderer panics: the Python one takes it
        "",
        "# A heading\n\nSome *text* and [a link](https://example.org/x).",
    ]
    markup.render_ahead(texts)
    distinct = [texts[0], texts[1], texts[2]]
    assert markup.to_html.take() == [((text,), markup.to_html.function(text)) for text in distinct]
    assert "<h3>A heading</h3>" in markup.to_html(texts[0])
    shown = markup.to_html(texts[1])
    assert "<script>" not in shown and "href" not in shown


def test_pages_take_the_language_of_their_series(site_project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build_into(site_project, out, EARLY)
    assert page(out, "seminaire/index.html").find("html", lang="fr")
    assert page(out, "evening-talks/2027-05-06-talk/index.html").find("html", lang="en")
    index = page(out, "index.html")
    assert index.find("html", lang="fr"), "the site's language"
    assert index.find("li", lang="en"), "an English series named in a French page"
    assert "mardi 2 mars 2027" in page(out, "seminaire/2027-03-02-regles/index.html").text
    assert "Événements à venir" in page(out, "seminaire/index.html").text


def test_pages_make_no_external_requests(site_project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build_into(site_project, out, EARLY)
    for path in sorted(out.rglob("*.html")):
        html = page(out, str(path.relative_to(out)))
        loads = [a.get("src", "") for t, a in html.elements if t in ("script", "img")]
        loads += [
            a["href"]
            for t, a in html.elements
            if t == "link" and a["rel"] in ("stylesheet", "icon")
        ]
        assert all(not urlsplit(u).scheme or u == "data:," for u in loads), (path, loads)
        assert len(html.find("link", rel="stylesheet")) == 1
        assert html.find("meta", name="viewport")


def test_internal_links_resolve(example_project: Path, site_project: Path, tmp_path: Path) -> None:
    for project in (example_project, site_project):
        out = tmp_path / "out" / project.name
        build_into(project, out, NOW)
        for path in sorted(out.rglob("*.html")):
            relative = str(path.relative_to(out))
            html = page(out, relative)
            links = html.hrefs() + [a["href"] for t, a in html.elements if t == "link"]
            for href in links:
                if urlsplit(href).scheme:
                    continue
                target = posixpath.normpath(posixpath.join(posixpath.dirname(relative), href))
                resolved = out / target / "index.html" if href.endswith("/") else out / target
                assert resolved.is_file(), f"{relative}: {href}"


def test_occurrences_have_pages_of_their_own(site_project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build_into(site_project, out, EARLY)
    cancelled = page(out, "seminaire/atelier/2027-03-12/index.html")
    assert "Annulé : Cet événement a été annulé." in cancelled.text
    moved = page(out, "seminaire/atelier/2027-03-19/index.html")
    assert "Salle 14" in moved.text
    assert "../event.ics" in moved.hrefs(), "the recurring event's calendar file"
    assert "../" in moved.hrefs(), "a way back to every date"
    dates = page(out, "seminaire/atelier/index.html")
    assert [h for h in dates.hrefs() if h.startswith("2027-")] == [
        "2027-03-05/",
        "2027-03-12/",
        "2027-03-19/",
        "2027-03-26/",
    ]
    assert "event.ics" in dates.hrefs()


def test_tag_pages_link_calendars_only_where_they_exist(
    make_project: MakeProject, tmp_path: Path
) -> None:
    project = make_project(
        {
            "series/talks/series.yaml": "title: Talks\ntimezone: UTC\n",
            "series/talks/events/old.yaml": "title: Old\nstart: 2020-01-01 12:00\ntags: [old]\n",
            "series/talks/events/new.yaml": "title: New\nstart: 2026-12-01 12:00\ntags: [new]\n",
        }
    )
    out = tmp_path / "out"
    build_into(project, out, NOW)
    for tag, exists in (("old", False), ("new", True)):
        assert (out / f"tags/{tag}/calendar.ics").is_file() == exists
        hrefs = page(out, f"tags/{tag}/index.html").hrefs()
        assert any(h.endswith(f"tags/{tag}/calendar.ics") for h in hrefs) == exists
        assert {"feed.atom", "feed.rss"} <= set(hrefs)


def test_templates_are_overridden_file_by_file(site_project: Path, tmp_path: Path) -> None:
    site_wide = site_project / "templates/site/event.html"
    site_wide.parent.mkdir(parents=True)
    site_wide.write_text(
        '{% extends "site/base.html" %}{% block main %}SITE {{ event.title }}{% endblock %}'
    )
    one_series = site_project / "series/evening-talks/templates/site/event.html"
    one_series.parent.mkdir(parents=True)
    one_series.write_text("SERIES {{ event.title }}")
    out = tmp_path / "out"
    build_into(site_project, out, EARLY)
    french = (out / "seminaire/2027-03-09-annule/index.html").read_text(encoding="utf-8")
    assert "SITE Annulé ? Non : « Ça » ]]&gt; --&gt; &lt;/script&gt;&lt;!-- fin" in french
    assert '<link rel="stylesheet" href="../../style.css">' in french, "the package's base"
    english = (out / "evening-talks/2027-05-06-talk/index.html").read_text(encoding="utf-8")
    assert english.startswith("SERIES Verticaltab") or english.startswith("SERIES Vertical\vtab")
    assert "Événements à venir" in (out / "seminaire/index.html").read_text(encoding="utf-8")


def test_pages_are_byte_identical_for_the_same_input(site_project: Path, tmp_path: Path) -> None:
    build_into(site_project, tmp_path / "1", EARLY)
    build_into(site_project, tmp_path / "2", EARLY)
    first = sorted(p.relative_to(tmp_path / "1") for p in (tmp_path / "1").rglob("*.html"))
    assert first
    for relative in first:
        assert (tmp_path / "1" / relative).read_bytes() == (tmp_path / "2" / relative).read_bytes()


SAME_INSTANT = {
    "series/to/series.yaml": "title: Toronto talks\ntimezone: America/Toronto\n",
    "series/pa/series.yaml": "title: Paris talks\ntimezone: Europe/Paris\n",
    "series/lo/series.yaml": "title: London talks\ntimezone: Europe/London\n",
    "series/to/events/noon.yaml": "title: Noon\nstart: 2026-12-04 12:00\nend: 2026-12-04 13:00\n",
    "series/pa/events/six.yaml": "title: Six\nstart: 2026-12-04 18:00\nend: 2026-12-04 19:00\n",
    "series/lo/events/five.yaml": "title: Five\nstart: 2026-12-04 17:00\nend: 2026-12-04 18:00\n",
}  # three events at one instant, in three zones


def test_a_time_reads_in_its_own_zone_whatever_was_rendered_before(
    make_project: MakeProject, tmp_path: Path
) -> None:
    """Noon in Toronto is 18:00 in Paris: equal instants, and each page says its own time."""
    root = make_project(SAME_INSTANT)
    out = tmp_path / "out"
    build_into(root, out, NOW)
    shown = {
        page: _time_shown(out / page / "index.html") for page in ("to/noon", "pa/six", "lo/five")
    }
    assert shown == {
        "to/noon": "Friday, December 4, 2026, 12:00 – 13:00 EST",
        "pa/six": "Friday, December 4, 2026, 18:00 – 19:00 CET",
        "lo/five": "Friday, December 4, 2026, 17:00 – 18:00 GMT",
    }


def _time_shown(page: Path) -> str:
    found = re.search(r'<dd><time datetime="[^"]+">([^<]+)</time>', page.read_text())
    assert found, page
    return " ".join(found[1].split())


def test_meta_summary_cuts_as_jinja_truncate_did() -> None:
    """The page's description filter replaced split|join|truncate(200): same text."""
    import jinja2
    from markupsafe import Markup

    chain = jinja2.Environment(autoescape=True).from_string(
        '{{ text.split()|join(" ")|truncate(200) }}'
    )
    words = "Co-production *of* public services by\n\nnon-profits in [Ontario](https://x.org) "
    for size in (0, 1, *range(190, 240), 2000):  # plain lengths 180-225 among them
        source = (words * 40)[:size]
        plain = markup.to_text(source)
        assert markup.summary(source, 200) == Markup(chain.render(text=plain)).unescape()


# What a listing page shows of an event (adapters.listing.listed_as), what decides which
# listings hold it (their fingerprints, announcer.recall), and what no listing shows:
# a listing is kept without a look when its events' listed_as did not move.
LISTED = {"title", "status", "start", "end", "timezone", "speakers"}  # speakers: their names
HOLDING = {"series", "id", "tags", "repeat", "overrides", "recurrence_id"}
HIDDEN: dict[str, object] = {
    "uid": "another-uid@example.org",
    "location": "Room 9, elsewhere",
    "online_url": "https://example.org/another-stream",
    "url": "https://example.org/another-page",
    "abstract": "Another **abstract**.",
    "source": "moved.yaml:1",
    "origin": "another-origin",
}
HIDDEN_OF_SPEAKERS: dict[str, object] = {
    "affiliation": "Another lab",
    "bio": "Another *bio*.",
    "url": "https://example.org/another-person",
}


def test_every_field_of_an_event_is_shown_by_listings_or_not() -> None:
    """A field added to the model must be put in one of the sets above (and listed_as)."""
    assert {f.name for f in dataclasses.fields(Event)} == LISTED | HOLDING | HIDDEN.keys()
    assert {f.name for f in dataclasses.fields(Speaker)} == {"name", *HIDDEN_OF_SPEAKERS}


def listing_pages(site: Site, root: Path) -> dict[str, bytes]:
    """Every page the HTML adapter says shows its events only as listings do."""
    ledger, _ = ledgers.advance(ledgers.load(root / "no-ledger.json"), ledgers.records(site), NOW)
    context = BuildContext(site=site, ledger=ledger, project=root, now=NOW)
    return {
        file.path: file.make()
        for file in HtmlAdapter().files(context)
        if isinstance(file, LazyFile) and file.depends is not None and file.depends.listed
    }


def with_every_event(site: Site, change: Callable[[Event], Event]) -> Site:
    def changed(event: Event) -> Event:
        return change(replace(event, overrides=tuple(map(change, event.overrides))))

    series = [replace(s, events=tuple(map(changed, s.events))) for s in site.series]
    return replace(site, series=tuple(series))


@pytest.mark.parametrize(
    ("field", "value"),
    [*HIDDEN.items(), *((f"speaker {k}", v) for k, v in HIDDEN_OF_SPEAKERS.items())],
)
def test_listings_show_nothing_listed_as_leaves_out(
    site_project: Path, field: str, value: object
) -> None:
    site = load_site(site_project)
    if field.startswith("speaker "):
        name = field.removeprefix("speaker ")
        changed = with_every_event(
            site,
            lambda e: replace(e, speakers=tuple(replace(s, **{name: value}) for s in e.speakers)),
        )
    else:
        changed = with_every_event(site, lambda e: replace(e, **{field: value}))
    pages = listing_pages(site, site_project)
    assert {"index.html", "seminaire/index.html", "tags/lecture/index.html"} <= pages.keys()
    before = [listings.listed_as(e, NOW) for e in listings_of(site)]
    assert [listings.listed_as(e, NOW) for e in listings_of(changed)] == before
    assert listing_pages(changed, site_project) == pages


def listings_of(site: Site) -> list[Event]:
    return [shown for event in site.events() for shown in expand(event)]


@pytest.mark.parametrize("field", sorted(LISTED))
def test_listed_as_reads_every_field_listings_show(site_project: Path, field: str) -> None:
    site = load_site(site_project)
    event = next(e for e in site.events() if e.speakers and isinstance(e.start, datetime))
    values: dict[str, object] = {
        "title": "Another title",
        "status": "tentative" if event.status != "tentative" else "confirmed",
        "start": event.start - timedelta(hours=1),
        "end": event.end + timedelta(hours=1),
        "timezone": "Europe/London" if event.timezone != "Europe/London" else "UTC",
        "speakers": (replace(event.speakers[0], name="Another name"), *event.speakers[1:]),
    }
    changed = replace(event, **{field: values[field]})
    assert listings.listed_as(changed, NOW) != listings.listed_as(event, NOW)
