"""iCalendar content lines, written directly (RFC 5545, section 3.1).

icalendar's generic path builds an object per property and folds lines one
character at a time; at ten thousand events that was most of a build. The
format is small: escape TEXT values, quote parameter values that need it,
fold at 75 octets without splitting a UTF-8 character, end lines with CRLF.
The interop tests read every calendar back with ical.js, libical and a strict
parser, so this module is held to real clients, not to itself.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

_FOLD = 75


def text(value: str) -> str:
    """A TEXT value: backslash, semicolon, comma and newline escaped (replace beats
    translate several times over)."""
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r", "")
        .replace("\n", "\\n")
    )


def param(value: str) -> str:
    """A parameter value, quoted when it holds ``:;,``; a double quote cannot appear at all."""
    value = value.replace('"', "'").replace("\r", " ").replace("\n", " ")
    return f'"{value}"' if any(c in value for c in ":;,") else value


def utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def local(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%S")


def day(moment: date) -> str:
    return moment.strftime("%Y%m%d")


def fold(line: str) -> bytes:
    """One content line as bytes: folded at 75 octets, never inside a character."""
    data = line.encode("utf-8")
    if len(data) <= _FOLD:
        return data + b"\r\n"
    pieces = []
    start, limit = 0, _FOLD
    while start < len(data):
        end = min(start + limit, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # a continuation byte
            end -= 1
        pieces.append(data[start:end])
        start, limit = end, _FOLD - 1  # a folded line starts with a space
    return b"\r\n ".join(pieces) + b"\r\n"


class Lines:
    """Content lines of one component, in the order they are added."""

    def __init__(self, component: str) -> None:
        self.component = component
        self.lines = [b"BEGIN:" + component.encode() + b"\r\n"]

    def add(self, name: str, value: str, **params: str) -> None:
        """``value`` must already be in its iCalendar form (use :func:`text` for TEXT)."""
        head = name + "".join(f";{key.replace('_', '-')}={param(v)}" for key, v in params.items())
        self.lines.append(fold(f"{head}:{value}"))

    def end(self) -> bytes:
        self.lines.append(b"END:" + self.component.encode() + b"\r\n")
        return b"".join(self.lines)
