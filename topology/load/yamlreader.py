"""Stage 1: a file's YAML documents, with the line of every mapping, key and list item.

libyaml parses and composes; `_DocumentBuilder` builds the composed nodes into `YamlMap` /
`YamlList` (which remember lines) and scalars.  Syntax errors, duplicate keys, unsupported
tags and merge keys become issues; a syntax error ends the file.

The limits of `limits` are enforced here, each ending the file with a located issue: the
number and density of nodes while libyaml composes (its ``descend_resolver`` hook is called
for every node), nesting and alias expansion while building.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from topology.load.issues import Issue
from topology.load.limits import (
    DENSITY_CHECK_EVERY,
    MAX_ALIAS_NODES,
    MAX_NESTING_DEPTH,
    MAX_NODES_PER_FILE,
    MIN_CHARS_PER_NODE,
    NODES_FREE,
)
from topology.load.readfile import read_file

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
_PATH_RESOLVERS = bool(_BaseLoader.yaml_path_resolvers)


class LimitExceeded(Exception):
    """A limit of `limits` was passed at `line`; ends the file."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class _Loader(_BaseLoader):
    """libyaml's parser and composer with a faster implicit-tag resolver.

    Resolution is PyYAML's (YAML 1.1: ``yes`` is a boolean, ``0x1f`` an integer), only
    cached, short-cut for plain strings, and without path resolvers when none are registered.
    Together that is about a fifth of the loading time.
    """

    def __init__(self, stream: bytes) -> None:
        super().__init__(stream)
        self._resolved: dict[str, str] = {}
        self.nodes = 0  # composed so far (aliases not counted: they compose nothing)
        self._next_check = DENSITY_CHECK_EVERY
        self.document_end: Any = None  # the end mark of the last document composed

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

    def descend_resolver(self, parent: Node | None, index: Any) -> None:
        """Called by the composer before every node it composes: counts them, and every
        `DENSITY_CHECK_EVERY` nodes checks the node limits (this costs about 3% of the
        composing time; a check each time would cost a sixth)."""
        self.nodes += 1
        if self.nodes >= self._next_check:
            self._next_check += DENSITY_CHECK_EVERY
            _check_node_count(self.nodes, *self._position(parent, index))
        if _PATH_RESOLVERS:
            super().descend_resolver(parent, index)

    def _position(self, parent: Node | None, index: Any) -> tuple[int, int]:
        """(line, character offset) the composer has reached: the end of the node composed
        just before (a key, the previous item, the previous document), else the start of
        the parent."""
        previous: Node | None = None
        if isinstance(index, Node):  # a mapping value: its key is done
            previous = index
        elif parent is not None and parent.value and isinstance(parent.value, list):
            last = parent.value[-1]
            previous = last[1] if isinstance(last, tuple) else last
        if previous is not None:
            mark = previous.end_mark
        else:
            mark = parent.start_mark if parent is not None else self.document_end
        return (int(mark.line) + 1, int(mark.index)) if mark is not None else (1, 0)

    # The composer calls this after every node; it only serves path resolvers.  Without any,
    # it is a C built-in that returns at once (a Python no-op would cost a tenth of the
    # composing time).  With path resolvers registered, PyYAML's own method stays.
    if _FAST_RESOLVE and not _PATH_RESOLVERS:
        ascend_resolver = cast(Any, staticmethod(tuple))  # () -> ignored ()


def _check_node_count(nodes: int, line: int, chars: int) -> None:
    if nodes > MAX_NODES_PER_FILE:
        raise LimitExceeded(line, f"more than {MAX_NODES_PER_FILE} YAML nodes in the file "
                                  "(MAX_NODES_PER_FILE)")
    if nodes > NODES_FREE + chars // MIN_CHARS_PER_NODE:
        raise LimitExceeded(line, f"{nodes} YAML nodes in the first {chars} characters: more "
                                  f"than {NODES_FREE} nodes need at least {MIN_CHARS_PER_NODE} "
                                  "characters each (NODES_FREE, MIN_CHARS_PER_NODE)")


@dataclass(frozen=True)
class _DuplicateKey:
    mapping: YamlMap
    key: str
    line: int
    first_line: int


class _DocumentBuilder:
    """Turns one composed document into YamlMap/YamlList/scalars.

    Faster than PyYAML's constructor (no generators, no per-node bookkeeping) and it records
    lines.  Aliases are built once and shared, so memory stays small; but every later stage
    walks an alias as often as it is named, so what aliases add, counted as the subtrees they
    repeat, is limited (`MAX_ALIAS_NODES`), and an alias inside the node it names is refused.
    Nesting is limited here too (`MAX_NESTING_DEPTH`), before this recursion could be deep.
    """

    def __init__(self, loader: _Loader, composed: int, alias_allowance: int) -> None:
        """`composed`: the nodes libyaml composed for this document; `alias_allowance`: the
        nodes aliases may still add to the file."""
        self._loader = loader
        self._built: dict[int, Any] = {}
        self._open: list[int] = []  # ids of the nodes being built, outermost first
        self._sizes: dict[int, int] = {}  # a built container's nodes, aliases expanded
        # Every composed node but the root fills one item (or key, or value) of a container;
        # aliases fill more, and may not fill more than the allowance.
        self.slots_left = composed - 1 + alias_allowance
        self.duplicates: list[_DuplicateKey] = []
        self.problems: list[tuple[int, str]] = []  # (line, message)

    def build(self, node: Node) -> Any:
        cls = node.__class__
        if cls is ScalarNode:
            return node.value if node.tag == _STR_TAG else self._scalar(node)
        built = self._built.get(id(node))
        if built is not None:
            return self._alias(node, built)
        if cls is MappingNode:
            return self._mapping(node)
        return self._sequence(node)

    def _alias(self, node: Node, built: Container) -> Container:
        """A node met again: an alias, which repeats the whole subtree it names (its own slot
        in the parent is already counted)."""
        if id(node) in self._open:
            raise LimitExceeded(_line(node), "a YAML alias inside the node it names "
                                             "(recursive alias)")
        self._use_slots(node, self._size(built) - 1)
        return built

    def _size(self, value: Any) -> int:
        """Nodes of a built value, aliases expanded (memoized: aliases of aliases)."""
        if not isinstance(value, (YamlMap, YamlList)):
            return 1
        size = self._sizes.get(id(value))
        if size is None:
            if isinstance(value, YamlMap):  # its keys, and its values
                size = 1 + len(value) + sum(self._size(child) for child in value.values())
            else:
                size = 1 + sum(self._size(child) for child in value)
            self._sizes[id(value)] = size
        return size

    def _too_deep(self, node: Node) -> None:
        raise LimitExceeded(_line(node), f"nested deeper than {MAX_NESTING_DEPTH} mappings "
                                         "and sequences (MAX_NESTING_DEPTH)")

    def _use_slots(self, node: Node, slots: int) -> None:
        self.slots_left -= slots
        if self.slots_left < 0:
            raise LimitExceeded(_line(node), f"YAML aliases (here, or of the node here) add "
                                             f"more than {MAX_ALIAS_NODES} nodes to the file "
                                             "(MAX_ALIAS_NODES)")

    def _scalar(self, node: Node) -> Any:
        if node.tag == _TIMESTAMP_TAG:  # keep RFC 3339 text, as the API does
            return node.value
        construct = self._loader.yaml_constructors.get(node.tag)
        if construct is None or not node.tag.startswith("tag:yaml.org,2002:") \
                or node.tag in _UNBUILT_TAGS:
            self.problems.append((_line(node), f"unsupported YAML tag {node.tag}"))
            return node.value
        try:
            return construct(self._loader, node)
        except (ValueError, KeyError, TypeError, AttributeError, yaml.YAMLError) as error:
            # e.g. an integer of more than 4,300 digits, !!int abc, !!bool maybe
            reason = error.problem if isinstance(error, yaml.MarkedYAMLError) else str(error)
            self.problems.append((_line(node), f"not a valid {node.tag.rpartition(':')[2]}: "
                                               f"{_shorten(str(reason))}"))
            return node.value

    def _mapping(self, node: Node) -> YamlMap:
        mapping = YamlMap(_line(node))
        self._built[id(node)] = mapping
        self._open.append(id(node))
        if len(self._open) > MAX_NESTING_DEPTH:
            self._too_deep(node)
        self.slots_left -= 2 * len(node.value)
        if self.slots_left < 0:
            self._use_slots(node, 0)  # reports
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
        self._open.pop()
        return mapping

    def _sequence(self, node: Node) -> YamlList:
        sequence = YamlList(_line(node))
        self._built[id(node)] = sequence
        self._open.append(id(node))
        if len(self._open) > MAX_NESTING_DEPTH:
            self._too_deep(node)
        self.slots_left -= len(node.value)
        if self.slots_left < 0:
            self._use_slots(node, 0)  # reports
        lines = sequence.item_lines
        for item in node.value:
            lines.append(item.start_mark.line + 1)
            sequence.append(self.build(item))
        self._open.pop()
        return sequence


# Tags PyYAML's safe loader builds into sets, ordered maps and pairs, from mappings or
# sequences, through generators: nothing in the API uses them.
_UNBUILT_TAGS = frozenset(f"tag:yaml.org,2002:{name}" for name in
                          ("set", "omap", "pairs", "seq", "map", "binary"))


def _shorten(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


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
    content = read_file(path)
    if content.data is None:
        assert content.issue is not None
        return [], [content.issue], False
    return compose_documents(path, content.data)


def compose_documents(path: str, content: bytes) -> tuple[list[YamlDocument], list[Issue], bool]:
    """`read_documents` for bytes already read from `path`."""
    documents: list[YamlDocument] = []
    issues: list[Issue] = []
    loader = _Loader(content)
    alias_allowance = MAX_ALIAS_NODES  # what aliases may still add to the file
    try:
        while loader.check_node():
            composed_before = loader.nodes
            node = loader.get_node()
            if loader.nodes > MAX_NODES_PER_FILE:  # past the last check inside the document
                _check_node_count(loader.nodes, _line(node) if node is not None else 1, 0)
            builder = _DocumentBuilder(loader, loader.nodes - composed_before, alias_allowance)
            data = builder.build(node) if node is not None else None
            if node is not None:
                alias_allowance = builder.slots_left
                loader.document_end = node.end_mark
            issues += [Issue(path, line, message=message) for line, message in builder.problems]
            line = _line(node) if node is not None else 0
            documents.append(YamlDocument(data, line, tuple(builder.duplicates)))
    except LimitExceeded as error:
        issues.append(Issue(path, error.line, message=error.message))
        return documents, issues, False
    except yaml.MarkedYAMLError as error:
        issues.append(_syntax_issue(path, error))
        return documents, issues, False
    except yaml.reader.ReaderError as error:  # bytes that are not UTF-8, control characters
        issues.append(_reader_issue(path, content, error))
        return documents, issues, False
    except yaml.YAMLError as error:
        issues.append(Issue(path, _error_line(loader), message=f"YAML error: {error}"))
        return documents, issues, False
    except RecursionError:  # the pure-Python composer (no libyaml) recursing
        issues.append(Issue(path, _error_line(loader), message="nested too deeply for the "
                                                               "YAML composer"))
        return documents, issues, False
    finally:
        loader.dispose()
    return documents, issues, True


def _reader_issue(path: str, content: bytes, error: yaml.reader.ReaderError) -> Issue:
    """libyaml gives the byte offset (the pure-Python reader, the character offset: the same
    line for the text before a first bad byte)."""
    offset = max(int(error.position), 0)
    character = error.character
    code = ord(character) if isinstance(character, (str, bytes)) and len(character) == 1 \
        else character
    shown = f"#x{code:04x}" if isinstance(code, int) else repr(character)
    return Issue(path, content.count(b"\n", 0, offset) + 1,
                 message=f"unacceptable character {shown} at byte {offset}: {error.reason}")


def _error_line(loader: _Loader) -> int:
    """The line the parser had reached (1 when it does not say)."""
    mark = getattr(loader, "mark", None) or getattr(loader, "get_mark", lambda: None)()
    return int(mark.line) + 1 if mark is not None else 1
