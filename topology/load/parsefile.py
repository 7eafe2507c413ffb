"""Stage 2: one file's API objects, each read by its kind's parser.

``kind: List`` is unpacked; kinds (and API versions) we do not read are listed as ignored;
duplicate keys found by the YAML reader are attributed to the object they are in.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from topology.load.fields import Fields, Reporter, join_path, type_name
from topology.load.issues import Issue
from topology.load.kinds import KINDS, ParsedObject, raw_identity, read_meta
from topology.load.leanpod import lean_pod
from topology.load.limits import MAX_OBJECTS_PER_FILE
from topology.load.yamlreader import (
    Container,
    Key,
    YamlDocument,
    YamlList,
    YamlMap,
    compose_documents,
    read_documents,
)
from topology.model import Origin


@dataclass(frozen=True)
class ParsedFile:
    """What one file holds: its objects, the objects we ignore, and its own issues."""

    objects: tuple[ParsedObject, ...]
    ignored: tuple[str, ...]  # "Kind/[ns/]name (file:line)"
    issues: tuple[Issue, ...]
    complete: bool  # False when an unreadable part may have hidden objects


def parse_file(path: str) -> ParsedFile:
    return _parsed(path, *read_documents(path))


def parse_content(path: str, content: bytes) -> ParsedFile:
    """`parse_file` for the bytes already read from `path`."""
    return _parsed(path, *compose_documents(path, content))


def _parsed(
    path: str, documents: list[YamlDocument], issues: list[Issue], complete: bool
) -> ParsedFile:
    objects: list[ParsedObject] = []
    ignored: list[str] = []
    count = 0
    for document in documents:
        issues += _duplicate_key_issues(path, document)
        if document.data is None:  # an empty document, e.g. after a trailing "---"
            continue
        for raw in _unpacked(path, document.data, document.line, issues):
            count += 1
            if count > MAX_OBJECTS_PER_FILE:
                issues.append(Issue(path, raw.line, message=f"more than {MAX_OBJECTS_PER_FILE} "
                                                            "objects in the file "
                                                            "(MAX_OBJECTS_PER_FILE)"))
                return ParsedFile(tuple(objects), tuple(ignored), tuple(issues), False)
            parse_object(path, raw, objects, ignored, issues)
    return ParsedFile(tuple(objects), tuple(ignored), tuple(issues), complete)


def _unpacked(path: str, data: Any, line: int, issues: list[Issue]) -> Iterator[YamlMap]:
    """The document's objects, with `kind: List` unpacked (recursively)."""
    if not isinstance(data, YamlMap):
        message = f"a document must be a mapping, not {type_name(data)}"
        issues.append(Issue(path, line, message=message))
        return
    if data.get("kind") != "List":
        yield data
        return
    reporter = Reporter(path, raw_identity(data), issues)
    for item in Fields(reporter, data).mappings("items"):
        yield from _unpacked(path, item.node, item.node.line, issues)


def parse_object(
    path: str, raw: YamlMap, objects: list[ParsedObject], ignored: list[str], issues: list[Issue]
) -> None:
    """One object read by its kind's parser into `objects` (or listed in `ignored`)."""
    if raw.get("kind") == "Pod" and raw.get("apiVersion") == "v1":
        lean = lean_pod(path, raw)
        if lean is not None:
            objects.append(lean)
            return
    reporter = Reporter(path, raw_identity(raw), issues)
    if "apiVersion" not in raw and "kind" not in raw:  # other data kept beside the objects
        ignored.append(f"a document without apiVersion and kind ({path}:{raw.line})")
        return
    fields = Fields(reporter, raw)
    api_version = fields.string("apiVersion", required=True)
    kind = fields.string("kind", required=True)
    if api_version is None or kind is None:
        return
    spec = KINDS.get((api_version, kind))
    if spec is None:
        ignored.append(f"{reporter.identity} ({path}:{raw.line})")
        return
    origin = Origin(path, raw.line)
    meta = read_meta(fields, kind, spec.namespaced, origin)
    if meta is not None:
        value = spec.parse(fields, meta)
        objects.append(
            ParsedObject(kind, reporter.identity, meta.name, meta.namespace, origin, raw, value)
        )


def _duplicate_key_issues(path: str, document: YamlDocument) -> list[Issue]:
    issues = []
    for duplicate in document.duplicates:
        keys = _path_to(document.data, duplicate.mapping) or []
        identity, field_keys = _owner_of(document.data, keys)
        field = join_path([*field_keys, duplicate.key])
        message = f"duplicate key (first at line {duplicate.first_line})"
        issues.append(Issue(path, duplicate.line, identity, field, message))
    return issues


def _path_to(root: Any, target: Container) -> list[Key] | None:
    """The keys leading from `root` to the container `target` (rare: only for duplicates)."""
    stack: list[tuple[Any, list[Key]]] = [(root, [])]
    seen: set[int] = set()
    while stack:
        node, keys = stack.pop()
        if node is target:
            return keys
        if id(node) in seen or not isinstance(node, (YamlMap, YamlList)):
            continue
        seen.add(id(node))
        children = node.items() if isinstance(node, YamlMap) else enumerate(node)
        stack.extend((child, [*keys, key]) for key, child in children)
    return None


def _owner_of(root: Any, keys: list[Key]) -> tuple[str, list[Key]]:
    """The object (inside Lists) that a path points into, and the path within it."""
    node = root
    while (
        isinstance(node, YamlMap)
        and node.get("kind") == "List"
        and len(keys) >= 2
        and keys[0] == "items"
    ):
        node, keys = node["items"][keys[1]], keys[2:]
    return (raw_identity(node) if isinstance(node, YamlMap) else ""), keys
