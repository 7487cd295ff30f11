"""``announcer serve``: real HTTP requests to a real preview server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from announcer.cli import main
from announcer.workflow.serve import VERSION_PATH, Preview, inject_reload

OPEN_DATA = "series/policy-seminars/events/2019-01-25-open-data-cities.yaml"


def get(url: str) -> tuple[int, str, str]:
    """(status, content type, body) of a GET, error statuses included."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def version(preview: Preview) -> int:
    status, _, body = get(preview.url + VERSION_PATH.lstrip("/"))
    assert status == 200
    found: int = json.loads(body)["version"]
    return found


def wait_for_rebuild(preview: Preview, seen: int) -> None:
    """Poll the version the page itself polls, as a browser would; fail after 15 s."""
    deadline = time.monotonic() + 15
    while version(preview) == seen:
        assert time.monotonic() < deadline, "no rebuild within 15 s of the change"
        time.sleep(0.05)


def edit(project: Path, relative: str, old: str, new: str) -> None:
    """Save a change as most editors do, all at once (a rename): written in place, the
    file is empty for a moment, and a poll that lands then rebuilds from the empty file
    and moves the version before the change is in, which a test would take for the
    change. The new text is written beside the project, outside what the preview
    watches."""
    path = project / relative
    text = path.read_text(encoding="utf-8")
    assert old in text
    saved = project.parent / f".{path.name}.saving"
    saved.write_text(text.replace(old, new), encoding="utf-8")
    os.replace(saved, path)


@pytest.fixture
def log() -> list[str]:
    """What the preview printed to the terminal."""
    return []


@pytest.fixture
def preview(example_project: Path, log: list[str]) -> Iterator[Preview]:
    server = Preview(example_project, port=0, interval=0.05, log=log.append)
    server.start()
    yield server
    server.stop()


def test_the_site_is_served_on_localhost_with_live_reload(preview: Preview) -> None:
    assert preview.url.startswith("http://127.0.0.1:")
    status, kind, page = get(preview.url)
    assert (status, kind) == (200, "text/html; charset=utf-8")
    assert "Carleton Public Policy Events" in page
    assert VERSION_PATH in page and page.rstrip().endswith("</html>")
    status, kind, calendar = get(preview.url + "policy-seminars/calendar.ics")
    assert (status, kind) == (200, "text/calendar")
    assert "UID:2019-01-25-open-data-cities.policy-seminars@announcer" in calendar
    # links point at the preview, not at the real site
    assert f"URL;VALUE=URI:{preview.url}policy-seminars/" in calendar
    assert get(preview.url + "no/such/page.html")[0] == 404


def test_the_project_is_left_alone(example_project: Path) -> None:
    ledger = (example_project / "ledger.json").read_bytes()
    edit(example_project, OPEN_DATA, "start: 2019-01-25 12:00", "start: 2019-01-25 14:00")
    server = Preview(example_project, port=0, log=lambda _: None)
    server.start()
    try:
        assert (
            "DTSTART;TZID=America/Toronto:20190125T140000"
            in get(server.url + "policy-seminars/2019-01-25-open-data-cities/event.ics")[2]
        )
    finally:
        server.stop()
    assert (example_project / "ledger.json").read_bytes() == ledger
    assert not (example_project / "public").exists()
    assert not server.folder.exists()
    with pytest.raises(OSError):
        urllib.request.urlopen(server.url, timeout=2)


def test_a_saved_change_is_rebuilt_and_served(preview: Preview, example_project: Path) -> None:
    seen = version(preview)
    edit(example_project, OPEN_DATA, '"Open data in', '"Open and closed data in')
    wait_for_rebuild(preview, seen)
    calendar = get(preview.url + "policy-seminars/calendar.ics")[2]
    assert "SUMMARY:Open and closed data in Canadian cities" in calendar
    seen = version(preview)
    added = example_project / "series/policy-seminars/events/2027-01-15-new.yaml"
    added.write_text("title: A brand new talk\nstart: 2027-01-15 12:00\n", encoding="utf-8")
    wait_for_rebuild(preview, seen)
    assert "SUMMARY:A brand new talk" in get(preview.url + "policy-seminars/calendar.ics")[2]
    seen = version(preview)
    added.unlink()
    wait_for_rebuild(preview, seen)
    assert "A brand new talk" not in get(preview.url + "policy-seminars/calendar.ics")[2]


def test_errors_show_in_the_page_and_the_terminal_until_fixed(
    preview: Preview, example_project: Path, log: list[str]
) -> None:
    seen = version(preview)
    edit(example_project, OPEN_DATA, "start: 2019-01-25 12:00", "start: <someday>")
    wait_for_rebuild(preview, seen)
    for path in ("", "policy-seminars/calendar.ics"):
        status, kind, page = get(preview.url + path)
        assert (status, kind) == (500, "text/html; charset=utf-8")
        assert (
            f"{OPEN_DATA}:2: &#x27;start&#x27;: &#x27;&lt;someday&gt;&#x27; is not a date" in page
        )
        assert VERSION_PATH in page  # the error page reloads itself once fixed
    assert any(f"error: {OPEN_DATA}:2: 'start': '<someday>'" in line for line in log)
    assert json.loads(get(preview.url + VERSION_PATH.lstrip("/"))[2])["ok"] is False
    seen = version(preview)
    edit(example_project, OPEN_DATA, "start: <someday>", "start: 2019-01-25 12:00")
    wait_for_rebuild(preview, seen)
    assert get(preview.url)[0] == 200


def test_reload_script_goes_before_the_end_of_the_body() -> None:
    page = inject_reload(b"<html><body><p>x</p></BODY></html>", 7)
    assert page.startswith(b"<html><body><p>x</p><script>")
    assert page.endswith(b"</script>\n</BODY></html>")
    assert b"var seen = 7;" in page
    assert inject_reload(b"<p>bare</p>", 1).startswith(b"<p>bare</p><script>")


def test_serve_command_reports_a_busy_port(example_project: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(main, ["-C", str(example_project), "serve", "-p", str(port)])
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
