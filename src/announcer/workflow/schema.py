"""JSON Schemas of the three kinds of input file, for editors.

With a schema, yaml-language-server (VS Code's YAML extension and others)
completes keys and flags a typo while the organiser types, long before
``announcer check``. The loader stays the authority: the schemas describe the
same keys (tests hold them to the loader's ``*_KEYS`` tuples) and reject what
the loader rejects where JSON Schema can say it, but times that a DST change
skips, unknown timezones or an end before the start are only caught by
``check``.
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

KINDS = ("site", "series", "event")
FILES = {
    "site": "announcer.yaml",
    "series": "series/*/series.yaml",
    "event": "series/*/events/*.yaml",
}


def schema_text(kind: str) -> str:
    """The schema as shipped in the package, byte for byte."""
    if kind not in KINDS:
        raise ValueError(f"unknown schema {kind!r}: one of {', '.join(KINDS)}")
    return files("announcer").joinpath("schema", f"{kind}.json").read_text(encoding="utf-8")


def schema(kind: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(schema_text(kind))
    return loaded


def write_schemas(folder: Path) -> list[Path]:
    """Write all three schemas into ``folder``, for editor settings to point at."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in KINDS:
        path = folder / f"{kind}.json"
        path.write_text(schema_text(kind), encoding="utf-8")
        written.append(path)
    return written


def editor_settings(folder: str) -> dict[str, list[str]]:
    """The ``yaml.schemas`` mapping for VS Code: schema file -> the files it checks."""
    return {f"{folder.rstrip('/')}/{kind}.json": [FILES[kind]] for kind in KINDS}
