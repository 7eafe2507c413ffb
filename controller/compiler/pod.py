"""Local pods: anti-spoofing and source VNID (20, 25), ARP (40) and IP (70) delivery."""

from __future__ import annotations

from collections.abc import Hashable
from ipaddress import IPv4Network

from controller.compiler.context import NodeContext
from controller.compiler.unit import UnitKind
from controller.pipeline.cookies import Owner, OwnerKind
from controller.pipeline.flow import LoadReg, Match, Output, Proto
from controller.pipeline.registers import DST_VNID, OUT_PORT, SRC_VNID
from controller.pipeline.tables import Table
from topology.model import Pod, Topology


def owner(pod: Pod) -> Owner:
    return Owner(OwnerKind.POD, pod.key)


def arp_sha_of(pod: Pod) -> tuple[str, str]:
    """Only the low 32 bits of the sender MAC are checked: they must be the pod's IP."""
    return ("00:00:" + pod.mac[6:], "00:00:ff:ff:ff:ff")


def add_pod(ctx: NodeContext, pod: Pod, ofport: int) -> None:
    add, own, vnid = ctx.out.add, owner(pod), ctx.vnid(pod.namespace)
    ip = IPv4Network(int(pod.ip))  # from the integer: 3x faster than from the address
    load_src = (LoadReg(SRC_VNID, vnid),)
    add(own, Table.POD_INGRESS, 100,
        Match(in_port=ofport, proto=Proto.ARP, arp_spa=ip, arp_sha=arp_sha_of(pod)),
        load_src, Table.CONNTRACK_COMMIT)
    add(own, Table.POD_INGRESS, 100, Match(in_port=ofport, proto=Proto.IP, nw_src=ip),
        load_src, Table.CONNTRACK_COMMIT)
    if ctx.conntrack:
        add(own, Table.SERVICE_RETURN, 100, Match(proto=Proto.IP, nw_src=ip), load_src,
            Table.ROUTING)
    add(own, Table.ARP_LOCAL, 100, Match(proto=Proto.ARP, arp_tpa=ip), (Output(ofport),))
    add(own, Table.IP_LOCAL, 100, Match(proto=Proto.IP, nw_dst=ip),
        (LoadReg(DST_VNID, vnid), LoadReg(OUT_PORT, ofport)), Table.INGRESS_POLICY)


LocalPod = tuple[Pod, int]  # a pod of this node whose port is on the bridge, and its ofport


def _local_pods(ctx: NodeContext) -> list[LocalPod]:
    return ctx.local_pods


def _add_local_pod(ctx: NodeContext, local: LocalPod) -> None:
    add_pod(ctx, *local)


def _key(local: LocalPod) -> str:
    return local[0].key


def _positions(topology: Topology) -> dict[Hashable, int]:
    return {pod.key: i for i, pod in enumerate(topology.pods)}


UNIT = UnitKind("pod", _local_pods, _add_local_pod, _key, _positions)
