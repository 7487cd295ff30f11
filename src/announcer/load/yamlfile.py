"""Reading one YAML file safely, keeping where every value was written.

The result is PyYAML's node graph, not Python values: nodes carry line and
column marks, and scalars keep the text the organiser typed, so ``on: [fri]``
or ``title: yes`` mean what they look like rather than YAML 1.1 booleans.
Nothing is constructed, so no tag can run code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from announcer.errors import Diagnostic

MAX_BYTES = 1024 * 1024
MAX_NODES = 100_000  # visits, counting each alias use: stops "billion laughs"

try:  # libyaml's C parser when PyYAML was built with it, same marks, much faster
    from yaml import CSafeLoader as _Base
except ImportError:  # pragma: no cover - depends on the PyYAML build
    from yaml import SafeLoader as _Base  # type: ignore[assignment]

NULL_TAG = "tag:yaml.org,2002:null"
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_TAGS = {
    yaml.ScalarNode: "tag:yaml.org,2002:str",
    yaml.SequenceNode: "tag:yaml.org,2002:seq",
    yaml.MappingNode: "tag:yaml.org,2002:map",
}


class _Loader(_Base):
    """Tags only what the loader asks about: whether a plain scalar is empty.

    Every value is read from the text as typed, so YAML 1.1's implicit
    resolution (booleans, base-60 numbers, timestamps), which costs a regular
    expression per scalar in Python, would be work thrown away.
    """

    def resolve(self, kind: type, value: str | None, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode:
            return NULL_TAG if implicit[0] and value in _NULLS else _TAGS[kind]
        return _TAGS[kind]


@dataclass(frozen=True)
class YamlFile:
    """A parsed file: ``root`` is None when the file could not be read."""

    path: str  # as shown to the user
    root: yaml.Node | None
    problems: tuple[Diagnostic, ...] = ()


def read_bytes(file: Path, shown: str) -> bytes | YamlFile:
    """The file's bytes, or a YamlFile saying why it cannot be read."""
    try:
        return _read_bytes(file)
    except _Unreadable as exc:
        return YamlFile(shown, None, (Diagnostic(shown, 0, 0, exc.message, exc.hint),))


def read_yaml(file: Path, shown: str) -> YamlFile:
    """Parse ``file``; every problem becomes a Diagnostic, never an exception."""
    data = read_bytes(file, shown)
    return data if isinstance(data, YamlFile) else parse_yaml(data, shown)


def parse_yaml(data: bytes, shown: str) -> YamlFile:
    """Parse the bytes of a file shown to the user as ``shown``."""
    try:
        if b"\x00" in data:
            line = data[: data.index(b"\x00")].count(b"\n") + 1
            return _fail(
                shown,
                line,
                "contains a NUL byte",
                "this looks like a binary file; event files are plain text",
            )
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return _fail(shown, line, "is not UTF-8 text", "save the file as UTF-8")
    if not text.strip():
        return _fail(shown, 1, "is empty", "a file here needs at least a few keys, see the docs")
    return _compose(text, shown)


class _Unreadable(Exception):
    def __init__(self, message: str, hint: str) -> None:
        self.message, self.hint = message, hint


def _read_bytes(file: Path) -> bytes:
    try:
        size = file.stat().st_size
        if size > MAX_BYTES:
            raise _Unreadable(
                f"is {size:,} bytes, over the 1 MiB limit",
                "split it up; one event per file is the norm",
            )
        return file.read_bytes()
    except OSError as exc:
        raise _Unreadable(
            f"cannot be read: {exc.strerror}", "check the file's permissions"
        ) from None


def _fail(shown: str, line: int, message: str, hint: str, column: int = 0) -> YamlFile:
    return YamlFile(shown, None, (Diagnostic(shown, line, column, message, hint),))


def _compose(text: str, shown: str) -> YamlFile:
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        problem = exc.problem or exc.context or "cannot be parsed"
        return _fail(
            shown,
            line,
            f"is not valid YAML: {problem}",
            "check indentation, quotes and colons on this line",
            column,
        )
    except yaml.YAMLError as exc:
        return _fail(shown, 0, f"is not valid YAML: {exc}", "check the file's syntax")
    if len(nodes) != 1:
        return _fail(
            shown,
            1,
            f"holds {len(nodes)} YAML documents",
            "keep one document per file; remove '---' separators",
        )
    root = nodes[0]
    if "&" in text and "*" in text and _too_big(root):  # only aliases of anchors can explode
        return _fail(
            shown,
            root.start_mark.line + 1,
            "expands to too many values",
            "YAML aliases (*name) that repeat large parts are not allowed",
        )
    return YamlFile(shown, root)


def _too_big(root: yaml.Node) -> bool:
    """Count node visits, aliases included; a cyclic or exploding graph hits the cap."""
    budget = MAX_NODES
    stack: list[yaml.Node] = [root]
    while stack:
        node = stack.pop()
        budget -= 1
        if budget < 0:
            return True
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.extend((key, value))
    return False
