"""Typed reads from YAML nodes that record problems instead of raising.

Every accessor returns a usable value (or None) and appends a Diagnostic with
the file, line and a hint when the input is wrong, so one pass over a tree finds
all of its errors.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from typing import TypeVar

import yaml

from announcer.errors import Diagnostic
from announcer.load.yamlfile import NULL_TAG

T = TypeVar("T")
_INT = re.compile(r"[-+]?\d+")
SLUG = re.compile(r"[a-z0-9-]{1,80}")


def kind_of(node: yaml.Node) -> str:
    """The word a user knows for what they wrote."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return "empty" if node.tag == NULL_TAG else f"the value {node.value!r}"


class Reader:
    """Where problems go, for one file."""

    def __init__(self, path: str, problems: list[Diagnostic]) -> None:
        self.path = path
        self.problems = problems

    def error(self, node: yaml.Node | None, message: str, hint: str = "") -> None:
        line, column = (node.start_mark.line + 1, node.start_mark.column + 1) if node else (0, 0)
        self.problems.append(Diagnostic(self.path, line, column, message, hint))

    def mapping(self, node: yaml.Node | None, what: str, keys: Iterable[str]) -> Fields | None:
        """``node`` as a mapping with only ``keys``, or None after recording why not."""
        if node is None:
            return None
        if not isinstance(node, yaml.MappingNode):
            self.error(
                node,
                f"{what} must be a mapping of keys, found {kind_of(node)}",
                "write it as 'key: value' lines",
            )
            return None
        return Fields(self, node, what, frozenset(keys))


class Fields:
    """One YAML mapping with known keys; values are read by type."""

    def __init__(
        self, reader: Reader, node: yaml.MappingNode, what: str, allowed: frozenset[str]
    ) -> None:
        self.reader, self.node, self.what = reader, node, what
        self.values: dict[str, yaml.Node] = {}
        for key, value in node.value:
            self._add(key, value, allowed)

    def _add(self, key: yaml.Node, value: yaml.Node, allowed: frozenset[str]) -> None:
        if not isinstance(key, yaml.ScalarNode):
            self.reader.error(
                key, f"a key in {self.what} is {kind_of(key)}", "keys are plain words"
            )
            return
        name = key.value
        if name in self.values:
            self.reader.error(key, f"{name!r} is given twice in {self.what}", "keep one of them")
        elif name not in allowed:
            close = difflib.get_close_matches(name, sorted(allowed), n=1)
            hint = (
                f"did you mean {close[0]!r}?" if close else "allowed: " + ", ".join(sorted(allowed))
            )
            self.reader.error(key, f"unknown key {name!r} in {self.what}", hint)
        elif value.tag != NULL_TAG:
            self.values[name] = value

    def __contains__(self, key: str) -> bool:
        return key in self.values

    def get(self, key: str) -> yaml.Node | None:
        return self.values.get(key)

    def error(self, key: str | yaml.Node | None, message: str, hint: str = "") -> None:
        node = self.values.get(key) if isinstance(key, str) else key
        self.reader.error(node or self.node, message, hint)

    def require(self, *keys: str) -> bool:
        missing = [k for k in keys if k not in self.values]
        for key in missing:
            self.reader.error(self.node, f"{self.what} has no {key!r}", f"add '{key}: ...'")
        return not missing

    def text(self, key: str, default: str = "") -> str:
        """Any scalar, as the text the user typed: ``title: 2019`` is the title "2019"."""
        node = self.values.get(key)
        if node is None:
            return default
        if not isinstance(node, yaml.ScalarNode):
            self.error(
                key,
                f"{key!r} must be text, found {kind_of(node)}",
                "quote it if it contains ':' or starts with '[' or '{'",
            )
            return default
        return str(node.value)

    def integer(self, key: str, minimum: int = 0) -> int | None:
        node = self.values.get(key)
        if node is None:
            return None
        if isinstance(node, yaml.ScalarNode) and _INT.fullmatch(node.value.strip()):
            number = int(node.value)
            if number >= minimum:
                return number
            self.error(key, f"{key!r} must be at least {minimum}, found {number}")
            return None
        self.error(key, f"{key!r} must be a whole number, found {kind_of(node)}")
        return None

    def choice(self, key: str, options: tuple[T, ...], default: T) -> T:
        value = self.text(key)
        if not value:
            return default
        for option in options:
            if option == value:
                return option
        self.error(key, f"{key!r} is {value!r}", "use one of: " + ", ".join(map(str, options)))
        return default

    def texts(self, key: str) -> list[tuple[str, yaml.Node]]:
        """A list of scalars (one scalar alone counts as a list of one)."""
        node = self.values.get(key)
        if node is None:
            return []
        items = node.value if isinstance(node, yaml.SequenceNode) else [node]
        found: list[tuple[str, yaml.Node]] = []
        for item in items:
            if isinstance(item, yaml.ScalarNode) and item.tag != NULL_TAG:
                found.append((str(item.value), item))
            else:
                self.error(item, f"each item of {key!r} must be text, found {kind_of(item)}")
        return found

    def parsed(self, key: str, parse: Callable[[str], T]) -> T | None:
        """Text run through ``parse``; a ValueError becomes a located error with its hint."""
        text = self.text(key)
        if not text:
            return None
        try:
            return parse(text)
        except ValueError as exc:
            self.error(key, f"{key!r}: {exc}", getattr(exc, "hint", ""))
            return None


def check_slug(reader: Reader, node: yaml.Node | None, value: str, what: str) -> bool:
    if SLUG.fullmatch(value):
        return True
    suggestion = re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")[:80] or "talk"
    reader.error(
        node,
        f"{what} {value!r} is not a valid {what}",
        f"use 1-80 lowercase letters, digits and '-', e.g. {suggestion!r}",
    )
    return False
