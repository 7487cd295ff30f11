"""Shared fixtures: small project trees on disk, built the way users build them."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT  # the example project lives at the repository root: announcer.yaml + series/
FIXTURES = Path(__file__).parent / "fixtures"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

MakeProject = Callable[[dict[str, str]], Path]


@pytest.fixture(autouse=True)
def build_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own build cache, never the user's (subprocesses inherit it)."""
    folder = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("ANNOUNCER_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def make_project(tmp_path: Path) -> MakeProject:
    """Write ``{relative path: YAML text}`` under a fresh folder; text is dedented."""

    def make(files: dict[str, str]) -> Path:
        root = tmp_path / "project"
        for relative, text in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        (root / "series").mkdir(parents=True, exist_ok=True)
        return root

    return make


@pytest.fixture
def example_project(tmp_path: Path) -> Path:
    """A private copy of the example project (announcer.yaml, series/, templates/, ledger.json)."""
    root = tmp_path / "example"
    root.mkdir()
    shutil.copy(EXAMPLE / "announcer.yaml", root)
    shutil.copy(EXAMPLE / "ledger.json", root)
    shutil.copytree(EXAMPLE / "series", root / "series")
    shutil.copytree(EXAMPLE / "templates", root / "templates")
    return root


@pytest.fixture
def tricky_project(tmp_path: Path) -> Path:
    """A copy of tests/fixtures/tricky: DST days, all-day, offsets, other zones, odd text."""
    root = tmp_path / "tricky"
    shutil.copytree(FIXTURES / "tricky", root)
    return root
