"""Noticing topology changes on disk, cheaply, from the controller's own loop.

`TopologyWatcher.poll` stats the files (`list_files`: the files `load_topology` reads) and
compares each file's `Stamp` (device, inode, size, mtime, ctime) and the set of files with
the snapshot of the last load.  Nothing changed: None, without reading a byte.  Something
changed: once it has settled (below), `load_topology` again, whose `FileCache` re-parses only
the files whose stamp changed and whose content hash differs.

The ctime in the stamp is what makes a same-size edit whose mtime was put back (``touch -d``,
``cp -p``, ``os.utime``) a change: no one can set it back.  The device and inode are what
make a ConfigMap update one: kubelet writes a new timestamped directory and swaps the
``..data`` symlink, so the path names a new inode.

No thread, no inotify: the app calls `poll` every ``watch_interval`` from its green thread
(sooner while a change settles: `due_in`), which keeps it portable (ConfigMap symlink swaps,
NFS) and keeps all state in one place.

Files being written.  A change is loaded only once it has been stable for `settle` seconds:
the snapshot must have stayed the same between polls that long, or every changed file's
ctime must be that old already.  So a non-atomic rewrite (truncate, write, write...) whose
pauses are shorter than `settle` is never loaded half-written.  A file that was not empty at
the last load and is empty now is more likely a truncation whose write is yet to come than a
wish to delete every object in it: it must stay so for `EMPTIED_SETTLE_FACTOR` times `settle`.
A half-written file that is loaded all the same (a pause longer than `settle`) just yields
issues if it is invalid (the last good topology stays in force), and its next write is a new
change.  The first poll always loads at once.  The stat snapshot is taken *before* loading,
so a write that lands during a load is seen by the next poll.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from topology.load import FileCache, Issue, TopologyError, list_files, load_topology
from topology.load.readfile import Stamp
from topology.model import Plugin, Topology

__all__ = ["EMPTIED_SETTLE_FACTOR", "TopologyWatcher", "WatchResult"]

Snapshot = dict[str, Stamp | None]  # None: missing or unreadable

EMPTIED_SETTLE_FACTOR = 10
"""A file emptied since the last load waits this many times `settle` before it is loaded."""


_CLOCK_SLACK = 0.001  # seconds: settled this close to due is settled (rounding, clock steps)


@dataclass(frozen=True)
class WatchResult:
    """A load after a change: the topology, or None and every issue (as TopologyError's)."""

    topology: Topology | None
    issues: list[Issue] = field(default_factory=list)
    changed_files: list[str] = field(default_factory=list)  # added, modified or removed

    @property
    def ok(self) -> bool:
        return self.topology is not None


def _stamp(path: str) -> Stamp | None:
    try:
        return Stamp.of(os.stat(path))
    except OSError:
        return None


def _changed(before: Snapshot, after: Snapshot) -> list[str]:
    paths = before.keys() | after.keys()
    return sorted(p for p in paths if p not in before or p not in after or before[p] != after[p])


class TopologyWatcher:
    """Polls `paths` (files and directories, as for `load_topology`) for changes.

    `cache`: the FileCache to parse through; None gives the watcher one of its own (a shared
    default instance would mix the entries of unrelated watchers).  `settle`: seconds a
    change must be stable before it is loaded (0: at once).  `clock` (monotonic) and
    `wall_clock` (the clock of file times) are given for tests.
    """

    def __init__(self, paths: Sequence[str | os.PathLike[str]], plugin: Plugin | None = None,
                 cache: FileCache | None = None, *, settle: float = 0.0,
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.paths = [os.fspath(path) for path in paths]
        self.plugin = plugin
        self.cache = FileCache() if cache is None else cache
        self.settle = settle
        self._clock = clock
        self._wall_clock = wall_clock
        self._last: Snapshot | None = None  # of the last load; None: never loaded
        self._pending: Snapshot | None = None  # a change not loaded yet
        self._pending_since = 0.0  # when `_pending` was first seen (clock)
        self._due_at: float | None = None  # when `_pending` will have settled (clock)

    def snapshot(self) -> Snapshot:
        """Each file's stamp; a given path that does not exist (or a directory that cannot be
        listed) is kept, stamped None, so that its appearance counts as a change."""
        listing = list_files(self.paths)
        files: Snapshot = {path: None for path in listing.missing}
        files.update((issue.file, None) for issue in listing.unreadable)
        for path in listing.files:
            files[path] = _stamp(path)
        return files

    def poll(self) -> WatchResult | None:
        """None if nothing changed since the last load, or the change has not settled yet
        (see `due_in`); else the result of loading again.  The first poll always loads."""
        current = self.snapshot()
        if current == self._last:
            self._pending = self._due_at = None
            return None
        if self._last is not None and not self._settled(current):
            return None
        changed = _changed(self._last or {}, current)
        self._forget_removed(current)
        self._last = current
        self._pending = self._due_at = None
        return self._load(changed)

    def due_in(self) -> float | None:
        """Seconds until the change seen by the last poll will have settled (poll then);
        None when no change is waiting."""
        if self._due_at is None:
            return None
        return max(_CLOCK_SLACK, self._due_at - self._clock())

    def _settled(self, current: Snapshot) -> bool:
        now = self._clock()
        if current != self._pending:
            self._pending, self._pending_since = current, now
        required = self.settle * (EMPTIED_SETTLE_FACTOR if self._emptied(current) else 1)
        stable_for = max(now - self._pending_since, self._age_of_changes(current))
        if stable_for >= required - _CLOCK_SLACK:
            return True
        self._due_at = now + required - stable_for
        return False

    def _emptied(self, current: Snapshot) -> bool:
        last = self._last or {}
        return any(stamp is not None and stamp.size == 0 and (before := last.get(path))
                   is not None and before.size > 0 for path, stamp in current.items())

    def _age_of_changes(self, current: Snapshot) -> float:
        """Seconds since the youngest changed file last changed (its ctime); 0 when a
        change has no ctime (a file removed or unreadable)."""
        changed = _changed(self._last or {}, current)
        stamps = [current.get(path) for path in changed]
        if not stamps or any(stamp is None for stamp in stamps):
            return 0.0
        youngest = max(stamp.ctime_ns for stamp in stamps if stamp is not None)
        return self._wall_clock() - youngest / 1e9

    def _forget_removed(self, current: Snapshot) -> None:
        for path in (self._last or {}).keys() - current.keys():
            self.cache.forget(path)

    def _load(self, changed: list[str]) -> WatchResult:
        try:
            topology = load_topology(self.paths, self.plugin, cache=self.cache)
        except TopologyError as error:
            return WatchResult(None, error.issues, changed)
        return WatchResult(topology, [], changed)
