"""The editor schemas and the loader must tell organisers the same thing.

The schemas are checked with the real ``check-jsonschema`` command, as a CI job
or a pre-commit hook would run it, and held to the loader two ways: their key
lists equal the loader's ``*_KEYS`` tuples, and on a table of snippets both
accept or both reject.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from announcer.cli import main
from announcer.errors import ValidationFailed
from announcer.load import events as event_keys
from announcer.load import load_site
from announcer.load import settings as setting_keys
from announcer.model import ANNOUNCE_KINDS, FREQUENCIES, SECURITIES, STATUSES
from announcer.workflow import schema as schemas

from .conftest import EXAMPLE, FIXTURES

CHECK_JSONSCHEMA = str(Path(sys.executable).with_name("check-jsonschema"))
SERIES_YAML = "title: Talks\ntimezone: America/Toronto\n"
EVENT_YAML = "title: A talk\nstart: 2027-03-05 12:00\n"


def check_jsonschema(kind: str, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHECK_JSONSCHEMA, "-o", "json", "--schemafile", str(schema_file(kind)), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def schema_file(kind: str) -> Path:
    return Path(schemas.__file__).parent.parent / "schema" / f"{kind}.json"


# --- the shipped schemas accept the example project --------------------------------------------


@pytest.mark.parametrize(
    ("kind", "pattern"),
    [
        ("site", "announcer.yaml"),
        ("series", "series/*/series.yaml"),
        ("event", "series/*/events/*.yaml"),
    ],
)
def test_check_jsonschema_accepts_the_example_and_tricky_projects(kind: str, pattern: str) -> None:
    found = [*EXAMPLE.glob(pattern), *(FIXTURES / "tricky").glob(pattern)]
    assert len(found) >= 2
    result = check_jsonschema(kind, *found)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schemas_are_valid_json_schemas() -> None:
    files = [schema_file(kind) for kind in schemas.KINDS]
    result = subprocess.run(
        [CHECK_JSONSCHEMA, "--check-metaschema", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- key lists: one source of truth --------------------------------------------------------------


def at(kind: str, *path: str) -> dict[str, Any]:
    node: dict[str, Any] = schemas.schema(kind)
    for step in path:
        node = node[step]
    return node


def mapping_in(node: dict[str, Any]) -> dict[str, Any]:
    """The object schema inside a nullable/one-or-list wrapper."""
    if "properties" in node:
        return node
    for option in node.get("anyOf", []):
        if option.get("type") == "array":
            option = option["items"]
        if "properties" in option or "anyOf" in option:
            return mapping_in(option)
    raise AssertionError(f"no mapping in {node}")


KEY_TABLE = [
    (("site",), setting_keys.SITE_KEYS),
    (("site", "properties", "email"), setting_keys.EMAIL_KEYS),
    (("site", "properties", "email", "properties", "smtp"), setting_keys.SMTP_KEYS),
    (("site", "properties", "calendar"), setting_keys.CALENDAR_KEYS),
    (("site", "properties", "feeds"), ("limit",)),
    (("series",), setting_keys.SERIES_KEYS),
    (("series", "properties", "mailing_list"), setting_keys.LIST_KEYS),
    (("series", "properties", "organizer"), ("name", "email")),
    (("series", "properties", "announce", "items"), ("kind", "days_before")),
    (("event",), event_keys.EVENT_KEYS),
    (("event", "properties", "repeat"), event_keys.REPEAT_KEYS),
    (("event", "properties", "occurrences", "additionalProperties"), event_keys.OCCURRENCE_KEYS),
    (("event", "properties", "speakers"), event_keys.SPEAKER_KEYS),
    (("event", "properties", "speaker"), event_keys.SPEAKER_KEYS),
]


@pytest.mark.parametrize(("path", "keys"), KEY_TABLE, ids=[".".join(p) for p, _ in KEY_TABLE])
def test_schema_keys_are_the_loaders_keys(path: tuple[str, ...], keys: tuple[str, ...]) -> None:
    node = mapping_in(at(*path))
    assert sorted(node["properties"]) == sorted(keys)
    assert node["additionalProperties"] is False


def test_every_mapping_in_the_schemas_is_one_the_loader_knows() -> None:
    """A new nested mapping must be added to KEY_TABLE, or its keys could drift."""
    known = {
        kind: {frozenset(keys) for path, keys in KEY_TABLE if path[0] == kind}
        for kind in schemas.KINDS
    }
    for kind in schemas.KINDS:
        mappings = list(_objects(schemas.schema(kind)))
        assert mappings
        for node in mappings:
            assert frozenset(node["properties"]) in known[kind]
            assert node["additionalProperties"] is False


def _objects(node: Any) -> Iterator[dict[str, Any]]:
    """Every object schema (not the if/then constraints, which only name properties)."""
    if isinstance(node, dict):
        kind = node.get("type")
        is_object = kind == "object" or (isinstance(kind, list) and "object" in kind)
        if is_object and "properties" in node:
            yield node
        for value in node.values():
            yield from _objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from _objects(value)


@pytest.mark.parametrize(
    ("path", "values"),
    [
        (("event", "properties", "status", "enum"), STATUSES),
        (("event", "properties", "repeat", "properties", "every", "enum"), FREQUENCIES),
        (
            ("series", "properties", "announce", "items", "properties", "kind", "enum"),
            ANNOUNCE_KINDS,
        ),
        (
            ("site", "properties", "email", "properties", "smtp", "properties", "security", "enum"),
            SECURITIES,
        ),
    ],
)
def test_schema_choices_are_the_models_choices(
    path: tuple[str, ...], values: tuple[str, ...]
) -> None:
    node: Any = schemas.schema(path[0])
    for step in path[1:]:
        node = node[step]
    assert [v for v in node if v is not None] == list(values)


# --- the agreement table -------------------------------------------------------------------------

VALID_EVENTS = {
    "minimal": EVENT_YAML,
    "all-day": "title: Retreat\nstart: 2027-03-05\nend: 2027-03-06\n",
    "offset": "title: x\nstart: 2027-03-05T17:00:00Z\nduration: 1h30m\n",
    "number-title": "title: 2019\nstart: 2027-03-05 12:00\n",
    "speakers-mixed": """\
        title: Panel
        start: 2027-03-05 12:00
        speakers:
          - Ada Lovelace
          - {name: Grace Hopper, affiliation: Navy, url: https://example.org/grace}
        """,
    "one-speaker-name": "title: x\nstart: 2027-03-05 12:00\nspeaker: Ada Lovelace\n",
    "tags-scalar": "title: x\nstart: 2027-03-05 12:00\ntags: housing\n",
    "empty-location": "title: x\nstart: 2027-03-05 12:00\nlocation:\n",
    "cancelled": "title: x\nstart: 2027-03-05 12:00\nstatus: cancelled\nuid: abc@example.org\n",
    "weekly": """\
        title: Reading group
        start: 2027-01-15 12:00
        duration: 1h
        repeat:
          every: week
          on: [Friday]
          until: 2027-04-09
          except: [2027-02-19]
        occurrences:
          2027-03-05: {location: Room 2200}
          2027-03-19: {status: cancelled}
        """,
    "monthly-count": "title: x\nstart: 2027-01-15 12:00\nrepeat: {every: month, count: 6}\n",
}
INVALID_EVENTS = {
    "unknown-key": "title: x\nstart: 2027-03-05 12:00\nlocaton: Room 1\n",
    "no-title": "start: 2027-03-05 12:00\n",
    "no-start": "title: x\n",
    "start-words": "title: x\nstart: next friday\n",
    "title-list": "title: [a, b]\nstart: 2027-03-05 12:00\n",
    "duration-no-unit": "title: x\nstart: 2027-03-05 12:00\nduration: 90\n",
    "end-and-duration": "title: x\nstart: 2027-03-05 12:00\nend: 2027-03-05 13:00\nduration: 1h\n",
    "status-unknown": "title: x\nstart: 2027-03-05 12:00\nstatus: postponed\n",
    "speaker-no-name": "title: x\nstart: 2027-03-05 12:00\nspeakers: [{affiliation: MIT}]\n",
    "speaker-unknown-key": "title: x\nstart: 2027-03-05 12:00\nspeaker: {name: A, twitter: a}\n",
    "speaker-and-speakers": "title: x\nstart: 2027-03-05 12:00\nspeaker: A\nspeakers: [B]\n",
    "tag-not-slug": "title: x\nstart: 2027-03-05 12:00\ntags: [Public Policy]\n",
    "url-not-web": "title: x\nstart: 2027-03-05 12:00\nonline_url: example.org/stream\n",
    "url-with-quote": "title: x\nstart: 2027-03-05 12:00\nurl: 'https://example.org/a\"b'\n",
    "repeat-no-end": "title: x\nstart: 2027-01-15 12:00\nrepeat: {every: week}\n",
    "repeat-fortnight": "title: x\nstart: 2027-01-15 12:00\nrepeat: {every: fortnight, count: 3}\n",
    "repeat-until-and-count": (
        "title: x\nstart: 2027-01-15 12:00\nrepeat: {every: day, until: 2027-01-20, count: 3}\n"
    ),
    "repeat-on-monthly": "title: x\nstart: 2027-01-15 12:00\nrepeat: {every: month, on: fri, count: 2}\n",
    "repeat-on-funday": "title: x\nstart: 2027-01-15 12:00\nrepeat: {every: week, on: funday, count: 2}\n",
    "repeat-count-zero": "title: x\nstart: 2027-01-15 12:00\nrepeat: {every: day, count: 0}\n",
    "occurrences-alone": "title: x\nstart: 2027-01-15 12:00\noccurrences: {2027-01-22: {title: y}}\n",
    "occurrence-not-date": (
        "title: x\nstart: 2027-01-15 12:00\nrepeat: {every: week, count: 3}\n"
        "occurrences: {next-week: {title: y}}\n"
    ),
    "occurrence-unknown-key": (
        "title: x\nstart: 2027-01-15 12:00\nrepeat: {every: week, count: 3}\n"
        "occurrences: {2027-01-22: {tags: [a]}}\n"
    ),
    "not-a-mapping": "- title: x\n",
}
VALID_SERIES = {
    "minimal": SERIES_YAML,
    "example": (EXAMPLE / "series" / "policy-seminars" / "series.yaml").read_text(encoding="utf-8"),
    "recipients": SERIES_YAML
    + "mailing_list: {recipients: people.csv}\norganizer: {name: Office}\n",
    "announce": SERIES_YAML + "announce:\n  - {kind: reminder, days_before: 0}\nlanguage: fr-CA\n",
}
INVALID_SERIES = {
    "no-timezone": "title: Talks\n",
    "no-title": "timezone: America/Toronto\n",
    "unknown-key": SERIES_YAML + "mailinglist: {to: a@example.org}\n",
    "language-word": SERIES_YAML + "language: English\n",
    "duration-words": SERIES_YAML + "default_duration: an hour\n",
    "organizer-no-name": SERIES_YAML + "organizer: {email: a@example.org}\n",
    "organizer-bad-email": SERIES_YAML + "organizer: {name: A, email: not-an-address}\n",
    "list-both": SERIES_YAML + "mailing_list: {to: a@example.org, recipients: people.csv}\n",
    "list-neither": SERIES_YAML + "mailing_list: {unsubscribe_url: https://example.org}\n",
    "announce-kind": SERIES_YAML + "announce: [{kind: digest, days_before: 1}]\n",
    "announce-negative": SERIES_YAML + "announce: [{kind: reminder, days_before: -1}]\n",
    "announce-not-list": SERIES_YAML + "announce: weekly\n",
}
VALID_SITES = {
    "empty-mapping": "{}\n",
    "example": (EXAMPLE / "announcer.yaml").read_text(encoding="utf-8"),
    "local-smtp": "email:\n  smtp: {host: localhost, security: none, port: 1025}\n",
    "limits": "calendar: {past_days: 30, refresh: 1h}\nfeeds: {limit: All}\noutputs: ics\n",
    "credentials": "email: {smtp: {host: smtp.example.org, username_env: SMTP_USER}}\n",
}
INVALID_SITES = {
    "unknown-key": "titel: Events\n",
    "base-url-relative": "base_url: events.example.org\n",
    "smtp-no-host": "email: {smtp: {port: 587}}\n",
    "smtp-clear-remote": "email: {smtp: {host: smtp.example.org, security: none}}\n",
    "smtp-security-ssl": "email: {smtp: {host: smtp.example.org, security: ssl}}\n",
    "password-in-file": "email: {smtp: {host: smtp.example.org, password_env: hunter2 hunter2}}\n",
    "port-words": "email: {smtp: {host: smtp.example.org, port: submission}}\n",
    "past-days-forever": "calendar: {past_days: forever}\n",
    "refresh-words": "calendar: {refresh: daily}\n",
    "language-word": "language: English\n",
    "feeds-unknown": "feeds: {count: 10}\n",
}
TABLE = {
    "event": (VALID_EVENTS, INVALID_EVENTS),
    "series": (VALID_SERIES, INVALID_SERIES),
    "site": (VALID_SITES, INVALID_SITES),
}
CASES = [
    (kind, name, valid)
    for kind, (good, bad) in TABLE.items()
    for valid, table in ((True, good), (False, bad))
    for name in table
]


def snippet(kind: str, name: str) -> str:
    good, bad = TABLE[kind]
    return textwrap.dedent(good.get(name) or bad[name])


def loader_accepts(root: Path, kind: str, name: str) -> bool:
    files = {
        "announcer.yaml": "title: Events\n",
        "series/talks/series.yaml": SERIES_YAML,
        "series/talks/people.csv": "email,name\nada@example.org,Ada\n",
        "series/talks/events/a-talk.yaml": EVENT_YAML,
    }
    target = {
        "site": "announcer.yaml",
        "series": "series/talks/series.yaml",
        "event": "series/talks/events/a-talk.yaml",
    }
    files[target[kind]] = snippet(kind, name)
    project = root / f"{kind}-{name}"
    for relative, text in files.items():
        (project / relative).parent.mkdir(parents=True, exist_ok=True)
        (project / relative).write_text(text, encoding="utf-8")
    try:
        load_site(project)
    except ValidationFailed:
        return False
    return True


@pytest.fixture(scope="module")
def schema_verdicts(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], bool]:
    """check-jsonschema run once per kind over every snippet: (kind, name) -> accepted."""
    folder = tmp_path_factory.mktemp("snippets")
    verdicts: dict[tuple[str, str], bool] = {}
    for kind in TABLE:
        names = [name for k, name, _ in CASES if k == kind]
        paths = {folder / f"{kind}--{name}.yaml": name for name in names}
        for path, name in paths.items():
            path.write_text(snippet(kind, name), encoding="utf-8")
        result = check_jsonschema(kind, *paths)
        report = json.loads(result.stdout)
        rejected = {Path(e["filename"]).name for e in report["errors"] + report["parse_errors"]}
        for path, name in paths.items():
            verdicts[(kind, name)] = path.name not in rejected
    return verdicts


@pytest.mark.parametrize(("kind", "name", "valid"), CASES, ids=[f"{k}-{n}" for k, n, _ in CASES])
def test_schema_and_loader_agree(
    kind: str,
    name: str,
    valid: bool,
    schema_verdicts: dict[tuple[str, str], bool],
    tmp_path: Path,
) -> None:
    assert loader_accepts(tmp_path, kind, name) is valid, "the loader disagrees with the table"
    assert schema_verdicts[(kind, name)] is valid, "the schema disagrees with the loader"


# --- the command ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", schemas.KINDS)
def test_schema_command_prints_the_shipped_file(kind: str) -> None:
    result = CliRunner().invoke(main, ["schema", kind])
    assert result.exit_code == 0, result.output
    assert result.output == schema_file(kind).read_text(encoding="utf-8")
    assert json.loads(result.output)["$schema"].startswith("http://json-schema.org/")


def test_schema_command_writes_all_three_for_editor_settings(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["schema", "--out", str(tmp_path / "schemas")])
    assert result.exit_code == 0, result.output
    for kind in schemas.KINDS:
        assert (tmp_path / "schemas" / f"{kind}.json").read_bytes() == schema_file(
            kind
        ).read_bytes()
    settings = json.loads(result.output.split("settings.json:\n", 1)[1])
    assert settings["yaml.schemas"][f"{tmp_path}/schemas/event.json"] == ["series/*/events/*.yaml"]


def test_schema_command_without_a_kind_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 2
    assert "name a schema" in result.output


def test_check_jsonschema_is_the_installed_command() -> None:
    assert shutil.which(CHECK_JSONSCHEMA), "check-jsonschema must be installed beside python"
