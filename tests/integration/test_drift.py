"""`osdn diff` against real Open vSwitch dumps: the render loaded into a private bridge and
dumped by `ovs-ofctl` compares equal for every node and plugin (so the two spellings agree
on OVS's own output), and a flow deleted and one added with `ovs-ofctl` on the live bridge
are exactly what the diff reports."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from controller.cli import main
from controller.compiler import Settings, compile_node
from controller.drift import UNKNOWN, compare, port_names
from controller.ovs.flowdump import parse_flow_dump
from controller.ovs.nodebridge import add_node_bridge
from controller.ovs.privateovs import PrivateOvs
from topology.load import load_topology
from topology.model import Plugin, Topology

pytestmark = pytest.mark.ovs
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NO_DNS = Settings(resolver=lambda name: ())
_names = itertools.count()


def load_node(ovs: PrivateOvs, topology: Topology, node: str) -> str:
    """A bridge with `node`'s port layout and rendered flows; its name."""
    bridge = f"drift{next(_names)}"
    hs = next(h for h in topology.host_subnets if h.host == node)
    ports = {p.interface or f"pod{p.ofport}": p.ofport for p in topology.pods
             if p.node == node and p.ofport is not None}
    add_node_bridge(ovs, bridge, hs.datapath_id, ports, host_ip=str(hs.host_ip),
                    port_name_prefix=f"{bridge}-")
    ovs.load_flows(bridge, compile_node(topology, node, NO_DNS).to_ofctl())
    return bridge


def dump(ovs: PrivateOvs, bridge: str) -> str:
    return ovs.ofctl(bridge, "--no-names", "dump-flows")


@pytest.mark.parametrize("cluster", ["seed-cluster", "rich-cluster"])
@pytest.mark.parametrize("plugin", list(Plugin), ids=lambda p: p.short_name)
def test_every_node_as_ovs_prints_it_has_no_drift(private_ovs, cluster, plugin) -> None:
    topology = load_topology([str(EXAMPLES / cluster)], plugin=plugin)
    for hs in topology.host_subnets:
        if topology.cluster_network.node_ip_conflict(hs.host_ip) is not None:
            continue
        bridge = load_node(private_ovs, topology, hs.host)
        try:
            drift = compare(topology, compile_node(topology, hs.host, NO_DNS),
                            parse_flow_dump(dump(private_ovs, bridge), bridge,
                                            port_names(topology, hs.host)))
        finally:
            private_ovs.del_bridge(bridge)
        assert drift.same, drift.to_text()
        assert drift.dumped == drift.rendered > 0


def test_live_bridge_one_flow_deleted_one_added(private_ovs, tmp_path, capsys) -> None:
    seed = EXAMPLES / "seed-cluster"
    topology = load_topology([str(seed)], plugin=Plugin.NETWORKPOLICY)
    node = "node2.ocp.cn"
    bridge = load_node(private_ovs, topology, node)
    try:
        # the web pod's table-25 flow goes; a flow for a pod 3.11 deleted stays behind
        private_ovs.ofctl(bridge, "del-flows", "--strict",
                          "table=25,priority=100,ip,nw_src=10.130.0.5")
        private_ovs.ofctl(bridge, "add-flow",
                          "table=70,priority=100,ip,nw_dst=10.130.0.9,"
                          "actions=load:0->NXM_NX_REG1[],load:9->NXM_NX_REG2[],goto_table:80")
        saved = tmp_path / "node2.dump"
        saved.write_text(dump(private_ovs, bridge))
    finally:
        private_ovs.del_bridge(bridge)
    assert main(["diff", str(seed), "--plugin", "networkpolicy", "--node", node,
                 str(saved)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("node2.ocp.cn: 1 missing, 1 extra, 0 changed"), out
    missing_part, extra_part = out.split("\nextra ")
    assert "  Pod default/web-76c94f7546-t8pfq\n    table=25, priority=100, ip, " \
           "nw_src=10.130.0.5," in missing_part
    assert f"  {UNKNOWN}: nothing in the topology has ip 10.130.0.9\n" \
           "    table=70, priority=100,ip,nw_dst=10.130.0.9 " in extra_part
