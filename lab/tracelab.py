"""A cluster's bridges in one private OVS instance, for `ofproto/trace` (no packets).

Each HostSubnet becomes a dummy-datapath bridge laid out as 3.11's node sets up br0
(vxlan0 = 1, tun0 = 2, pods at their ofports) and loaded with `compile_node`'s flows through
`ovs-ofctl --bundle add-flows`, exactly as `osdn render` prints them.  Acceptance traces
(`traces.yaml` beside an example cluster) are checked against the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from controller.compiler import NodeFlows, Settings, compile_node
from controller.ovs.nodebridge import add_node_bridge
from controller.ovs.privateovs import PrivateOvs
from controller.ovs.trace import TraceResult
from topology.model import VXLAN_OFPORT, Topology


@dataclass
class TraceLab:
    ovs: PrivateOvs
    topology: Topology
    bridges: dict[str, str] = field(default_factory=dict)  # host -> bridge
    flows: dict[str, NodeFlows] = field(default_factory=dict)

    def trace(self, host: str, flow_spec: str) -> TraceResult:
        return self.ovs.trace(self.bridges[host], flow_spec)


def bridge_name(host: str, taken: set[str]) -> str:
    name = "br-" + host.split(".")[0]
    while name in taken:
        name += "x"
    return name


def build_lab(ovs: PrivateOvs, topology: Topology, settings: Settings | None = None,
              prefix: str = "") -> TraceLab:
    """One bridge per HostSubnet, each holding its node's complete flow set; none for a node
    3.11 would not start (its hostIP inside the cluster or service network)."""
    settings = settings if settings is not None else Settings()
    lab = TraceLab(ovs, topology)
    for hs in topology.host_subnets:
        if topology.cluster_network.node_ip_conflict(hs.host_ip) is not None:
            continue
        bridge = bridge_name(prefix + hs.host, set(lab.bridges.values()))
        ports = {pod.interface or f"pod{pod.ofport}": pod.ofport for pod in topology.pods
                 if pod.node == hs.host and pod.ofport is not None}
        add_node_bridge(ovs, bridge, hs.datapath_id, ports,
                        vxlan_port=topology.cluster_network.vxlan_port, host_ip=str(hs.host_ip))
        flows = compile_node(topology, hs.host, settings)
        ovs.load_flows(bridge, flows.to_ofctl())
        lab.bridges[hs.host], lab.flows[hs.host] = bridge, flows
    return lab


# ------------------------------------------------------------------ acceptance traces

@dataclass(frozen=True)
class TraceCase:
    name: str
    description: str
    node: str
    flow: str
    tables: tuple[int, ...]
    final: Mapping[str, Any]


def load_cases(path: str | Path) -> list[TraceCase]:
    data = yaml.safe_load(Path(path).read_text())
    return [TraceCase(t["name"], " ".join(t.get("description", "").split()), t["node"],
                      t["flow"], tuple(t["tables"]), t["final"]) for t in data["traces"]]


def tun_id_of(result: TraceResult) -> int | None:
    value = result.tunnel.get("tun_id")
    return None if value is None else int(value, 0)


def describe_final(result: TraceResult) -> str:
    """What the packet finally does, in the terms traces.yaml uses."""
    if result.dropped:
        return "drop"
    parts = [f"output {','.join(str(p) for p in result.output_ports())}"]
    if result.tunnel:
        parts.append(f"tun_id=0x{tun_id_of(result) or 0:x} tun_dst={result.tunnel.get('dst')}")
    if result.field("pkt_mark") is not None:
        parts.append(f"pkt_mark={result.field('pkt_mark')}")
    if any(action.endswith("->eth_dst") for step in result.steps for action in step.actions):
        parts.append(f"eth_dst={result.field('dl_dst')}")
    return ", ".join(parts)


def check_case(case: TraceCase, result: TraceResult) -> list[str]:
    """Every way `result` differs from the case's expected path and final action."""
    problems = []
    if tuple(result.tables) != case.tables:
        problems.append(f"tables {list(result.tables)}, expected {list(case.tables)}")
    final = case.final
    if final.get("drop"):
        if not result.dropped:
            problems.append(f"expected a drop, got {describe_final(result)}")
        return problems
    if "output" in final and result.output_ports() != [final["output"]]:
        problems.append(f"output {result.output_ports()}, expected [{final['output']}]")
    if "tun_dst" in final and result.tunnel.get("dst") != str(final["tun_dst"]):
        problems.append(f"tun_dst {result.tunnel.get('dst')}, expected {final['tun_dst']}")
    if "tun_id" in final and tun_id_of(result) != final["tun_id"]:
        problems.append(f"tun_id {tun_id_of(result)}, expected {final['tun_id']}")
    if "pkt_mark" in final and int(result.field("pkt_mark") or "0", 0) != final["pkt_mark"]:
        problems.append(f"pkt_mark {result.field('pkt_mark')}, expected {final['pkt_mark']:#x}")
    if "eth_dst" in final and result.field("dl_dst") != final["eth_dst"]:
        problems.append(f"eth_dst {result.field('dl_dst')}, expected {final['eth_dst']}")
    return problems


# ------------------------------------------------------------------ pod to pod

@dataclass
class Delivery:
    """What became of one packet from a pod to an address, across at most two bridges."""

    delivered_to: int | None  # the ofport it left on at the last bridge (None = dropped)
    hops: list[tuple[str, TraceResult]]  # (host, trace) in order

    @property
    def last(self) -> TraceResult:
        return self.hops[-1][1]

    def explain(self) -> str:
        return "\n".join(f"--- {host}\n{result.raw}" for host, result in self.hops)


def pod_flow(pod: Any, ofport: int, dst_ip: str, proto: str, dst_port: int | None,
             ct_state: str) -> str:
    l4 = f",{proto}_dst={dst_port}" if dst_port is not None and proto in ("tcp", "udp") else ""
    return (f"in_port={ofport},{proto},dl_src={pod.mac},nw_src={pod.ip},nw_dst={dst_ip}{l4},"
            f"ct_state={ct_state}")


def send_from_pod(lab: TraceLab, pod: Any, dst_ip: str, proto: str = "tcp",
                  dst_port: int | None = 8080, ct_state: str = "new|trk") -> Delivery:
    """Trace a packet from `pod`; if it is tunnelled to another node, trace it there too."""
    assert pod.ofport is not None, f"{pod.key} has no ofport"
    first = lab.trace(pod.node, pod_flow(pod, pod.ofport, dst_ip, proto, dst_port, ct_state))
    hops = [(pod.node, first)]
    ports = first.output_ports()
    if ports == [VXLAN_OFPORT] and first.tunnel:
        remote = next((hs for hs in lab.topology.host_subnets
                       if str(hs.host_ip) == first.tunnel.get("dst")), None)
        if remote is None:
            # it leaves the cluster's tunnel mesh (an egress node elsewhere)
            return Delivery(VXLAN_OFPORT, hops)
        local = lab.topology.host_subnet(pod.node)
        assert local is not None
        l4 = f",{proto}_dst={dst_port}" if dst_port is not None else ""
        spec = (f"in_port={VXLAN_OFPORT},tun_id={first.tunnel['tun_id']},"
                f"tun_src={local.host_ip},{proto},dl_src={pod.mac},nw_src={pod.ip},"
                f"nw_dst={dst_ip}{l4},ct_state={ct_state}")
        second = lab.trace(remote.host, spec)
        hops.append((remote.host, second))
        ports = second.output_ports()
    return Delivery(ports[0] if len(ports) == 1 else None, hops)
