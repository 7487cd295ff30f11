"""The adapter interface, and how adapters are found.

An adapter is a class with a ``name`` and a ``files(context)`` method that
yields :class:`OutputFile` values. Built-in adapters are registered through the
``announcer.outputs`` entry-point group exactly as a third-party package would
register its own, so there is one way in for both::

    [project.entry-points."announcer.outputs"]
    sitemap = "announcer_sitemap:SitemapAdapter"

Adapters read the model and the ledger and return bytes; they never write to
disk themselves, which is what keeps builds atomic and lets the writer skip
files whose bytes did not change.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import ClassVar

from announcer.errors import ConfigError
from announcer.ledger import Ledger
from announcer.model import Site

GROUP = "announcer.outputs"


@dataclass(frozen=True)
class OutputFile:
    """One file of the output tree; ``path`` is relative and uses '/'."""

    path: str
    data: bytes


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


class OutputAdapter(ABC):
    """Subclass this, set ``name``, implement ``files``; register the class as an entry point."""

    name: ClassVar[str]

    @abstractmethod
    def files(self, context: BuildContext) -> Iterable[OutputFile]:
        """Every file this adapter contributes to the output tree."""


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
