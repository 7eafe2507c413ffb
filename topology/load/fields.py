"""Reading an object's fields, each problem reported as an `Issue` at the field's line.

`Fields` wraps one mapping (or list) of an object: its getters check presence and type,
report what is wrong and return None (or a default) instead, so that a parser reads on and
reports every problem of an object at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from ipaddress import IPv4Address, IPv4Network
from typing import Any, TypeVar, cast

from topology.load.converters import parse_cidr, parse_ipv4
from topology.load.issues import Issue
from topology.load.yamlreader import Container, Key, YamlList, YamlMap

T = TypeVar("T")

_TYPE_NAMES: dict[type, str] = {
    str: "a string",
    int: "an integer",
    bool: "a boolean",
    float: "a number",
    YamlMap: "a mapping",
    YamlList: "a list",
    type(None): "null",
}


def type_name(value: object) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def child_path(path: str, key: Key) -> str:
    """``spec`` + ``ports`` → ``spec.ports``; + 1 → ``spec.ports[1]``; keys with dots or
    slashes (annotations, labels) in brackets: ``metadata.annotations[osdn.dev/ofport]``."""
    if isinstance(key, int) or "." in key or "/" in key:
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def join_path(keys: Iterable[Key]) -> str:
    """``("spec", "ports", 1)`` → ``spec.ports[1]``."""
    path = ""
    for key in keys:
        path = child_path(path, key)
    return path


class Reporter:
    """Where one object's issues go, and the identity they name."""

    __slots__ = ("file", "identity", "issues")

    def __init__(self, file: str, identity: str, issues: list[Issue]) -> None:
        self.file = file
        self.identity = identity
        self.issues = issues


_MISSING: Any = object()


class Fields:
    """Typed access to one mapping (or list) of an object; each getter reports what is wrong
    with the field at the field's own line and returns None (or a default) instead."""

    __slots__ = ("_key", "_parent", "_reporter", "node")

    def __init__(
        self, reporter: Reporter, node: Container, parent: Fields | None = None, key: Key = ""
    ) -> None:
        self._reporter = reporter
        self.node = node
        self._parent = parent  # the path is built only when an issue needs it
        self._key = key

    @property
    def path(self) -> str:
        return "" if self._parent is None else child_path(self._parent.path, self._key)

    def report(self, key: Key | None, message: str, value: object = None) -> None:
        path = self.path if key is None else child_path(self.path, key)
        line = self.node.line if key is None else self.node.line_of(key)
        reporter = self._reporter
        reporter.issues.append(Issue(reporter.file, line, reporter.identity, path, message, value))

    def has(self, key: Key) -> bool:
        value = self._raw(key)
        return value is not _MISSING and value is not None and value != ""

    def _raw(self, key: Key) -> Any:
        node = self.node
        if type(node) is YamlMap:  # the hot path: type() is faster than isinstance()
            return node.get(key, _MISSING) if type(key) is str else _MISSING
        items = cast(YamlList, node)
        return items[key] if type(key) is int and 0 <= key < len(items) else _MISSING

    def _typed(self, key: Key, want: type, required: bool, allow_empty: bool = False) -> Any:
        value = self._raw(key)
        if value is _MISSING or value is None or (value == "" and not allow_empty):
            if required:
                self.report(key, "required")
            return None
        if type(value) is not want:
            shown = value if isinstance(value, (str, int, float)) else None
            self.report(key, f"must be {_TYPE_NAMES[want]}, not {type_name(value)}", shown)
            return None
        return value

    def _child(self, key: Key, node: Container) -> Fields:
        return Fields(self._reporter, node, self, key)

    def mapping(self, key: Key, required: bool = False) -> Fields | None:
        node = self._typed(key, YamlMap, required)
        return None if node is None else self._child(key, node)

    def sequence(self, key: Key, required: bool = False) -> Fields | None:
        node = self._typed(key, YamlList, required)
        return None if node is None else self._child(key, node)

    def mappings(self, key: Key) -> list[Fields]:
        """The mapping items of a list field (each non-mapping item is reported)."""
        items = self.sequence(key)
        if items is None:
            return []
        return present(items.mapping(i, required=True) for i in range(len(items.node)))

    def string(self, key: Key, required: bool = False) -> str | None:
        value: str | None = self._typed(key, str, required)
        return value

    def boolean(self, key: Key) -> bool | None:
        value: bool | None = self._typed(key, bool, False)
        return value

    def integer(
        self,
        key: Key,
        required: bool = False,
        check: Callable[[int], str | None] | None = None,
    ) -> int | None:
        """An integer field; `check` returns what is wrong with a value, or None."""
        value: int | None = self._typed(key, int, required)
        if value is not None and check is not None and (problem := check(value)) is not None:
            self.report(key, problem, value)
            return None
        return value

    def converted(self, key: Key, convert: Callable[[str], T], required: bool = False) -> T | None:
        """A string field turned into something else; `convert` raises ValueError(reason)."""
        text = self.string(key, required)
        if text is None:
            return None
        try:
            return convert(text)
        except ValueError as error:
            self.report(key, str(error), text)
            return None

    def converted_list(self, key: Key, convert: Callable[[str], T]) -> tuple[T, ...]:
        """A list of strings, each converted; bad items are reported and left out."""
        items = self.sequence(key)
        if items is None:
            return ()
        return tuple(present(items.converted(i, convert, True) for i in range(len(items.node))))

    def string_map(self, key: Key) -> tuple[tuple[str, str], ...]:
        """A map of strings to strings (labels, selectors), sorted by key."""
        fields = self.mapping(key)
        if fields is None:
            return ()
        pairs = ((name, fields._typed(name, str, True, allow_empty=True)) for name in fields.node)
        return tuple(sorted((name, value) for name, value in pairs if value is not None))

    def ip(self, key: Key, required: bool = False) -> IPv4Address | None:
        return self.converted(key, parse_ipv4, required)

    def cidr(self, key: Key, required: bool = False) -> IPv4Network | None:
        return self.converted(key, parse_cidr, required)


def present(values: Iterable[T | None]) -> list[T]:
    """The values that could be read (the others have been reported)."""
    return [value for value in values if value is not None]
