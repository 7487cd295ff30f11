"""A live preview: build into a temporary folder, serve it locally, rebuild on change.

Organisers see their edit in a browser a second after saving, and a mistake as a
page that says which file and line, not a blank screen. The preview never
touches the project: the ledger is advanced in memory only (so ``build`` later
records the real change), links point at the preview's own address, and the
output lives in a temporary folder removed on exit. Changes are found by
polling modification times, which works on every platform and filesystem.
"""

from __future__ import annotations

import html
import json
import shutil
import tempfile
import threading
import traceback
from collections.abc import Callable
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from announcer import pipeline
from announcer.errors import AnnouncerError, ValidationFailed
from announcer.load.project import CONFIG_FILE, SERIES_DIR

HOST = "127.0.0.1"
VERSION_PATH = "/__announcer__/version"
Log = Callable[[str], None]
Signature = tuple[tuple[str, int, int], ...]

RELOAD_SCRIPT = """<script>
(function () {
  var seen = %d;
  setInterval(function () {
    fetch("%s", {cache: "no-store"}).then(function (r) { return r.json(); })
      .then(function (d) { if (d.version !== seen) { location.reload(); } })
      .catch(function () {});
  }, 1000);
})();
</script>
"""


def build_preview(project: Path, out: Path, base_url: str) -> tuple[int, list[str]]:
    """Build the site into ``out`` as ``build`` would, leaving the ledger file alone.

    Returns the number of files and the adapters' warnings.
    """
    result = pipeline.build(project, out, base_url=base_url, save_ledger=False)
    return len(result.report.written) + len(result.report.unchanged), result.warnings


def signature(project: Path) -> Signature:
    """What the build reads, as (path, mtime, size): any edit, addition or removal changes it."""
    found = [project / CONFIG_FILE, project / "ledger.json"]
    for folder in (SERIES_DIR, "templates"):
        found.extend(sorted((project / folder).rglob("*")))
    stamps = []
    for path in found:
        try:
            stat = path.stat()
        except OSError:
            continue
        stamps.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(stamps)


def describe_failure(exc: Exception) -> list[str]:
    """The lines an organiser needs: each located error, or what went wrong and where."""
    if isinstance(exc, ValidationFailed):
        return [str(d) for d in exc.diagnostics]
    if isinstance(exc, AnnouncerError):
        return [str(exc)]
    last = traceback.extract_tb(exc.__traceback__)[-1:]
    where = f" (at {last[0].filename}:{last[0].lineno})" if last else ""
    return [f"{type(exc).__name__}: {exc}{where}"]


class Preview:
    """One preview server; ``start`` returns its URL, ``stop`` removes everything it made."""

    def __init__(
        self, project: Path, port: int = 8000, interval: float = 0.5, log: Log = print
    ) -> None:
        self.project, self.interval, self.log = project, interval, log
        self.server = ThreadingHTTPServer((HOST, port), _handler(self))  # OSError: port taken
        self.url = f"http://{HOST}:{self.server.server_port}/"
        self.folder = Path(tempfile.mkdtemp(prefix="announcer-serve-"))
        self.out = self.folder / "site"
        self.version = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._seen: Signature = ()
        self._threads: list[threading.Thread] = []

    def start(self) -> str:
        self.rebuild()
        for target in (self._serve, self._watch):
            thread = threading.Thread(target=target, daemon=True, name=f"preview-{target.__name__}")
            thread.start()
            self._threads.append(thread)
        return self.url

    def _serve(self) -> None:
        self.server.serve_forever(poll_interval=0.2)

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            if signature(self.project) != self._seen:
                self.rebuild()

    def rebuild(self) -> bool:
        """Build once; on failure keep serving, showing the errors instead of the site."""
        self._seen = signature(self.project)
        try:
            count, warnings = build_preview(self.project, self.out, self.url)
        except Exception as exc:  # a preview outlives any mistake, even a broken template
            self.errors = describe_failure(exc) or ["the build failed"]
            self.version += 1
            self.log("\n".join([*(f"error: {e}" for e in self.errors), "waiting for a change..."]))
            return False
        self.errors = []
        self.version += 1
        for warning in warnings:
            self.log(f"warning: {warning}")
        self.log(f"built {count} files; serving {self.url}")
        return True

    def stop(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        shutil.rmtree(self.folder, ignore_errors=True)

    def wait(self) -> None:
        """Block until interrupted (Ctrl-C), for the command line."""
        while not self._stop.wait(3600):
            pass


def error_page(errors: list[str], version: int) -> bytes:
    items = "\n".join(f"<li><code>{html.escape(e)}</code></li>" for e in errors)
    count = len(errors)
    return (
        "<!doctype html><html lang=en><meta charset=utf-8><title>Build failed</title>"
        "<style>body{font:16px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:60rem;"
        "padding:0 1rem}h1{color:#a00}li{margin:.5rem 0}code{white-space:pre-wrap}</style>"
        f"<body><h1>announcer: {count} error{'s' if count != 1 else ''}</h1>"
        f"<p>Nothing was rebuilt. Fix these and save; this page reloads itself.</p><ul>{items}</ul>"
        + RELOAD_SCRIPT % (version, VERSION_PATH)
        + "</body></html>"
    ).encode()


def inject_reload(page: bytes, version: int) -> bytes:
    """The reload script, placed before ``</body>`` (or at the end of a page without one)."""
    script = (RELOAD_SCRIPT % (version, VERSION_PATH)).encode()
    at = page.lower().rfind(b"</body>")
    return page[:at] + script + page[at:] if at >= 0 else page + script


def _handler(preview: Preview) -> type[SimpleHTTPRequestHandler]:
    class Handler(SimpleHTTPRequestHandler):
        """Static files from the preview folder, with the error page and live reload."""

        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(preview.out), **kwargs)  # type: ignore[arg-type]

        def do_GET(self) -> None:  # the name http.server calls
            path = self.path.split("?")[0]
            if path == VERSION_PATH:
                body = json.dumps({"version": preview.version, "ok": not preview.errors})
                self._send(HTTPStatus.OK, "application/json", body.encode())
            elif preview.errors:
                page = error_page(preview.errors, preview.version)
                self._send(HTTPStatus.INTERNAL_SERVER_ERROR, "text/html; charset=utf-8", page)
            elif (page_file := self._page(path)) is not None:
                page = inject_reload(page_file.read_bytes(), preview.version)
                self._send(HTTPStatus.OK, "text/html; charset=utf-8", page)
            else:
                super().do_GET()  # other files, directory redirects and 404s as usual

        def _page(self, path: str) -> Path | None:
            """The HTML file a request names, if it is one (``dir/`` means ``dir/index.html``)."""
            file = Path(self.translate_path(path))
            if file.is_dir():
                file = file / "index.html" if path.endswith("/") else Path()
            return file if file.suffix == ".html" and file.is_file() else None

        def _send(self, status: HTTPStatus, kind: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def end_headers(self) -> None:
            self.send_header("Cache-Control", "no-store")  # a preview is never stale
            super().end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass  # the terminal shows builds and errors, not every request

    return Handler
