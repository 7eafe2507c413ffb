"""Compiler units: the declaration each part of the compiler makes of its per-object code.

A unit is one call of a part's code for one member (a pod, a Service, a remote node, a VNID,
a namespace, or the part as a whole) with everything it reads.  `compile_node` runs every
unit of every kind in the registry's order (`controller.compiler.registry`); `NodeCompiler`
runs them once, then only the units whose inputs changed, and merges their flows as
compile_node would.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from controller.compiler.context import NodeContext
from topology.model import Topology

M = TypeVar("M")

WHOLE = ()  # the one member (and its ident) of a kind that is a single unit


def _whole(_: object) -> Hashable:
    return WHOLE


def itself(member: Hashable) -> Hashable:
    """The ident of a member that is its own name (a VNID, a namespace)."""
    return member


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: a dict key, fast
class UnitKind(Generic[M]):
    """One kind of unit: which units a node has, and what one unit adds.

    members: the members of this kind for the node, in the order compile_node adds them.
    compute: adds one member's flows and warnings to `ctx.out`.
    ident: a member's stable name among its kind (NodeCompiler's unit id).
    positions: where each ident comes in compile_node's order, from the topology, for kinds
        that follow topology order; None when their order is their idents' order.
    """

    name: str
    members: Callable[[NodeContext], Iterable[M]]
    compute: Callable[[NodeContext, M], None]
    ident: Callable[[M], Hashable] = _whole
    positions: Callable[[Topology], Mapping[Hashable, int]] | None = None

    @staticmethod
    def whole(name: str, compute: Callable[[NodeContext], None]) -> UnitKind[Any]:
        """A part that is a single unit (it reads more than one object's worth)."""
        return UnitKind(name, lambda ctx: (WHOLE,), lambda ctx, _: compute(ctx))

    def __repr__(self) -> str:
        return f"UnitKind({self.name})"


# A unit's identity: its kind and its member's ident.
UnitId = tuple[UnitKind[Any], Hashable]
