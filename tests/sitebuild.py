"""Building projects in the feed and page tests, and the clock they are built at."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from announcer.pipeline import BuildResult, build

SITE_FIXTURES = Path(__file__).parent / "fixtures" / "site"
# Before every event of the tricky site project (March to May 2027).
EARLY = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)


def build_into(project: Path, out: Path, now: datetime) -> BuildResult:
    """Build the way ``announcer build --out OUT --now NOW`` does."""
    return build(project, out, now=now)
