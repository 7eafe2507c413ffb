"""A cluster nobody has shown you: generated clusters on real Open vSwitch.

`bench.generate` makes clusters with other cluster CIDRs (two of them in one case, with
different host subnet lengths), another service network and another VXLAN port than the
examples; each one is loaded into a private OVS with `build_lab` (one bridge per node, flows
through `ovs-ofctl --bundle add-flows`) and every pod pair is traced with `send_from_pod`:
ovs-subnet delivers everything, ovs-multitenant delivers exactly when the VNIDs are equal or one
is 0 and otherwise drops in table 80 of the destination node.  Plus the anti-spoofing
invariants on every node: VXLAN from a non-node is dropped in table 10, a pod's packet with a
source IP not its own in table 20, UDP to the VXLAN port sent by a pod in table 100.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from bench.generate import generate, write
from controller.compiler import Settings
from controller.ovs.privateovs import PrivateOvs
from lab.tracelab import TraceLab, build_lab, send_from_pod
from topology.load import load_topology
from topology.model import Plugin, Pod, Topology

pytestmark = pytest.mark.ovs
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NO_DNS = Settings(resolver=lambda name: ())

# Per seed, a network layout unlike both examples (10.128.0.0/14 + /23 + 4789 and
# 10.64.0.0/16 + /24 + 4790).
SHAPES: dict[int, dict] = {
    12: {"cluster_cidrs": [("10.244.0.0/16", 7)], "service_cidr": "172.31.0.0/16",
         "vxlan_port": 8472},
    13: {"cluster_cidrs": [("10.100.0.0/18", 6), ("10.101.0.0/17", 10)], "vxlan_port": 4800},
}
CLUSTERS = [(seed, plugin) for seed in SHAPES for plugin in (Plugin.MULTITENANT, Plugin.SUBNET)]


def generated(seed: int, plugin: Plugin, directory: Path) -> Topology:
    write(generate(nodes=3, namespaces=5, pods_per_node=3, plugin=plugin, seed=seed,
                   **SHAPES[seed]), directory)
    return load_topology([directory], cache=None)


@pytest.fixture(scope="module", params=CLUSTERS,
                ids=[f"seed{seed}-{plugin.name.lower()}" for seed, plugin in CLUSTERS])
def lab(request: pytest.FixtureRequest, private_ovs: PrivateOvs,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[TraceLab]:
    """One generated cluster's bridges at a time; exactly its bridges are removed after."""
    seed, plugin = request.param
    topology = generated(seed, plugin, tmp_path_factory.mktemp(f"generated-{seed}"))
    prefix = f"g{seed}{plugin.name[0].lower()}"
    try:
        built = build_lab(private_ovs, topology, NO_DNS, prefix=prefix)
        yield built
    finally:  # also the bridges of a build that failed half-way
        for bridge in private_ovs.vsctl("list-br").split():
            if bridge.startswith(f"br-{prefix}"):
                private_ovs.del_bridge(bridge)


def pods_of(topology: Topology) -> list[Pod]:
    return [pod for pod in topology.pods if pod.ofport is not None]


def expected_multitenant(topology: Topology, src: Pod, dst: Pod) -> bool:
    a, b = topology.vnid_of(src.namespace), topology.vnid_of(dst.namespace)
    return a == b or 0 in (a, b)


# ------------------------------------------------------------------ the cluster itself

def test_unlike_the_examples_and_fully_loaded(lab: TraceLab) -> None:
    network = lab.topology.cluster_network
    for example in ("seed-cluster", "rich-cluster"):
        known = load_topology([EXAMPLES / example]).cluster_network
        assert {e.cidr for e in network.networks}.isdisjoint({e.cidr for e in known.networks})
        assert network.vxlan_port != known.vxlan_port
        assert network.service_network != known.service_network
        assert {e.host_subnet_length for e in network.networks} != \
            {e.host_subnet_length for e in known.networks}
    assert len(lab.bridges) == 3 and len(pods_of(lab.topology)) == 9
    for host, bridge in lab.bridges.items():
        assert len(lab.ovs.dump_flows(bridge)) == len(lab.flows[host].flows), host


# ------------------------------------------------------------------ pod to pod

def test_pod_to_pod_matrix(lab: TraceLab) -> None:
    topology = lab.topology
    plugin = topology.cluster_network.plugin
    wrong = []
    for src, dst in itertools.permutations(pods_of(topology), 2):
        delivery = send_from_pod(lab, src, str(dst.ip))
        allowed = plugin is Plugin.SUBNET or expected_multitenant(topology, src, dst)
        got = delivery.delivered_to
        last_host = delivery.hops[-1][0]
        if allowed and (got != dst.ofport or last_host != dst.node):
            wrong.append(f"{src.key} -> {dst.key}: expected port {dst.ofport} on {dst.node}, "
                         f"got {got} on {last_host}")
        if not allowed and (got is not None or last_host != dst.node
                            or delivery.last.tables[-1] != 80):
            wrong.append(f"{src.key} -> {dst.key}: expected a drop at 80 on {dst.node}, got "
                         f"port {got} on {last_host} after tables {delivery.last.tables}")
    assert not wrong, "\n".join(wrong)


def test_matrix_has_both_outcomes(lab: TraceLab) -> None:
    """Guard: the matrix holds same-node and cross-node pairs and, under multitenant, isolated
    and open ones of each, or it proves little."""
    topology = lab.topology
    pairs = itertools.permutations(pods_of(topology), 2)
    kinds = {(expected_multitenant(topology, s, d), s.node == d.node) for s, d in pairs}
    if topology.cluster_network.plugin is Plugin.MULTITENANT:
        assert kinds == {(True, True), (True, False), (False, True), (False, False)}
    else:
        assert {same_node for _, same_node in kinds} == {True, False}


# ------------------------------------------------------------------ what tables 10/20/100 drop

def stranger(topology: Topology) -> IPv4Address:
    """An underlay address that is no node's (nor an egress IP)."""
    used = {hs.host_ip for hs in topology.host_subnets}
    used |= {ip for hs in topology.host_subnets for ip in hs.egress_ips}
    first = topology.host_subnets[0].host_ip
    return next(first + k for k in range(1, 1000) if first + k not in used)


def test_vxlan_from_a_non_node_is_dropped_at_table_10_on_every_node(lab: TraceLab) -> None:
    topology = lab.topology
    pods = pods_of(topology)
    for hs in topology.host_subnets:
        local = next(p for p in pods if p.node == hs.host)
        remote = next(p for p in pods if p.node != hs.host)
        remote_ip = topology.host_subnet(remote.node).host_ip  # type: ignore[union-attr]
        vnid = topology.vnid_of(remote.namespace)
        packet = f"tcp,nw_src={remote.ip},nw_dst={local.ip},tcp_dst=8080,ct_state=trk"
        bad = lab.trace(hs.host, f"in_port=1,tun_id={vnid},tun_src={stranger(topology)},"
                                 f"{packet}")
        assert bad.dropped and bad.tables == [0, 10], bad.raw
        good = lab.trace(hs.host, f"in_port=1,tun_id={vnid},tun_src={remote_ip},{packet}")
        assert good.tables[:3] == [0, 10, 30], good.raw  # control: a node's VXLAN passes 10


def test_spoofed_source_ip_is_dropped_at_table_20(lab: TraceLab) -> None:
    pods = pods_of(lab.topology)
    for pod in pods:
        other = next(p for p in pods if p.node == pod.node and p is not pod)
        target = next(p for p in pods if p.node != pod.node)
        result = lab.trace(pod.node, f"in_port={pod.ofport},tcp,dl_src={pod.mac},"
                                     f"nw_src={other.ip},nw_dst={target.ip},tcp_dst=8080,"
                                     "ct_state=trk")
        assert result.dropped and result.tables[-1] == 20, result.raw


def test_vxlan_sent_by_a_pod_is_dropped(lab: TraceLab) -> None:
    topology = lab.topology
    port = topology.cluster_network.vxlan_port
    outside = stranger(topology)
    for pod in pods_of(topology)[:3]:
        result = lab.trace(pod.node, f"in_port={pod.ofport},udp,dl_src={pod.mac},"
                                     f"nw_src={pod.ip},nw_dst={outside},udp_dst={port},"
                                     "ct_state=trk")
        assert result.dropped and result.tables[-1] == 100, result.raw
