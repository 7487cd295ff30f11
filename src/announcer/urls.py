"""Where things live in the output tree: the URLs subscribers bookmark.

These paths are part of the published contract; every adapter asks here rather
than building paths of its own, so they cannot drift apart.
"""

from __future__ import annotations

from announcer.model import Event, Series, Site


def event_dir(event: Event) -> str:
    """``<series>/<event-id>/``, and ``<series>/<event-id>/<date>/`` for an occurrence."""
    return f"{event.series}/{event.id}/"


def event_page(event: Event) -> str:
    return event_dir(event) + "index.html"


def event_ics(event: Event) -> str:
    """The "add to calendar" file: an occurrence shares its recurring event's file."""
    return f"{event.series}/{event.id.split('/')[0]}/event.ics"


def series_dir(series: Series | str) -> str:
    return f"{series if isinstance(series, str) else series.slug}/"


def series_page(series: Series | str) -> str:
    return series_dir(series) + "index.html"


def series_calendar(series: Series | str) -> str:
    return series_dir(series) + "calendar.ics"


def series_feed(series: Series | str, kind: str = "atom") -> str:
    return series_dir(series) + f"feed.{kind}"


def tag_dir(tag: str) -> str:
    return f"tags/{tag}/"


def tag_page(tag: str) -> str:
    """Not in the contract's list, but where the tag links of the pages lead."""
    return tag_dir(tag) + "index.html"


def tag_calendar(tag: str) -> str:
    return tag_dir(tag) + "calendar.ics"


def tag_feed(tag: str, kind: str = "atom") -> str:
    return tag_dir(tag) + f"feed.{kind}"


SITE_CALENDAR = "calendar.ics"
SITE_INDEX = "index.html"
STYLESHEET = "style.css"
SCRIPT = "script.js"


def site_feed(kind: str = "atom") -> str:
    return f"feed.{kind}"


def absolute(site: Site, path: str) -> str:
    """The public URL of an output path; ``index.html`` is dropped so links stay pretty."""
    if path == "index.html" or path.endswith("/index.html"):
        path = path[: -len("index.html")]
    base = site.base_url if site.base_url.endswith("/") else site.base_url + "/"
    return base + path  # output paths are relative and never climb, so no urljoin needed


def relative(page: str, target: str) -> str:
    """The link from output path ``page`` to output path ``target``.

    Pages link to each other relatively, so the site works wherever it is served
    (a preview server, a sub-folder); ``index.html`` is dropped as in :func:`absolute`.
    Both are output paths as this module makes them: relative, '/'-separated, no '..'.
    """
    folder = page.rpartition("/")[0]
    if not folder:  # the fast paths: a build makes a quarter of a million links
        link = target
    elif target.startswith(folder + "/"):
        link = target[len(folder) + 1 :]
    else:
        here, there = folder.split("/"), target.split("/")
        common = 0
        for mine, theirs in zip(here, there[:-1], strict=False):  # folders both are in
            if mine != theirs:
                break
            common += 1
        link = "../" * (len(here) - common) + "/".join(there[common:])
    if link == "index.html" or link.endswith("/index.html"):
        return link[: -len("index.html")] or "./"
    return link


def webcal(url: str) -> str:
    """The same URL for calendar apps that subscribe on a click."""
    return "webcal://" + url.split("://", 1)[1]
