"""Stage 2 for objects that come from the API server as JSON rather than from YAML files.

A live cluster's object is a plain dict (decoded JSON).  `parse_api_object` turns it into the
same `YamlMap` / `YamlList` values the YAML reader builds (every line 0: there is no file) and
runs the same per-kind parser (`parsefile`, so `kinds` and `leanpod`), so that an object is
valid from the API exactly when it would be valid in a file.  Its issues name the object
("Pod/ns/name"), the field and the value, located at `where` (say ``kubernetes``) instead of
file:line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from topology.load.issues import Issue
from topology.load.kinds import ParsedObject
from topology.load.parsefile import ParsedFile, parse_object
from topology.load.yamlreader import YamlList, YamlMap

__all__ = ["as_yaml", "parse_api_object"]


def as_yaml(value: Any) -> Any:
    """Decoded JSON as the YAML reader's containers (line 0 everywhere)."""
    if isinstance(value, Mapping):
        mapping = YamlMap(0)
        for key, item in value.items():
            mapping[key] = as_yaml(item)
        return mapping
    if isinstance(value, list):
        sequence = YamlList(0)
        sequence.extend(as_yaml(item) for item in value)
        sequence.item_lines = [0] * len(sequence)
        return sequence
    return value


def parse_api_object(obj: Mapping[str, Any], where: str) -> ParsedFile:
    """One API object (with `apiVersion` and `kind`) as a one-object ParsedFile: its model
    value, or its issues, or its identity in `ignored` for a kind we do not read."""
    objects: list[ParsedObject] = []
    ignored: list[str] = []
    issues: list[Issue] = []
    parse_object(where, as_yaml(obj), objects, ignored, issues)
    return ParsedFile(tuple(objects), tuple(ignored), tuple(issues), True)
