"""The adapter interface, and how adapters are found.

An adapter is a class with a ``name`` and a ``files(context)`` method that
yields :class:`OutputFile` and :class:`LazyFile` values. Built-in adapters
are registered through the ``announcer.outputs`` entry-point group exactly as
a third-party package would register its own, so there is one way in for both::

    [project.entry-points."announcer.outputs"]
    sitemap = "announcer_sitemap:SitemapAdapter"

Adapters read the model and the ledger and return bytes; they never write to
disk themselves, which is what keeps builds atomic and lets the writer skip
files whose bytes did not change.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from announcer.buildstate import digest
from announcer.errors import ConfigError
from announcer.ledger import Ledger
from announcer.model import Event, Site
from announcer.recurrence import expand

if TYPE_CHECKING:
    import jinja2

GROUP = "announcer.outputs"


@dataclass(frozen=True)
class OutputFile:
    """One file of the output tree; ``path`` is relative and uses '/'."""

    path: str
    data: bytes


@dataclass(frozen=True)
class Depends:
    """The events a file shows (their keys) and whatever else chose them (``shape``).

    Give it only when the file's key follows from nothing but those events (what
    they hold, their ledger revisions, whether they are past) and the site's and
    series' settings: then a build that knows which events changed since the last
    one takes the last build's key instead of working it out
    (:mod:`announcer.recall`), and a one-event change costs a few files, not twenty
    thousand keys.
    """

    events: Sequence[str]
    shape: str = ""
    own: bool = False
    """The one event's own file (its page, its .ics): it exists exactly while the
    event does. Such a file need not even be listed when that event has not
    changed (``BuildContext.kept``)."""
    listed: bool = False
    """The file shows its events only as listing pages do
    (:func:`announcer.adapters.listing.listed_as`): an event's other changes do not
    reach it."""


@dataclass(frozen=True)
class LazyFile:
    """A file whose bytes are made only when the build needs them, perhaps in another process.

    With a ``key``, the bytes follow from the key alone: when the last build
    wrote this path from the same key and the file on disk is as it left it,
    ``make`` is not called at all. The key must cover everything the bytes
    depend on; when in doubt, leave it out. It may be a function, called only
    when ``depends`` cannot show it unchanged. ``size_note`` says what the user
    should hear about a file of that many bytes, at every build, made or kept.
    """

    path: str
    make: Callable[[], bytes]
    key: str | Callable[[], str] | None = None
    depends: Depends | None = None
    size_note: Callable[[int], str | None] | None = None


class Fragments:
    """Serialised pieces (a VEVENT, a feed entry) kept from one build to the next.

    ``get`` returns the bytes stored under ``key`` or makes and stores them;
    only the pieces this build asked for are kept for the next one. A build
    worker reports what it made and which kept pieces it used
    (:meth:`share`), and the parent takes both in (:meth:`merge`).
    """

    def __init__(self, known: dict[str, bytes] | None = None) -> None:
        self.known = known or {}
        self.used: dict[str, bytes] = {}
        self.made: dict[str, bytes] = {}
        self.reused: list[str] = []
        self.fresh = 0  # pieces made this build, in this process or a worker

    def get(self, key: str, make: Callable[[], bytes]) -> bytes:
        found = self.used.get(key)
        if found is None:
            found = self.known.get(key)
            if found is None:
                found = self.made[key] = make()
                self.fresh += 1
            else:
                self.reused.append(key)
            self.used[key] = found
        return found

    def keep(self, key: str) -> None:
        """Keep a stored piece for the next build, though no file made in this one asked
        for it: a file kept as it was may need it when it is next made."""
        found = self.known.get(key)
        if found is not None and key not in self.used:
            self.used[key] = found
            self.reused.append(key)

    def start_share(self) -> None:
        self.made, self.reused = {}, []

    def worth_keeping(self) -> bool:
        """Whether to store this build's pieces with the kept ones: not when it made only a
        handful (making those again next time is cheaper than rewriting a store of a
        hundred megabytes)."""
        return self.fresh * 100 > len(self.used)

    def share(self) -> tuple[dict[str, bytes], list[str]]:
        return self.made, self.reused

    def merge(self, share: tuple[dict[str, bytes], list[str]]) -> None:
        made, reused = share
        self.used.update(made)
        self.fresh += len(made)
        for key in reused:
            self.used[key] = self.known[key]


def identity_of(event: Event) -> str:
    """A key for everything an event holds: the digest of the file it was read from with
    which occurrence it is, or else of the event itself."""
    if event.origin:
        return f"{event.origin}:{event.id}:{event.recurrence_id}"
    return digest(repr(event))


def read_alike(token: str, event: Event) -> bool:
    """Whether ``token`` (a last build's, see :meth:`BuildContext.tokens`) is of ``event``
    read from the same bytes: a token starts with the identity of what its event held."""
    return bool(event.origin) and token.startswith(f"{identity_of(event)}\x1e")


@dataclass
class BuildContext:
    """What an adapter may read during one build.

    ``now`` is the build's clock, used only for what depends on it by nature
    (which events are past); ``cache`` lets adapters share work done once per
    build (rendered Markdown, serialised events); ``warnings`` collects what the
    user should hear about without failing the build.
    """

    site: Site
    ledger: Ledger
    project: Path
    now: datetime
    cache: dict[str, object] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    fragments: Fragments = field(default_factory=Fragments)
    inputs_key: str = ""  # a digest of every input, for outputs that may show anything
    kept: AbstractSet[str] = frozenset()  # own files kept as they are (see OutputAdapter)
    # Asked for tens of thousands of times per build: dictionaries of their own.
    _identities: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    _stamps: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    _stamp_keys: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    _settings: dict[str | None, str] = field(default_factory=dict, init=False, repr=False)
    _overrides: dict[str | None, str] = field(default_factory=dict, init=False, repr=False)
    _tokens: dict[str, str] | None = field(default=None, init=False, repr=False)
    _shown: dict[str, Event] = field(default_factory=dict, init=False, repr=False)
    _all_settings: str = field(default="", init=False, repr=False)
    _environments: dict[str | None, jinja2.Environment] = field(
        default_factory=dict, init=False, repr=False
    )

    # What a build worker hands back (see announcer.workers.Side).
    def start(self) -> None:
        self.fragments.start_share()
        self.warnings = []

    def collect(self) -> object:
        return self.fragments.share(), self.warnings

    def merge(self, collected: object) -> None:
        share: tuple[dict[str, bytes], list[str]]
        warnings: list[str]
        share, warnings = collected  # type: ignore[misc]
        self.fragments.merge(share)
        self.warnings.extend(warnings)

    def identity(self, event: Event | None) -> str:
        """:func:`identity_of`, once per build."""
        if event is None:
            return ""
        found = self._identities.get(event.key)
        if found is None:
            found = self._identities[event.key] = identity_of(event)
        return found

    def tokens(self) -> dict[str, str]:
        """Per event and occurrence key, everything a file's key reads of it: what its file
        held, its ledger revision and whether it is past. Worked out for every event at once
        (a build asks for all of them), and a recurring event's token covers its
        occurrences', since its page lists them."""
        if self._tokens is None:
            found: dict[str, str] = {}
            now = self.now.astimezone(UTC)
            for event in self.site.events():
                own = self._token(event, now)
                if event.repeat is None and not event.overrides:
                    found[event.key] = own
                    self._shown[event.key] = event
                    continue
                family, occurrences = [own], expand(event)
                for part in (*event.overrides, *occurrences):
                    found[part.key] = self._token(part, now)
                    family.append(found[part.key])
                self._shown.update((part.key, part) for part in occurrences)
                found[event.key] = digest(*family)
            self._tokens = found
        return self._tokens

    def shown(self) -> dict[str, Event]:
        """Every event and occurrence a reader sees, by key (not recurring events
        themselves): what :meth:`tokens` went through."""
        self.tokens()
        return self._shown

    def _token(self, event: Event, now: datetime) -> str:
        past = event.utc_finishes <= now  # the rule of adapters.listing.is_past
        return f"{self.stamp(event)}\x1e{past:d}"

    def stamp(self, event: Event) -> str:
        """What an event holds and its ledger revision (SEQUENCE, first seen, last
        modified), once per build: the part of every key that a serialised piece of
        the event (a VEVENT, a feed entry) depends on."""
        found = self._stamps.get(event.key)
        if found is None:
            revision = self.ledger.get(event.key)
            dated = (
                f"{revision.sequence}:{revision.first_seen.timestamp()}:"
                f"{revision.modified.timestamp()}"
                if revision is not None
                else ""
            )
            # read_alike reads the identity back from the front of the token
            found = self._stamps[event.key] = f"{self.identity(event)}\x1e{dated}"
        return found

    def stamp_key(self, event: Event) -> str:
        """The digest of the event's :meth:`stamp`, once per build: the VEVENT's and the
        feed entry's keys hold it, and ten thousand digests of each were a tenth of a
        one-event rebuild."""
        found = self._stamp_keys.get(event.key)
        if found is None:
            found = self._stamp_keys[event.key] = digest(self.stamp(event))
        return found

    def joined_tokens(self, keys: Iterable[str]) -> str:
        """The tokens of many events in one string: a listing's key holds ten thousand."""
        return "\x1f".join(map(self.tokens().__getitem__, keys))

    def all_settings(self) -> str:
        """The digest of the settings of the site and of every series."""
        if not self._all_settings:
            slugs = [None, *(series.slug for series in self.site.series)]
            self._all_settings = digest(*(self.settings_key(slug) for slug in slugs))
        return self._all_settings

    def settings_key(self, series: str | None = None) -> str:
        """A digest of the site's settings and, with ``series``, that series' own (not its
        events) and its template overrides: what any output of that series may show."""
        found = self._settings.get(series)
        if found is None:
            parts = [repr(replace(self.site, series=())), self.overrides(series)]
            if series is not None:
                chosen = self.site.series_by_slug(series)
                parts.append(repr(replace(chosen, events=(), mailing_list=None)))
            found = self._settings[series] = digest(*parts)
        return found

    def environment(self, series: str | None) -> jinja2.Environment:
        """The Jinja2 environment for ``series`` (or the site), with its overrides."""
        found = self._environments.get(series)
        if found is None:
            from announcer.templating import environment  # Jinja2 loads only if a build renders

            found = environment(self.project, series, self.overrides(series))
            self._environments[series] = found
        return found

    def overrides(self, series: str | None) -> str:
        """The digest of the template overrides that apply to ``series``, once per build."""
        found = self._overrides.get(series)
        if found is None:
            from announcer.templating import overrides_key

            found = self._overrides[series] = overrides_key(self.project, series)
        return found


class OutputAdapter(ABC):
    """Subclass this, set ``name``, implement ``files``; register the class as an entry point.

    Set ``incremental = True`` only if ``files`` depends on nothing but the
    context, and on ``context.now`` only through the events' times (whether
    an event is past, the calendar window): then a build whose inputs did not
    change may skip the adapter altogether.

    A build may run ``prepare`` and the ``make`` of each :class:`LazyFile` in
    worker processes: keep them to reading the context and storing fragments,
    and yield expensive files as LazyFile so that iterating ``files`` is cheap.

    ``context.kept`` holds the paths of files the last build wrote as an
    event's own (``Depends((key,), own=True)``), that event unchanged since
    and each file as that build left it. The build keeps them whether or not
    ``files`` lists them; leave them out (check before making the LazyFile),
    for listing twenty thousand files to find the dozen that changed was a
    quarter of a one-event rebuild at 10,000 events.
    """

    name: ClassVar[str]
    incremental: ClassVar[bool] = False

    @abstractmethod
    def files(self, context: BuildContext) -> Iterable[OutputFile | LazyFile]:
        """Every file this adapter contributes to the output tree."""

    def prepare(self, context: BuildContext, events: Sequence[Event]) -> None:  # noqa: B027
        """Store in ``context.fragments`` the pieces of ``events`` that several files share.

        Called before ``files``, on disjoint shares of the site's events, perhaps
        in several processes at once, so each piece is made once per build,
        not once per process. The default does nothing.
        """


def available() -> dict[str, type[OutputAdapter]]:
    """Every adapter installed in this environment, by entry-point name."""
    found: dict[str, type[OutputAdapter]] = {}
    for point in sorted(entry_points(group=GROUP), key=lambda p: p.name):
        if point.name in found:
            continue
        try:
            adapter = point.load()
        except Exception as exc:  # a broken plugin must say which one it is
            raise ConfigError(
                f"output adapter {point.name!r} ({point.value}) cannot be loaded: {exc}"
            ) from exc
        if not (isinstance(adapter, type) and issubclass(adapter, OutputAdapter)):
            raise ConfigError(
                f"output adapter {point.name!r} ({point.value}) is not an OutputAdapter"
            )
        found[point.name] = adapter
    return found


def select(names: tuple[str, ...] | None) -> list[OutputAdapter]:
    """The adapters a site asked for (``outputs:`` in announcer.yaml), default all installed."""
    installed = available()
    if names is None:
        return [installed[name]() for name in sorted(installed)]
    unknown = [name for name in names if name not in installed]
    if unknown:
        raise ConfigError(
            f"announcer.yaml: unknown output {', '.join(map(repr, unknown))} in 'outputs' "
            f"(installed: {', '.join(sorted(installed)) or 'none'})"
        )
    return [installed[name]() for name in dict.fromkeys(names)]
