"""A small in-memory list/watch (the informer's `ListWatch`), for unit tests of the informer
and the API source without HTTP; and example clusters as API objects (decoded JSON).

It keeps objects per kind, numbers every change with a resourceVersion, and answers a watch
from a version with the changes after it (then ends, as a server ending a watch).  Tests can
queue failures for the next watches (`fail_next`): an exception raised before or after some
events, as a dropped connection or a 410 does."""

from __future__ import annotations

import copy
import datetime
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from controller.kube.client import KINDS, Gone


def api_objects(directory: Path | str) -> dict[str, list[dict[str, Any]]]:
    """A cluster directory's objects by kind, as the API would return them (JSON types,
    timestamps as RFC 3339 text)."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(Path(directory).rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            for obj in _unpacked(document):
                if obj.get("kind") in KINDS:
                    by_kind.setdefault(obj["kind"], []).append(_json(obj))
    return by_kind


def _unpacked(document: Any) -> Iterator[dict[str, Any]]:
    if not isinstance(document, dict):
        return
    if document.get("kind") == "List":
        for item in document.get("items") or []:
            yield from _unpacked(item)
    else:
        yield document


def _json(obj: Any) -> Any:
    def text(value: Any) -> str:
        if isinstance(value, datetime.datetime):
            return value.isoformat().replace("+00:00", "Z")
        return str(value)
    return json.loads(json.dumps(obj, default=text))


def _key(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    namespace = meta.get("namespace") or ("default" if _namespaced(obj["kind"]) else "")
    return f"{namespace}/{meta['name']}" if namespace else meta["name"]


def _namespaced(kind: str) -> bool:
    return kind in ("Pod", "Service", "NetworkPolicy", "EgressNetworkPolicy")


class FakeApi:
    """Objects per kind with resourceVersions; list, watch, and changes made by tests."""

    def __init__(self, objects: dict[str, list[dict[str, Any]]] | None = None) -> None:
        self.version = 1
        self.objects: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in KINDS}
        self.log: list[tuple[Any, ...]] = []  # ("list"|"watch", kind, selector, version)
        self.history: list[tuple[int, str, str, dict[str, Any]]] = []  # (version, kind, type, obj)
        self.compacted = 0  # a watch from a version older than this is 410 Gone
        self.failures: list[tuple[int, BaseException]] = []  # (events before, error)
        self.down: BaseException | None = None  # every request fails with it
        for items in (objects or {}).values():
            for obj in items:
                self.put(obj, record=False)

    def put(self, obj: dict[str, Any], record: bool = True) -> None:
        obj = copy.deepcopy(obj)
        obj.setdefault("metadata", {})
        if _namespaced(obj["kind"]):
            obj["metadata"].setdefault("namespace", "default")
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)
        kind = obj["kind"]
        event = "MODIFIED" if _key(obj) in self.objects[kind] else "ADDED"
        self.objects[kind][_key(obj)] = obj
        if record:
            self.history.append((self.version, kind, event, obj))

    def delete(self, kind: str, key: str) -> None:
        obj = self.objects[kind].pop(key)
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)  # as the API's DELETED event
        self.history.append((self.version, kind, "DELETED", obj))

    @staticmethod
    def selected(obj: dict[str, Any], selector: str | None) -> bool:
        return _selected(obj, selector)

    def fail_next(self, error: BaseException, after_events: int = 0) -> None:
        self.failures.append((after_events, error))

    def list(self, kind: str, field_selector: str | None = None,
             limit: int = 500) -> tuple[list[dict[str, Any]], str]:
        self.log.append(("list", kind, field_selector, None))
        if self.down is not None:
            raise self.down
        items = [copy.deepcopy(o) for o in self.objects[kind].values()
                 if _selected(o, field_selector)]
        for item in items:  # list items come without apiVersion and kind
            item.pop("kind", None)
            item.pop("apiVersion", None)
        return items, str(self.version)

    def watch(self, kind: str, resource_version: str, field_selector: str | None = None,
              timeout_seconds: int = 300) -> Iterator[tuple[str, dict[str, Any]]]:
        self.log.append(("watch", kind, field_selector, resource_version))
        if self.down is not None:
            raise self.down
        if int(resource_version) < self.compacted:
            raise Gone(410, "too old resource version")
        limit, error = self.failures.pop(0) if self.failures else (None, None)
        sent = 0
        for version, event_kind, event, obj in list(self.history):
            if version <= int(resource_version) or event_kind != kind:
                continue
            if not _selected(obj, field_selector):
                continue
            if limit is not None and sent >= limit:
                break
            sent += 1
            yield event, copy.deepcopy(obj)
        if error is not None:
            raise error
        yield "BOOKMARK", {"kind": kind, "metadata": {"resourceVersion": str(self.version)}}


def _selected(obj: dict[str, Any], selector: str | None) -> bool:
    if not selector:
        return True
    field, _, value = selector.partition("=")
    assert field == "spec.nodeName", selector
    return bool((obj.get("spec") or {}).get("nodeName") == value)
