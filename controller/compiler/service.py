"""Services in table 60 (non-conntrack mode: ovs-subnet and ovs-multitenant).

Every node carries every Service of the cluster: a fragment flow per ClusterIP and one flow
per TCP/UDP port, loading the service's VNID into reg1 and tun0 into reg2 for table 80.
"""

from __future__ import annotations

from collections.abc import Hashable
from ipaddress import IPv4Network

from controller.compiler.context import NodeContext
from controller.compiler.unit import UnitKind
from controller.pipeline.cookies import Owner, OwnerKind
from controller.pipeline.flow import LoadReg, Match, Proto
from controller.pipeline.registers import DST_VNID, OUT_PORT
from controller.pipeline.tables import Table
from topology.model import TUN0_OFPORT, Service, Topology

PROTOCOLS = {"TCP": Proto.TCP, "UDP": Proto.UDP}  # SCTP arrived in 4.2: 3.11 skips it


def key(svc: Service) -> str:
    return f"{svc.namespace}/{svc.name}"


def owner(svc: Service) -> Owner:
    return Owner(OwnerKind.SERVICE, key(svc))


def _services(ctx: NodeContext) -> list[Service]:
    if ctx.conntrack:
        return []  # conntrack mode sends all service traffic to tun0 (static flow)
    return [svc for svc in ctx.topology.services if svc.cluster_ip is not None]


def add_service(ctx: NodeContext, svc: Service) -> None:
    assert svc.cluster_ip is not None
    own, ip = owner(svc), IPv4Network(int(svc.cluster_ip))
    actions = (LoadReg(DST_VNID, ctx.vnid(svc.namespace)), LoadReg(OUT_PORT, TUN0_OFPORT))
    ctx.out.add(own, Table.SERVICE, 100, Match(proto=Proto.IP, nw_dst=ip, ip_frag_later=True),
                actions, Table.INGRESS_POLICY)
    for port in svc.ports:
        proto = PROTOCOLS.get(port.protocol)
        if proto is None:
            ctx.out.warnings.append(f"Service/{svc.namespace}/{svc.name}: port {port.port}/"
                                    f"{port.protocol} not handled by 3.11 (TCP and UDP only)")
            continue
        ctx.out.add(own, Table.SERVICE, 100, Match(proto=proto, nw_dst=ip, tp_dst=port.port),
                    actions, Table.INGRESS_POLICY)


def _positions(topology: Topology) -> dict[Hashable, int]:
    return {key(svc): i for i, svc in enumerate(topology.services)}


UNIT = UnitKind("service", _services, add_service, key, _positions)
