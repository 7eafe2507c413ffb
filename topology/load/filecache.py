"""Stage 2's results kept per file, so that a reload re-reads only the files that changed."""

from __future__ import annotations

import os
from typing import NamedTuple

from topology.load.parsefile import ParsedFile, parse_content, parse_file
from topology.load.readfile import Stamp, read_file


class _Entry(NamedTuple):
    stamp: Stamp
    digest: bytes  # of the content parsed
    parsed: ParsedFile


class FileCache:
    """Parsed files, each reused while its `Stamp` (device, inode, size, mtime, ctime) is
    unchanged, or while its content is: a file whose stamp changed is read again, and parsed
    again only if its content hash differs (``touch``, a ConfigMap update that leaves this
    file as it was).

    Keyed by the path as given (name a file the same way each time).  The file is stat'ed
    *before* it is read: if it changes while being read, the next call sees a new stamp and
    reads it again.  Entries of files no longer loaded stay until `forget`.
    Cached values are shared: nothing downstream may mutate them.  Not thread-safe.
    """

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def parsed(self, path: str) -> ParsedFile:
        try:
            stamp = Stamp.of(os.stat(path))
        except OSError:
            return parse_file(path)  # reports the error; nothing worth caching
        entry = self._entries.get(path)
        if entry is not None and entry.stamp == stamp:
            return entry.parsed
        content = read_file(path)
        if content.data is None:
            assert content.issue is not None
            return ParsedFile((), (), (content.issue,), False)
        digest = content.digest
        if entry is not None and entry.digest == digest:
            self._entries[path] = entry._replace(stamp=stamp)
            return entry.parsed
        parsed = parse_content(path, content.data)
        self._entries[path] = _Entry(stamp, digest, parsed)
        return parsed

    def forget(self, path: str) -> None:
        self._entries.pop(path, None)

    def __len__(self) -> int:
        return len(self._entries)


DEFAULT_CACHE = FileCache()
