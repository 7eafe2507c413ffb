"""Every kind of compiler unit, in the order compile_node runs them: the one list.

A new part of the compiler declares its `UnitKind` in its own module and takes its place
here; compile_node, NodeCompiler's first build and its merge order all follow this list.
(NodeCompiler recomputes a kind's units when their inputs change: a new kind also needs its
inputs tracked in `controller.compiler.incremental`.)

The order is openshift-sdn 3.11's (setup flows, then per-object flows as its watchers add
them); it decides which unit keeps a flow key that two units want (`FlowSet` keeps the
first add).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from controller.compiler import (
    egress_firewall,
    egress_ip,
    hostsubnet,
    multicast,
    networkpolicy,
    pod,
    service,
    static,
    vnid,
)
from controller.compiler.context import NodeContext
from controller.compiler.unit import UnitId, UnitKind
from topology.model import Topology

UNIT_KINDS: tuple[UnitKind[Any], ...] = (
    static.UNIT,
    hostsubnet.UNIT,
    hostsubnet.REPLICATION_UNIT,
    pod.UNIT,
    service.UNIT,
    vnid.UNIT,
    networkpolicy.UNIT,
    egress_ip.UNIT,
    egress_firewall.UNIT,
    multicast.UNIT,
)
_INDEX = {kind: index for index, kind in enumerate(UNIT_KINDS)}


def compile_units(ctx: NodeContext) -> None:
    """Every unit of the node, in order, into `ctx.out`."""
    for kind in UNIT_KINDS:
        compute = kind.compute
        for member in kind.members(ctx):
            compute(ctx, member)


class UnitOrder:
    """Where compile_node runs a unit: its kind's place in UNIT_KINDS, then its member's place
    among the kind's members (in `topology`'s order or by ident)."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self._positions: dict[UnitKind[Any], Any] = {}

    def __call__(self, uid: UnitId) -> tuple[int, Any]:
        kind, ident = uid
        if kind.positions is None:
            return (_INDEX[kind], ident)
        return (_INDEX[kind], self._position(kind, ident))

    def _position(self, kind: UnitKind[Any], ident: Hashable) -> int:
        positions = self._positions.get(kind)
        if positions is None:
            assert kind.positions is not None
            positions = self._positions[kind] = kind.positions(self.topology)
        position: int = positions.get(ident, -1)
        return position
