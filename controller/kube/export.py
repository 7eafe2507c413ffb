"""`osdn export`: the API's objects as files, one per kind, as ``oc get <kind> -o yaml``
writes them (``kind: List``), so that ``osdn render DIR`` renders what the live source does.

What is written is what the controller keeps of each object (`slim`): the fields the compiler
reads, and of the annotations only ours and openshift-sdn's.  So a bug report made from it
carries no container images, environment or unrelated annotations.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import yaml

from controller.kube.client import KINDS
from controller.kube.informer import Informer

__all__ = ["export_objects", "file_name"]


def file_name(kind: str) -> str:
    return f"{KINDS[kind].plural}.yaml"


def export_objects(informers: Mapping[str, Informer], directory: str) -> dict[str, int]:
    """Write each kind's objects to `directory`/<plural>.yaml; the count written per kind."""
    os.makedirs(directory, exist_ok=True)
    written: dict[str, int] = {}
    for kind, informer in informers.items():
        items = list(informer.snapshot().values())
        document: dict[str, Any] = {"apiVersion": "v1", "items": items, "kind": "List",
                                    "metadata": {"resourceVersion": "", "selfLink": ""}}
        path = os.path.join(directory, file_name(kind))
        with open(path + ".tmp", "w", encoding="utf-8") as out:
            yaml.safe_dump(document, out, default_flow_style=False, sort_keys=True)
        os.replace(path + ".tmp", path)
        written[kind] = len(items)
    return written
