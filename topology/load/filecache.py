"""Stage 2's results kept per file, so that a reload re-reads only the files that changed."""

from __future__ import annotations

import os

from topology.load.parsefile import ParsedFile, parse_file


class FileCache:
    """Parsed files, each reused while its ``(mtime_ns, size)`` is unchanged.

    Keyed by the path as given (name a file the same way each time).  The file is stat'ed
    *before* it is read: if it changes while being read, the next call sees a new key and
    reads it again.  Entries of files no longer loaded stay until `forget`.
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

    def __len__(self) -> int:
        return len(self._entries)


DEFAULT_CACHE = FileCache()
