"""Flow cookies: every flow names its owner.

Layout (64 bits)::

    | 63..56 MARK (0xd5) | 55..48 owner kind | 47..0 object id |

* MARK tells our flows from anyone else's (openshift-sdn's own flows carry 0 or a 32-bit
  HostSubnet hash, so their top byte is 0).  `OURS_MASK` / `OURS_VALUE` select our space in
  a cookie-masked dump or delete.
* The object id is the first 48 bits of SHA-256 of the owner's name (``Kind/ns/name`` or a
  fixed string for static flows).  It is a pure function of the topology: no restart round,
  so `osdn render` prints what the controller installs and a restart finds nothing to do.
* Two owners whose ids collide are detected by `CookieRegistry`, never assumed away.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass

from topology.errors import OsdnError

MARK = 0xD5
OURS_MASK = 0xFF << 56
OURS_VALUE = MARK << 56
KIND_MASK = 0xFF << 48
ID_BITS = 48


class OwnerKind(enum.IntEnum):
    STATIC = 1
    HOST_SUBNET = 2
    POD = 3
    SERVICE = 4
    VNID = 5  # multitenant table-80 "same VNID" rule
    EGRESS_IP = 6
    NETWORK_POLICY = 7
    POLICY_NAMESPACE = 8  # networkpolicy per-namespace drops and allow-rest
    EGRESS_FIREWALL = 9
    MULTICAST = 10
    VERSION_NOTE = 11


@dataclass(frozen=True, order=True)
class Owner:
    """Who a flow belongs to: a kind and a stable name, e.g. (POD, "default/web-1")."""

    kind: OwnerKind
    name: str

    @property
    def cookie(self) -> int:
        digest = hashlib.sha256(f"{self.kind.name}:{self.name}".encode()).digest()
        object_id = int.from_bytes(digest[:6], "big")
        return OURS_VALUE | (int(self.kind) << ID_BITS) | object_id

    def __str__(self) -> str:
        return f"{self.kind.name.lower()}:{self.name}"


def is_ours(cookie: int) -> bool:
    return cookie & OURS_MASK == OURS_VALUE


def kind_of(cookie: int) -> OwnerKind | None:
    if not is_ours(cookie):
        return None
    try:
        return OwnerKind((cookie & KIND_MASK) >> ID_BITS)
    except ValueError:
        return None


class CookieCollision(OsdnError, ValueError):
    pass


class CookieRegistry:
    """Remembers cookie -> owner and refuses a second owner with the same cookie."""

    def __init__(self) -> None:
        self._owners: dict[int, Owner] = {}

    def register(self, owner: Owner, cookie: int | None = None) -> int:
        """`owner`'s cookie, remembered; `cookie`: that cookie, if the caller has it already."""
        if cookie is None:
            cookie = owner.cookie
        known = self._owners.setdefault(cookie, owner)
        if known != owner:
            raise CookieCollision(f"cookie 0x{cookie:016x} of {owner} collides with {known}")
        return cookie

    def forget(self, cookie: int) -> None:
        """The cookie's owner has no flows any more."""
        del self._owners[cookie]

    def owner(self, cookie: int) -> Owner | None:
        return self._owners.get(cookie)
