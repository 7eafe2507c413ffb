"""Each table under each plugin, against docs/pipeline.md, "Table by table" (hand-written).

Expected lines are ovs-ofctl text without the cookie: written from the specification, not
captured from the compiler.
"""

from __future__ import annotations

import re
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

import pytest

from controller.compiler import Settings, UnknownNode, compile_node
from controller.compiler.context import DEFAULT_SETTINGS, RefusedNode
from controller.compiler.egress_ip import mark_for_vnid
from controller.pipeline.cookies import OwnerKind, is_ours, kind_of
from tests.support.builders import SEED_NODES, netns, node, pod, seed, service
from topology.model import (
    EgressNetworkPolicy,
    EgressRule,
    IngressRule,
    LabelSelector,
    Namespace,
    NetworkPolicy,
    Plugin,
    PolicyPeer,
    PolicyPort,
)


def table(topology, host: str, number: int, settings: Settings = DEFAULT_SETTINGS) -> list[str]:
    flows = compile_node(topology, host, settings).flows
    return [re.sub(r"^cookie=0x[0-9a-f]+, ", "", f.to_ofctl()) for f in flows
            if int(f.table) == number]


def warnings(topology, host: str, settings: Settings = DEFAULT_SETTINGS) -> tuple[str, ...]:
    return compile_node(topology, host, settings).warnings


# ------------------------------------------------------------------ static (SetupOVS)

def test_classifier_without_conntrack() -> None:
    assert table(seed(), "node2", 0) == [
        "table=0, priority=250, in_port=2, ip, nw_dst=224.0.0.0/4, actions=drop",
        "table=0, priority=200, in_port=1, arp, arp_spa=10.128.0.0/14, arp_tpa=10.130.0.0/23, "
        "actions=move:NXM_NX_TUN_ID[0..31]->NXM_NX_REG0[],goto_table:10",
        "table=0, priority=200, in_port=1, ip, nw_dst=10.128.0.0/14, "
        "actions=move:NXM_NX_TUN_ID[0..31]->NXM_NX_REG0[],goto_table:10",
        "table=0, priority=200, in_port=1, ip, nw_src=10.128.0.0/14, "
        "actions=move:NXM_NX_TUN_ID[0..31]->NXM_NX_REG0[],goto_table:10",
        "table=0, priority=200, in_port=2, arp, arp_spa=10.130.0.1, arp_tpa=10.128.0.0/14, "
        "actions=goto_table:30",
        "table=0, priority=200, in_port=2, ip, actions=goto_table:30",
        "table=0, priority=150, in_port=1, actions=drop",
        "table=0, priority=150, in_port=2, actions=drop",
        "table=0, priority=100, arp, actions=goto_table:20",
        "table=0, priority=100, ip, actions=goto_table:20",
        "table=0, priority=0, actions=drop",
    ]


def test_classifier_conntrack_flows_only_under_networkpolicy() -> None:
    extra = {"table=0, priority=400, in_port=2, ip, nw_src=10.130.0.1, actions=goto_table:30",
             "table=0, priority=300, in_port=2, ip, nw_src=10.130.0.0/23, nw_dst=10.128.0.0/14, "
             "actions=goto_table:25",
             "table=0, priority=300, ip, ct_state=-trk, actions=ct(table=0)"}
    np_flows = set(table(seed(Plugin.NETWORKPOLICY), "node2", 0))
    assert extra <= np_flows
    assert np_flows - extra == set(table(seed(), "node2", 0))
    assert not extra & set(table(seed(Plugin.SUBNET), "node2", 0))


@pytest.mark.parametrize("plugin, note", [(Plugin.SUBNET, "00.07"), (Plugin.MULTITENANT, "01.07"),
                                          (Plugin.NETWORKPOLICY, "02.07")])
def test_version_note(plugin: Plugin, note: str) -> None:
    assert table(seed(plugin), "node1", 253) == [
        f"table=253, priority=32768, actions=note:{note}"]


def test_routing_table() -> None:
    assert table(seed(), "node2", 30) == [
        "table=30, priority=300, arp, arp_tpa=10.130.0.1, actions=output:2",
        "table=30, priority=300, ip, nw_dst=10.130.0.1, actions=output:2",
        "table=30, priority=200, arp, arp_tpa=10.130.0.0/23, actions=goto_table:40",
        "table=30, priority=200, ip, nw_dst=10.130.0.0/23, actions=goto_table:70",
        "table=30, priority=100, arp, arp_tpa=10.128.0.0/14, actions=goto_table:50",
        "table=30, priority=100, ip, nw_dst=10.128.0.0/14, actions=goto_table:90",
        "table=30, priority=100, ip, nw_dst=172.30.0.0/16, actions=goto_table:60",
        "table=30, priority=50, in_port=1, ip, nw_dst=224.0.0.0/4, actions=goto_table:120",
        "table=30, priority=25, ip, nw_dst=224.0.0.0/4, actions=goto_table:110",
        "table=30, priority=0, arp, actions=drop",
        "table=30, priority=0, ip, actions=goto_table:100",
    ]
    assert ("table=30, priority=300, ip, ct_state=+rpl, nw_dst=10.130.0.0/23, "
            "actions=ct(nat,table=70)") in table(seed(Plugin.NETWORKPOLICY), "node2", 30)


def test_conntrack_tables_21_and_25() -> None:
    assert table(seed(), "node2", 21) == ["table=21, priority=0, actions=goto_table:30"]
    assert table(seed(), "node2", 25) == []
    assert table(seed(Plugin.NETWORKPOLICY), "node2", 21) == [
        "table=21, priority=200, ip, nw_dst=10.128.0.0/14, actions=ct(commit,table=30)",
        "table=21, priority=0, actions=goto_table:30"]
    assert table(seed(Plugin.NETWORKPOLICY), "node2", 25) == [
        "table=25, priority=100, ip, nw_src=10.130.0.5, "
        "actions=load:0->NXM_NX_REG0[],goto_table:30",
        "table=25, priority=100, ip, nw_src=10.130.0.6, "
        "actions=load:0->NXM_NX_REG0[],goto_table:30",
        "table=25, priority=0, actions=drop"]


def test_multiple_cluster_networks_repeat_per_cidr() -> None:
    from topology.model import ClusterNetworkEntry
    t = seed()
    extra = ClusterNetworkEntry(IPv4Network("10.200.0.0/16"), 8)
    t = replace(t, cluster_network=replace(t.cluster_network,
                                           networks=t.cluster_network.networks + (extra,)))
    assert "table=30, priority=100, ip, nw_dst=10.200.0.0/16, actions=goto_table:90" \
        in table(t, "node2", 30)
    assert sum("in_port=1" in line and "priority=200" in line for line in table(t, "node2", 0)) == 6


# ------------------------------------------------------------------ HostSubnets

def test_remote_host_subnets_tables_10_50_90() -> None:
    assert table(seed(), "node1", 10) == [
        "table=10, priority=100, tun_src=192.168.108.110, actions=goto_table:30",
        "table=10, priority=100, tun_src=192.168.108.112, actions=goto_table:30",
        "table=10, priority=100, tun_src=192.168.108.113, actions=goto_table:30",
        "table=10, priority=0, actions=drop"]
    to_node2 = ("move:NXM_NX_REG0[]->NXM_NX_TUN_ID[0..31],set_field:192.168.108.112->tun_dst,"
                "output:1")
    assert f"table=90, priority=100, ip, nw_dst=10.130.0.0/23, actions={to_node2}" \
        in table(seed(), "node1", 90)
    assert f"table=50, priority=100, arp, arp_tpa=10.130.0.0/23, actions={to_node2}" \
        in table(seed(), "node1", 50)
    assert not any("10.131.0.0/23" in line for line in table(seed(), "node1", 90))


def test_each_host_subnet_has_its_own_cookie() -> None:
    flows = compile_node(seed(), "node1").flows
    cookies = {f.cookie for f in flows if int(f.table) == 10 and f.priority == 100}
    assert len(cookies) == 3 and all(kind_of(c) is OwnerKind.HOST_SUBNET for c in cookies)
    assert all(is_ours(f.cookie) for f in flows)


def test_fixed_vnid_host_subnet_loads_its_vnid() -> None:
    f5 = node("f5", "192.168.108.150", "10.128.100.0/23", fixed_vnid=4321)
    t = seed(host_subnets=seed().host_subnets + (f5,))
    assert ("table=90, priority=100, ip, nw_dst=10.128.100.0/23, actions=load:4321->"
            "NXM_NX_TUN_ID[0..31],set_field:192.168.108.150->tun_dst,output:1") \
        in table(t, "node1", 90)


def test_multicast_replication_table_111() -> None:
    assert table(seed(), "node1", 111) == [
        "table=111, priority=100, actions=move:NXM_NX_REG0[]->NXM_NX_TUN_ID[0..31],"
        "set_field:192.168.108.110->tun_dst,output:1,set_field:192.168.108.112->tun_dst,output:1,"
        "set_field:192.168.108.113->tun_dst,output:1,goto_table:120"]
    alone = seed(host_subnets=seed().host_subnets[:1])
    assert table(alone, "master", 111) == [
        "table=111, priority=100, actions=goto_table:120"]


@pytest.mark.parametrize("bad_ip", ["10.128.8.8", "172.30.9.9", "127.0.0.1"])
def test_host_subnet_with_a_refused_host_ip_is_ignored(bad_ip: str) -> None:
    # 3.11 hostSubnetWatcher.updateHostSubnet: ValidateNodeIP fails -> no flows, and not in
    # the multicast replication list (hostSubnetMap)
    bad = node("bad", bad_ip, "10.128.100.0/23")
    t = seed(host_subnets=seed().host_subnets + (bad,))
    flows = compile_node(t, "node1").to_ofctl()
    assert bad_ip not in flows and "10.128.100.0/23" not in flows
    assert table(t, "node1", 111) == table(seed(), "node1", 111)
    # its own node: getLocalSubnet refuses it and the node exits
    with pytest.raises(RefusedNode, match=f"HostSubnet bad: hostIP {bad_ip} .*does not start"):
        compile_node(t, "bad")


def test_unknown_node_is_named() -> None:
    with pytest.raises(UnknownNode, match="no HostSubnet with host 'nope'.*infra"):
        compile_node(seed(), "nope")


# ------------------------------------------------------------------ pods

def test_pod_flows_carry_the_namespace_vnid() -> None:
    assert table(seed(), "master", 20) == [
        "table=20, priority=100, in_port=4, arp, arp_spa=10.128.0.56, "
        "arp_sha=00:00:0a:80:00:38/00:00:ff:ff:ff:ff, "
        "actions=load:8583346->NXM_NX_REG0[],goto_table:21",
        "table=20, priority=100, in_port=4, ip, nw_src=10.128.0.56, "
        "actions=load:8583346->NXM_NX_REG0[],goto_table:21",
        "table=20, priority=0, actions=drop"]
    assert table(seed(), "master", 70) == [
        "table=70, priority=100, ip, nw_dst=10.128.0.56, "
        "actions=load:8583346->NXM_NX_REG1[],load:4->NXM_NX_REG2[],goto_table:80",
        "table=70, priority=0, actions=drop"]
    assert table(seed(), "master", 40) == [
        "table=40, priority=100, arp, arp_tpa=10.128.0.56, actions=output:4",
        "table=40, priority=0, actions=drop"]


def test_subnet_plugin_uses_vnid_zero() -> None:
    assert all("load:0->" in line for line in table(seed(Plugin.SUBNET), "master", 20)[:2])


def test_pod_without_port_gets_no_flows() -> None:
    t = seed(pods=seed().pods + (pod("default", "pending", "node1", "10.131.0.9", None),))
    rendered = compile_node(t, "node1").to_ofctl().splitlines()
    assert not any("10.131.0.9" in line for line in rendered)


def test_port_numbers_from_the_switch_override_annotations() -> None:
    flows = compile_node(seed(), "node2", port_numbers={"veth-web": 17}).to_ofctl()
    assert "in_port=17, ip, nw_src=10.130.0.5" in flows
    assert "10.130.0.6" not in flows  # its interface is not on the bridge


# ------------------------------------------------------------------ services and VNIDs

def test_service_flows_non_conntrack() -> None:
    t = seed(services=(service("kube-system", "dns", "172.30.0.10", ("UDP", 53), ("TCP", 53)),))
    load = "actions=load:272037->NXM_NX_REG1[],load:2->NXM_NX_REG2[],goto_table:80"
    assert table(t, "node1", 60) == [
        "table=60, priority=200, reg0=0, actions=output:2",
        f"table=60, priority=100, ip, nw_dst=172.30.0.10, ip_frag=later, {load}",
        f"table=60, priority=100, tcp, nw_dst=172.30.0.10, tcp_dst=53, {load}",
        f"table=60, priority=100, udp, nw_dst=172.30.0.10, udp_dst=53, {load}",
        "table=60, priority=0, actions=drop"]


def test_service_table_under_networkpolicy() -> None:
    assert table(seed(Plugin.NETWORKPOLICY), "node1", 60) == [
        "table=60, priority=200, actions=output:2", "table=60, priority=0, actions=drop"]


def test_sctp_service_port_is_skipped_with_a_warning() -> None:
    t = seed(services=(service("default", "s", "172.30.0.20", ("SCTP", 9)),))
    assert not any("172.30.0.20" in line and "tp" in line for line in table(t, "node1", 60))
    assert any("Service/default/s: port 9/SCTP" in w for w in warnings(t, "node1"))


@pytest.mark.parametrize("plugin, expected", [
    (Plugin.SUBNET, ["table=80, priority=300, ip, nw_src=10.128.0.1, actions=output:NXM_NX_REG2[]",
                     "table=80, priority=200, actions=output:NXM_NX_REG2[]",
                     "table=80, priority=0, actions=drop"]),
    (Plugin.MULTITENANT, [
        "table=80, priority=300, ip, nw_src=10.128.0.1, actions=output:NXM_NX_REG2[]",
        "table=80, priority=200, reg0=0, actions=output:NXM_NX_REG2[]",
        "table=80, priority=200, reg1=0, actions=output:NXM_NX_REG2[]",
        "table=80, priority=100, reg0=8583346, reg1=8583346, actions=output:NXM_NX_REG2[]",
        "table=80, priority=0, actions=drop"]),
])
def test_ingress_table_80(plugin: Plugin, expected: list[str]) -> None:
    assert table(seed(plugin), "master", 80) == expected


def test_vnid_rules_follow_local_pods_and_cluster_services() -> None:
    t = seed(services=(service("kube-system", "dns", "172.30.0.10", ("UDP", 53)),))
    rules = [line for line in table(t, "node1", 80) if "priority=100" in line]
    # node1 has only a VNID-0 pod, but kube-system's service is watched cluster-wide
    assert rules == ["table=80, priority=100, reg0=272037, reg1=272037, "
                     "actions=output:NXM_NX_REG2[]"]


# ------------------------------------------------------------------ egress IPs

@pytest.mark.parametrize("vnid, bit, mark", [
    (0x82F8B2, 0, 0x82F8B2), (0xDF6553, 0, 0x01DF6552), (0x82F8B2, 14, 0x0182B8B2),
    (0, 0, 0xFF000000), (0, 31, 0x7F000000), (10, 0, 10), (11, 0, 0x0100000A)])
def test_mark_for_vnid(vnid: int, bit: int, mark: int) -> None:
    assert mark_for_vnid(vnid, bit) == mark


def test_egress_ip_on_the_pods_node_tunnels_to_the_egress_node() -> None:
    assert "table=100, priority=100, reg0=8583346, ip, actions=move:NXM_NX_REG0[]->" \
        "NXM_NX_TUN_ID[0..31],set_field:192.168.108.113->tun_dst,output:1" \
        in table(seed(), "master", 100)


def test_egress_ip_on_the_egress_node_marks_for_snat() -> None:
    assert "table=100, priority=100, reg0=8583346, ip, actions=set_field:0a:58:0a:81:00:01->" \
        "eth_dst,set_field:0x0082f8b2->pkt_mark,goto_table:101" in table(seed(), "infra", 100)
    odd = seed(net_namespaces=(netns("default", 0), netns("odd", 0xDF6553, ("192.168.108.200",))))
    assert "set_field:0x01df6552->pkt_mark" in " ".join(table(odd, "infra", 100))
    assert "set_field:0x01df6551->pkt_mark" in " ".join(
        table(odd, "infra", 100, Settings(masquerade_bit=1)))


def test_egress_ip_under_networkpolicy_commits_first() -> None:
    assert "table=100, priority=100, reg0=8583346, ip, actions=ct(commit),move:NXM_NX_REG0[]->" \
        "NXM_NX_TUN_ID[0..31],set_field:192.168.108.113->tun_dst,output:1" \
        in table(seed(Plugin.NETWORKPOLICY), "master", 100)


def test_egress_ip_without_a_node_drops() -> None:
    t = seed(net_namespaces=(netns("default", 0), netns("kube-public", 0x82F8B2, ("10.9.9.9",))))
    assert "table=100, priority=100, reg0=8583346, actions=drop" in table(t, "node1", 100)


def test_egress_ip_claimed_by_two_namespaces_drops_both() -> None:
    t = seed(net_namespaces=(netns("default", 0), netns("a", 20, ("192.168.108.200",)),
                             netns("b", 30, ("192.168.108.200",))))
    flows = table(t, "node1", 100)
    assert "table=100, priority=100, reg0=20, actions=drop" in flows
    assert "table=100, priority=100, reg0=30, actions=drop" in flows


def egress_flows(topology, host: str) -> list[str]:
    return [flow for flow in table(topology, host, 100) if "priority=100" in flow]


def test_joined_namespaces_listing_egress_ips_get_one_flow() -> None:
    # 3.11 keeps one egress-IP list per VNID; at a node's start the NetNamespace whose name
    # sorts last replaces the others' (UpdateNetNamespaceEgress): here "b"'s .201 on node1
    hosts = (*SEED_NODES[:1], node("node1", "192.168.108.111", "10.131.0.0/23",
                                   ("192.168.108.201",)), *SEED_NODES[2:])
    spaces = (netns("default", 0), netns("b", 20, ("192.168.108.201",)),
              netns("a", 20, ("192.168.108.200",)))
    assert egress_flows(seed(host_subnets=hosts, net_namespaces=spaces), "node2") == [
        "table=100, priority=100, reg0=20, ip, actions=move:NXM_NX_REG0[]->NXM_NX_TUN_ID[0..31],"
        "set_field:192.168.108.111->tun_dst,output:1"]
    # the same IP listed by both is one claim (per VNID), not two namespaces' conflict
    same = (netns("default", 0), netns("a", 20, ("192.168.108.200",)),
            netns("b", 20, ("192.168.108.200",)))
    assert egress_flows(seed(net_namespaces=same), "node2") == [
        "table=100, priority=100, reg0=20, ip, actions=move:NXM_NX_REG0[]->NXM_NX_TUN_ID[0..31],"
        "set_field:192.168.108.113->tun_dst,output:1"]
    # the last one listing none leaves the VNID without egress IP, as in 3.11
    cleared = (netns("default", 0), netns("a", 20, ("192.168.108.200",)), netns("b", 20))
    assert egress_flows(seed(net_namespaces=cleared), "node2") == []


def test_egress_ip_to_a_fixed_vnid_host_keeps_the_pods_vnid() -> None:
    # 3.11 SetNamespaceEgressViaEgressIP always moves reg0 into tun_id; only tables 50/90
    # load the fixed VNID of an F5 host
    hosts = (*SEED_NODES[:3], node("infra", "192.168.108.113", "10.129.0.0/23",
                                   ("192.168.108.200",), fixed_vnid=77))
    t = seed(host_subnets=hosts)
    assert egress_flows(t, "master") == [
        "table=100, priority=100, reg0=8583346, ip, actions=move:NXM_NX_REG0[]->"
        "NXM_NX_TUN_ID[0..31],set_field:192.168.108.113->tun_dst,output:1"]
    assert "load:77->NXM_NX_TUN_ID[0..31]" in " ".join(table(t, "master", 90))


def test_egress_ip_first_usable_ip_wins() -> None:
    t = seed(net_namespaces=(netns("default", 0),
                             netns("a", 20, ("192.168.108.250", "192.168.108.200"))))
    assert "set_field:192.168.108.113->tun_dst" in " ".join(table(t, "node1", 100))


def test_table_100_static_flows() -> None:
    flows = table(seed(Plugin.SUBNET), "node1", 100)
    assert flows == [
        "table=100, priority=300, udp, udp_dst=4789, actions=drop",
        "table=100, priority=200, tcp, nw_dst=192.168.108.111, tcp_dst=53, actions=output:2",
        "table=100, priority=200, udp, nw_dst=192.168.108.111, udp_dst=53, actions=output:2",
        "table=100, priority=150, ct_state=+rpl, actions=goto_table:101",
        "table=100, priority=0, actions=goto_table:101"]


@pytest.mark.parametrize("plugin", list(Plugin))
def test_replies_skip_egress_ips_under_every_plugin(plugin: Plugin) -> None:
    # 3.11.z origin #26389 (openshift/sdn#236): SetupOVS writes it whatever the plugin
    assert "table=100, priority=150, ct_state=+rpl, actions=goto_table:101" \
        in table(seed(plugin), "node2", 100)


# ------------------------------------------------------------------ egress firewall

def enp(namespace: str, *rules: EgressRule, name: str = "fw") -> EgressNetworkPolicy:
    return EgressNetworkPolicy(namespace, name, f"uid-{namespace}-{name}", rules)


def test_egress_firewall_priorities_and_actions() -> None:
    policy = enp("kube-system", EgressRule("Allow", IPv4Network("192.168.108.0/24")),
                 EgressRule("Allow", dns_name="example.com"),
                 EgressRule("Deny", IPv4Network("0.0.0.0/0")))
    resolver = {"example.com": [IPv4Address("93.184.216.34"), IPv4Address("93.184.216.35")]}
    flows = table(seed(egress_network_policies=(policy,)), "node1", 101,
                  Settings(resolver=lambda name: resolver.get(name, [])))
    assert flows == [
        "table=101, priority=3, reg0=272037, ip, nw_dst=192.168.108.0/24, actions=output:2",
        "table=101, priority=2, reg0=272037, ip, nw_dst=93.184.216.34, actions=output:2",
        "table=101, priority=2, reg0=272037, ip, nw_dst=93.184.216.35, actions=output:2",
        "table=101, priority=1, reg0=272037, ip, actions=drop",
        "table=101, priority=0, actions=output:2"]


def test_egress_firewall_unresolvable_name_warns() -> None:
    policy = enp("kube-system", EgressRule("Deny", dns_name="nowhere.invalid"))
    t = seed(egress_network_policies=(policy,))
    assert table(t, "node1", 101) == ["table=101, priority=0, actions=output:2"]
    assert any("dnsName nowhere.invalid did not resolve" in w for w in warnings(t, "node1"))


def test_egress_firewall_without_rules_is_ignored() -> None:
    # 3.11 egress_network_policy.go keeps a policy only if len(spec.egress) > 0: an empty
    # second policy is no second policy, and an empty one alone writes nothing
    deny = enp("kube-system", EgressRule("Deny", IPv4Network("0.0.0.0/0")), name="a")
    with_empty = seed(egress_network_policies=(deny, enp("kube-system", name="empty")))
    assert table(with_empty, "node1", 101) == [
        "table=101, priority=1, reg0=272037, ip, actions=drop",
        "table=101, priority=0, actions=output:2"]
    assert not warnings(with_empty, "node1")
    shared_empty = seed(net_namespaces=seed().net_namespaces + (netns("joined", 272037),),
                        egress_network_policies=(enp("kube-system", name="empty"),))
    assert table(shared_empty, "node1", 101) == ["table=101, priority=0, actions=output:2"]


def test_egress_firewall_errors_drop_or_ignore() -> None:
    two = seed(egress_network_policies=(
        enp("kube-system", EgressRule("Deny", IPv4Network("0.0.0.0/0")), name="a"),
        enp("kube-system", EgressRule("Deny", IPv4Network("0.0.0.0/0")), name="b")))
    assert "table=101, priority=1, reg0=272037, actions=drop" in table(two, "node1", 101)
    global_ns = seed(egress_network_policies=(enp("default", EgressRule("Deny", IPv4Network(
        "0.0.0.0/0"))),))
    assert table(global_ns, "node1", 101) == ["table=101, priority=0, actions=output:2"]
    assert any("global network namespace" in w for w in warnings(global_ns, "node1"))
    shared = seed(net_namespaces=seed().net_namespaces + (netns("joined", 272037),),
                  egress_network_policies=(enp("kube-system", EgressRule("Allow", IPv4Network(
                      "10.0.0.0/8"))),))
    assert "table=101, priority=1, reg0=272037, actions=drop" in table(shared, "node1", 101)


def test_no_egress_features_under_subnet() -> None:
    t = seed(Plugin.SUBNET, egress_network_policies=(enp("kube-system", EgressRule(
        "Deny", IPv4Network("0.0.0.0/0"))),))
    assert table(t, "infra", 101) == ["table=101, priority=0, actions=output:2"]
    assert not any("priority=100" in line for line in table(t, "infra", 100))


# ------------------------------------------------------------------ multicast

def test_multicast_needs_every_namespace_of_the_vnid() -> None:
    spaces = (netns("default", 0), netns("a", 50, multicast=True), netns("b", 60, multicast=True),
              netns("b2", 60))
    pods = (pod("a", "p9", "node1", "10.131.0.9", 9), pod("a", "p10", "node1", "10.131.0.10", 10))
    t = seed(net_namespaces=spaces, pods=pods, services=())
    assert table(t, "node1", 110) == [
        "table=110, priority=32768, reg0=50, actions=goto_table:111",
        "table=110, priority=0, actions=drop"]
    assert table(t, "node1", 120) == [
        "table=120, priority=100, reg0=50, actions=output:10,output:9",
        "table=120, priority=0, actions=drop"]
    assert table(t, "node2", 120) == ["table=120, priority=0, actions=drop"]


# ------------------------------------------------------------------ NetworkPolicy

def policy(name: str, selector: dict[str, str], *rules: IngressRule,
           types: tuple[str, ...] = ("Ingress",), namespace: str = "shop") -> NetworkPolicy:
    return NetworkPolicy(namespace, name, f"uid-{name}",
                         LabelSelector(tuple(selector.items())), rules, types)


def np_cluster(*policies: NetworkPolicy):
    spaces = (netns("default", 0), netns("shop", 100), netns("web", 200))
    pods = (pod("shop", "api", "node1", "10.131.0.10", 10, app="api"),
            pod("shop", "db", "node1", "10.131.0.11", 11, app="db"),
            pod("shop", "api2", "node2", "10.130.0.10", 10, app="api"),
            pod("web", "front", "node2", "10.130.0.11", 11, app="front"))
    namespaces = (Namespace("default"), Namespace("shop", (("team", "shop"),)),
                  Namespace("web", (("team", "web"),)))
    return seed(Plugin.NETWORKPOLICY, net_namespaces=spaces, pods=pods, namespaces=namespaces,
                network_policies=policies)


def policy_rules(topology, host: str = "node1") -> list[str]:
    return [line for line in table(topology, host, 80) if "reg1=" in line]


OUT = "actions=output:NXM_NX_REG2[]"


def test_no_policy_allows_all_in_use_namespaces() -> None:
    assert policy_rules(np_cluster(), "node1") == [f"table=80, priority=50, reg1=100, {OUT}"]
    assert policy_rules(np_cluster(), "node2") == [f"table=80, priority=50, reg1=100, {OUT}",
                                                   f"table=80, priority=50, reg1=200, {OUT}"]


def test_deny_all_policy() -> None:
    assert policy_rules(np_cluster(policy("deny", {}))) == []


def test_namespaces_sharing_a_vnid_share_policy_state() -> None:
    # 3.11 keeps NetworkPolicy state per VNID (npNamespace): web's deny-all isolates every
    # pod of VNID 100, shop's too; no priority-50 allow for the VNID (fail closed)
    shared = np_cluster(policy("deny", {}, namespace="web"))
    shared = replace(shared, net_namespaces=(netns("default", 0), netns("shop", 100),
                                             netns("web", 100)))
    assert policy_rules(shared, "node1") == []
    assert policy_rules(shared, "node2") == []
    # a policy selecting some pods: its drops and the VNID's one allow-rest, owned by both
    some = replace(shared, network_policies=(policy("db-only", {"app": "db"}),))
    assert policy_rules(some, "node1") == [
        "table=80, priority=100, reg1=100, ip, nw_dst=10.131.0.11, actions=drop",
        f"table=80, priority=50, reg1=100, {OUT}"]
    owners = {str(f.owner) for f in compile_node(some, "node1").flows
              if int(f.table) == 80 and f.priority == 50}
    assert owners == {"policy_namespace:shop,web"}


def test_allow_namespace_on_one_port_to_selected_pods() -> None:
    rule = IngressRule((PolicyPort("TCP", 8080),),
                       (PolicyPeer(namespace_selector=LabelSelector((("team", "web"),))),))
    rules = policy_rules(np_cluster(policy("allow", {"app": "api"}, rule)))
    assert rules == [
        f"table=80, priority=150, reg0=200, reg1=100, tcp, nw_dst=10.130.0.10, tcp_dst=8080, {OUT}",
        f"table=80, priority=150, reg0=200, reg1=100, tcp, nw_dst=10.131.0.10, tcp_dst=8080, {OUT}",
        "table=80, priority=100, reg1=100, ip, nw_dst=10.130.0.10, actions=drop",
        "table=80, priority=100, reg1=100, ip, nw_dst=10.131.0.10, actions=drop",
        f"table=80, priority=50, reg1=100, {OUT}"]


def test_pod_selector_peer_in_same_namespace() -> None:
    rule = IngressRule((PolicyPort("TCP", 5432),),
                       (PolicyPeer(pod_selector=LabelSelector((("app", "api"),))),))
    rules = policy_rules(np_cluster(policy("db", {"app": "db"}, rule)))
    assert f"table=80, priority=150, reg0=100, reg1=100, tcp, nw_src=10.131.0.10, " \
           f"nw_dst=10.131.0.11, tcp_dst=5432, {OUT}" in rules
    assert f"table=80, priority=150, reg0=100, reg1=100, tcp, nw_src=10.130.0.10, " \
           f"nw_dst=10.131.0.11, tcp_dst=5432, {OUT}" in rules
    assert "table=80, priority=100, reg1=100, ip, nw_dst=10.131.0.11, actions=drop" in rules


def test_unsupported_policy_denies_namespace_with_warning() -> None:
    rule = IngressRule((PolicyPort("TCP", "http"),))
    t = np_cluster(policy("named", {"app": "api"}, rule))
    assert policy_rules(t) == []
    assert any("NetworkPolicy/shop/named: unsupported by 3.11 (named port 'http')" in w
               for w in warnings(t, "node1"))


def test_egress_only_policy_yields_no_invalid_flow() -> None:
    t = np_cluster(policy("egress", {"app": "api"}, types=("Egress",)))
    assert policy_rules(t) == [f"table=80, priority=50, reg1=100, {OUT}"]


def test_ipblock_and_combined_peers_are_ignored() -> None:
    rule = IngressRule((), (PolicyPeer(ip_block="10.0.0.0/8"),
                            PolicyPeer(pod_selector=LabelSelector((("app", "x"),)),
                                       namespace_selector=LabelSelector())))
    assert policy_rules(np_cluster(policy("odd", {}, rule))) == []


# ------------------------------------------------------------------ tun0's MAC

def test_egress_ip_flow_carries_the_annotated_tun0_mac_else_the_convention() -> None:
    annotated = seed(host_subnets=tuple(
        replace(hs, annotated_tun0_mac="aa:bb:cc:00:11:22") if hs.host == "infra" else hs
        for hs in seed().host_subnets))
    assert "set_field:0a:58:0a:81:00:01->eth_dst" in " ".join(table(seed(), "infra", 100))
    assert "set_field:aa:bb:cc:00:11:22->eth_dst" in " ".join(table(annotated, "infra", 100))


def test_the_switch_s_tun0_mac_wins_and_changes_only_the_local_egress_ip_flow() -> None:
    plain = compile_node(seed(), "infra").flows
    real = compile_node(seed(), "infra", tun0_mac="6e:1f:00:aa:bb:cc").flows
    changed = set(real) ^ set(plain)
    assert {f.table for f in changed} == {100} and len(changed) == 2
    assert "set_field:6e:1f:00:aa:bb:cc->eth_dst" in " ".join(f.to_ofctl() for f in real)
    # a node that only tunnels to the egress node writes no MAC: nothing changes there
    assert compile_node(seed(), "master", tun0_mac="6e:1f:00:aa:bb:cc").flows \
        == compile_node(seed(), "master").flows
