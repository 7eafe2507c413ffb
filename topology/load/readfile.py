"""Reading one topology file's bytes: regular files only, never blocking, never unbounded.

A FIFO named ``*.yaml`` would block ``open`` (and the controller's whole event loop) until a
writer comes; ``/dev/zero`` or ``/dev/urandom`` behind a symlink never ends; a sparse file
of a few GiB costs as much memory as its size.  So a file is ``stat``-ed first (following
symlinks, as Kubernetes' ConfigMap mounts need) and only a regular file of at most
`MAX_FILE_BYTES` is opened, with ``O_NONBLOCK`` and checked again on the open descriptor (it
may have been replaced in between), and at most one byte more than the limit is read.
"""

from __future__ import annotations

import hashlib
import os
import stat
from typing import NamedTuple

from topology.load.issues import Issue
from topology.load.limits import MAX_FILE_BYTES

_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
_CHUNK = 4 * 1024 * 1024


class Stamp(NamedTuple):
    """What identifies a file's content without reading it.  The change time moves on every
    write, rename and ``utime`` and cannot be set back, so a same-size edit whose mtime was
    put back is still a new stamp; device and inode change when a ConfigMap's ``..data``
    symlink is swapped to a new directory."""

    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, status: os.stat_result) -> Stamp:
        return cls(status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns,
                   status.st_ctime_ns)


class FileContent(NamedTuple):
    """A file's bytes and their stamp, or the issue that kept them from being read."""

    data: bytes | None
    stamp: Stamp | None
    issue: Issue | None

    @property
    def digest(self) -> bytes:
        return content_digest(self.data or b"")


def content_digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def file_kind(mode: int) -> str:
    """'a FIFO', 'a directory', ... for a file that is not a regular one."""
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def _refusal(path: str, status: os.stat_result) -> Issue | None:
    if not stat.S_ISREG(status.st_mode):
        kind = file_kind(status.st_mode)
        return Issue(path, 0, message=f"not read: {kind}, not a regular file")
    if status.st_size > MAX_FILE_BYTES:
        return _too_large(path, status.st_size)
    return None


def _too_large(path: str, size: int) -> Issue:
    return Issue(path, 0, message=f"not read: larger than the limit of {MAX_FILE_BYTES} bytes "
                                  f"(MAX_FILE_BYTES)", value=size)


def _cannot_read(path: str, error: OSError) -> FileContent:
    return FileContent(None, None, Issue(path, 0, message=f"cannot read: {error.strerror}"))


def read_file(path: str) -> FileContent:
    """The file's bytes, if it is a regular file within the size limit."""
    try:
        refused = _refusal(path, os.stat(path))
        if refused is not None:
            return FileContent(None, None, refused)
        descriptor = os.open(path, _READ_FLAGS)
    except OSError as error:
        return _cannot_read(path, error)
    try:
        status = os.fstat(descriptor)  # what was opened, not what the name meant before
        refused = _refusal(path, status)
        if refused is not None:
            return FileContent(None, None, refused)
        data = _read_at_most(descriptor, MAX_FILE_BYTES + 1)
    except OSError as error:
        return _cannot_read(path, error)
    finally:
        os.close(descriptor)
    if len(data) > MAX_FILE_BYTES:  # grew after fstat
        return FileContent(None, None, _too_large(path, len(data)))
    return FileContent(data, Stamp.of(status), None)


def _read_at_most(descriptor: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    left = limit
    while left > 0:
        chunk = os.read(descriptor, min(_CHUNK, left))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
