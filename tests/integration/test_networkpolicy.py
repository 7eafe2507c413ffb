"""ovs-networkpolicy on real OVS: every pod pair of the rich cluster, on two ports, against
an independent reading of Kubernetes NetworkPolicy with 3.11's restrictions (policy_oracle)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from controller.compiler import Settings
from controller.ovs.privateovs import PrivateOvs
from lab.policy_oracle import policy_allows
from lab.tracelab import build_lab, send_from_pod
from topology.load import load_topology
from topology.model import Plugin

pytestmark = pytest.mark.ovs
RICH = Path(__file__).resolve().parents[2] / "examples" / "rich-cluster"


def test_policy_matrix(private_ovs: PrivateOvs) -> None:
    topology = load_topology([RICH], plugin=Plugin.NETWORKPOLICY)
    lab = build_lab(private_ovs, topology, Settings(resolver=lambda n: ()), prefix="np")
    try:
        pods = [p for p in topology.pods if p.ofport is not None]
        wrong, outcomes = [], set()
        for (src, dst), port in itertools.product(itertools.permutations(pods, 2), (8080, 5432)):
            expected = policy_allows(topology, src, dst, port)
            delivery = send_from_pod(lab, src, str(dst.ip), dst_port=port)
            outcomes.add(expected)
            ok = delivery.delivered_to == dst.ofport if expected else (
                delivery.delivered_to is None and delivery.last.tables[-1] == 80)
            if not ok:
                wrong.append(f"{src.key} -> {dst.key}:{port}: expected "
                             f"{'delivery' if expected else 'drop at 80'}, got port "
                             f"{delivery.delivered_to} after {delivery.last.tables}")
        assert outcomes == {True, False}
        assert not wrong, f"{len(wrong)} wrong:\n" + "\n".join(wrong)
    finally:
        for bridge in lab.bridges.values():
            private_ovs.del_bridge(bridge)


def test_conntrack_commit_and_reply_bypass(private_ovs: PrivateOvs) -> None:
    """A new pod->pod connection is committed in table 21; a reply (+rpl) passes table 80
    even into a deny-all namespace (after table 30's ct(nat) for the local subnet)."""
    topology = load_topology([RICH], plugin=Plugin.NETWORKPOLICY)
    lab = build_lab(private_ovs, topology, Settings(resolver=lambda n: ()), prefix="ct")
    try:
        backend = next(p for p in topology.pods if p.namespace == "backend" and p.ofport)
        same_node = next(p for p in topology.pods if p.node == backend.node and p.ofport
                         and p.namespace == "default")
        first = lab.trace(same_node.node, f"in_port={same_node.ofport},tcp,nw_src={same_node.ip},"
                                          f"nw_dst={backend.ip},tcp_dst=9999,ct_state=new|trk")
        assert "ct(commit,table=30)" in first.actions(21), first.raw
        assert first.dropped, first.raw  # backend is deny-all for new connections
        reply = lab.ovs.trace(lab.bridges[same_node.node],
                              f"in_port={same_node.ofport},tcp,nw_src={same_node.ip},"
                              f"nw_dst={backend.ip},tcp_dst=9999,ct_state=new|trk",
                              ct_next=["trk,est,rpl"] * 2)
        assert reply.output_ports() == [backend.ofport], reply.raw
    finally:
        for bridge in lab.bridges.values():
            private_ovs.del_bridge(bridge)
