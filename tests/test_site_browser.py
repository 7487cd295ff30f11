"""The pages in a real browser: Debian's Chromium, driven by Playwright, over local HTTP.

The example project is built as of 2018-06-01, before all of its events, so every
"past" label in the files says upcoming; the browser's clock is then set later,
and what the reader sees must follow the browser's clock (the script's switch).
Screenshots land in tests/artifacts/ for a person to look at.
"""

from __future__ import annotations

import functools
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from icalendar import Calendar
from playwright.sync_api import Browser, Page, sync_playwright

from announcer.load import load_site
from announcer.templating import when
from tests.conftest import EXAMPLE, ROOT
from tests.sitebuild import EARLY, SITE_FIXTURES, build_into

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE = ROOT / "tests/interop/node_modules/axe-core/axe.min.js"
ARTIFACTS = ROOT / "tests/artifacts"
BUILT = datetime(2018, 6, 1, tzinfo=UTC)  # before every example event
READ = datetime(2019, 1, 1, 12, tzinfo=UTC)  # after the first, before the others
PAST = "policy-seminars/2018-11-30-nonprofit-coproduction/"
FUTURE = "policy-seminars/2019-09-20-participatory-budgeting/"
CANCELLED = "policy-seminars/2019-02-15-housing-first/"
LABEL = "Past event: this event has already taken place"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


# What a careful static host sends: scripts only from files of the site itself, no
# inline script. Pages must work under it (the browser reports what it refuses).
POLICY = "default-src 'self'; img-src 'self' data:"


class _Served(SimpleHTTPRequestHandler):
    def end_headers(self) -> None:
        self.send_header("Content-Security-Policy", POLICY)
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Both projects built under one folder and served on 127.0.0.1; yields the base URL."""
    root = tmp_path_factory.mktemp("served")
    example = tmp_path_factory.mktemp("example")
    for name in ("announcer.yaml", "ledger.json"):
        shutil.copy(EXAMPLE / name, example)
    shutil.copytree(EXAMPLE / "series", example / "series")
    build_into(example, root / "example", BUILT)
    tricky = tmp_path_factory.mktemp("tricky") / "project"
    shutil.copytree(SITE_FIXTURES / "tricky", tricky)
    build_into(tricky, root / "tricky", EARLY)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Served, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: install it with `apt-get install -y chromium`")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@dataclass
class Visit:
    """A page plus everything it reported: console errors, script errors, dialogs, requests."""

    page: Page
    problems: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def go(self, url: str) -> Page:
        """Open another page in the same browser context (contexts are slow to make)."""
        response = self.page.goto(url)
        assert response is not None and response.status == 200, url
        return self.page


def visit(
    browser: Browser,
    url: str,
    *,
    clock: datetime | None = READ,
    script: bool = True,
    timezone: str = "America/Toronto",
    viewport: dict[str, int] = DESKTOP,
    scheme: str = "light",
    bypass_csp: bool = False,
) -> Visit:
    context = browser.new_context(
        java_script_enabled=script,
        bypass_csp=bypass_csp,
        timezone_id=timezone,
        viewport=viewport,  # type: ignore[arg-type]
        color_scheme=scheme,  # type: ignore[arg-type]
        locale="en-CA",
    )
    page = context.new_page()
    seen = Visit(page)
    page.on("console", lambda m: seen.problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen.problems.append(f"script error: {e}"))
    page.on("dialog", lambda d: (seen.problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.on("request", lambda r: seen.requests.append(r.url))
    if clock is not None:
        page.clock.set_fixed_time(clock)
    seen.go(url)
    return seen


def close(seen: Visit, base: str) -> None:
    """No errors, no alert, and nothing fetched from anywhere but the local server."""
    assert seen.problems == [], seen.problems
    outside = [u for u in seen.requests if not u.startswith((base, "data:"))]
    assert outside == [], outside
    seen.page.context.close()


def shown(page: Page, selector: str) -> bool:
    return page.locator(selector).first.is_visible()


def test_the_script_marks_past_events_by_the_readers_clock(browser: Browser, site: str) -> None:
    events = {e.id: e for e in load_site(EXAMPLE).events()}
    for path, past in ((PAST, True), (FUTURE, False)):
        seen = visit(browser, site + "example/" + path)
        page, event = seen.page, events[path.split("/")[1]]
        assert page.locator("h1").inner_text() == event.title
        assert page.locator("main time").first.inner_text() == when(event, "en")
        assert shown(page, "[data-past-notice]") == past, path
        if past:
            assert page.locator("[data-past-notice]").inner_text() == LABEL
        close(seen, site)


def test_without_script_the_label_is_the_builds(browser: Browser, site: str) -> None:
    seen = visit(browser, site + "example/" + PAST, script=False)
    assert not shown(seen.page, "[data-past-notice]"), "built before the event: upcoming"
    assert LABEL not in seen.page.locator("main").inner_text()
    close(seen, site)


def test_listings_move_events_that_ended_since_the_build(browser: Browser, site: str) -> None:
    for clock, upcoming, past in ((BUILT, 4, 0), (READ, 3, 1)):
        seen = visit(browser, site + "example/", clock=clock)
        page = seen.page
        assert page.locator("[data-list=upcoming] > li").count() == upcoming
        assert page.locator("[data-list=past] > li").count() == past
        assert shown(page, "[data-past-section]") == (past > 0)
        if past:
            assert page.locator("[data-list=past] a").first.get_attribute("href") == PAST
        close(seen, site)


def test_the_readers_own_time_is_shown_when_it_differs(browser: Browser, site: str) -> None:
    seen = visit(browser, site + "example/" + PAST, timezone="Europe/Paris")
    line = seen.page.locator("[data-your-time]")
    assert line.is_visible()
    assert "7:00" in line.inner_text() and "GMT+1" in line.inner_text()
    close(seen, site)
    seen = visit(browser, site + "example/" + PAST, timezone="America/Toronto")
    assert not seen.page.locator("[data-your-time]").is_visible()
    close(seen, site)


@pytest.mark.parametrize(
    ("path", "uid", "rule"),
    [
        (
            "example/" + FUTURE,
            "2019-09-20-participatory-budgeting.policy-seminars@announcer",
            False,
        ),
        ("tricky/seminaire/atelier/2027-03-19/", "atelier.seminaire@announcer", True),
    ],
)
def test_add_to_calendar_serves_a_calendar(
    browser: Browser, site: str, path: str, uid: str, rule: bool
) -> None:
    seen = visit(browser, site + path)
    link = seen.page.locator("section.add a[download]")
    response = seen.page.request.get(link.evaluate("a => a.href"))
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/calendar")
    with seen.page.expect_download() as download:
        link.click()
    data = Path(download.value.path()).read_bytes()
    assert data == response.body()
    calendar = Calendar.from_ical(data)
    events = calendar.walk("VEVENT")
    assert {str(e["UID"]) for e in events} == {uid}
    assert any("RRULE" in e for e in events) == rule
    close(seen, site)


def tricky_pages(site: str) -> list[str]:
    paths = [
        "",
        "seminaire/",
        "seminaire/2027-03-02-regles/",
        "seminaire/2027-03-09-annule/",
        "seminaire/2027-04-01-journees/",
        "seminaire/atelier/",
        "seminaire/atelier/2027-03-12/",
        "evening-talks/2027-05-06-talk/",
        "tags/economie/",
    ]
    return [site + "tricky/" + p for p in paths]


def test_script_in_any_text_field_never_runs(browser: Browser, site: str) -> None:
    pages = tricky_pages(site)
    seen = visit(browser, pages[0])
    for url in pages:
        page = seen.go(url)
        scripts = page.locator("script").count()
        assert scripts == (2 if "/20" in url else 1), url  # the page's own, and JSON-LD
        assert page.locator("img, iframe, svg, object, embed").count() == 0, url
    seen.go(pages[2])
    assert seen.page.locator("h1").inner_text() == (
        "Règles <b>gras</b> & \"guillemets\" <script>alert('title')</script>"
    )
    close(seen, site)


def axe_violations(page: Page) -> list[str]:
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing: run `npm ci` in tests/interop (it lists axe-core)")
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_pages_have_no_serious_accessibility_problems(browser: Browser, site: str) -> None:
    example = [site + "example/" + p for p in ("", "policy-seminars/", PAST, CANCELLED)]
    for scheme, urls in (("light", example + tricky_pages(site)), ("dark", example)):
        seen = visit(browser, urls[0], scheme=scheme, bypass_csp=True)  # axe is injected inline
        for url in urls:
            assert axe_violations(seen.go(url)) == [], (url, scheme)
        close(seen, site)


def test_pages_fit_a_phone_and_screenshots_are_saved(browser: Browser, site: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    urls = [site + "example/" + p for p in ("", PAST, CANCELLED)] + tricky_pages(site)
    seen = visit(browser, urls[0], viewport=PHONE)
    for url in urls:
        overflow = seen.go(url).evaluate("document.documentElement.scrollWidth - innerWidth")
        assert overflow <= 0, f"{url} is {overflow}px wider than a phone"
    close(seen, site)
    shots = {
        "event-desktop.png": (PAST, DESKTOP, "light"),
        "event-phone.png": (PAST, PHONE, "light"),
        "event-phone-dark.png": (PAST, PHONE, "dark"),
        "cancelled-desktop.png": (CANCELLED, DESKTOP, "light"),
        "index-desktop.png": ("", DESKTOP, "light"),
        "index-phone.png": ("", PHONE, "light"),
    }
    for name, (path, viewport, scheme) in shots.items():
        seen = visit(browser, site + "example/" + path, viewport=viewport, scheme=scheme)
        seen.page.screenshot(path=str(ARTIFACTS / name), full_page=True)
        close(seen, site)
        assert (ARTIFACTS / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
