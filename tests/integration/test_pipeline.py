"""The compiled pipeline on real Open vSwitch: load `osdn render` output, trace packets.

Every test here loads flows through `ovs-ofctl --bundle add-flows` into bridges of a private
OVS instance and reads the verdict back from `ovs-appctl ofproto/trace`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from controller.compiler import Settings
from controller.ovs.privateovs import PrivateOvs
from lab.tracelab import (
    TraceLab,
    build_lab,
    check_case,
    load_cases,
    send_from_pod,
    tun_id_of,
)
from topology.load import load_topology
from topology.model import EgressNetworkPolicy, NetNamespace, Plugin, Topology

pytestmark = pytest.mark.ovs
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SEED, RICH = EXAMPLES / "seed-cluster", EXAMPLES / "rich-cluster"
NO_DNS = Settings(resolver=lambda name: ())
_lab_counter = itertools.count()


@pytest.fixture
def make_lab(private_ovs: PrivateOvs) -> Iterator:
    """Build a lab in the session's OVS; remove exactly its bridges afterwards."""
    labs: list[TraceLab] = []

    def make(topology: Topology) -> TraceLab:
        lab = build_lab(private_ovs, topology, NO_DNS, prefix=f"{next(_lab_counter)}")
        labs.append(lab)
        return lab

    yield make
    for lab in labs:
        for bridge in lab.bridges.values():
            private_ovs.del_bridge(bridge)


def pods_of(topology: Topology):
    return [pod for pod in topology.pods if pod.ofport is not None]


# ------------------------------------------------------------------ seed traces T1-T8

@pytest.mark.parametrize("case", load_cases(SEED / "traces.yaml"), ids=lambda c: c.name)
def test_seed_trace(make_lab, case) -> None:
    lab = make_lab(load_topology([SEED]))
    result = lab.trace(case.node, case.flow)
    assert check_case(case, result) == [], result.raw


def test_seed_trace_t8_mark_follows_the_masquerade_bit(private_ovs: PrivateOvs) -> None:
    topology = load_topology([SEED])
    lab = build_lab(private_ovs, topology, Settings(masquerade_bit=1, resolver=lambda n: ()),
                    prefix="mb")
    try:
        t8 = next(c for c in load_cases(SEED / "traces.yaml") if c.name == "T8")
        # 0x82f8b2 has bit 1 set: (0x82f8b2 | 0x01000000) ^ 0x2
        assert lab.trace(t8.node, t8.flow).field("pkt_mark") == "0x182f8b0"
    finally:
        for bridge in lab.bridges.values():
            private_ovs.del_bridge(bridge)


# ------------------------------------------------------------------ replies and egress IPs

# T7's packet (kube-public's pod on master; kube-public's egress IP is on infra), under
# ovs-networkpolicy, as conntrack would classify it: a new connection, or a reply to one
# that came from outside (the userspace datapath cannot carry such an outside reply here).
T7_FLOW = "in_port=4,tcp,dl_src=0a:58:0a:80:00:38,nw_src=10.128.0.56,nw_dst=192.168.108.1"


def test_reply_from_an_egress_ip_namespace_leaves_locally(make_lab) -> None:
    """3.11.z origin #26389: table 100's ct_state=+rpl flow sends replies to 101, not to the
    egress node."""
    lab = make_lab(load_topology([SEED], plugin=Plugin.NETWORKPOLICY))
    reply = lab.trace("master.ocp.cn", T7_FLOW + ",ct_state=trk|est|rpl")
    assert reply.tables == [0, 20, 21, 30, 100, 101], reply.raw
    assert reply.output_ports() == [2] and not reply.tunnel, reply.raw
    new = lab.trace("master.ocp.cn", T7_FLOW + ",ct_state=trk|new")
    assert new.tables == [0, 20, 21, 30, 100], new.raw
    assert new.output_ports() == [1] and new.tunnel.get("dst") == "192.168.108.113", new.raw


def test_egress_ip_to_a_fixed_vnid_host_carries_the_pods_vnid(make_lab) -> None:
    """3.11's table-100 flow moves reg0 into tun_id even when the egress node is a
    fixed-VNID (F5) host; only its subnet's flows (50, 90) load the fixed VNID."""
    topology = load_topology([SEED])
    hosts = tuple(replace(hs, fixed_vnid=77) if hs.host == "infra.ocp.cn" else hs
                  for hs in topology.host_subnets)
    lab = make_lab(replace(topology, host_subnets=hosts))
    out = lab.trace("master.ocp.cn", T7_FLOW + ",ct_state=trk")
    assert out.tables == [0, 20, 21, 30, 100], out.raw
    assert out.tunnel.get("dst") == "192.168.108.113" and tun_id_of(out) == 0x82F8B2, out.raw


def test_joined_namespaces_with_egress_ips_leave_by_one_node(make_lab) -> None:
    """Two NetNamespaces of kube-public's VNID list egress IPs on different nodes: 3.11 keeps
    one list per VNID, the last NetNamespace's by name ("zz-joined": node1's .201)."""
    topology = load_topology([SEED])
    hosts = tuple(replace(hs, egress_ips=(IPv4Address("192.168.108.201"),))
                  if hs.host == "node1.ocp.cn" else hs for hs in topology.host_subnets)
    joined = NetNamespace("zz-joined", "uid-zz", 0x82F8B2, (IPv4Address("192.168.108.201"),))
    lab = make_lab(replace(topology, host_subnets=hosts,
                           net_namespaces=(*topology.net_namespaces, joined)))
    assert sum("priority=100" in line
               for line in lab.ovs.dump_flows(lab.bridges["master.ocp.cn"], 100)) == 1
    out = lab.trace("master.ocp.cn", T7_FLOW + ",ct_state=trk")
    assert out.tunnel.get("dst") == "192.168.108.111" and tun_id_of(out) == 0x82F8B2, out.raw


def test_a_host_subnet_with_a_host_ip_in_the_pod_network_is_ignored(make_lab) -> None:
    """3.11's ValidateNodeIP: node2 ignores a HostSubnet whose hostIP lies in the cluster
    network: no VXLAN accepted from it, no ARP or IP sent to its subnet, no multicast copy."""
    topology = load_topology([SEED])
    bad = replace(topology.host_subnets[0], name="bad", uid="uid-bad", host="bad",
                  host_ip=IPv4Address("10.131.200.9"), subnet=IPv4Network("10.128.200.0/23"),
                  datapath_id=0xBAD, egress_ips=())
    lab = make_lab(replace(topology, host_subnets=(*topology.host_subnets, bad)))
    assert "bad" not in lab.bridges  # its own node does not start
    pod = "in_port=4,dl_src=0a:58:0a:82:00:06"
    to_bad = lab.trace("node2.ocp.cn", f"{pod},tcp,nw_src=10.130.0.6,nw_dst=10.128.200.5,"
                                       "ct_state=trk")
    assert to_bad.dropped and to_bad.tables[-1] == 90, to_bad.raw
    arp = lab.trace("node2.ocp.cn", f"{pod},arp,arp_spa=10.130.0.6,arp_tpa=10.128.200.5,"
                                    "arp_sha=0a:58:0a:82:00:06,arp_op=1")
    assert arp.dropped and arp.tables[-1] == 50, arp.raw
    from_bad = lab.trace("node2.ocp.cn", "in_port=1,tun_id=0,tun_src=10.131.200.9,tcp,"
                                         "nw_src=10.128.200.5,nw_dst=10.130.0.6,ct_state=trk")
    assert from_bad.dropped and from_bad.tables == [0, 10], from_bad.raw
    multicast = lab.ovs.dump_flows(lab.bridges["node2.ocp.cn"], 111)
    assert "10.131.200.9" not in " ".join(multicast) and "192.168.108.113" in " ".join(multicast)
    to_node1 = lab.trace("node2.ocp.cn", f"{pod},tcp,nw_src=10.130.0.6,nw_dst=10.131.0.4,"
                                         "ct_state=trk")
    assert to_node1.tunnel.get("dst") == "192.168.108.111", to_node1.raw


def test_an_empty_egress_network_policy_is_ignored(make_lab) -> None:
    """3.11 keeps an EgressNetworkPolicy only if it has rules: an empty second one in
    frontend leaves frontend's policy in force (no "several policies: drop all")."""
    topology = load_topology([RICH], plugin=Plugin.MULTITENANT)
    empty = EgressNetworkPolicy("frontend", "empty", "uid-empty")
    lab = make_lab(replace(topology, egress_network_policies=(
        *topology.egress_network_policies, empty)))
    web = next(pod for pod in pods_of(topology) if pod.namespace == "frontend")
    allowed = send_from_pod(lab, web, "192.168.50.7")  # frontend's policy allows its /24
    assert allowed.delivered_to == 2, allowed
    denied = send_from_pod(lab, web, "203.0.113.9")  # and denies the rest
    assert denied.delivered_to is None and denied.hops[-1][1].tables[-1] == 101, denied


# ------------------------------------------------------------------ every flow loads

@pytest.mark.parametrize("plugin", list(Plugin), ids=lambda p: p.name.lower())
@pytest.mark.parametrize("cluster", [SEED, RICH], ids=lambda p: p.name)
def test_every_node_loads_exactly_its_flows(make_lab, cluster: Path, plugin: Plugin) -> None:
    lab = make_lab(load_topology([cluster], plugin=plugin))
    for host, bridge in lab.bridges.items():
        dumped = lab.ovs.dump_flows(bridge)
        assert len(dumped) == len(lab.flows[host].flows), host
        cookies = {int(line.split(",")[0].split("=")[1], 16) for line in dumped}
        assert cookies == {flow.cookie for flow in lab.flows[host].flows}


# ------------------------------------------------------------------ isolation

def expected_multitenant(topology: Topology, src, dst) -> bool:
    a, b = topology.vnid_of(src.namespace), topology.vnid_of(dst.namespace)
    return a == b or 0 in (a, b)


@pytest.mark.parametrize("plugin", [Plugin.MULTITENANT, Plugin.SUBNET], ids=["multitenant",
                                                                               "subnet"])
def test_pod_to_pod_matrix(make_lab, plugin: Plugin) -> None:
    topology = load_topology([RICH], plugin=plugin)
    lab = make_lab(topology)
    wrong = []
    for src, dst in itertools.permutations(pods_of(topology), 2):
        delivery = send_from_pod(lab, src, str(dst.ip))
        allowed = plugin is Plugin.SUBNET or expected_multitenant(topology, src, dst)
        got = delivery.delivered_to
        if allowed and got != dst.ofport:
            wrong.append(f"{src.key} -> {dst.key}: expected port {dst.ofport}, got {got}")
        if not allowed and (got is not None or delivery.last.tables[-1] != 80):
            wrong.append(f"{src.key} -> {dst.key}: expected drop at 80, got port {got} "
                         f"after tables {delivery.last.tables}")
    assert not wrong, "\n".join(wrong)


def test_multitenant_matrix_has_both_outcomes() -> None:
    """Guard for the matrix test: the rich cluster must contain isolated and open pairs,
    same-node and cross-node, or the matrix proves little."""
    topology = load_topology([RICH])
    pairs = list(itertools.permutations(pods_of(topology), 2))
    kinds = {(expected_multitenant(topology, s, d), s.node == d.node) for s, d in pairs}
    assert kinds == {(True, True), (True, False), (False, True), (False, False)}


# ------------------------------------------------------------------ what table 20 / 10 / 100 drop

def test_spoofed_source_ip_is_dropped_at_table_20(make_lab) -> None:
    topology = load_topology([SEED])
    lab = make_lab(topology)
    pod = next(p for p in pods_of(topology) if p.node == "node2.ocp.cn")
    result = lab.trace(pod.node, f"in_port={pod.ofport},tcp,nw_src=10.130.0.99,"
                                 f"nw_dst=10.130.0.5,ct_state=trk")
    assert result.dropped and result.tables[-1] == 20, result.raw


def test_spoofed_arp_sender_is_dropped_at_table_20(make_lab) -> None:
    topology = load_topology([SEED])
    lab = make_lab(topology)
    pod = next(p for p in pods_of(topology) if p.node == "node2.ocp.cn")
    good = f"in_port={pod.ofport},arp,arp_spa={pod.ip},arp_tpa=10.130.0.1,arp_op=1"
    assert lab.trace(pod.node, f"{good},arp_sha={pod.mac}").output_ports() == [2]
    spoofed = lab.trace(pod.node, f"{good},arp_sha=0a:58:0a:82:00:63")
    assert spoofed.dropped and spoofed.tables[-1] == 20, spoofed.raw


def test_vxlan_from_a_non_node_is_dropped_at_table_10(make_lab) -> None:
    lab = make_lab(load_topology([SEED]))
    result = lab.trace("node1.ocp.cn", "in_port=1,tun_id=0,tun_src=192.168.108.99,tcp,"
                                       "nw_src=10.130.0.6,nw_dst=10.131.0.4,ct_state=trk")
    assert result.dropped and result.tables == [0, 10], result.raw


def test_vxlan_sent_by_a_pod_is_dropped(make_lab) -> None:
    topology = load_topology([RICH])
    lab = make_lab(topology)
    pod = pods_of(topology)[0]
    port = topology.cluster_network.vxlan_port
    result = lab.trace(pod.node, f"in_port={pod.ofport},udp,dl_src={pod.mac},nw_src={pod.ip},"
                                 f"nw_dst=192.168.50.200,udp_dst={port},ct_state=trk")
    assert result.dropped and result.tables[-1] == 100, result.raw
