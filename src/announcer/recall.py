"""Which files' keys a build may take from the last build instead of working them out.

A :class:`~announcer.adapters.base.LazyFile`'s key covers everything its bytes
depend on, and working out the keys of 20,000 files was most of a one-event
rebuild at 10,000 events. A file that says what it shows
(:class:`~announcer.adapters.base.Depends`) has a key that follows from those
events and the settings alone. So each build records:

- a *token* per event and occurrence: everything a key may read of it (what
  its file held, its ledger revision, whether it is past);
- the *scope*: the settings of the site and of every series, with the build's
  options;
- a *fingerprint* per file: which events it shows, and what else chose them;
- a *listed token* per event and occurrence shown: what listing pages show of it
  (:func:`~announcer.adapters.listing.listed_as`).

The next build takes a file's last key when the scope is the same, its
fingerprint is the same (no event joined or left it) and none of its events'
tokens moved (for a listing page, none of its events' listed tokens: a new room
changes no listing); any other file's key is worked out as before. An event's own
file (``Depends(own=True)``), its event unchanged and the file intact since,
need not even be listed (:meth:`Recall.keep`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path

from announcer.adapters.base import BuildContext, Depends
from announcer.adapters.listing import listed_as
from announcer.buildstate import Stat, digest, stat_of

OWN = "\x1e"  # starts the fingerprint of an event's own file; keys and digests never do
GROWTH = 1.5
"""A store of kept pieces this many times the size it had when every key was last worked
out is pruned: every key is worked out once more (see :meth:`Recall.start`)."""


def scope(context: BuildContext, options: str) -> str:
    """The settings every key may read, with the build's options (output, adapters...)."""
    return digest(options, context.all_settings())


def fingerprint(depends: Depends) -> str:
    """Which events a file shows and what else chose them; a file showing one event is
    fingerprinted by the event's key, marked when it is the event's own."""
    if len(depends.events) == 1 and not depends.shape:
        return OWN + depends.events[0] if depends.own else depends.events[0]
    return digest("depends", depends.shape, "\x1f".join(depends.events))


@dataclass
class Recall:
    """The publisher asks it file by file; it notes every fingerprint for the next build."""

    scope: str = ""
    tokens: dict[str, str] = field(default_factory=dict)
    previous: Mapping[str, str] = field(default_factory=dict)  # the last build's fingerprints
    changed: AbstractSet[str] = frozenset()
    fingerprints: dict[str, str] = field(default_factory=dict)
    recalled: int = 0  # keys taken from the last build
    kept: AbstractSet[str] = frozenset()  # own files kept, listed or not (keep)
    listed: dict[str, str] = field(default_factory=dict)  # shown event -> listed token
    listed_changed: AbstractSet[str] = frozenset()  # events whose listed token moved

    @classmethod
    def start(
        cls,
        context: BuildContext,
        options: str,
        last: tuple[str, Mapping[str, str], Mapping[str, str], Mapping[str, str]],
        pieces: tuple[int, int],
    ) -> Recall:
        """What this build may take from the ``last`` build's (scope, tokens, fingerprints,
        listed tokens).

        ``pieces`` is the size of the store of kept pieces now and when every key was
        last worked out: pieces of files whose keys were taken are kept unseen, so
        old ones pile up until a build works out every key and keeps only those it used.
        """
        now_scope, now_tokens = scope(context, options), context.tokens()
        last_scope, last_tokens, last_prints, last_listed = last
        stored, pruned = pieces
        if last_scope != now_scope or not last_tokens or stored > GROWTH * max(pruned, 1):
            return cls(now_scope, now_tokens, listed=_listed(context, {}, frozenset()))
        changed = {key for key, token in now_tokens.items() if last_tokens.get(key) != token}
        changed.update(last_tokens.keys() - now_tokens.keys())
        listed = _listed(context, last_listed, changed)
        moved = {key for key in changed if listed.get(key) != last_listed.get(key)}
        return cls(now_scope, now_tokens, last_prints, changed, listed=listed, listed_changed=moved)

    def note(self, path: str, depends: Depends) -> str:
        """Record, for the next build, what ``path`` shows; its fingerprint."""
        found = self.fingerprints[path] = fingerprint(depends)
        return found

    def unchanged(self, path: str, depends: Depends) -> bool:
        """Whether the last key of ``path`` still holds; notes its fingerprint either way."""
        found = self.note(path, depends)
        changed = self.listed_changed if depends.listed else self.changed
        return self.previous.get(path) == found and changed.isdisjoint(depends.events)

    def keep(self, recorded: Mapping[str, tuple[str | None, Stat]], folder: Path) -> None:
        """Find the own files to keep: the last build wrote them from a key, their event is
        still here and unchanged, and each is on disk as that build left it (a stat each,
        what checking a listed file costs)."""
        root, found = str(folder), set()
        for path, shown in self.previous.items():
            if shown[:1] != OWN:
                continue
            event = shown[1:]
            if event in self.changed or event not in self.tokens:
                continue
            known = recorded.get(path)
            if known is not None and known[0] is not None and stat_of(f"{root}/{path}") == known[1]:
                found.add(path)
        self.kept = frozenset(found)

    def carry(self, paths: Collection[str]) -> None:
        """Carry kept files left unlisted over to the next build, as if listed and recalled."""
        self.fingerprints.update((path, self.previous[path]) for path in paths)
        self.recalled += len(paths)


def _listed(
    context: BuildContext, last: Mapping[str, str], changed: AbstractSet[str]
) -> dict[str, str]:
    """Every shown event's listed token: the last build's where the event did not change
    (it cannot have moved), worked out for the others."""
    now = context.now.astimezone(UTC)
    found = {}
    for key, event in context.shown().items():
        known = last.get(key)
        found[key] = known if known is not None and key not in changed else listed_as(event, now)
    return found
