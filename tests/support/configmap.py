"""A Kubernetes ConfigMap volume, laid out as kubelet's atomic writer does."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def configmap_mount(directory: Path, files: dict[str, bytes], stamp: str) -> None:
    """Kubernetes' atomic writer: the files in ``..<timestamp>/``, ``..data`` a symlink to
    it, and one symlink per key at the top, to ``..data/<key>``; an update writes a new
    timestamped directory, points ``..data_tmp`` at it, renames it over ``..data`` and
    removes the old directory."""
    directory.mkdir(exist_ok=True)
    new = directory / f"..{stamp}"
    new.mkdir()
    for name, content in files.items():
        (new / name).write_bytes(content)
    old = os.readlink(directory / "..data") if (directory / "..data").is_symlink() else None
    (directory / "..data_tmp").symlink_to(new.name)
    os.rename(directory / "..data_tmp", directory / "..data")
    for name in files:
        if not (directory / name).is_symlink():
            (directory / name).symlink_to(f"..data/{name}")
    if old is not None:
        shutil.rmtree(directory / old)
