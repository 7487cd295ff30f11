"""Fixtures for the feed and page tests; test modules load them with ``pytest_plugins``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.sitebuild import SITE_FIXTURES


@pytest.fixture
def site_project(tmp_path: Path) -> Path:
    """A copy of tests/fixtures/site/tricky: two languages, cancellations, a recurring
    event, all-day days, and HTML-looking or script text in every text field."""
    root = tmp_path / "site-tricky"
    shutil.copytree(SITE_FIXTURES / "tricky", root)
    return root
