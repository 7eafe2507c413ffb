"""ovs-multitenant's table-80 "same VNID" rules (3.11 `EnsureVNIDRules`).

A VNID gets `reg0=V, reg1=V -> output:reg2` once a local pod of V exists or a Service of V
exists anywhere in the cluster (services are watched cluster-wide).  VNID 0 needs none: the
plugin's reg0=0 / reg1=0 rules cover it.  3.11 removed unused ones hourly; a compiler that
derives them from the topology has none to remove.
"""

from __future__ import annotations

from controller.compiler.context import NodeContext
from controller.compiler.unit import UnitKind, itself
from controller.pipeline.cookies import Owner, OwnerKind
from controller.pipeline.flow import Match, OutputReg
from controller.pipeline.registers import OUT_PORT
from controller.pipeline.tables import Table
from topology.model import Plugin


def owner(vnid: int) -> Owner:
    return Owner(OwnerKind.VNID, str(vnid))


def _vnids(ctx: NodeContext) -> list[int]:
    if ctx.plugin is not Plugin.MULTITENANT:
        return []
    return sorted(ctx.vnids_in_use)


def add_vnid_rule(ctx: NodeContext, vnid: int) -> None:
    ctx.out.add(owner(vnid), Table.INGRESS_POLICY, 100, Match(reg0=vnid, reg1=vnid),
                (OutputReg(OUT_PORT),))


UNIT = UnitKind("vnid-rule", _vnids, add_vnid_rule, itself)
