"""Egress IPs in table 100, as 3.11's EgressIPTracker decides them.

3.11 keeps one egress-IP list per VNID: of namespaces sharing a VNID, the NetNamespace whose
name sorts last decides (`topology.model.egress_ip_sources`), so a VNID gets exactly one
table-100 flow.  An egress IP is *active* when exactly one HostSubnet and exactly one VNID
claim it and that VNID claims no second IP on the same node.  A namespace uses the first of its
IPs that is active (all nodes are taken to be online: the VXLAN monitor's failover needs a
live cluster); if a listed IP is claimed by several namespaces, or none is usable, the
namespace's external traffic is dropped.
"""

from __future__ import annotations

from collections import defaultdict
from ipaddress import IPv4Address

from controller.compiler.context import NodeContext
from controller.compiler.hostsubnet import tunnel_to
from controller.compiler.unit import UnitKind
from controller.pipeline.cookies import Owner, OwnerKind
from controller.pipeline.flow import Action, Conntrack, Match, Proto, SetField, SetFieldName
from controller.pipeline.tables import Table
from topology.model import HostSubnet, NetNamespace, Topology, egress_ip_sources


def mark_for_vnid(vnid: int, masquerade_bit: int) -> int:
    """3.11 `getMarkForVNID`: a non-zero mark that never has kube-proxy's masquerade bit."""
    bit = 1 << masquerade_bit
    mark = 0xFF000000 if vnid == 0 else vnid
    if mark & bit:
        mark = (mark | 0x01000000) ^ bit
    return mark


def owner(nn: NetNamespace) -> Owner:
    return Owner(OwnerKind.EGRESS_IP, nn.name)


def egress_nodes(topology: Topology) -> dict[NetNamespace, HostSubnet | None]:
    """Each NetNamespace with egressIPs -> the node its traffic leaves from (None = drop)."""
    nodes_by_ip: dict[IPv4Address, list[HostSubnet]] = defaultdict(list)
    for hs in topology.host_subnets:
        for ip in hs.egress_ips:
            nodes_by_ip[ip].append(hs)
    sources = egress_ip_sources(topology.net_namespaces)
    spaces_by_ip: dict[IPv4Address, list[NetNamespace]] = defaultdict(list)
    for nn in sources.values():
        for ip in dict.fromkeys(nn.egress_ips):  # a repeated IP is one claim
            spaces_by_ip[ip].append(nn)

    def active(ip: IPv4Address) -> bool:
        nodes, spaces = nodes_by_ip[ip], spaces_by_ip[ip]
        if len(nodes) != 1 or len(spaces) != 1:
            return False
        return not any(other != ip and nodes_by_ip[other][:1] == nodes
                       for other in spaces[0].egress_ips)

    result: dict[NetNamespace, HostSubnet | None] = {}
    for nn in topology.net_namespaces:
        if sources.get(nn.netid) is not nn:
            continue
        chosen: HostSubnet | None = None
        for ip in nn.egress_ips:
            if len(spaces_by_ip[ip]) > 1:
                chosen = None
                break
            if chosen is None and active(ip):
                chosen = nodes_by_ip[ip][0]
        result[nn] = chosen
    return result


def compile_egress_ips(ctx: NodeContext) -> None:
    if not ctx.plugin.supports_vnids:
        return
    for nn, node in egress_nodes(ctx.topology).items():
        own, vnid = owner(nn), nn.netid
        if node is None:
            ctx.out.add(own, Table.EGRESS_IP, 100, Match(reg0=vnid))
        elif node.host_ip == ctx.node.host_ip:
            mark = mark_for_vnid(vnid, ctx.settings.masquerade_bit)
            ctx.out.add(own, Table.EGRESS_IP, 100, Match(proto=Proto.IP, reg0=vnid),
                        (SetField(SetFieldName.ETH_DST, ctx.tun0_mac),
                         SetField(SetFieldName.PKT_MARK, mark)), Table.EGRESS_FIREWALL)
        else:
            # 3.11.z (origin #23610): commit so that policy accepts the replies
            commit: tuple[Action, ...] = (Conntrack(commit=True),) if ctx.conntrack else ()
            # the pod's VNID, even to a fixed-VNID (F5) host: the egress node reads it
            ctx.out.add(own, Table.EGRESS_IP, 100, Match(proto=Proto.IP, reg0=vnid),
                        commit + tunnel_to(node))


UNIT = UnitKind.whole("egress-ip", compile_egress_ips)
