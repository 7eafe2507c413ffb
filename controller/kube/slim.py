"""Keep only what the compiler reads of an API object (memory grows with the cluster).

A shape says which keys of a mapping to keep: ``True`` keeps the value whole, a nested
shape slims the value (each item, for a list).  A value of an unexpected type is kept as it
is, so the loader's parser sees it and reports it exactly as it would from a file: slimming
never turns an invalid object into a valid one.  `apiVersion` and `kind` are set from the
watched kind (list responses leave them out of their items).
"""

from __future__ import annotations

from typing import Any, TypeAlias

from topology.model import READ_ANNOTATIONS

__all__ = ["SHAPES", "slim"]

Shape: TypeAlias = bool | dict[str, "Shape"]

_META: dict[str, Shape] = {"name": True, "namespace": True, "uid": True, "labels": True,
                           "annotations": True, "creationTimestamp": True}

SHAPES: dict[str, dict[str, Shape]] = {
    "Pod": {"metadata": _META,
            "spec": {"nodeName": True, "hostNetwork": True,
                     "containers": {"ports": {"name": True, "containerPort": True,
                                              "protocol": True}}},
            "status": {"podIP": True}},
    "Service": {"metadata": _META,
                "spec": {"clusterIP": True, "ports": True, "selector": True}},
    "Namespace": {"metadata": _META},
}
"""Kinds slimmed beyond their metadata; the others (few and small: ClusterNetwork,
HostSubnet, NetNamespace, EgressNetworkPolicy, NetworkPolicy) keep every field."""


def slim(kind: str, api_version: str, obj: dict[str, Any]) -> dict[str, Any]:
    shape = SHAPES.get(kind)
    if shape is None:
        kept = {key: value for key, value in obj.items() if key != "metadata"}
        if "metadata" in obj:
            kept["metadata"] = _slimmed(obj["metadata"], _META)
    else:
        kept = _slimmed(obj, shape)
    kept["apiVersion"], kept["kind"] = api_version, kind
    meta = kept.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("annotations"), dict):
        annotations = {key: value for key, value in meta["annotations"].items()
                       if key in READ_ANNOTATIONS}
        if annotations:
            meta["annotations"] = annotations
        else:
            del meta["annotations"]
    return kept


def _slimmed(value: Any, shape: Shape) -> Any:
    if shape is True:
        return value
    assert isinstance(shape, dict)
    if isinstance(value, dict):
        return {key: _slimmed(item, shape[key]) for key, item in value.items() if key in shape}
    if isinstance(value, list):
        return [_slimmed(item, shape) for item in value]
    return value  # of a type the parser will report
