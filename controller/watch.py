"""Noticing topology changes on disk, cheaply, from the controller's own loop.

`TopologyWatcher.poll` stats the files (`list_files`: the files `load_topology` reads)
and compares each file's ``(mtime_ns, size)`` and the set of files with the previous poll.
Nothing changed: None, without reading a byte.  Something changed: `load_topology` again,
whose `FileCache` re-parses only the files whose ``(mtime_ns, size)`` changed.

No thread, no inotify: the app calls `poll` every ``watch_interval`` from its green thread,
which keeps it portable (ConfigMap symlink swaps, NFS) and keeps all state in one place.

Files being written: a half-written file just yields issues (a YAML syntax error, a missing
field).  Its next write changes its size or mtime, so a later poll reads it again and yields
the topology.  The stat snapshot is taken *before* loading, so a write that lands during a
load is seen by the next poll.  The one change a stat cannot see is a rewrite to the same size
within the file system's timestamp granularity (a few ms on ext4) of the previous write;
`FileCache` makes the same assumption.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from topology.load import FileCache, Issue, TopologyError, list_files, load_topology
from topology.model import Plugin, Topology

__all__ = ["TopologyWatcher", "WatchResult"]

Stamp = tuple[int, int] | None  # (mtime_ns, size); None: missing or unreadable
Snapshot = dict[str, Stamp]


@dataclass(frozen=True)
class WatchResult:
    """A load after a change: the topology, or None and every issue (as TopologyError's)."""

    topology: Topology | None
    issues: list[Issue] = field(default_factory=list)
    changed_files: list[str] = field(default_factory=list)  # added, modified or removed

    @property
    def ok(self) -> bool:
        return self.topology is not None


def _stamp(path: str) -> Stamp:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return (status.st_mtime_ns, status.st_size)


def _changed(before: Snapshot, after: Snapshot) -> list[str]:
    paths = before.keys() | after.keys()
    return sorted(p for p in paths if p not in before or p not in after or before[p] != after[p])


class TopologyWatcher:
    """Polls `paths` (files and directories, as for `load_topology`) for changes.

    `cache`: the FileCache to parse through; None gives the watcher one of its own (a shared
    default instance would mix the entries of unrelated watchers).
    """

    def __init__(self, paths: Sequence[str | os.PathLike[str]], plugin: Plugin | None = None,
                 cache: FileCache | None = None) -> None:
        self.paths = [os.fspath(path) for path in paths]
        self.plugin = plugin
        self.cache = FileCache() if cache is None else cache
        self._last: Snapshot | None = None  # None: never loaded

    def snapshot(self) -> Snapshot:
        """Each file's stamp; a given path that does not exist is kept, stamped None, so
        that its appearance counts as a change."""
        listing = list_files(self.paths)
        files: Snapshot = {path: None for path in listing.missing}
        for path in listing.files:
            files[path] = _stamp(path)
        return files

    def poll(self) -> WatchResult | None:
        """None if nothing changed since the last poll, else the result of loading again.
        The first poll always loads."""
        current = self.snapshot()
        if current == self._last:
            return None
        changed = _changed(self._last or {}, current)
        self._forget_removed(current)
        self._last = current
        return self._load(changed)

    def _forget_removed(self, current: Snapshot) -> None:
        for path in (self._last or {}).keys() - current.keys():
            self.cache.forget(path)

    def _load(self, changed: list[str]) -> WatchResult:
        try:
            topology = load_topology(self.paths, self.plugin, cache=self.cache)
        except TopologyError as error:
            return WatchResult(None, error.issues, changed)
        return WatchResult(topology, [], changed)
