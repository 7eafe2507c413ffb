"""Multicast: table 110 (may V send?) and 120 (deliver to V's local pods).

A VNID is multicast-enabled only if every namespace sharing it carries the annotation
(3.11 `GetMulticastEnabled`).  Table 111's replication list is kept with the HostSubnets.
"""

from __future__ import annotations

from controller.compiler.context import NodeContext
from controller.compiler.unit import UnitKind
from controller.pipeline.cookies import Owner, OwnerKind
from controller.pipeline.flow import DEFAULT_PRIORITY, Match, Output
from controller.pipeline.tables import Table


def owner(vnid: int) -> Owner:
    return Owner(OwnerKind.MULTICAST, str(vnid))


def enabled_vnids(ctx: NodeContext) -> list[int]:
    if not ctx.plugin.supports_vnids:
        return []
    spaces = {nn.name: nn for nn in ctx.topology.net_namespaces}
    return sorted(vnid for vnid, names in ctx.namespaces_by_vnid.items()
                  if all(spaces[name].multicast_enabled for name in names))


def compile_multicast(ctx: NodeContext) -> None:
    enabled = enabled_vnids(ctx)
    ports_by_vnid: dict[int, list[int]] = {vnid: [] for vnid in enabled}
    for pod, port in ctx.local_pods:
        ports_of_vnid = ports_by_vnid.get(ctx.vnid(pod.namespace))
        if ports_of_vnid is not None:
            ports_of_vnid.append(port)
    for vnid in enabled:
        own = owner(vnid)
        ctx.out.add(own, Table.MULTICAST_OUT, DEFAULT_PRIORITY, Match(reg0=vnid),
                    goto=Table.MULTICAST_VXLAN)
        ports = ports_by_vnid[vnid]
        if ports:
            # 3.11 sorts the "output:N" strings, so 10 comes before 9
            outputs = tuple(Output(p) for p in sorted(ports, key=str))
            ctx.out.add(own, Table.MULTICAST_LOCAL, 100, Match(reg0=vnid), outputs)


UNIT = UnitKind.whole("multicast", compile_multicast)
