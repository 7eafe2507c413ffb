"""Stage 1: a file's YAML documents, with the line of every mapping, key and list item.

libyaml parses and composes; `_DocumentBuilder` builds the composed nodes into `YamlMap` /
`YamlList` (which remember lines) and scalars.  Syntax errors, duplicate keys, unsupported
tags and merge keys become issues; a syntax error ends the file.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, cast

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from topology.load.issues import Issue

try:
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # libyaml missing: same results from the pure-Python parser, only slower
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

Key = str | int  # a mapping key or a list index


class YamlMap(dict[str, Any]):
    """A YAML mapping that knows its own line and the line of each key (all 1-based)."""

    __slots__ = ("key_lines", "line")

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[str, int] = {}

    def line_of(self, key: Key) -> int:
        """The key's line, or the mapping's own line for a key that is absent."""
        return self.key_lines.get(key, self.line) if isinstance(key, str) else self.line


class YamlList(list[Any]):
    """A YAML sequence that knows its own line and the line of each item."""

    __slots__ = ("item_lines", "line")

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.item_lines: list[int] = []

    def line_of(self, key: Key) -> int:
        if isinstance(key, int) and 0 <= key < len(self.item_lines):
            return self.item_lines[key]
        return self.line


Container = YamlMap | YamlList

_STR_TAG = "tag:yaml.org,2002:str"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_MERGE_TAG = "tag:yaml.org,2002:merge"
# Plain scalars whose first character starts no implicit type (int, bool, null, ...) are
# strings: deciding that here skips PyYAML's regex resolver for most scalars.
_IMPLICIT_FIRST_CHARS = frozenset(k for k in _BaseLoader.yaml_implicit_resolvers if k)
_FAST_RESOLVE = None not in _BaseLoader.yaml_implicit_resolvers  # no wildcard resolvers
_RESOLVED_CACHE_SIZE = 10_000  # keys and common values repeat; names and IPs do not


class _Loader(_BaseLoader):
    """libyaml's parser and composer with a faster implicit-tag resolver.

    Resolution is PyYAML's (YAML 1.1: ``yes`` is a boolean, ``0x1f`` an integer), only
    cached, short-cut for plain strings, and without path resolvers when none are registered.
    Together that is about a fifth of the loading time.
    """

    def __init__(self, stream: bytes) -> None:
        super().__init__(stream)
        self._resolved: dict[str, str] = {}

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is not ScalarNode or not implicit[0] or not _FAST_RESOLVE:
            return str(super().resolve(kind, value, implicit))
        tag = self._resolved.get(value)
        if tag is None:
            if value and value[0] not in _IMPLICIT_FIRST_CHARS:
                tag = _STR_TAG
            else:
                tag = str(super().resolve(kind, value, implicit))
            if len(self._resolved) < _RESOLVED_CACHE_SIZE:
                self._resolved[value] = tag
        return tag

    # The composer calls these around every node (millions of times for a large cluster);
    # they only serve path resolvers.  Without any, they are C built-ins that do nothing
    # useful and return at once (a Python no-op costs a sixth of the composing time).  With
    # path resolvers registered on PyYAML's loader, PyYAML's own methods stay.
    if _FAST_RESOLVE and not _BaseLoader.yaml_path_resolvers:
        descend_resolver = cast(Any, staticmethod(operator.is_))  # (node, index) -> ignored
        ascend_resolver = cast(Any, staticmethod(tuple))  # () -> ignored ()


@dataclass(frozen=True)
class _DuplicateKey:
    mapping: YamlMap
    key: str
    line: int
    first_line: int


class _DocumentBuilder:
    """Turns one composed document into YamlMap/YamlList/scalars.

    Faster than PyYAML's constructor (no generators, no per-node bookkeeping) and it records
    lines.  Aliases are built once and shared; that also keeps "billion laughs" documents small
    and lets a recursive alias end instead of looping.
    """

    def __init__(self, loader: _Loader) -> None:
        self._loader = loader
        self._built: dict[int, Any] = {}
        self.duplicates: list[_DuplicateKey] = []
        self.problems: list[tuple[int, str]] = []  # (line, message)

    def build(self, node: Node) -> Any:
        cls = node.__class__
        if cls is ScalarNode:
            return node.value if node.tag == _STR_TAG else self._scalar(node)
        built = self._built.get(id(node))
        if built is not None:
            return built
        if cls is MappingNode:
            return self._mapping(node)
        return self._sequence(node)

    def _scalar(self, node: Node) -> Any:
        if node.tag == _TIMESTAMP_TAG:  # keep RFC 3339 text, as the API does
            return node.value
        construct = self._loader.yaml_constructors.get(node.tag)
        if construct is None or not node.tag.startswith("tag:yaml.org,2002:"):
            self.problems.append((_line(node), f"unsupported YAML tag {node.tag}"))
            return node.value
        return construct(self._loader, node)

    def _mapping(self, node: Node) -> YamlMap:
        mapping = YamlMap(_line(node))
        self._built[id(node)] = mapping
        key_lines = mapping.key_lines
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1  # _line(), inlined: this loop is the hot one
            if key_node.__class__ is not ScalarNode:
                self.problems.append((line, "mapping keys must be strings"))
                continue
            if key_node.tag == _MERGE_TAG:
                self.problems.append((line, "YAML merge keys (<<) are not supported"))
                continue
            key = key_node.value
            if key in key_lines:
                self.duplicates.append(_DuplicateKey(mapping, key, line, key_lines[key]))
                continue
            key_lines[key] = line
            mapping[key] = self.build(value_node)
        return mapping

    def _sequence(self, node: Node) -> YamlList:
        sequence = YamlList(_line(node))
        self._built[id(node)] = sequence
        lines = sequence.item_lines
        for item in node.value:
            lines.append(item.start_mark.line + 1)
            sequence.append(self.build(item))
        return sequence


def _syntax_issue(path: str, error: yaml.MarkedYAMLError) -> Issue:
    """At the problem's line, naming where the construct it breaks began (libyaml often
    notices an unclosed bracket only at the end of the file)."""
    problem, context = error.problem_mark, error.context_mark
    message = f"YAML syntax error: {error.problem}"
    if error.context and context is not None and (problem is None or context.line != problem.line):
        message += f" ({error.context} at line {context.line + 1})"
    mark = problem or context
    return Issue(path, mark.line + 1 if mark is not None else 0, message=message)


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


@dataclass(frozen=True)
class YamlDocument:
    data: Any  # YamlMap, YamlList or a scalar
    line: int
    duplicates: tuple[_DuplicateKey, ...] = ()


def read_documents(path: str) -> tuple[list[YamlDocument], list[Issue], bool]:
    """A file's documents, the issues found reading them, and whether the whole file was read.

    Problems inside a document that do not stop the parser (duplicate keys) are returned with
    the document, so that they can be attributed to its objects.
    """
    try:
        with open(path, "rb") as stream:
            content = stream.read()
    except OSError as error:
        return [], [Issue(path, 0, message=f"cannot read: {error.strerror}")], False
    documents: list[YamlDocument] = []
    issues: list[Issue] = []
    loader = _Loader(content)
    try:
        while loader.check_node():
            node = loader.get_node()
            builder = _DocumentBuilder(loader)
            data = builder.build(node) if node is not None else None
            issues += [Issue(path, line, message=message) for line, message in builder.problems]
            line = _line(node) if node is not None else 0
            documents.append(YamlDocument(data, line, tuple(builder.duplicates)))
    except yaml.MarkedYAMLError as error:
        issues.append(_syntax_issue(path, error))
        return documents, issues, False
    except yaml.YAMLError as error:  # e.g. bytes that are not UTF-8
        issues.append(Issue(path, 0, message=f"YAML error: {error}"))
        return documents, issues, False
    finally:
        loader.dispose()
    return documents, issues, True
