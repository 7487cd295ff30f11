"""The errors announcer shows to people.

    AnnouncerError              anything the CLI prints as one clean line, exit 1
    ├── ValidationFailed        bad input: carries every Diagnostic found in one run
    ├── ConfigError             a problem with settings that has no source line
    └── DeliveryError           sending mail failed in a way the user must act on

A ``Diagnostic`` is one problem in one file, located by line and column, with a
hint saying what to do. Loading never stops at the first one: it collects them
all so an organiser can fix a whole tree in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem in an input file; ``line`` and ``column`` are 1-based (0: unknown)."""

    path: str
    line: int
    column: int
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}" + (f" ({self.hint})" if self.hint else "")


class AnnouncerError(Exception):
    """An error the user can act on; the CLI prints it without a traceback."""


class ConfigError(AnnouncerError):
    """Settings that cannot be used, outside any single input line."""


class DeliveryError(AnnouncerError):
    """Mail could not be handed over; the outbox keeps what is still pending."""


class ValidationFailed(AnnouncerError):
    """The input tree has errors; nothing was written or sent."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = sorted(diagnostics)
        count = len(self.diagnostics)
        summary = f"{count} error{'s' if count != 1 else ''} in the input"
        super().__init__("\n".join([*map(str, self.diagnostics), summary]))


def display_path(path: Path, root: Path) -> str:
    """The path as the user typed it: relative to the project when possible."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
