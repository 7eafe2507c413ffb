"""The SDN master's part of the topology: VNIDs for NetNamespaces.

In 3.11 the master (``pkg/network/master/vnids.go``) gives every new namespace a VNID from
a randomly-started bitmap allocator, and applies the
``pod.network.openshift.io/multitenant.change-network`` annotation.  We have no history of
events, only the objects, so allocation here is a pure function of them, chosen so that
adding a namespace never changes another one's VNID:

Allocation (NetNamespaces without ``netid``):

1. Explicit netids are claimed first (0, the global VNID, included).
2. The others are taken in order of (``metadata.creationTimestamp``, name); namespaces without
   a timestamp come after all that have one, by name.  A newly created namespace thus comes
   last and cannot displace an older one.
3. Each gets ``MIN_VNID + sha256(name) mod (MAX_VNID - MIN_VNID + 1)`` (the digest read as a
   big-endian integer), or, if that VNID is in use, the next free one above it (wrapping from
   MAX_VNID to MIN_VNID).

Stability holds exactly for a namespace that sorts last (a later creationTimestamp).  One that
sorts earlier (no timestamp, an earlier name) changes another's VNID only if its own candidate
probes onto that VNID: about one chance in 16 million per namespace.

change-network (only under ovs-multitenant, as in 3.11; applied after allocation):

* ``global``: VNID 0.
* ``join:<ns>``: the VNID of <ns> after <ns>'s own change-network, if it has one (requests
  are applied targets first; ties by name).  Joining itself changes nothing.
* ``isolate``: keeps the VNID if no other namespace has it (3.11: "already isolated");
  otherwise a new one, chosen as for a fresh namespace: the allocation rule above, skipping
  every VNID in use at that moment.
* ``default`` can be neither joined elsewhere nor isolated; a join cycle, a join to a missing
  NetNamespace and an unknown action are errors (`VnidResult.problems`).

Under ovs-networkpolicy 3.11 strips the annotation and logs an error; under ovs-subnet no VNID
code runs at all.  Both leave the VNID alone; we add a note (`VnidResult.notes`).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from topology.errors import OsdnError
from topology.model import GLOBAL_VNID, MAX_VNID, MIN_VNID, Plugin

VNID_COUNT = MAX_VNID - MIN_VNID + 1
DEFAULT_NAMESPACE = "default"

ALLOCATED = "allocated"  # `VnidResult.sources` value of a VNID from the allocation rule
_NOT_FOR_DEFAULT = {"join": "joined to another network", "isolate": "isolated"}


@dataclass(frozen=True)
class VnidRequest:
    """What the master reads of one NetNamespace."""

    name: str
    netid: int | None = None  # explicit netid (already range-checked), or None to allocate
    change_network: str | None = None  # the change-network annotation's value
    created: datetime | None = None  # metadata.creationTimestamp, timezone-aware


@dataclass(frozen=True)
class VnidNote:
    """A problem (or a warning) about one NetNamespace's change-network annotation."""

    namespace: str
    message: str
    value: str | None = None


@dataclass(frozen=True)
class VnidResult:
    vnids: dict[str, int]
    # "" for an explicit netid left as it was, ALLOCATED, or the applied annotation value.
    sources: dict[str, str]
    problems: tuple[VnidNote, ...] = ()
    notes: tuple[VnidNote, ...] = ()


class VnidSpaceExhausted(OsdnError):
    """All 16,777,206 VNIDs are taken."""


def preferred_vnid(name: str) -> int:
    """Where the allocation rule starts looking for a namespace's VNID."""
    digest = int.from_bytes(hashlib.sha256(name.encode()).digest(), "big")
    return MIN_VNID + digest % VNID_COUNT


def allocate_vnid(name: str, in_use: Collection[int]) -> int:
    """The first free VNID at or after the namespace's preferred one (wrapping around)."""
    candidate = preferred_vnid(name)
    for _ in range(VNID_COUNT):
        if candidate not in in_use:
            return candidate
        candidate = MIN_VNID if candidate == MAX_VNID else candidate + 1
    raise VnidSpaceExhausted()


def assign_vnids(
    requests: Sequence[VnidRequest], plugin: Plugin, *, complete: bool = True
) -> VnidResult:
    """Every requested namespace's VNID.  `complete=False` (part of the input unreadable)
    suppresses the "join to a missing NetNamespace" error, which may then be wrong."""
    vnids, sources = _allocate(requests)
    changes = [request for request in requests if request.change_network is not None]
    if plugin is not Plugin.MULTITENANT:
        return VnidResult(vnids, sources, notes=tuple(_ignored(changes, plugin)))
    pending = {r.name: r.change_network or "" for r in changes}
    renumbering = _Renumbering(vnids, sources, pending, complete)
    renumbering.run()
    return VnidResult(vnids, sources, tuple(renumbering.problems))


def _allocate(requests: Sequence[VnidRequest]) -> tuple[dict[str, int], dict[str, str]]:
    vnids = {r.name: r.netid for r in requests if r.netid is not None}
    sources = {name: "" for name in vnids}
    in_use = set(vnids.values())
    for request in sorted((r for r in requests if r.netid is None), key=_creation_order):
        vnid = allocate_vnid(request.name, in_use)
        vnids[request.name] = vnid
        sources[request.name] = ALLOCATED
        in_use.add(vnid)
    return vnids, sources


def _creation_order(request: VnidRequest) -> tuple[bool, datetime | None, str]:
    # (False, t) sorts before (True, None): namespaces without a timestamp come last.
    return (request.created is None, request.created, request.name)


def _ignored(changes: Sequence[VnidRequest], plugin: Plugin) -> list[VnidNote]:
    why = {
        Plugin.NETWORKPOLICY: "ovs-networkpolicy does not renumber namespaces "
        "(3.11 strips the annotation and logs an error)",
        Plugin.SUBNET: "ovs-subnet has no VNIDs",
    }[plugin]
    return [VnidNote(r.name, f"ignored: {why}", r.change_network) for r in changes]


@dataclass
class _Renumbering:
    """Applies change-network requests to `vnids` in place, targets before their joiners."""

    vnids: dict[str, int]
    sources: dict[str, str]
    pending: dict[str, str]  # namespace → annotation value, until applied
    complete: bool  # False: a missing join target may just be unread; no error then
    problems: list[VnidNote] = field(default_factory=list)

    def run(self) -> None:
        for name in sorted(self.pending):
            self._apply(name, chain=[])

    def _apply(self, name: str, chain: list[str]) -> bool:
        """Apply `name`'s request (after its join target's); False if that failed."""
        if name not in self.pending:
            return True
        if name in chain:
            return self._fail_cycle(chain[chain.index(name) :])
        value = self.pending[name]
        action, _, target = value.partition(":")
        joins_pending = action == "join" and target != name and target in self.pending
        if joins_pending and not self._apply(target, [*chain, name]):
            return self._fail(name, None, value)  # the target's problem says why
        del self.pending[name]
        return self._change(name, action, target, value)

    def _fail_cycle(self, members: list[str]) -> bool:
        cycle = " -> ".join([*members, members[0]])
        for member in members:
            self._fail(member, f"join cycle: {cycle}", self.pending.get(member))
        return False

    def _change(self, name: str, action: str, target: str, value: str) -> bool:
        if name == DEFAULT_NAMESPACE and action in _NOT_FOR_DEFAULT:
            message = f'namespace "default" cannot be {_NOT_FOR_DEFAULT[action]}'
            return self._fail(name, message, value)
        if action == "global" and not target:
            return self._set(name, GLOBAL_VNID, value)
        if action == "isolate" and not target:
            return self._set(name, self._isolated_vnid(name), value)
        if action == "join" and target:
            return self._join(name, target, value)
        message = "must be global, isolate or join:<namespace>"
        return self._fail(name, message, value)

    def _join(self, name: str, target: str, value: str) -> bool:
        if target not in self.vnids:
            if not self.complete:
                return False
            return self._fail(name, f'join target NetNamespace "{target}" does not exist', value)
        return self._set(name, self.vnids[target], value)

    def _isolated_vnid(self, name: str) -> int:
        vnid = self.vnids[name]
        if Counter(self.vnids.values())[vnid] == 1:  # already alone: 3.11 keeps it
            return vnid
        return allocate_vnid(name, set(self.vnids.values()))

    def _set(self, name: str, vnid: int, value: str) -> bool:
        self.vnids[name] = vnid
        self.sources[name] = value
        return True

    def _fail(self, name: str, message: str | None, value: str | None) -> bool:
        self.pending.pop(name, None)
        if message is not None:
            self.problems.append(VnidNote(name, message, value))
        return False
