"""Links between output paths, checked against the standard library's path arithmetic."""

from __future__ import annotations

import posixpath

from hypothesis import given
from hypothesis import strategies as st

from announcer import urls

# Few distinct names, so pages and targets often share leading folders; as in an
# output tree, a name is a folder or a file, never both.
_folders = st.lists(st.sampled_from(["a", "b", "tags", "series"]), max_size=3)
_file = st.sampled_from(["index.html", "feed.atom", "style.css"])
_path = st.builds(lambda folders, name: "/".join([*folders, name]), _folders, _file)


def _expected(page: str, target: str) -> str:
    link = posixpath.relpath(target, posixpath.dirname(page) or ".")
    if link == "index.html" or link.endswith("/index.html"):
        return link[: -len("index.html")] or "./"
    return link


@given(_path, _path)
def test_a_link_leads_from_the_page_to_the_target(page: str, target: str) -> None:
    assert urls.relative(page, target) == _expected(page, target)


def test_links_between_the_pages_a_site_has() -> None:
    event = "seminar/2018-11-30-talk/index.html"
    assert urls.relative("index.html", event) == "seminar/2018-11-30-talk/"
    assert urls.relative("seminar/index.html", event) == "2018-11-30-talk/"
    assert urls.relative("tags/policy/index.html", event) == "../../seminar/2018-11-30-talk/"
    assert urls.relative(event, "style.css") == "../../style.css"
    assert urls.relative(event, "seminar/index.html") == "../"
    assert urls.relative("seminar/index.html", "seminar/index.html") == "./"


_texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)))


@given(_texts)
def test_add_to_calendar_links_quote_as_the_standard_library_does(text: str) -> None:
    from urllib.parse import quote

    from announcer.adapters import addto

    assert addto._quoted(text) == quote(text, safe="")
