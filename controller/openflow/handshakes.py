"""Connections that have not finished their handshake (HELLO, then the features reply).

A switch finishes its handshake in milliseconds.  A peer that connects and says nothing, or
only part of it, would otherwise hold a socket, a green thread and its buffers for as long as
it likes (3,000 idle connections held 3,007 open files and 157 MB).  `PendingHandshakes`
bounds both the time (`timeout`) and the number (`limit`) of such connections: pure
bookkeeping, the caller closes what it is told to close.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

__all__ = ["PendingHandshakes"]


@dataclass
class PendingHandshakes:
    """`timeout`: seconds a connection may take to finish its handshake.  `limit`: how many
    may be unfinished at once; beyond it the oldest is dropped for the newcomer (a real
    switch finishes within milliseconds, so a flood of idle peers cannot crowd it out)."""

    timeout: float
    limit: int
    _since: dict[Hashable, float] = field(default_factory=dict)  # oldest first

    def opened(self, connection: Hashable, now: float) -> list[Hashable]:
        """A new connection; returns the connections to close now (over the limit)."""
        self._since[connection] = now
        excess = len(self._since) - self.limit
        evicted = list(self._since)[:max(excess, 0)]
        for old in evicted:
            del self._since[old]
        return evicted

    def finished(self, connection: Hashable) -> None:
        """The handshake completed, or the connection is gone: no longer pending."""
        self._since.pop(connection, None)

    def expired(self, now: float) -> list[Hashable]:
        """The connections past their `timeout` (no longer tracked: close them)."""
        late = [c for c, since in self._since.items() if now - since >= self.timeout]
        for connection in late:
            del self._since[connection]
        return late

    def __len__(self) -> int:
        return len(self._since)

    def __contains__(self, connection: object) -> bool:
        return connection in self._since
