"""Jinja2 environments for pages and email, and how times read in each language.

Templates ship in the package; ``templates/`` at the project root overrides
them file by file for the whole site, and ``series/<slug>/templates/`` for one
series. Autoescaping is on for HTML and XML, so event text can never become
markup; user text is only ever passed to templates as data, never compiled as
a template, so ``{{ 7*7 }}`` in a title prints as written.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path

import jinja2
from babel import Locale
from babel.dates import format_date, format_interval, format_time, get_timezone_name
from markupsafe import Markup

from announcer import markup
from announcer.buildstate import cache_dir, digest
from announcer.i18n import labels
from announcer.model import Event
from announcer.workers import memo

PACKAGE_TEMPLATES = Path(__file__).parent / "templates"


def environment(
    project: Path, series: str | None = None, overrides: str | None = None
) -> jinja2.Environment:
    """The environment for one series (its overrides first), or for the site.

    Environments are kept for the process, keyed by ``overrides`` (see
    :func:`overrides_key`; worked out here when not given), so an override
    added or edited while a preview runs is seen at the next build: Jinja's
    own cache only notices changes to a template it already found.
    """
    if overrides is None:
        overrides = overrides_key(project, series)
    return _environment(project.resolve(), series, overrides)


@lru_cache(maxsize=256)
def _environment(project: Path, series: str | None, overrides: str) -> jinja2.Environment:
    folders = [project / "templates", PACKAGE_TEMPLATES]
    if series is not None:
        folders.insert(0, project / "series" / series / "templates")
    env = jinja2.Environment(
        auto_reload=False,  # a changed override makes a new environment (the key above)
        bytecode_cache=_bytecode_cache(),
        loader=jinja2.FileSystemLoader([str(f) for f in folders if f.is_dir()]),
        autoescape=jinja2.select_autoescape(["html", "htm", "xml", "j2"], default_for_string=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["markdown"] = lambda text: markup_safe(markup.to_html(text or ""))
    env.filters["plaintext"] = lambda text: markup.to_text(text or "")
    env.filters["summary"] = lambda text, length=200: markup.summary(text or "", length)
    env.globals["when"] = when
    env.globals["labels"] = labels
    return env


def overrides_key(project: Path, series: str | None = None) -> str:
    """A digest of the project's template overrides for ``series`` ('' when there are none).

    Outputs cached between builds include it in their keys, so editing an
    override re-renders what it shapes. Not cached here: a long-running preview
    must see edits; adapters keep it for one build in ``context.cache``.
    """
    project = project.resolve()
    folders = [project / "templates"]
    if series is not None:
        folders.append(project / "series" / series / "templates")
    files = sorted(
        f for folder in folders if folder.is_dir() for f in folder.rglob("*") if f.is_file()
    )
    if not files:
        return ""
    return digest(*(part for f in files for part in (str(f), f.read_bytes())))


@lru_cache(maxsize=1)
def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates kept in the user's cache folder, so a new process does not
    compile them again (Jinja checks each against its source)."""
    folder = cache_dir() / "templates"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return _QuietBytecodeCache(str(folder))


class _QuietBytecodeCache(jinja2.FileSystemBytecodeCache):
    """A cache that cannot be written (removed, full, read-only) only costs a compile."""

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        with contextlib.suppress(OSError):
            super().dump_bytecode(bucket)


def markup_safe(html: str) -> Markup:
    """Sanitised HTML from :mod:`announcer.markup`, marked safe for autoescaping."""
    return Markup(html)


def locale_of(language: str) -> str:
    return language.replace("-", "_")


def when(event: Event, language: str) -> str:
    """The date and time as a person says it, in the event's own timezone.

    ``Friday, November 30, 2018, 12:00 – 13:00 EST`` or, in French,
    ``vendredi 30 novembre 2018, 12 h 00 – 13 h 00 HNE``.
    """
    return _when(event.start, event.end, language, _zone_of(event.start), _zone_of(event.end))


def _zone_of(moment: datetime | date) -> str:
    """What tells two equal instants apart: equal datetimes in other zones hash alike."""
    return f"{moment.tzinfo}{moment.utcoffset()}" if isinstance(moment, datetime) else ""


@memo()
def _when(
    start: datetime | date, end: datetime | date, language: str, start_zone: str, end_zone: str
) -> str:
    """``when`` for the times alone: many pages, feeds and emails show the same ones.

    The zones are part of the key: noon in Toronto and 18:00 in Paris are the
    same instant, so equal as datetimes, and must still read differently.
    """
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        return _days(start, end, language)
    zone = _zone_name(start, language)
    if start.date() == end.date():
        return f"{_date(start, language)}, {_hours(start, end, language)} {zone}"
    return (
        f"{_date(start, language)} {_time(start, language)} – "
        f"{_date(end, language)} {_time(end, language)} {zone}"
    )


@lru_cache(maxsize=64)
def babel_locale(language: str) -> Locale:
    """Babel parses a locale name on every call that gets a string; parse each once."""
    return Locale.parse(locale_of(language))


# Babel takes some 40 us to put one event's date and time in words. Ten thousand
# events have a few thousand dates and a few dozen times and zones, so each part is
# made once per process and kept, under what alone decides how it reads.
_PARTS: dict[tuple[object, ...], str] = {}
_PARTS_LIMIT = 65536


def _kept(key: tuple[object, ...], make: Callable[[], object]) -> str:
    found = _PARTS.get(key)
    if found is None:
        if len(_PARTS) >= _PARTS_LIMIT:  # a long preview session stays bounded
            _PARTS.clear()
        found = _PARTS[key] = str(make())
    return found


def _date(day: date, language: str) -> str:
    """The date in full; a datetime reads as its own (local) date."""
    only = day.date() if isinstance(day, datetime) else day
    return _kept(
        ("date", only, language),
        lambda: format_date(only, "full", locale=babel_locale(language)),
    )


def _time(moment: datetime, language: str) -> str:
    """The short time of day; the short patterns name no zone."""
    return _kept(
        ("time", moment.time(), language),
        lambda: format_time(moment, "short", locale=babel_locale(language)),
    )


def _hours(start: datetime, end: datetime, language: str) -> str:
    """Two times of one day: the day plays no part in how they read."""
    return _kept(
        ("hours", start.time(), end.time(), language),
        lambda: format_interval(
            start.replace(tzinfo=None),
            end.replace(tzinfo=None),
            "Hm",
            locale=babel_locale(language),
        ),
    )


def _zone_name(moment: datetime, language: str) -> str:
    """Babel's short name (EST, HNE), or the tz database's where Babel has only an
    offset. Babel reads the zone's name, whether DST is on and the offset: the key."""
    key = ("zone", str(moment.tzinfo), moment.utcoffset(), moment.dst(), moment.tzname(), language)
    return _kept(key, lambda: _babel_zone_name(moment, babel_locale(language)))


def _babel_zone_name(moment: datetime, loc: Locale) -> str:
    name = str(get_timezone_name(moment, "short", locale=loc))
    return moment.tzname() or name if name[:1] in "+-" or name.startswith(("GMT", "UTC")) else name


def _days(first: date, last: date, language: str) -> str:
    if first == last:
        return _date(first, language)
    return f"{_date(first, language)} – {_date(last, language)}"
