"""Real calendar clients' parsers, run on .ics files from the test suite.

A calendar that only our own library can read proves nothing, so tests read
our output with what subscribers use: ical.js (Thunderbird), libical 3
(Evolution/GNOME) and the strict PyPI ``ical`` parser (Home Assistant).
The two dumpers print the same JSON shape (see ``CalendarDump``), so their
results can be compared with each other and with times a test computes itself.

A missing tool raises ``ToolMissingError`` saying what to install: an interop
test that skips itself quietly would let broken calendars ship.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any, Final, Protocol, TypedDict, cast

from ical.calendar import Calendar
from ical.calendar_stream import IcsCalendarStream
from ical.exceptions import CalendarError
from ical.parsing.component import ParsedComponent, parse_content

INTEROP_DIR: Final = Path(__file__).resolve().parent
ICALJS_SCRIPT: Final = INTEROP_DIR / "icaljs_dump.mjs"
LIBICAL_SOURCE: Final = INTEROP_DIR / "libical_dump.c"
BUILD_DIR: Final = INTEROP_DIR / ".build"
NODE_MODULES: Final = INTEROP_DIR / "node_modules"
DEFAULT_EXPAND_UNTIL: Final = "2030-01-01T00:00:00Z"
MIN_NODE_MAJOR: Final = 20
TIMEOUT_SECONDS: Final = 60

_SETUP_HINT: Final = "run `bash .ci/deps.sh` as root from the repository root"


class EventDump(TypedDict):
    """One VEVENT as a client shows it.

    Times: UTC "YYYY-MM-DDTHH:MM:SSZ" when timed, "YYYY-MM-DD" when all-day,
    local "YYYY-MM-DDTHH:MM:SS" (no Z) when floating or when the TZID has no
    VTIMEZONE. ``occurrences`` lists the real start of each occurrence of a
    recurring master (EXDATEs removed, RECURRENCE-ID overrides applied,
    sorted, at most 1000, before ``expand_until``); it is empty otherwise.
    """

    uid: str | None
    recurrence_id: str | None
    summary: str | None
    description: str | None
    location: str | None
    status: str | None
    sequence: int | None
    url: str | None
    categories: list[str]
    all_day: bool
    start: str
    end: str
    tzid: str | None
    occurrences: list[str]


class CalendarDump(TypedDict):
    """What a dumper printed: VCALENDAR properties, events, and problems found."""

    calendar: dict[str, str]
    events: list[EventDump]
    errors: list[str]


_EVENT_KEYS: Final = frozenset(EventDump.__annotations__)
_DUMP_KEYS: Final = frozenset(CalendarDump.__annotations__)


class InteropError(RuntimeError):
    """The harness itself could not produce a reading (not a problem of the file)."""


class ToolMissingError(InteropError):
    """A client or build tool is not installed; the message says what to install."""


class StrictParseError(ValueError):
    """The strict parser rejected the file; the message says why."""


def require_tool(name: str, install_hint: str, *, search_path: str | None = None) -> str:
    """Return the tool's path, or fail loudly with how to get it."""
    found = shutil.which(name, path=search_path)
    if found is None:
        raise ToolMissingError(f"`{name}` is not on PATH: {install_hint}, or {_SETUP_HINT}")
    return found


def _run(command: list[str], what: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raise InteropError(
            f"{what} took more than {TIMEOUT_SECONDS}s: {shlex.join(command)}"
        ) from err


@cache
def node_executable() -> str:
    """Node, checked once: ical.js 2 is ESM and this harness targets node 20+."""
    node = require_tool("node", "install Node.js 20+ (`apt-get install -y nodejs npm`)")
    version = _run([node, "--version"], "node --version").stdout.strip()
    try:
        major = int(version.lstrip("v").split(".")[0])
    except ValueError as err:
        raise ToolMissingError(f"cannot read the node version from {version!r}") from err
    if major < MIN_NODE_MAJOR:
        raise ToolMissingError(f"node {version} is too old: install Node.js {MIN_NODE_MAJOR}+")
    return node


def require_node_modules(node_modules: Path = NODE_MODULES) -> Path:
    """Fail unless `npm ci` has installed ical.js 2 next to the dumper."""
    manifest = node_modules / "ical.js" / "package.json"
    hint = f"run `npm ci` in {node_modules.parent}, or {_SETUP_HINT}"
    if not manifest.is_file():
        raise ToolMissingError(f"ical.js is not installed in {node_modules}: {hint}")
    version = str(json.loads(manifest.read_text(encoding="utf-8")).get("version", ""))
    if not version.startswith("2."):
        raise ToolMissingError(f"ical.js {version} found, the harness needs 2.x: {hint}")
    return node_modules


def _pkg_config(*args: str) -> str:
    pkg_config = require_tool("pkg-config", "`apt-get install -y pkg-config`")
    result = _run([pkg_config, *args, "libical"], "pkg-config")
    if result.returncode != 0:
        raise ToolMissingError(
            f"pkg-config cannot find libical ({result.stderr.strip()}): "
            f"`apt-get install -y libical-dev`, or {_SETUP_HINT}"
        )
    return result.stdout.strip()


@cache
def libical_version() -> str:
    """The libical the dumper links against; only 3.x is what Evolution ships."""
    version = _pkg_config("--modversion")
    if not version.startswith("3."):
        raise ToolMissingError(f"libical {version} found, the harness needs 3.x (libical-dev)")
    return version


def build_libical_dumper(source: Path = LIBICAL_SOURCE, build_dir: Path = BUILD_DIR) -> Path:
    """Compile the libical dumper unless an up-to-date binary is cached.

    The binary name carries the libical version, so an upgraded library gets a
    fresh build; a source newer than the binary is rebuilt. The binary is
    written under a temporary name and renamed, so parallel test workers never
    run a half-written file.
    """
    version = libical_version()
    binary = build_dir / f"libical_dump-{version}"
    if binary.is_file() and binary.stat().st_mtime >= source.stat().st_mtime:
        return binary
    compiler = require_tool("cc", "install a C compiler (`apt-get install -y gcc`)")
    flags = shlex.split(_pkg_config("--cflags", "--libs"))
    build_dir.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=binary.name + ".", dir=build_dir)
    os.close(fd)
    command = [
        compiler,
        "-std=c11",
        "-O2",
        "-Wall",
        "-Wextra",
        "-o",
        temporary,
        str(source),
        *flags,
    ]
    result = _run(command, "compiling the libical dumper")
    if result.returncode != 0:
        Path(temporary).unlink(missing_ok=True)
        raise InteropError(f"cannot compile {source}:\n{result.stderr}")
    os.replace(temporary, binary)
    return binary


def _until_text(expand_until: str | datetime) -> str:
    if isinstance(expand_until, str):
        return expand_until
    if expand_until.tzinfo is None:
        raise ValueError("expand_until must be timezone-aware")
    return expand_until.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _checked(result: subprocess.CompletedProcess[str], command: list[str]) -> CalendarDump:
    """Turn a dumper's output into a CalendarDump, refusing anything off-contract."""
    where = shlex.join(command)
    if result.returncode not in (0, 1):
        raise InteropError(f"{where} exited {result.returncode}:\n{result.stderr}")
    try:
        raw: Any = json.loads(result.stdout)
    except json.JSONDecodeError as err:
        raise InteropError(f"{where} printed no JSON ({err}):\n{result.stdout[:2000]}") from err
    if not isinstance(raw, dict) or set(raw) != _DUMP_KEYS:
        raise InteropError(f"{where} printed an unexpected shape: {str(raw)[:2000]}")
    for event in raw["events"]:
        if not isinstance(event, dict) or set(event) != _EVENT_KEYS:
            raise InteropError(f"{where} printed an unexpected event: {str(event)[:2000]}")
    if bool(raw["errors"]) != (result.returncode == 1):
        raise InteropError(f"{where} exited {result.returncode} with errors {raw['errors']}")
    return cast(CalendarDump, raw)


def icaljs_dump(
    path: str | os.PathLike[str], *, expand_until: str | datetime = DEFAULT_EXPAND_UNTIL
) -> CalendarDump:
    """Read the file as Thunderbird does, with ical.js 2."""
    require_node_modules()
    command = [
        node_executable(),
        str(ICALJS_SCRIPT),
        os.fspath(path),
        "--expand-until",
        _until_text(expand_until),
    ]
    return _checked(_run(command, "the ical.js dumper"), command)


def libical_dump(
    path: str | os.PathLike[str], *, expand_until: str | datetime = DEFAULT_EXPAND_UNTIL
) -> CalendarDump:
    """Read the file as Evolution/GNOME does, with libical 3."""
    command = [
        str(build_libical_dumper()),
        os.fspath(path),
        "--expand-until",
        _until_text(expand_until),
    ]
    return _checked(_run(command, "the libical dumper"), command)


class Dumper(Protocol):
    """The call shape shared by icaljs_dump and libical_dump."""

    def __call__(
        self, path: str | os.PathLike[str], *, expand_until: str | datetime = ...
    ) -> CalendarDump: ...


CLIENTS: Final[Mapping[str, Dumper]] = {
    "icaljs": icaljs_dump,
    "libical": libical_dump,
}
"""Every dumper by name, for ``pytest.mark.parametrize``."""


def _missing_vtimezones(components: list[ParsedComponent]) -> list[str]:
    """TZIDs used without a VTIMEZONE: RFC 5545 3.2.19 says MUST, ical does not check."""
    problems: list[str] = []
    for calendar in components:
        defined = {
            prop.value
            for zone in calendar.components
            if zone.name.lower() == "vtimezone"
            for prop in zone.properties
            if prop.name.lower() == "tzid"
        }
        pending = [c for c in calendar.components if c.name.lower() != "vtimezone"]
        while pending:
            component = pending.pop()
            pending.extend(component.components)
            for prop in component.properties:
                param = prop.get_parameter("tzid")
                for value in param.values if param else ():
                    if isinstance(value, str) and value not in defined:
                        problems.append(
                            f"{prop.name.upper()} in {component.name.upper()}: "
                            f"TZID {value!r} has no VTIMEZONE"
                        )
    return problems


def strict_parse(path: str | os.PathLike[str]) -> Calendar:
    """Parse with the PyPI ``ical`` package, without its compatibility fixes.

    On top of ical's own validation this insists on what RFC 5545 makes a
    MUST and ical lets through: UTF-8, CRLF line ends, exactly one VCALENDAR,
    and a VTIMEZONE for every TZID (ical silently uses the system's zoneinfo).
    Raises StrictParseError on any problem.
    """
    source = Path(path)
    try:
        text = source.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise StrictParseError(f"{source}: not valid UTF-8: {err}") from err
    without_crlf = text.replace("\r\n", "")
    if "\n" in without_crlf or "\r" in without_crlf:
        raise StrictParseError(f"{source}: lines must end with CRLF")
    try:
        components = parse_content(text)
        calendars = [c for c in components if c.name.lower() == "vcalendar"]
        if len(calendars) != 1 or len(components) != 1:
            # calendar_from_ics would return an empty Calendar for no VCALENDAR at all.
            raise StrictParseError(f"{source}: expected one VCALENDAR and nothing else")
        calendar = IcsCalendarStream.calendar_from_ics(text)
    except (CalendarError, ValueError) as err:
        if isinstance(err, StrictParseError):
            raise
        detail = getattr(err, "detailed_error", None)
        raise StrictParseError(f"{source}: {err}" + (f"\n{detail}" if detail else "")) from err
    problems = _missing_vtimezones(calendars)
    if problems:
        raise StrictParseError(f"{source}: " + "; ".join(problems))
    return calendar


def utc_text(value: datetime | date) -> str:
    """Format a time the way the dumpers do, for expectations a test computes itself."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.strftime("%Y-%m-%dT%H:%M:%S")
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value.isoformat()
