"""Read cluster topology YAML into a validated `Topology`.

The way through, each stage reporting into one list of `Issue`s:

1. `read_documents`: a file's YAML documents, composed by libyaml and built into `YamlMap` /
   `YamlList`, which remember the line of every mapping, key and list item.  Syntax errors and
   duplicate keys become issues; a syntax error ends that file, the other files are still read.
2. `parse_file`: one `ParsedObject` per API object (``kind: List`` is unpacked), each read by
   its kind's parser into a model object (`topology.model`), checking types, formats and the
   rules that concern one object alone.  Kinds (and API versions) we do not read are listed
   in `Topology.ignored`.  `FileCache` keeps this stage's result per file.
3. `_check_*`: the rules across objects (overlaps, duplicates, references).  Checks for a
   *missing* object are skipped when part of the input could not be read.
4. `topology.master`: the SDN master's VNID allocation and change-network requests; then
   `Topology.warnings` for what 3.11 accepts but ignores or punishes (an ignored
   change-network, an egress IP no node hosts, several EgressNetworkPolicies in a namespace).
5. No issue at all: a `Topology`.  Otherwise `TopologyError` carrying every issue, sorted by
   file and line.  Invalid input never yields a Topology.

Caching: `FileCache` maps a path to its `ParsedFile`, reused while ``(mtime_ns, size)`` is
unchanged.  `load_topology` uses the module-level `DEFAULT_CACHE` unless given another one
(or ``cache=None``), so a file watcher that calls it again after each change re-reads only the
files that changed; the cross-object checks are always re-run.

Defaults and conventions, where the API leaves a choice:

* ``metadata.namespace`` of a namespaced object defaults to ``default`` (as ``oc apply`` does).
* ``metadata.uid`` defaults to a UUID derived from the object's identity (uuid5), so cookies
  derived from UIDs stay stable across loads.
* ``field: null`` counts as an absent field, as Kubernetes' JSON decoding does.
* Annotation and label values must be strings, as in the API (quote ``"3"``).
"""

from __future__ import annotations

import builtins
import hashlib
import json
import operator
import os
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv4Network
from typing import Any, TypeVar, cast

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from topology import master
from topology.gcpause import gc_paused
from topology.model import (
    ANNOTATION_CHANGE_NETWORK,
    ANNOTATION_DATAPATH_ID,
    ANNOTATION_FIXED_VNID_HOST,
    ANNOTATION_INTERFACE,
    ANNOTATION_MULTICAST,
    ANNOTATION_OFPORT,
    GLOBAL_VNID,
    MAX_VNID,
    MIN_VNID,
    TUN0_OFPORT,
    VXLAN_OFPORT,
    ClusterNetwork,
    ClusterNetworkEntry,
    ContainerPort,
    EgressNetworkPolicy,
    EgressRule,
    HostSubnet,
    IngressRule,
    LabelRequirement,
    LabelSelector,
    Namespace,
    NetNamespace,
    NetworkPolicy,
    Origin,
    Plugin,
    Pod,
    PolicyPeer,
    PolicyPort,
    Service,
    ServicePort,
    Topology,
)
from topology.errors import OsdnError

try:
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # libyaml missing: same results from the pure-Python parser, only slower
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

__all__ = [
    "DEFAULT_CACHE",
    "FileCache",
    "Issue",
    "ParsedFile",
    "ParsedObject",
    "TopologyError",
    "YamlList",
    "YamlMap",
    "load_topology",
    "parse_file",
    "read_documents",
]

T = TypeVar("T")
Key = str | int


# ---------------------------------------------------------------------------------------------
# Issues


@dataclass(frozen=True)
class Issue:
    """One problem in the input, located as precisely as we can."""

    file: str
    line: int  # 1-based; 0 when the problem concerns a whole file or path
    object: str = ""  # "Kind/name" or "Kind/namespace/name"; "" for file-level problems
    field: str = ""  # "spec.ports[1].port", "metadata.annotations[osdn.dev/ofport]"
    message: str = ""
    value: builtins.object = None  # the offending scalar, shown after the message; None = not

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        text = ": ".join(part for part in (where, self.object, self.field, self.message) if part)
        return f"{text} ({_show(self.value)})" if self.value is not None else text


def _show(value: object) -> str:
    return json.dumps(value) if isinstance(value, str) else str(value)


class TopologyError(OsdnError):
    """The input is invalid; `issues` lists every problem found, sorted by file and line."""

    def __init__(self, issues: Sequence[Issue]) -> None:
        self.issues: list[Issue] = list(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


# ---------------------------------------------------------------------------------------------
# YAML with lines


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
            return str(super().resolve(kind, value, implicit))  # type: ignore[no-untyped-call]
        tag = self._resolved.get(value)
        if tag is None:
            if value and value[0] not in _IMPLICIT_FIRST_CHARS:
                tag = _STR_TAG
            else:
                tag = str(super().resolve(kind, value, implicit))  # type: ignore[no-untyped-call]
            if len(self._resolved) < _RESOLVED_CACHE_SIZE:
                self._resolved[value] = tag
        return tag

    # The composer calls these around every node (millions of times for a large cluster);
    # they only serve path resolvers.  Without any, they are C built-ins that do nothing
    # useful and return at once (a Python no-op costs a sixth of the composing time).
    if _FAST_RESOLVE and not _BaseLoader.yaml_path_resolvers:
        descend_resolver = staticmethod(operator.is_)  # (node, index) -> ignored bool
        ascend_resolver = staticmethod(tuple)  # () -> ignored ()
    else:  # pragma: no cover - only with path resolvers registered on PyYAML's loader
        def descend_resolver(self, current_node: Any, current_index: Any) -> None:
            if self.yaml_path_resolvers:
                super().descend_resolver(current_node, current_index)

        def ascend_resolver(self) -> None:
            if self.yaml_path_resolvers:
                super().ascend_resolver()


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


# ---------------------------------------------------------------------------------------------
# Reading fields with issues

_TYPE_NAMES: dict[type, str] = {
    str: "a string",
    int: "an integer",
    bool: "a boolean",
    float: "a number",
    YamlMap: "a mapping",
    YamlList: "a list",
    type(None): "null",
}


def _type_name(value: object) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def child_path(path: str, key: Key) -> str:
    """``spec`` + ``ports`` → ``spec.ports``; + 1 → ``spec.ports[1]``; keys with dots or
    slashes (annotations, labels) in brackets: ``metadata.annotations[osdn.dev/ofport]``."""
    if isinstance(key, int) or "." in key or "/" in key:
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


class _Reporter:
    """Where one object's issues go, and the identity they name."""

    __slots__ = ("file", "identity", "issues")

    def __init__(self, file: str, identity: str, issues: list[Issue]) -> None:
        self.file = file
        self.identity = identity
        self.issues = issues


_MISSING: Any = object()


class _Fields:
    """Typed access to one mapping (or list) of an object; each getter reports what is wrong
    with the field at the field's own line and returns None (or a default) instead."""

    __slots__ = ("_key", "_parent", "_reporter", "node")

    def __init__(
        self, reporter: _Reporter, node: Container, parent: _Fields | None = None, key: Key = ""
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
            self.report(key, f"must be {_TYPE_NAMES[want]}, not {_type_name(value)}", shown)
            return None
        return value

    def _child(self, key: Key, node: Container) -> _Fields:
        return _Fields(self._reporter, node, self, key)

    def mapping(self, key: Key, required: bool = False) -> _Fields | None:
        node = self._typed(key, YamlMap, required)
        return None if node is None else self._child(key, node)

    def sequence(self, key: Key, required: bool = False) -> _Fields | None:
        node = self._typed(key, YamlList, required)
        return None if node is None else self._child(key, node)

    def mappings(self, key: Key) -> list[_Fields]:
        """The mapping items of a list field (each non-mapping item is reported)."""
        items = self.sequence(key)
        if items is None:
            return []
        return _present(items.mapping(i, required=True) for i in range(len(items.node)))

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
        return tuple(_present(items.converted(i, convert, True) for i in range(len(items.node))))

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


def _present(values: Iterable[T | None]) -> list[T]:
    """The values that could be read (the others have been reported)."""
    return [value for value in values if value is not None]


# Converters: text → value, or ValueError with the reason.


def parse_ipv4(text: str) -> IPv4Address:
    try:
        return IPv4Address(text)
    except ValueError:
        raise ValueError("invalid IPv4 address") from None


_CIDR_SHAPE = re.compile(r"[0-9.]+/[0-9]{1,2}")


def parse_cidr(text: str) -> IPv4Network:
    """A canonical IPv4 CIDR: host bits set is an error, as in openshift's ParseCIDRMask."""
    if not _CIDR_SHAPE.fullmatch(text):
        raise ValueError("invalid IPv4 CIDR")
    try:
        return IPv4Network(text)
    except ValueError:
        pass
    try:
        network = IPv4Network(text, strict=False)
    except ValueError:
        raise ValueError("invalid IPv4 CIDR") from None
    raise ValueError(f"host bits set; did you mean {network}?")


def _integer_text(text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise ValueError("must be an integer") from None


def _vnid_problem(vnid: int) -> str | None:
    if vnid == GLOBAL_VNID or MIN_VNID <= vnid <= MAX_VNID:
        return None
    return f"VNID must be 0 (global) or between {MIN_VNID} and {MAX_VNID}"


def _between(low: int, high: int, why: str = "") -> Callable[[int], str | None]:
    message = f"must be between {low} and {high}" + (f" ({why})" if why else "")
    return lambda value: None if low <= value <= high else message


_PORT_RANGE = _between(1, 65535)
_OFPORT_MAX = 0xFEFF
_RESERVED_OFPORTS = {VXLAN_OFPORT: "vxlan0", TUN0_OFPORT: "tun0"}
_IFNAMSIZ = 16  # Linux: names are at most 15 bytes plus the NUL


def _vnid_text(text: str) -> int:
    vnid = _integer_text(text)
    if (problem := _vnid_problem(vnid)) is not None:
        raise ValueError(problem)
    return vnid


def _ofport_text(text: str) -> int:
    ofport = _integer_text(text)
    if ofport in _RESERVED_OFPORTS:
        raise ValueError(f"ofport {ofport} is {_RESERVED_OFPORTS[ofport]}'s")
    if not 1 <= ofport <= _OFPORT_MAX:
        raise ValueError(f"must be between 1 and {_OFPORT_MAX} (OVS's ofport range)")
    return ofport


def _interface_text(text: str) -> str:
    if len(text.encode()) >= _IFNAMSIZ:
        raise ValueError(f"interface names are at most {_IFNAMSIZ - 1} characters")
    if any(c in "/:" or c.isspace() for c in text) or text in (".", ".."):
        raise ValueError("an interface name must not contain '/', ':' or whitespace")
    return text


def _datapath_id_text(text: str) -> int:
    try:
        dpid = int(text, 16)
    except ValueError:
        raise ValueError("must be a hexadecimal datapath id") from None
    if not 1 <= dpid <= (1 << 64) - 1:
        raise ValueError("must be between 0x1 and 0xffffffffffffffff")
    return dpid


def _timestamp_text(text: str) -> datetime:
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("must be an RFC 3339 timestamp") from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _one_of(*allowed: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        if text not in allowed:
            raise ValueError(f"must be {' or '.join(allowed)}")
        return text

    return check


_PROTOCOL = _one_of("TCP", "UDP", "SCTP")
# Kubernetes' IsDNS1123Subdomain, as 3.11 applies it to EgressNetworkPolicy dnsName.
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def _dns_name_text(text: str) -> str:
    if len(text) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(text):
        raise ValueError("must conform to DNS 952 subdomain conventions")
    return text


# ---------------------------------------------------------------------------------------------
# Objects


@dataclass(frozen=True)
class ClusterNetworkDraft:
    """A ClusterNetwork before its plugin is settled (`load_topology` may override it)."""

    name: str
    uid: str
    networks: tuple[ClusterNetworkEntry, ...]
    service_network: IPv4Network
    plugin_name: str | None
    vxlan_port: int
    mtu: int
    origin: Origin


@dataclass(frozen=True)
class NetNamespaceDraft:
    """A NetNamespace before the master's work: `netid` may be unset."""

    name: str
    uid: str
    netid: int | None
    egress_ips: tuple[IPv4Address, ...]
    multicast_enabled: bool
    change_network: str | None
    created: datetime | None
    origin: Origin


class _Skipped:
    """The value of a valid object that has no part in the pipeline (a pod without a br0 port)."""


SKIPPED = _Skipped()


@dataclass(frozen=True)
class ParsedObject:
    """One API object as read from its file.

    `value` is the model object (or a draft), built from the fields that could be read; it is
    None only when a field the cross-object checks need could not be read.  Either way, the
    object's problems are already in the file's issues.
    """

    kind: str
    identity: str  # "Kind/name" or "Kind/namespace/name"
    name: str
    namespace: str  # "" for cluster-scoped kinds
    origin: Origin
    raw: YamlMap
    value: Any


@dataclass(frozen=True)
class _Meta:
    name: str
    namespace: str
    uid: str
    labels: tuple[tuple[str, str], ...]
    annotations: _Fields | None
    fields: _Fields
    origin: Origin

    def annotation(self, key: str, convert: Callable[[str], T]) -> T | None:
        return None if self.annotations is None else self.annotations.converted(key, convert)


def _read_meta(obj: _Fields, kind: str, namespaced: bool, origin: Origin) -> _Meta | None:
    meta = obj.mapping("metadata", required=True)
    if meta is None:
        return None
    name = meta.string("name", required=True)
    namespace = (meta.string("namespace") or "default") if namespaced else ""
    labels = meta.string_map("labels")
    annotations = meta.mapping("annotations")
    uid = meta.string("uid")
    if name is None:
        return None
    if uid is None:  # stable across loads, so that UID-derived cookies are too
        uid = derived_uid(_identity(kind, namespace, name))
    return _Meta(name, namespace, uid, labels, annotations, meta, origin)


def derived_uid(identity: str) -> str:
    """``str(uuid.uuid5(uuid.NAMESPACE_URL, identity))``, computed without building UUID
    objects (three times faster, which counts for 100,000 pods)."""
    digest = bytearray(hashlib.sha1(_UUID_URL_NAMESPACE + identity.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


_UUID_URL_NAMESPACE = uuid.NAMESPACE_URL.bytes


def _identity(kind: str, namespace: str, name: str | None) -> str:
    if not name:
        return kind
    return f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}"


# Per-kind parsers: (object's fields, metadata) → model value, SKIPPED, or None.


def _parse_cluster_network(obj: _Fields, meta: _Meta) -> ClusterNetworkDraft | None:
    if meta.name != "default":
        message = 'the SDN reads only the ClusterNetwork named "default"'
        meta.fields.report("name", message, meta.name)
    networks = _cluster_network_entries(obj)
    service_network = obj.cidr("serviceNetwork", required=True)
    for entry in networks:
        if service_network is not None and service_network.overlaps(entry.cidr):
            message = f"overlaps the cluster network {entry.cidr}"
            obj.report("serviceNetwork", message, str(service_network))
    plugin_name = obj.string("pluginName")
    vxlan_port = obj.integer("vxlanPort", check=_PORT_RANGE)
    mtu = obj.integer("mtu", check=_mtu_problem)
    if service_network is None or not networks:
        return None
    return ClusterNetworkDraft(
        meta.name, meta.uid, networks, service_network, plugin_name,
        4789 if vxlan_port is None else vxlan_port, 1450 if mtu is None else mtu, meta.origin,
    )  # fmt: skip


def _mtu_problem(mtu: int) -> str | None:
    if mtu < 576:
        return "must be at least 576, the datagram size every IPv4 host must accept (RFC 791)"
    if mtu > 9000:
        return "must be at most 9000, the largest jumbo frame common NICs carry"
    return None


def _cluster_network_entries(obj: _Fields) -> tuple[ClusterNetworkEntry, ...]:
    if not obj.has("clusterNetworks"):
        return _legacy_cluster_network(obj)
    entries: list[ClusterNetworkEntry] = []
    for item in obj.mappings("clusterNetworks"):
        entry = _cluster_network_entry(item, "CIDR", "hostSubnetLength")
        if entry is None:
            continue
        for earlier in entries:
            if entry.cidr.overlaps(earlier.cidr):
                message = f"overlaps the cluster network {earlier.cidr}"
                item.report("CIDR", message, str(entry.cidr))
        entries.append(entry)
    _check_legacy_matches_first(obj, entries)
    return tuple(entries)


def _legacy_cluster_network(obj: _Fields) -> tuple[ClusterNetworkEntry, ...]:
    if not obj.has("network"):
        obj.report("clusterNetworks", "required (or the legacy network and hostsubnetlength)")
        return ()
    entry = _cluster_network_entry(obj, "network", "hostsubnetlength")
    return () if entry is None else (entry,)


def _cluster_network_entry(
    fields: _Fields, cidr_key: str, length_key: str
) -> ClusterNetworkEntry | None:
    cidr = fields.cidr(cidr_key, required=True)
    length = fields.integer(length_key, required=True)
    if cidr is None or length is None:
        return None
    longest = 32 - cidr.prefixlen
    if not 2 <= length <= longest:
        message = f"must be between 2 and {longest} for a /{cidr.prefixlen} network"
        fields.report(length_key, message, length)
        return None
    return ClusterNetworkEntry(cidr, length)


def _check_legacy_matches_first(obj: _Fields, entries: list[ClusterNetworkEntry]) -> None:
    """3.11 keeps the legacy fields as a copy of clusterNetworks[0]; if set they must agree."""
    if not entries:
        return
    first = entries[0]
    network = obj.cidr("network")
    if network is not None and network != first.cidr:
        obj.report("network", f"must equal clusterNetworks[0].CIDR ({first.cidr})", str(network))
    length = obj.integer("hostsubnetlength")
    if length is not None and length != first.host_subnet_length:
        message = f"must equal clusterNetworks[0].hostSubnetLength ({first.host_subnet_length})"
        obj.report("hostsubnetlength", message, length)


def _parse_host_subnet(obj: _Fields, meta: _Meta) -> HostSubnet | None:
    host = obj.string("host", required=True)
    if host is not None and host != meta.name:
        obj.report("host", f'must be the same as metadata.name: "{meta.name}"', host)
    host_ip = obj.ip("hostIP", required=True)
    subnet = obj.cidr("subnet", required=True)
    egress_ips = obj.converted_list("egressIPs", parse_ipv4)
    egress_cidrs = obj.converted_list("egressCIDRs", parse_cidr)
    datapath_id = meta.annotation(ANNOTATION_DATAPATH_ID, _datapath_id_text)
    fixed_vnid = meta.annotation(ANNOTATION_FIXED_VNID_HOST, _vnid_text)
    if host is None or host_ip is None or subnet is None:
        return None
    return HostSubnet(
        meta.name, meta.uid, host, host_ip, subnet,
        int(host_ip) if datapath_id is None else datapath_id,
        egress_ips, egress_cidrs, fixed_vnid, meta.origin,
    )  # fmt: skip


def _parse_net_namespace(obj: _Fields, meta: _Meta) -> NetNamespaceDraft | None:
    netname = obj.string("netname", required=True)
    if netname is not None and netname != meta.name:
        obj.report("netname", f'must be the same as metadata.name: "{meta.name}"', netname)
    netid = obj.integer("netid", check=_vnid_problem)
    egress_ips = obj.converted_list("egressIPs", parse_ipv4)
    multicast = meta.annotation(ANNOTATION_MULTICAST, str) == "true"  # 3.11 compares to "true"
    change_network = meta.annotation(ANNOTATION_CHANGE_NETWORK, str)
    created = meta.fields.converted("creationTimestamp", _timestamp_text)
    if netid is None and obj.has("netid"):
        return None
    return NetNamespaceDraft(
        meta.name, meta.uid, netid, egress_ips, multicast, change_network, created, meta.origin
    )


def _parse_namespace(obj: _Fields, meta: _Meta) -> Namespace:
    return Namespace(meta.name, meta.labels, meta.origin)


def _parse_pod(obj: _Fields, meta: _Meta) -> Pod | _Skipped | None:
    spec = obj.mapping("spec", required=True)
    status = obj.mapping("status")
    if spec is None:
        return None
    # Host-network pods and pods without an IP (not running yet) have no port on br0.
    if spec.boolean("hostNetwork") or status is None or not status.has("podIP"):
        return SKIPPED
    node = spec.string("nodeName", required=True)
    ip = status.ip("podIP")
    interface = meta.annotation(ANNOTATION_INTERFACE, _interface_text)
    ofport = meta.annotation(ANNOTATION_OFPORT, _ofport_text)
    if node is None or ip is None:
        return None
    ports = tuple(_present(_container_port(port) for container in spec.mappings("containers")
                           for port in container.mappings("ports")))
    return Pod(meta.namespace, meta.name, meta.uid, node, ip, meta.labels, interface, ofport,
               meta.origin, ports)


def _container_port(port: _Fields) -> ContainerPort | None:
    """A named container port (unnamed ones cannot be a Service's targetPort)."""
    number = port.integer("containerPort", required=True, check=_PORT_RANGE)
    protocol = _protocol(port)
    name = port.string("name")
    if number is None or protocol is None or not name:
        return None
    return ContainerPort(name, number, protocol)


def _parse_service(obj: _Fields, meta: _Meta) -> Service | None:
    spec = obj.mapping("spec", required=True)
    if spec is None:
        return None
    headless = spec.string("clusterIP") in (None, "None")  # also ExternalName services
    cluster_ip = None if headless else spec.ip("clusterIP")
    if cluster_ip is None and not headless:
        return None
    ports = tuple(_present(_service_port(port) for port in spec.mappings("ports")))
    selector = spec.string_map("selector")
    return Service(meta.namespace, meta.name, meta.uid, cluster_ip, ports, selector, meta.origin)


def _service_port(port: _Fields) -> ServicePort | None:
    protocol = _protocol(port)
    number = port.integer("port", required=True, check=_PORT_RANGE)
    name = port.string("name") or ""
    target = _target_port(port)
    if number is None or protocol is None or target is _BAD:
        return None
    return ServicePort(protocol, number, name, None if target == number else target)


_BAD: Any = object()
# Kubernetes' IsValidPortName (IANA_SVC_NAME): at most 15 characters of a-z, 0-9 and '-',
# at least one letter, no '-' at either end and no "--".
_PORT_NAME = re.compile(r"(?!.*--)[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def _target_port(port: _Fields) -> int | str | None:
    """`targetPort`: a port number or a container port's name; None when absent."""
    raw = port.node.get("targetPort") if isinstance(port.node, YamlMap) else None
    if isinstance(raw, str) and raw != "":
        if len(raw) > 15 or not _PORT_NAME.fullmatch(raw) or not any(c.isalpha() for c in raw):
            port.report("targetPort", "must be a port number or an IANA_SVC_NAME", raw)
            return _BAD
        return raw
    if not port.has("targetPort"):
        return None
    number = port.integer("targetPort", check=_PORT_RANGE)
    return _BAD if number is None else number


def _protocol(fields: _Fields) -> str | None:
    """`protocol`, TCP by default; None if it is given but not TCP, UDP or SCTP."""
    return fields.converted("protocol", _PROTOCOL) if fields.has("protocol") else "TCP"


def _parse_network_policy(obj: _Fields, meta: _Meta) -> NetworkPolicy | None:
    spec = obj.mapping("spec", required=True)
    if spec is None:
        return None
    pod_selector = _label_selector(spec.mapping("podSelector", required=True))
    ingress = tuple(_present(_ingress_rule(rule) for rule in spec.mappings("ingress")))
    policy_types = _policy_types(spec)
    if pod_selector is None:
        return None
    return NetworkPolicy(
        meta.namespace, meta.name, meta.uid, pod_selector, ingress, policy_types, meta.origin
    )


def _policy_types(spec: _Fields) -> tuple[str, ...]:
    """As given, or Kubernetes' default: Ingress, plus Egress when egress rules are present."""
    if spec.has("policyTypes"):
        return spec.converted_list("policyTypes", _one_of("Ingress", "Egress"))
    egress = spec.sequence("egress")
    return ("Ingress", "Egress") if egress is not None and egress.node else ("Ingress",)


def _label_selector(fields: _Fields | None) -> LabelSelector | None:
    if fields is None:
        return None
    expressions = fields.mappings("matchExpressions")
    requirements = tuple(_present(_label_requirement(item) for item in expressions))
    return LabelSelector(fields.string_map("matchLabels"), requirements)


_OPERATORS = _one_of("In", "NotIn", "Exists", "DoesNotExist")


def _label_requirement(fields: _Fields) -> LabelRequirement | None:
    key = fields.string("key", required=True)
    operator = fields.converted("operator", _OPERATORS, required=True)
    values = fields.converted_list("values", str)
    if operator in ("In", "NotIn") and not values:
        fields.report("values", f"must be non-empty for operator {operator}")
    elif operator in ("Exists", "DoesNotExist") and values:
        fields.report("values", f"must be empty for operator {operator}")
    elif key is not None and operator is not None:
        return LabelRequirement(key, operator, values)
    return None


def _ingress_rule(rule: _Fields) -> IngressRule:
    ports = _present(_policy_port(port) for port in rule.mappings("ports"))
    peers = _present(_policy_peer(peer) for peer in rule.mappings("from"))
    return IngressRule(tuple(ports), tuple(peers))


def _policy_port(port: _Fields) -> PolicyPort | None:
    protocol = _protocol(port)
    number: int | str | None = port.node.get("port") if isinstance(port.node, YamlMap) else None
    if not isinstance(number, str):  # a string is a named port: a containerPort's name
        number = port.integer("port", check=_PORT_RANGE)
    return None if protocol is None else PolicyPort(protocol, number or None)


_SELECTORS = ("podSelector", "namespaceSelector")


def _policy_peer(peer: _Fields) -> PolicyPeer | None:
    has_selector = any(peer.has(key) for key in _SELECTORS)
    if peer.has("ipBlock") and has_selector:
        peer.report("ipBlock", "cannot be combined with podSelector or namespaceSelector")
        return None
    if not peer.has("ipBlock") and not has_selector:
        peer.report(None, "must specify podSelector, namespaceSelector or ipBlock")
        return None
    ip_block = peer.mapping("ipBlock")
    cidr = ip_block.cidr("cidr", required=True) if ip_block is not None else None
    return PolicyPeer(
        _label_selector(peer.mapping("podSelector")),
        _label_selector(peer.mapping("namespaceSelector")),
        None if cidr is None else str(cidr),
    )


_MAX_EGRESS_RULES = 50  # networkapi.EgressNetworkPolicyMaxRules


def _parse_egress_network_policy(obj: _Fields, meta: _Meta) -> EgressNetworkPolicy | None:
    spec = obj.mapping("spec", required=True)
    if spec is None:
        return None
    rules = tuple(_present(_egress_rule(rule) for rule in spec.mappings("egress")))
    egress = spec.sequence("egress")
    if egress is not None and len(egress.node) > _MAX_EGRESS_RULES:
        message = f"too many egress rules (max {_MAX_EGRESS_RULES})"
        spec.report("egress", message, len(egress.node))
    return EgressNetworkPolicy(meta.namespace, meta.name, meta.uid, rules, meta.origin)


def _egress_rule(rule: _Fields) -> EgressRule | None:
    action = rule.converted("type", _one_of("Allow", "Deny"), required=True)
    to = rule.mapping("to", required=True)
    if to is None:
        return None
    if to.has("cidrSelector") and to.has("dnsName"):
        rule.report("to", "either specify cidrSelector or dnsName but not both")
        return None
    if not to.has("cidrSelector") and not to.has("dnsName"):
        rule.report("to", "must specify cidrSelector or dnsName")
        return None
    cidr = to.cidr("cidrSelector")
    dns_name = to.converted("dnsName", _dns_name_text)
    if action is None or (cidr is None and dns_name is None):
        return None
    return EgressRule(action, cidr, dns_name)


@dataclass(frozen=True)
class _KindSpec:
    namespaced: bool
    parse: Callable[[_Fields, _Meta], Any]


_OPENSHIFT_NETWORK = "network.openshift.io/v1"
_KINDS: dict[tuple[str, str], _KindSpec] = {
    (_OPENSHIFT_NETWORK, "ClusterNetwork"): _KindSpec(False, _parse_cluster_network),
    (_OPENSHIFT_NETWORK, "HostSubnet"): _KindSpec(False, _parse_host_subnet),
    (_OPENSHIFT_NETWORK, "NetNamespace"): _KindSpec(False, _parse_net_namespace),
    (_OPENSHIFT_NETWORK, "EgressNetworkPolicy"): _KindSpec(True, _parse_egress_network_policy),
    ("v1", "Namespace"): _KindSpec(False, _parse_namespace),
    ("v1", "Pod"): _KindSpec(True, _parse_pod),
    ("v1", "Service"): _KindSpec(True, _parse_service),
    ("networking.k8s.io/v1", "NetworkPolicy"): _KindSpec(True, _parse_network_policy),
}


# ---------------------------------------------------------------------------------------------
# Files


@dataclass(frozen=True)
class ParsedFile:
    """What one file holds: its objects, the objects we ignore, and its own issues."""

    objects: tuple[ParsedObject, ...]
    ignored: tuple[str, ...]  # "Kind/[ns/]name (file:line)"
    issues: tuple[Issue, ...]
    complete: bool  # False when an unreadable part may have hidden objects


def parse_file(path: str) -> ParsedFile:
    documents, issues, complete = read_documents(path)
    objects: list[ParsedObject] = []
    ignored: list[str] = []
    for document in documents:
        issues += _duplicate_key_issues(path, document)
        if document.data is None:  # an empty document, e.g. after a trailing "---"
            continue
        for raw in _unpacked(path, document.data, document.line, issues):
            _parse_object(path, raw, objects, ignored, issues)
    return ParsedFile(tuple(objects), tuple(ignored), tuple(issues), complete)


def _unpacked(path: str, data: Any, line: int, issues: list[Issue]) -> Iterator[YamlMap]:
    """The document's objects, with `kind: List` unpacked (recursively)."""
    if not isinstance(data, YamlMap):
        message = f"a document must be a mapping, not {_type_name(data)}"
        issues.append(Issue(path, line, message=message))
        return
    if data.get("kind") != "List":
        yield data
        return
    reporter = _Reporter(path, _raw_identity(data), issues)
    for item in _Fields(reporter, data).mappings("items"):
        yield from _unpacked(path, item.node, item.node.line, issues)


def _parse_object(
    path: str, raw: YamlMap, objects: list[ParsedObject], ignored: list[str], issues: list[Issue]
) -> None:
    if raw.get("kind") == "Pod" and raw.get("apiVersion") == "v1":
        lean = _lean_pod(path, raw)
        if lean is not None:
            objects.append(lean)
            return
    reporter = _Reporter(path, _raw_identity(raw), issues)
    if "apiVersion" not in raw and "kind" not in raw:  # other data kept beside the objects
        ignored.append(f"a document without apiVersion and kind ({path}:{raw.line})")
        return
    fields = _Fields(reporter, raw)
    api_version = fields.string("apiVersion", required=True)
    kind = fields.string("kind", required=True)
    if api_version is None or kind is None:
        return
    spec = _KINDS.get((api_version, kind))
    if spec is None:
        ignored.append(f"{reporter.identity} ({path}:{raw.line})")
        return
    origin = Origin(path, raw.line)
    meta = _read_meta(fields, kind, spec.namespaced, origin)
    if meta is not None:
        value = spec.parse(fields, meta)
        objects.append(
            ParsedObject(kind, reporter.identity, meta.name, meta.namespace, origin, raw, value)
        )


def _lean_pod(path: str, raw: YamlMap) -> ParsedObject | None:
    """A Pod read straight from its mapping: what `_parse_object` would make of it, when
    every field it reads is present with its type (the case of all the 100,000 pods of a big
    cluster), in a fraction of the time.  None, for anything else (a field of another type,
    a value that does not convert): the general path then reads the pod and reports on it.
    tests/unit/test_load.py compares both paths."""
    meta = raw.get("metadata")
    if type(meta) is not YamlMap:
        return None
    name, namespace, uid = meta.get("name"), meta.get("namespace"), meta.get("uid")
    if type(name) is not str or not name:
        return None
    if namespace is None or namespace == "":
        namespace = "default"
    elif type(namespace) is not str:
        return None
    if uid is None or uid == "":
        uid = derived_uid(f"Pod/{namespace}/{name}")
    elif type(uid) is not str:
        return None
    labels = meta.get("labels")
    if labels is None or labels == "":
        label_pairs: tuple[tuple[str, str], ...] = ()
    elif type(labels) is YamlMap and all(type(v) is str for v in labels.values()):
        label_pairs = tuple(sorted(labels.items()))
    else:
        return None
    annotations = meta.get("annotations")
    if annotations == "":
        annotations = None
    if annotations is not None and type(annotations) is not YamlMap:
        return None
    spec, status = raw.get("spec"), raw.get("status")
    if type(spec) is not YamlMap or (status is not None and status != ""
                                     and type(status) is not YamlMap):
        return None
    host_network = spec.get("hostNetwork")
    if host_network is not None and host_network != "" and type(host_network) is not bool:
        return None
    origin = Origin(path, raw.line)
    pod_ip = status.get("podIP") if type(status) is YamlMap else None
    if host_network is True or pod_ip is None or pod_ip == "":
        value: Any = SKIPPED  # no port on br0 (as _parse_pod decides)
    else:
        node = spec.get("nodeName")
        if type(node) is not str or not node or type(pod_ip) is not str:
            return None
        try:
            ip = IPv4Address(pod_ip)
            interface = ofport = None
            if annotations is not None:
                text = annotations.get(ANNOTATION_INTERFACE)
                if text is not None and text != "":
                    interface = _interface_text(text) if type(text) is str else _no(text)
                text = annotations.get(ANNOTATION_OFPORT)
                if text is not None and text != "":
                    ofport = _ofport_text(text) if type(text) is str else _no(text)
            ports = _lean_container_ports(spec)
        except ValueError:
            return None
        value = Pod(namespace, name, uid, node, ip, label_pairs, interface, ofport, origin,
                    ports)
    return ParsedObject("Pod", f"Pod/{namespace}/{name}", name, namespace, origin, raw, value)


def _lean_container_ports(spec: YamlMap) -> tuple[ContainerPort, ...]:
    """`_parse_pod`'s named container ports; ValueError where it would report an issue."""
    containers = spec.get("containers")
    if containers is None or containers == "":
        return ()
    if type(containers) is not YamlList:
        raise ValueError("containers")
    ports = []
    for container in containers:
        if type(container) is not YamlMap:
            raise ValueError("container")
        items = container.get("ports")
        if items is None or items == "":
            continue
        if type(items) is not YamlList:
            raise ValueError("ports")
        for port in items:
            if type(port) is not YamlMap:
                raise ValueError("port")
            number, protocol, name = port.get("containerPort"), port.get("protocol"), \
                port.get("name")
            if type(number) is not int or not 1 <= number <= 65535:
                raise ValueError("containerPort")
            if protocol is None or protocol == "":
                protocol = "TCP"
            elif protocol not in ("TCP", "UDP", "SCTP") or type(protocol) is not str:
                raise ValueError("protocol")
            if name is None or name == "":
                continue  # unnamed: no Service can name it
            if type(name) is not str:
                raise ValueError("name")
            ports.append(ContainerPort(name, number, protocol))
    return tuple(ports)


def _no(value: object) -> Any:
    raise ValueError(f"not a string: {value!r}")


def _raw_identity(raw: YamlMap) -> str:
    """The identity as written, before validation: it names the object in issues."""
    kind = _text(raw.get("kind")) or "object"
    meta = raw.get("metadata")
    name = _text(meta.get("name")) if isinstance(meta, YamlMap) else ""
    namespace = _text(meta.get("namespace")) if isinstance(meta, YamlMap) else ""
    spec = _KINDS.get((_text(raw.get("apiVersion")), kind))
    if spec is not None:
        namespace = (namespace or "default") if spec.namespaced else ""
    return _identity(kind, namespace, name)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _duplicate_key_issues(path: str, document: YamlDocument) -> list[Issue]:
    issues = []
    for duplicate in document.duplicates:
        keys = _path_to(document.data, duplicate.mapping) or []
        identity, field_keys = _owner_of(document.data, keys)
        field = _join_path([*field_keys, duplicate.key])
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
    return (_raw_identity(node) if isinstance(node, YamlMap) else ""), keys


def _join_path(keys: Iterable[Key]) -> str:
    path = ""
    for key in keys:
        path = child_path(path, key)
    return path


class FileCache:
    """Parsed files, each reused while its ``(mtime_ns, size)`` is unchanged.

    Keyed by the path as given (name a file the same way each time).  The file is stat'ed
    *before* it is read: if it changes while being read, the next call sees a new key and
    reads it again.  Entries of files no longer loaded stay until `forget` or `clear`.
    Cached values are shared: nothing downstream may mutate them.  Not thread-safe.
    """

    def __init__(self) -> None:
        self._entries: dict[str, tuple[tuple[int, int], ParsedFile]] = {}

    def parsed(self, path: str) -> ParsedFile:
        try:
            status = os.stat(path)
        except OSError:
            return parse_file(path)  # reports the error; nothing worth caching
        key = (status.st_mtime_ns, status.st_size)
        entry = self._entries.get(path)
        if entry is not None and entry[0] == key:
            return entry[1]
        parsed = parse_file(path)
        self._entries[path] = (key, parsed)
        return parsed

    def forget(self, path: str) -> None:
        self._entries.pop(path, None)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


DEFAULT_CACHE = FileCache()


def _expand_paths(paths: Sequence[str | os.PathLike[str]], issues: list[Issue]) -> list[str]:
    """Files as given; directories as their *.yaml/*.yml files, recursively, sorted."""
    files: list[str] = []
    for given in paths:
        path = os.fspath(given)
        if os.path.isdir(path):
            files += sorted(
                os.path.join(directory, name)
                for directory, _, names in os.walk(path)
                for name in names
                if name.endswith((".yaml", ".yml"))
            )
        elif os.path.exists(path):
            files.append(path)
        else:
            issues.append(Issue(path, 0, message="no such file or directory"))
    return files


# ---------------------------------------------------------------------------------------------
# Checks across objects

Entry = tuple[Hashable, ParsedObject, tuple[Key, ...]]  # (value, object, path to the field)
_ANNOTATIONS: tuple[Key, ...] = ("metadata", "annotations")


class _Checks:
    """The cross-object stage: where its issues go, and whether the input was read whole."""

    def __init__(self, issues: list[Issue], complete: bool) -> None:
        self.issues = issues
        # When part of the input could not be read, a "missing" object may just be unread:
        # checks for absent objects are skipped rather than reported wrongly.
        self.complete = complete

    def report(
        self, obj: ParsedObject, keys: Sequence[Key], message: str, value: object = None
    ) -> None:
        self.issues.append(self.issue(obj, keys, message, value))

    @staticmethod
    def issue(obj: ParsedObject, keys: Sequence[Key], message: str, value: object = None) -> Issue:
        line = _line_at(obj.raw, keys)
        return Issue(obj.origin.file, line, obj.identity, _join_path(keys), message, value)

    @staticmethod
    def where(obj: ParsedObject, keys: Sequence[Key]) -> str:
        return f"{obj.identity} ({obj.origin.file}:{_line_at(obj.raw, keys)})"

    def duplicates(self, entries: Iterable[Entry], shown: Callable[[Any], object] = str) -> None:
        """Report every entry whose value an earlier entry already has."""
        first: dict[Hashable, tuple[ParsedObject, tuple[Key, ...]]] = {}
        for value, obj, keys in entries:
            earlier = first.setdefault(value, (obj, keys))
            if earlier[0] is not obj or earlier[1] != keys:
                self.report(obj, keys, f"already used by {self.where(*earlier)}", shown(value))


def _line_at(raw: YamlMap, keys: Sequence[Key]) -> int:
    """The line of the field at `keys`, or of its closest written ancestor."""
    node: Container = raw
    for key in keys[:-1]:
        if isinstance(node, YamlMap):
            child = node.get(key) if isinstance(key, str) else None
        else:
            child = node[key] if isinstance(key, int) and 0 <= key < len(node) else None
        if not isinstance(child, (YamlMap, YamlList)):
            return node.line_of(key)
        node = child
    return node.line_of(keys[-1]) if keys else raw.line


def _unique_objects(files: Sequence[ParsedFile], checks: _Checks) -> list[ParsedObject]:
    """All objects, without the repeats of an identity (each repeat is an error)."""
    first: dict[str, ParsedObject] = {}
    for parsed in files:
        for obj in parsed.objects:
            earlier = first.setdefault(obj.identity, obj)
            if earlier is not obj:
                checks.report(obj, (), f"duplicate object (first at {earlier.origin})")
    return list(first.values())


class _Objects:
    """The unique objects by kind."""

    def __init__(self, objects: list[ParsedObject]) -> None:
        self.all = objects
        self._by_kind: dict[str, list[ParsedObject]] = defaultdict(list)
        self._usable: dict[str, list[ParsedObject]] = {}
        for obj in objects:
            self._by_kind[obj.kind].append(obj)

    def of(self, kind: str) -> list[ParsedObject]:
        """Every object of the kind, whether or not it could be read."""
        return self._by_kind[kind]

    def usable(self, kind: str) -> list[ParsedObject]:
        """The objects of the kind that were read into a value (a shared list: read only)."""
        found = self._usable.get(kind)
        if found is None:
            found = self._usable[kind] = [
                obj for obj in self._by_kind[kind]
                if obj.value is not None and obj.value is not SKIPPED
            ]
        return found

    def names(self, kind: str) -> set[str]:
        return {obj.name for obj in self._by_kind[kind]}


_PLUGIN_NAMES = ", ".join(plugin.value for plugin in Plugin)


def _cluster_network(
    objects: _Objects, override: Plugin | None, checks: _Checks
) -> ClusterNetwork | None:
    found = objects.of("ClusterNetwork")
    if not found:
        if checks.complete:
            checks.issues.append(Issue("", 0, message="no ClusterNetwork (exactly one is needed)"))
        return None
    for extra in found[1:]:
        message = f"a second ClusterNetwork (first at {found[0].origin}); exactly one is allowed"
        checks.report(extra, (), message)
    draft: ClusterNetworkDraft | None = found[0].value
    plugin = override or _plugin(found[0], checks)
    if draft is None or plugin is None:
        return None
    return ClusterNetwork(
        draft.name, draft.uid, draft.networks, draft.service_network, plugin,
        draft.vxlan_port, draft.mtu, draft.origin,
    )  # fmt: skip


def _plugin(obj: ParsedObject, checks: _Checks) -> Plugin | None:
    name = obj.raw.get("pluginName")
    if name in (None, ""):
        checks.report(obj, ("pluginName",), f"required: one of {_PLUGIN_NAMES}")
        return None
    try:
        return Plugin(name)
    except ValueError:  # includes a value of the wrong type, reported already
        if isinstance(name, str):
            message = f"unknown plugin; must be one of {_PLUGIN_NAMES}"
            checks.report(obj, ("pluginName",), message, name)
        return None


def _check_host_subnets(
    subnets: list[ParsedObject], network: ClusterNetwork | None, checks: _Checks
) -> None:
    checks.duplicates((obj.value.host_ip, obj, ("hostIP",)) for obj in subnets)
    checks.duplicates((obj.value.host, obj, ("host",)) for obj in subnets)
    checks.duplicates(_datapath_ids(subnets), shown=lambda dpid: f"0x{dpid:016x}")
    checks.duplicates(
        (ip, obj, ("egressIPs", index))
        for obj in subnets
        for index, ip in enumerate(obj.value.egress_ips)
    )
    _check_subnet_overlaps(subnets, checks)
    if network is not None:
        for obj in subnets:
            _check_subnet_in_cluster_network(obj, network, checks)


def _datapath_ids(subnets: list[ParsedObject]) -> Iterator[Entry]:
    """Each node's datapath id, at its annotation or else at the hostIP it derives from.  A
    derived id that repeats an earlier hostIP is left out: the hostIP is reported already."""
    host_ips: set[IPv4Address] = set()
    for obj in subnets:
        annotations = obj.raw["metadata"].get("annotations")
        if isinstance(annotations, YamlMap) and ANNOTATION_DATAPATH_ID in annotations:
            yield obj.value.datapath_id, obj, (*_ANNOTATIONS, ANNOTATION_DATAPATH_ID)
        elif obj.value.host_ip not in host_ips:
            yield obj.value.datapath_id, obj, ("hostIP",)
        host_ips.add(obj.value.host_ip)


def _check_subnet_overlaps(subnets: list[ParsedObject], checks: _Checks) -> None:
    """Sort by address and sweep: O(n log n) for clusters of thousands of nodes.  Each
    overlap is reported on the subnet that comes later in the input."""
    position = {id(obj): index for index, obj in enumerate(subnets)}
    widest: ParsedObject | None = None  # the subnet reaching furthest so far
    by_address = sorted(subnets, key=lambda obj: obj.value.subnet)
    for obj in by_address:
        subnet: IPv4Network = obj.value.subnet
        if widest is not None and subnet.network_address <= widest.value.subnet.broadcast_address:
            later, earlier = sorted((obj, widest), key=lambda o: position[id(o)], reverse=True)
            message = f"overlaps {earlier.value.subnet} of {checks.where(earlier, ('subnet',))}"
            checks.report(later, ("subnet",), message, str(later.value.subnet))
        if widest is None or subnet.broadcast_address > widest.value.subnet.broadcast_address:
            widest = obj


def _check_subnet_in_cluster_network(
    obj: ParsedObject, network: ClusterNetwork, checks: _Checks
) -> None:
    subnet: IPv4Network = obj.value.subnet
    entry = next((e for e in network.networks if subnet.subnet_of(e.cidr)), None)
    if entry is None:
        cidrs = ", ".join(str(e.cidr) for e in network.networks)
        checks.report(obj, ("subnet",), f"outside every cluster network ({cidrs})", str(subnet))
    elif subnet.prefixlen != 32 - entry.host_subnet_length:
        message = (
            f"prefix length must be /{32 - entry.host_subnet_length} "
            f"(cluster network {entry.cidr} has hostSubnetLength {entry.host_subnet_length})"
        )
        checks.report(obj, ("subnet",), message, str(subnet))


def _check_pods(pods: list[ParsedObject], objects: _Objects, checks: _Checks) -> None:
    """Pod IPs inside their node's subnet, unknown nodes, and what must be unique (IPs in the
    cluster, ofports and interfaces per node).  The hot loop of a reload (every pod, on every
    change): the common case, nothing wrong, costs a few integer comparisons and dict
    insertions per pod; the checks that report are the general ones."""
    nodes: dict[str, HostSubnet] = {}
    for obj in objects.usable("HostSubnet"):
        nodes.setdefault(obj.value.host, obj.value)  # a duplicate host is reported elsewhere
    known_hosts = nodes.keys() | objects.names("HostSubnet")
    # host -> (network address, broadcast address, gateway) as integers
    bounds = {host: (int(hs.subnet.network_address), int(hs.subnet.broadcast_address),
                     int(hs.subnet.network_address) + 1) for host, hs in nodes.items()}
    ips: dict[int, ParsedObject] = {}
    ofports: set[tuple[str, int]] = set()
    interfaces: set[tuple[str, str]] = set()
    with_ofport = with_interface = 0
    repeated_ip = False
    for obj in pods:
        pod: Pod = obj.value
        ip = pod.ip._ip  # int(pod.ip), without the method call (110,000 times per reload)
        host = pod.node
        node = bounds.get(host)
        if node is not None:
            if not (node[0] < ip < node[1] and ip != node[2]):
                _check_pod_ip(obj, nodes[host], checks)
        elif host not in known_hosts and checks.complete:
            message = "unknown node: no HostSubnet has this host"
            checks.report(obj, ("spec", "nodeName"), message, host)
        if ips.setdefault(ip, obj) is not obj:
            repeated_ip = True
        if pod.ofport is not None:
            ofports.add((host, pod.ofport))
            with_ofport += 1
        if pod.interface is not None:
            interfaces.add((host, pod.interface))
            with_interface += 1
    if repeated_ip:  # rare: report them as the general check does
        checks.duplicates((obj.value.ip, obj, ("status", "podIP")) for obj in pods)
    if len(ofports) != with_ofport:
        _report_repeats_per_node(pods, "ofport", ANNOTATION_OFPORT, checks)
    if len(interfaces) != with_interface:
        _report_repeats_per_node(pods, "interface", ANNOTATION_INTERFACE, checks)


def _report_repeats_per_node(
    pods: list[ParsedObject], attribute: str, annotation: str, checks: _Checks
) -> None:
    keys = (*_ANNOTATIONS, annotation)
    entries = (
        ((obj.value.node, getattr(obj.value, attribute)), obj, keys)
        for obj in pods
        if getattr(obj.value, attribute) is not None
    )
    checks.duplicates(entries, shown=lambda node_and_value: node_and_value[1])


def _check_pod_ip(obj: ParsedObject, node: HostSubnet, checks: _Checks) -> None:
    ip: IPv4Address = obj.value.ip
    subnet = node.subnet
    problem = None
    if ip not in subnet:
        problem = f"outside the subnet {subnet} of node {node.host}"
    elif ip == subnet.network_address:
        problem = f"the network address of node {node.host}'s subnet {subnet}"
    elif ip == node.gateway:
        problem = f"node {node.host}'s gateway (tun0) address"
    elif ip == subnet.broadcast_address:
        problem = f"the broadcast address of node {node.host}'s subnet {subnet}"
    if problem:
        checks.report(obj, ("status", "podIP"), problem, str(ip))


def _check_services(
    services: list[ParsedObject], network: ClusterNetwork | None, checks: _Checks
) -> None:
    with_ip = [obj for obj in services if obj.value.cluster_ip is not None]
    checks.duplicates((obj.value.cluster_ip, obj, ("spec", "clusterIP")) for obj in with_ip)
    if network is None:
        return
    service_network = network.service_network
    for obj in with_ip:
        if obj.value.cluster_ip not in service_network:
            message = f"outside the service network {service_network}"
            checks.report(obj, ("spec", "clusterIP"), message, str(obj.value.cluster_ip))


def _check_namespaces_have_vnids(objects: _Objects, plugin: Plugin, checks: _Checks) -> None:
    """Under multitenant and networkpolicy every namespace in use needs a NetNamespace; one
    issue per namespace, at its first object."""
    if not plugin.supports_vnids or not checks.complete:
        return
    known = objects.names("NetNamespace")
    if {obj.namespace for obj in objects.all} - {""} <= known:
        return  # the usual case: every namespace in use has its NetNamespace
    for obj in objects.all:
        if obj.namespace and obj.namespace not in known and obj.value is not SKIPPED:
            known.add(obj.namespace)
            message = f'no NetNamespace "{obj.namespace}" ({plugin.value} needs one per namespace)'
            checks.report(obj, ("metadata", "namespace"), message)


# ---------------------------------------------------------------------------------------------
# The master's work, and the warnings

_CHANGE_NETWORK: tuple[Key, ...] = (*_ANNOTATIONS, ANNOTATION_CHANGE_NETWORK)


def _net_namespaces(
    objects: _Objects, plugin: Plugin, checks: _Checks, warnings: list[str]
) -> tuple[NetNamespace, ...]:
    drafts = objects.usable("NetNamespace")
    requests = [
        master.VnidRequest(d.name, d.value.netid, d.value.change_network, d.value.created)
        for d in drafts
    ]
    # A join to a NetNamespace that could not be read is not a join to a missing one.
    all_read = checks.complete and len(drafts) == len(objects.of("NetNamespace"))
    result = master.assign_vnids(requests, plugin, complete=all_read)
    by_name = {obj.name: obj for obj in drafts}
    for problem in result.problems:
        checks.report(by_name[problem.namespace], _CHANGE_NETWORK, problem.message, problem.value)
    for note in result.notes:
        issue = checks.issue(by_name[note.namespace], _CHANGE_NETWORK, note.message, note.value)
        warnings.append(str(issue))
    return tuple(_net_namespace(obj.value, result) for obj in drafts)


def _net_namespace(draft: NetNamespaceDraft, result: master.VnidResult) -> NetNamespace:
    return NetNamespace(
        draft.name, draft.uid, result.vnids[draft.name], draft.egress_ips,
        draft.multicast_enabled, draft.origin, result.sources[draft.name],
    )  # fmt: skip


def _egress_ip_warnings(
    net_namespaces: Sequence[NetNamespace], subnets: Sequence[HostSubnet]
) -> list[str]:
    """Egress IPs 3.11 accepts but does not use: its tracker needs exactly one node and one
    namespace per IP."""
    hosted = {ip for subnet in subnets for ip in subnet.egress_ips}
    claims = Counter(ip for ns in net_namespaces for ip in set(ns.egress_ips))
    warnings = []
    for ns in net_namespaces:
        for ip in ns.egress_ips:
            if ip not in hosted:
                warnings.append(f"NetNamespace/{ns.name}: egress IP {ip} is on no HostSubnet")
            if claims[ip] > 1:
                warnings.append(
                    f"NetNamespace/{ns.name}: egress IP {ip} is claimed by {claims[ip]} "
                    "NetNamespaces; 3.11 uses it for none of them"
                )
    return warnings


def _egress_policy_warnings(
    policies: Sequence[EgressNetworkPolicy], net_namespaces: Sequence[NetNamespace]
) -> list[str]:
    """The EgressNetworkPolicy cases 3.11 treats as errors (pipeline §3, table 101)."""
    vnids = {ns.name: ns.netid for ns in net_namespaces}
    sharing = Counter(vnids.values())
    per_namespace = Counter(policy.namespace for policy in policies)
    warnings = []
    for namespace in sorted(per_namespace):
        vnid = vnids.get(namespace)
        subject = f'namespace "{namespace}"'
        if per_namespace[namespace] > 1:
            warnings.append(f"{subject} has {per_namespace[namespace]} EgressNetworkPolicies; "
                            "3.11 then drops all its external traffic")  # fmt: skip
        if vnid == GLOBAL_VNID:
            warnings.append(f"{subject} is global (VNID 0); 3.11 ignores its EgressNetworkPolicy")
        elif vnid is not None and sharing[vnid] > 1:
            warnings.append(f"{subject} shares VNID {vnid} with other namespaces; 3.11 then "
                            "drops all external traffic of that VNID")  # fmt: skip
    return warnings


# ---------------------------------------------------------------------------------------------
# Entry point


def load_topology(
    paths: Sequence[str | os.PathLike[str]],
    plugin: Plugin | None = None,
    *,
    cache: FileCache | None = DEFAULT_CACHE,
) -> Topology:
    """Read, validate and resolve a cluster; `plugin` overrides ClusterNetwork.pluginName.

    Raises TopologyError listing every problem.  `cache=None` re-reads every file.
    """
    if isinstance(paths, (str, os.PathLike)):  # a lone path, not a sequence of characters
        paths = [paths]
    with gc_paused():
        issues: list[Issue] = []
        files = _expand_paths(paths, issues)
        parsed = [parse_file(path) if cache is None else cache.parsed(path) for path in files]
        complete = not issues and all(file.complete for file in parsed)
        for file in parsed:
            issues += file.issues
        topology = _assemble(parsed, plugin, _Checks(issues, complete))
    if issues or topology is None:
        raise TopologyError(sorted(issues, key=lambda issue: (issue.file, issue.line)))
    return topology


def _assemble(
    files: Sequence[ParsedFile], plugin: Plugin | None, checks: _Checks
) -> Topology | None:
    objects = _Objects(_unique_objects(files, checks))
    network = _cluster_network(objects, plugin, checks)
    _check_host_subnets(objects.usable("HostSubnet"), network, checks)
    _check_pods(objects.usable("Pod"), objects, checks)
    _check_services(objects.usable("Service"), network, checks)
    if network is None:
        return None
    _check_namespaces_have_vnids(objects, network.plugin, checks)
    warnings: list[str] = []
    net_namespaces = _net_namespaces(objects, network.plugin, checks, warnings)
    host_subnets = tuple(obj.value for obj in objects.usable("HostSubnet"))
    egress_policies = tuple(obj.value for obj in objects.usable("EgressNetworkPolicy"))
    if network.plugin.supports_vnids:
        warnings += _egress_ip_warnings(net_namespaces, host_subnets)
        warnings += _egress_policy_warnings(egress_policies, net_namespaces)
    return Topology(
        cluster_network=network,
        host_subnets=host_subnets,
        net_namespaces=net_namespaces,
        namespaces=tuple(obj.value for obj in objects.usable("Namespace")),
        pods=tuple(obj.value for obj in objects.usable("Pod")),
        services=tuple(obj.value for obj in objects.usable("Service")),
        network_policies=tuple(obj.value for obj in objects.usable("NetworkPolicy")),
        egress_network_policies=egress_policies,
        ignored=tuple(entry for file in files for entry in file.ignored),
        warnings=tuple(warnings),
    )
