"""Remote HostSubnets: VXLAN source check (10), ARP (50) and IP (90) through the tunnel."""

from __future__ import annotations

from collections.abc import Hashable

from controller.compiler.context import NodeContext
from controller.compiler.unit import UnitKind
from controller.pipeline.cookies import Owner, OwnerKind
from controller.pipeline.flow import (
    Action,
    LoadTunId,
    Match,
    MoveRegToTunId,
    Output,
    Proto,
    SetField,
    SetFieldName,
)
from controller.pipeline.registers import SRC_VNID
from controller.pipeline.tables import Table
from topology.model import VXLAN_OFPORT, HostSubnet, Topology

REPLICATION = Owner(OwnerKind.MULTICAST, "vxlan-replication")


def owner(hs: HostSubnet) -> Owner:
    return Owner(OwnerKind.HOST_SUBNET, hs.name)


def to_node(hs: HostSubnet) -> tuple[Action, ...]:
    """Tunnel to `hs`'s pod subnet, carrying the source VNID (or the F5 VTEP's fixed one)."""
    if hs.fixed_vnid is None:
        return tunnel_to(hs)
    return (LoadTunId(hs.fixed_vnid), SetField(SetFieldName.TUN_DST, str(hs.host_ip)),
            Output(VXLAN_OFPORT))


def tunnel_to(hs: HostSubnet) -> tuple[Action, ...]:
    """Tunnel to `hs` carrying the source VNID, whatever the node (3.11's egress-IP flow
    never loads a fixed VNID: `SetNamespaceEgressViaEgressIP`)."""
    return (MoveRegToTunId(SRC_VNID), SetField(SetFieldName.TUN_DST, str(hs.host_ip)),
            Output(VXLAN_OFPORT))


def add_remote(ctx: NodeContext, hs: HostSubnet) -> None:
    own = owner(hs)
    ctx.out.add(own, Table.VXLAN_INGRESS, 100, Match(tun_src=hs.host_ip), goto=Table.ROUTING)
    ctx.out.add(own, Table.ARP_REMOTE, 100, Match(proto=Proto.ARP, arp_tpa=hs.subnet), to_node(hs))
    ctx.out.add(own, Table.IP_REMOTE, 100, Match(proto=Proto.IP, nw_dst=hs.subnet), to_node(hs))


def multicast_replication(ctx: NodeContext) -> None:
    """Table 111: head-end replication to every remote node (3.11 sorts the action text)."""
    remote_ips = sorted(str(hs.host_ip) for hs in ctx.remote_subnets)
    actions: list[Action] = [MoveRegToTunId(SRC_VNID)] if remote_ips else []
    for ip in remote_ips:
        actions += [SetField(SetFieldName.TUN_DST, ip), Output(VXLAN_OFPORT)]
    ctx.out.add(REPLICATION, Table.MULTICAST_VXLAN, 100, Match(), actions, Table.MULTICAST_LOCAL)


def _remote_subnets(ctx: NodeContext) -> list[HostSubnet]:
    return ctx.remote_subnets


def _name(hs: HostSubnet) -> str:
    return hs.name


def _positions(topology: Topology) -> dict[Hashable, int]:
    return {hs.name: i for i, hs in enumerate(topology.host_subnets)}


UNIT = UnitKind("remote-node", _remote_subnets, add_remote, _name, _positions)
# after every remote node's flows, as 3.11 adds it once it has seen them all
REPLICATION_UNIT = UnitKind.whole("replication", multicast_replication)
