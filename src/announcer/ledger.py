"""The revision ledger: what subscribers have been shown, and when it changed.

Calendar clients only accept an update when SEQUENCE rises, and feed readers
only show "updated" when the date moves; both must stay put when nothing that
matters changed, or every rebuild would be a flood of false updates. The ledger
is a small JSON file, committed beside ``series/``, that records per event a
snapshot of what matters to attendees (title, time, place, status), the
SEQUENCE that follows from it, and when it was first seen and last changed.
Email records what it announced in the same entries, so an update can be sent
exactly when something changed after an announcement went out.

Entries are keyed by ``<series>/<event-id>`` and, for each occurrence of a
recurring event, ``<series>/<event-id>/<date>``; they are never dropped, so an
event that comes back continues its SEQUENCE.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from announcer.errors import ConfigError
from announcer.model import Event, Repeat, Site
from announcer.recurrence import expand

FORMAT = 1
MATERIAL = ("title", "start", "end", "timezone", "location", "online_url", "status", "repeat")
# What makes attendees change their plans: an email update goes out for these.
WHEN_AND_WHERE = ("start", "end", "timezone", "location", "online_url", "status", "repeat")


@dataclass(frozen=True)
class Sent:
    """An email of one kind that went out for one revision of an event.

    ``state`` is the snapshot the list was told about, so an update goes out
    when the time, place or status differs from it, not for a new title alone.
    """

    sequence: int
    at: datetime
    state: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Revision:
    sequence: int
    first_seen: datetime
    modified: datetime
    state: Mapping[str, str]
    announced: Mapping[str, Sent] = field(default_factory=dict)


@dataclass(frozen=True)
class Change:
    """One entry that build moved: ``before`` is None for a new event."""

    key: str
    before: Mapping[str, str] | None
    after: Mapping[str, str]


@dataclass(frozen=True)
class Ledger:
    entries: Mapping[str, Revision] = field(default_factory=dict)

    def get(self, key: str) -> Revision | None:
        return self.entries.get(key)

    def revision(self, event: Event) -> Revision:
        """The revision of an event the ledger has recorded (``advance`` ran first)."""
        return self.entries[event.key]


def state_of(event: Event) -> dict[str, str]:
    """What attendees act on; a change here raises SEQUENCE and moves LAST-MODIFIED."""
    state = {
        "title": event.title,
        "start": event.start.isoformat(),
        "end": event.end.isoformat(),
        "timezone": event.timezone,
        "location": event.location,
        "online_url": event.online_url,
        "status": event.status,
    }
    if event.repeat is not None:
        state["repeat"] = _describe(event.repeat)
    return state


def _describe(rule: Repeat) -> str:
    parts = [
        f"every={rule.every}",
        f"interval={rule.interval}",
        "on=" + ",".join(map(str, rule.weekdays)),
        f"until={rule.until or ''}",
        f"count={rule.count or ''}",
        "except=" + ",".join(d.isoformat() for d in rule.skip),
    ]
    return ";".join(parts)


def records(site: Site) -> Iterable[Event]:
    """Everything with a ledger entry: each event, and each occurrence of a recurring one."""
    for event in site.events():
        yield event
        if event.repeat is not None:
            yield from expand(event)


def advance(
    ledger: Ledger, events: Iterable[Event], now: datetime, seen: AbstractSet[str] = frozenset()
) -> tuple[Ledger, list[Change]]:
    """The ledger after seeing ``events`` at ``now``; unchanged events keep their entry as is.

    ``seen`` names events known to be as this ledger last recorded them (a build knows
    which event files did not change since it saved the ledger): not looked at again.
    """
    entries = dict(ledger.entries)
    changes = []
    for event in events:
        if event.key in seen:
            continue
        state, old = state_of(event), entries.get(event.key)
        if old is not None and old.state == state:
            continue
        if old is None:
            entries[event.key] = Revision(0, now, now, state)
        else:
            entries[event.key] = replace(old, sequence=old.sequence + 1, modified=now, state=state)
        changes.append(Change(event.key, old.state if old else None, state))
    return Ledger(entries), changes


def record_sent(ledger: Ledger, key: str, kind: str, sequence: int, at: datetime) -> Ledger:
    """The ledger after an email of ``kind`` went out for revision ``sequence``."""
    entry = ledger.entries[key]
    told = dict(entry.state) if sequence == entry.sequence else {}
    announced = {**entry.announced, kind: Sent(sequence, at, told)}
    return Ledger({**ledger.entries, key: replace(entry, announced=announced)})


def load(path: Path) -> Ledger:
    """The ledger at ``path``; a missing file is an empty ledger (a new project)."""
    return read(path)[0]


def read(path: Path) -> tuple[Ledger, str]:
    """The ledger at ``path`` and the file's text ("" when there is none)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Ledger(), ""
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{path}: the ledger cannot be read ({exc}); restore it from git"
        ) from None
    return parse(text, path), text


def parse(text: str, path: Path) -> Ledger:
    """The ledger in ``text``, read from ``path`` (named in errors)."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ConfigError(
            f"{path}: the ledger cannot be read ({exc}); restore it from git"
        ) from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ConfigError(f"{path}: not a ledger of format {FORMAT}; restore it from git")
    try:
        return Ledger({key: _revision(value) for key, value in raw["events"].items()})
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"{path}: a ledger entry is damaged ({exc}); restore it from git"
        ) from None


def _revision(raw: dict[str, Any]) -> Revision:
    announced = {
        kind: Sent(int(s["sequence"]), _time(s["at"]), dict(s.get("state", {})))
        for kind, s in raw.get("announced", {}).items()
    }
    return Revision(
        int(raw["sequence"]),
        _time(raw["first_seen"]),
        _time(raw["modified"]),
        dict(raw["state"]),
        announced,
    )


@lru_cache(maxsize=4096)
def _time(text: str) -> datetime:
    """Cached: the events a build first saw share that build's instant."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{text} has no timezone")
    return moment.astimezone(UTC)


@lru_cache(maxsize=4096)
def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sent(sent: Sent) -> dict[str, Any]:
    told = {"state": dict(sent.state)} if sent.state else {}
    return {"sequence": sent.sequence, "at": _stamp(sent.at), **told}


def changed_since(told: Sent, revision: Revision) -> bool:
    """Whether attendees must hear again: time, place or status differ from what they were told."""
    if told.sequence >= revision.sequence:
        return False
    if not told.state:  # recorded before snapshots were kept: trust SEQUENCE
        return True
    return any(told.state.get(k) != revision.state.get(k) for k in WHEN_AND_WHERE)


_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False)
"""One encoder for every line: ``json.dumps`` with options makes a new one per call, a
third of the time it took to write ten thousand entries."""


def dumps(ledger: Ledger, last: tuple[Ledger, str] | None = None) -> str:
    """Stable JSON, one event per line, keys sorted: a change shows in git as that event's line.

    Each line is encoded by the json module's C encoder (indenting would fall back
    to the pure-Python one, seconds for ten thousand events). With ``last``, a ledger
    and the text this function made of it, the line of an entry taken over unchanged
    (the same object) is taken from that text: one edit, one line encoded.
    """
    reuse = _lines(*last) if last is not None else {}
    lines = [_line(key, ledger.entries[key], reuse.get(key)) for key in sorted(ledger.entries)]
    body = ",\n".join(lines)
    return (
        f'{{"format": {FORMAT}, "events": {{\n{body}\n}}}}\n'
        if lines
        else (f'{{"format": {FORMAT}, "events": {{}}}}\n')
    )


def _line(key: str, entry: Revision, last: tuple[Revision, str] | None) -> str:
    if last is not None and last[0] is entry:
        return last[1]
    return f"  {_JSON.encode(key)}: {_entry_json(entry)}"


def _lines(ledger: Ledger, text: str) -> dict[str, tuple[Revision, str]]:
    """Each entry of ``ledger`` with its line in ``text``, which :func:`dumps` made of it:
    line by line in the order of the sorted keys, between the first line and the last."""
    keys = sorted(ledger.entries)
    lines = text.split("\n")[1 : len(keys) + 1]
    if len(lines) != len(keys):
        return {}
    found = {}
    for key, line in zip(keys, lines, strict=True):
        found[key] = (ledger.entries[key], line.removesuffix(","))
    return found


def _entry_json(entry: Revision) -> str:
    value: dict[str, Any] = {
        "sequence": entry.sequence,
        "first_seen": _stamp(entry.first_seen),
        "modified": _stamp(entry.modified),
        "state": dict(entry.state),
    }
    if entry.announced:
        value["announced"] = {k: _sent(s) for k, s in entry.announced.items()}
    return _JSON.encode(value)


def save(ledger: Ledger, path: Path, last: tuple[Ledger, str] | None = None) -> bool:
    """Write atomically; returns False (and touches nothing) when the bytes are the same.

    ``last`` is the ledger as read from ``path`` and the file's text, when that text is
    known to be what :func:`dumps` made of it (see there): the file is not read again.
    """
    text = dumps(ledger, last)
    try:
        if (last[1] if last is not None else path.read_text(encoding="utf-8")) == text:
            return False
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def utc_now() -> datetime:
    """The clock for new entries: SOURCE_DATE_EPOCH when set, for reproducible builds."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    now = datetime.fromtimestamp(int(epoch), UTC) if epoch else datetime.now(UTC)
    return now.replace(microsecond=0)
