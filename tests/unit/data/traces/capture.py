"""Capture the `ofproto/trace`, `dpif/show` and `dump-flows` texts beside this file from a
real OVS.

    sudo .venv/bin/python tests/unit/data/traces/capture.py   (from the repository root)

The seed cluster's node2 (examples/seed-cluster) is loaded twice, each time into a private
OVS instance of its own, as `osdn render` compiles it: under its own plugin (multitenant) as
`br0`, with node1 beside it as `br-node1` (so that `dpif/show` lists two bridges sharing the
vxlan datapath port), and under ovs-networkpolicy, whose conntrack flows make traces of
several passes.  The files are OVS's output as is; tests/unit/test_trace.py holds the parse
results expected from reading them.  Re-capture only on purpose (another OVS version, new
cases) and review the texts and the expected results again.
"""

from __future__ import annotations

from pathlib import Path

from controller.compiler import Settings, compile_node
from controller.ovs.nodebridge import add_node_bridge
from controller.ovs.privateovs import PrivateOvs
from topology.load import load_topology
from topology.model import PLUGIN_NAMES, Topology

HERE = Path(__file__).resolve().parent
SEED = HERE.parents[3] / "examples" / "seed-cluster"
NODE1, NODE2 = "node1.ocp.cn", "node2.ocp.cn"

# file name -> (bridge, ofproto/trace flow, --ct-next states)
Cases = dict[str, tuple[str, str, tuple[str, ...]]]
MULTITENANT: Cases = {
    "same-node": ("br0", "in_port=4,tcp,nw_src=10.130.0.6,nw_dst=10.130.0.5,ct_state=trk", ()),
    "to-node1": ("br0", "in_port=4,tcp,nw_src=10.130.0.6,nw_dst=10.131.0.4,ct_state=trk", ()),
    "spoofed-source": ("br0", "in_port=4,tcp,nw_src=10.130.0.99,nw_dst=10.130.0.5,"
                              "ct_state=trk", ()),
    "from-node1": ("br0", "in_port=1,tcp,tun_id=0,tun_src=192.168.108.111,nw_src=10.131.0.4,"
                          "nw_dst=10.130.0.5,ct_state=trk", ()),
    "egress-via-infra": ("br0", "in_port=1,tcp,tun_id=0x82f8b2,tun_src=192.168.108.111,"
                                "nw_src=10.131.0.9,nw_dst=192.168.108.1,ct_state=trk", ()),
    "arp-gateway": ("br0", "in_port=4,arp,arp_spa=10.130.0.6,arp_sha=00:00:0a:82:00:06,"
                           "arp_tpa=10.130.0.1", ()),
}
NETWORKPOLICY: Cases = {
    "np-new": ("br0", "in_port=4,tcp,nw_src=10.130.0.6,nw_dst=10.130.0.5,tcp_dst=8080", ()),
    "np-established": ("br0", "in_port=4,tcp,nw_src=10.130.0.6,nw_dst=10.130.0.5,tcp_dst=8080",
                       ("trk,est", "trk,est")),
}


def node_bridge(ovs: PrivateOvs, topology: Topology, host: str, bridge: str) -> None:
    hs = topology.host_subnet(host)
    assert hs is not None
    ports = {pod.interface or f"pod{pod.ofport}": pod.ofport for pod in topology.pods
             if pod.node == host and pod.ofport is not None}
    add_node_bridge(ovs, bridge, hs.datapath_id, ports,
                    vxlan_port=topology.cluster_network.vxlan_port, host_ip=str(hs.host_ip))
    ovs.load_flows(bridge, compile_node(topology, host, Settings(resolver=lambda n: ())).to_ofctl())


def capture(ovs: PrivateOvs, cases: Cases, dpif_show: str) -> None:
    for name, (bridge, flow, ct_next) in cases.items():
        args = ["ofproto/trace", bridge, flow]
        for state in ct_next:
            args += ["--ct-next", state]
        (HERE / f"{name}.txt").write_text(ovs.appctl(*args))
    (HERE / f"{dpif_show}.txt").write_text(ovs.appctl("dpif/show"))


def capture_dump(ovs: PrivateOvs) -> None:
    """One table's dump-flows, counters and all (after the traces: they count nothing)."""
    (HERE / "dump-flows-table80.txt").write_text(
        ovs.ofctl("br0", "--no-names", "dump-flows", "table=80"))


def main() -> None:
    multitenant = load_topology([SEED])
    with PrivateOvs() as ovs:
        node_bridge(ovs, multitenant, NODE2, "br0")
        node_bridge(ovs, multitenant, NODE1, "br-node1")
        capture(ovs, MULTITENANT, "dpif-show")
        capture_dump(ovs)
    networkpolicy = load_topology([SEED], plugin=PLUGIN_NAMES["networkpolicy"])
    with PrivateOvs() as ovs:
        node_bridge(ovs, networkpolicy, NODE2, "br0")
        capture(ovs, NETWORKPOLICY, "np-dpif-show")


if __name__ == "__main__":
    main()
