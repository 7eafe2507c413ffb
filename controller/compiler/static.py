"""Flows every br0 gets at setup (3.11 `SetupOVS`) and at plugin start, plus the note."""

from __future__ import annotations

from ipaddress import IPv4Network

from controller.compiler.context import NodeContext
from controller.compiler.unit import UnitKind
from controller.pipeline.cookies import Owner, OwnerKind
from controller.pipeline.flow import (
    DEFAULT_PRIORITY,
    Conntrack,
    Match,
    MoveTunIdToReg,
    Note,
    Output,
    OutputReg,
    Proto,
)
from controller.pipeline.registers import OUT_PORT, SRC_VNID
from controller.pipeline.tables import Table
from topology.model import TUN0_OFPORT, VXLAN_OFPORT, Plugin

RULE_VERSION = 7  # openshift-sdn 3.11's ruleVersion: the flows below are its version 7
MULTICAST_NET = IPv4Network("224.0.0.0/4")
STATIC = Owner(OwnerKind.STATIC, "setup")
VERSION = Owner(OwnerKind.VERSION_NOTE, "table-253")
TO_TUN0 = (Output(TUN0_OFPORT),)
TO_REG2 = (OutputReg(OUT_PORT),)


def version_note(plugin: Plugin) -> bytes:
    return bytes([plugin.plugin_id, RULE_VERSION])


def compile_static(ctx: NodeContext) -> None:
    _classifier(ctx)
    _pipeline_defaults(ctx)
    _routing(ctx)
    _service_defaults(ctx)
    _ingress_policy_base(ctx)
    _egress_defaults(ctx)
    ctx.out.add(VERSION, Table.VERSION_NOTE, DEFAULT_PRIORITY, Match(),
                (Note(version_note(ctx.plugin)),))


def _classifier(ctx: NodeContext) -> None:
    add, local = ctx.out.add, ctx.node.subnet
    if ctx.conntrack:
        add(STATIC, Table.CLASSIFIER, 300, Match(proto=Proto.IP, ct_state="-trk"),
            (Conntrack(table=Table.CLASSIFIER),))
    from_vxlan = (MoveTunIdToReg(SRC_VNID),)
    for cidr in ctx.cluster_cidrs:
        for match in (Match(in_port=VXLAN_OFPORT, proto=Proto.ARP, arp_spa=cidr, arp_tpa=local),
                      Match(in_port=VXLAN_OFPORT, proto=Proto.IP, nw_src=cidr),
                      Match(in_port=VXLAN_OFPORT, proto=Proto.IP, nw_dst=cidr)):
            add(STATIC, Table.CLASSIFIER, 200, match, from_vxlan, Table.VXLAN_INGRESS)
    add(STATIC, Table.CLASSIFIER, 150, Match(in_port=VXLAN_OFPORT))
    if ctx.conntrack:
        add(STATIC, Table.CLASSIFIER, 400, Match(in_port=TUN0_OFPORT, proto=Proto.IP,
                                                 nw_src=ctx.gateway_net), goto=Table.ROUTING)
        for cidr in ctx.cluster_cidrs:
            add(STATIC, Table.CLASSIFIER, 300, Match(in_port=TUN0_OFPORT, proto=Proto.IP,
                                                     nw_src=local, nw_dst=cidr),
                goto=Table.SERVICE_RETURN)
    add(STATIC, Table.CLASSIFIER, 250, Match(in_port=TUN0_OFPORT, proto=Proto.IP,
                                             nw_dst=MULTICAST_NET))
    for cidr in ctx.cluster_cidrs:
        add(STATIC, Table.CLASSIFIER, 200, Match(in_port=TUN0_OFPORT, proto=Proto.ARP,
                                                 arp_spa=ctx.gateway_net, arp_tpa=cidr),
            goto=Table.ROUTING)
    add(STATIC, Table.CLASSIFIER, 200, Match(in_port=TUN0_OFPORT, proto=Proto.IP),
        goto=Table.ROUTING)
    add(STATIC, Table.CLASSIFIER, 150, Match(in_port=TUN0_OFPORT))
    add(STATIC, Table.CLASSIFIER, 100, Match(proto=Proto.ARP), goto=Table.POD_INGRESS)
    add(STATIC, Table.CLASSIFIER, 100, Match(proto=Proto.IP), goto=Table.POD_INGRESS)
    add(STATIC, Table.CLASSIFIER, 0, Match())


def _pipeline_defaults(ctx: NodeContext) -> None:
    """The priority-0 flows of the tables that the per-object code fills."""
    add = ctx.out.add
    for table in (Table.VXLAN_INGRESS, Table.POD_INGRESS, Table.ARP_LOCAL, Table.ARP_REMOTE,
                  Table.SERVICE, Table.IP_LOCAL, Table.INGRESS_POLICY, Table.IP_REMOTE,
                  Table.MULTICAST_OUT, Table.MULTICAST_LOCAL):
        add(STATIC, table, 0, Match())
    add(STATIC, Table.CONNTRACK_COMMIT, 0, Match(), goto=Table.ROUTING)
    if ctx.conntrack:
        add(STATIC, Table.SERVICE_RETURN, 0, Match())
        for cidr in ctx.cluster_cidrs:
            add(STATIC, Table.CONNTRACK_COMMIT, 200, Match(proto=Proto.IP, nw_dst=cidr),
                (Conntrack(commit=True, table=Table.ROUTING),))


def _routing(ctx: NodeContext) -> None:
    add, local, gw = ctx.out.add, ctx.node.subnet, ctx.gateway_net
    add(STATIC, Table.ROUTING, 300, Match(proto=Proto.ARP, arp_tpa=gw), TO_TUN0)
    add(STATIC, Table.ROUTING, 200, Match(proto=Proto.ARP, arp_tpa=local), goto=Table.ARP_LOCAL)
    for cidr in ctx.cluster_cidrs:
        add(STATIC, Table.ROUTING, 100, Match(proto=Proto.ARP, arp_tpa=cidr), goto=Table.ARP_REMOTE)
    add(STATIC, Table.ROUTING, 300, Match(proto=Proto.IP, nw_dst=gw), TO_TUN0)
    add(STATIC, Table.ROUTING, 100, Match(proto=Proto.IP, nw_dst=ctx.service_network),
        goto=Table.SERVICE)
    if ctx.conntrack:
        add(STATIC, Table.ROUTING, 300, Match(proto=Proto.IP, nw_dst=local, ct_state="+rpl"),
            (Conntrack(nat=True, table=Table.IP_LOCAL),))
    add(STATIC, Table.ROUTING, 200, Match(proto=Proto.IP, nw_dst=local), goto=Table.IP_LOCAL)
    for cidr in ctx.cluster_cidrs:
        add(STATIC, Table.ROUTING, 100, Match(proto=Proto.IP, nw_dst=cidr), goto=Table.IP_REMOTE)
    add(STATIC, Table.ROUTING, 50, Match(in_port=VXLAN_OFPORT, proto=Proto.IP,
                                         nw_dst=MULTICAST_NET), goto=Table.MULTICAST_LOCAL)
    add(STATIC, Table.ROUTING, 25, Match(proto=Proto.IP, nw_dst=MULTICAST_NET),
        goto=Table.MULTICAST_OUT)
    add(STATIC, Table.ROUTING, 0, Match(proto=Proto.IP), goto=Table.EGRESS_IP)
    add(STATIC, Table.ROUTING, 0, Match(proto=Proto.ARP))


def _service_defaults(ctx: NodeContext) -> None:
    if ctx.conntrack:
        ctx.out.add(STATIC, Table.SERVICE, 200, Match(), TO_TUN0)
    else:
        ctx.out.add(STATIC, Table.SERVICE, 200, Match(reg0=0), TO_TUN0)


def _ingress_policy_base(ctx: NodeContext) -> None:
    """Table 80's node rule and the plugin's Start() flows."""
    add = ctx.out.add
    add(STATIC, Table.INGRESS_POLICY, 300, Match(proto=Proto.IP, nw_src=ctx.gateway_net), TO_REG2)
    if ctx.plugin is Plugin.SUBNET:
        add(STATIC, Table.INGRESS_POLICY, 200, Match(), TO_REG2)
    elif ctx.plugin is Plugin.MULTITENANT:
        add(STATIC, Table.INGRESS_POLICY, 200, Match(reg0=0), TO_REG2)
        add(STATIC, Table.INGRESS_POLICY, 200, Match(reg1=0), TO_REG2)
    else:
        add(STATIC, Table.INGRESS_POLICY, 200, Match(proto=Proto.IP, ct_state="+rpl"), TO_REG2)


def _egress_defaults(ctx: NodeContext) -> None:
    add, port = ctx.out.add, ctx.topology.cluster_network.vxlan_port
    node_ip = IPv4Network(ctx.node.host_ip)
    # 3.11.z (origin #21376): pods may not send VXLAN out of the SDN
    add(STATIC, Table.EGRESS_IP, 300, Match(proto=Proto.UDP, tp_dst=port))
    # DNS to the node bypasses egress IPs and the egress firewall
    add(STATIC, Table.EGRESS_IP, 200, Match(proto=Proto.TCP, nw_dst=node_ip, tp_dst=53), TO_TUN0)
    add(STATIC, Table.EGRESS_IP, 200, Match(proto=Proto.UDP, nw_dst=node_ip, tp_dst=53), TO_TUN0)
    # 3.11.z (origin #26389, openshift/sdn#236): a reply to a connection that came from
    # outside leaves as any reply does, not through the egress IP.  Written for every plugin,
    # as upstream does; without conntrack (subnet, multitenant) nothing is ever +rpl.
    add(STATIC, Table.EGRESS_IP, 150, Match(ct_state="+rpl"), goto=Table.EGRESS_FIREWALL)
    add(STATIC, Table.EGRESS_IP, 0, Match(), goto=Table.EGRESS_FIREWALL)
    add(STATIC, Table.EGRESS_FIREWALL, 0, Match(), TO_TUN0)


UNIT = UnitKind.whole("static", compile_static)
