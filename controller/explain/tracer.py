"""Where `explain` gets its traces: OVS's own `ofproto/trace`, offline or on a node.

* `ScratchTracer` (offline): one private OVS instance (dummy datapath), and for each node the
  walk reaches, a throw-away bridge laid out as 3.11's br0 and loaded with `compile_node`'s
  flows through `ovs-ofctl --bundle add-flows` (what `osdn render` prints).  Bridges are
  built on first use, so a pair on one node costs one bridge.  As a context manager it
  removes exactly what it made: its bridges, and the instance if it started one.
* `AppctlTracer` (live): `ovs-appctl [-t TARGET] ofproto/trace BRIDGE FLOW` on the node it
  runs on; traces for other nodes are refused (`ElsewhereError`), and the walk says where
  the packet went.
"""

from __future__ import annotations

import subprocess
from typing import Protocol

from controller.compiler import NodeFlows, Settings, compile_node
from controller.ovs.nodebridge import add_node_bridge
from controller.ovs.ovscommands import OvsCommandError, find_ovs_binary
from controller.ovs.privateovs import PrivateOvs
from controller.ovs.trace import TraceResult, parse_dpif_show, parse_trace
from topology.errors import OsdnError
from topology.model import Topology


class Tracer(Protocol):
    def trace(self, host: str, flow_spec: str) -> TraceResult:
        """`ofproto/trace` of `flow_spec` on the br0 of HostSubnet `host`."""
        ...


class ElsewhereError(OsdnError):
    """A live tracer was asked for a node it is not on."""

    def __init__(self, host: str, here: str) -> None:
        super().__init__(f"the packet continues on {host}; this tracer is on {here}")
        self.host = host


def bridge_name(host: str, taken: set[str]) -> str:
    name = "br-" + host.split(".")[0]
    while name in taken:
        name += "x"
    return name


def build_node_bridge(ovs: PrivateOvs, topology: Topology, host: str, bridge: str,
                      settings: Settings | None = None) -> NodeFlows:
    """`host`'s br0 as bridge `bridge` of `ovs` (dummy), holding its complete flow set."""
    hs = topology.host_subnet(host)
    if hs is None:
        raise OsdnError(f"no HostSubnet with host {host!r}")
    flows = compile_node(topology, host, settings if settings is not None else Settings())
    ports = {pod.interface or f"pod{pod.ofport}": pod.ofport for pod in topology.pods
             if pod.node == host and pod.ofport is not None}
    add_node_bridge(ovs, bridge, hs.datapath_id, ports,
                    vxlan_port=topology.cluster_network.vxlan_port, host_ip=str(hs.host_ip))
    try:
        ovs.load_flows(bridge, flows.to_ofctl())
    except BaseException:
        ovs.del_bridge(bridge)
        raise
    return flows


class ScratchTracer:
    """Offline traces on throw-away bridges, one per node reached, built lazily."""

    def __init__(self, topology: Topology, settings: Settings | None = None,
                 ovs: PrivateOvs | None = None, prefix: str = "") -> None:
        """`ovs`: an instance to build in (started by the caller, left running); without
        one, a private instance is started on first use and stopped by `close`."""
        self.topology = topology
        self.settings = settings if settings is not None else Settings()
        self._ovs = ovs
        self._own_ovs = ovs is None
        self.prefix = prefix
        self.bridges: dict[str, str] = {}  # host -> bridge
        self.flows: dict[str, NodeFlows] = {}

    @property
    def ovs(self) -> PrivateOvs:
        if self._ovs is None:
            self._ovs = PrivateOvs().start()
        return self._ovs

    def bridge(self, host: str) -> str:
        """The bridge holding `host`'s flows, built now if it is not yet."""
        if host not in self.bridges:
            name = bridge_name(self.prefix + host, set(self.bridges.values()))
            self.flows[host] = build_node_bridge(self.ovs, self.topology, host, name,
                                                 self.settings)
            self.bridges[host] = name
        return self.bridges[host]

    def trace(self, host: str, flow_spec: str) -> TraceResult:
        return self.ovs.trace(self.bridge(host), flow_spec)

    def close(self) -> None:
        """Remove the bridges made here; stop the instance if it was started here."""
        if self._ovs is None:
            return
        if self._own_ovs:
            self._ovs.stop()
            self._ovs = None
        else:
            for bridge in self.bridges.values():
                self._ovs.del_bridge(bridge)
        self.bridges.clear()
        self.flows.clear()

    def __enter__(self) -> ScratchTracer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AppctlTracer:
    """`ovs-appctl [-t TARGET] ofproto/trace BRIDGE FLOW` on a running node's vswitchd."""

    def __init__(self, host: str, bridge: str = "br0", target: str | None = None,
                 timeout: float = 30.0) -> None:
        """`host`: the HostSubnet host this vswitchd serves; `target`: ovs-appctl's -t (a
        pid file, control socket or daemon name; default: the system's ovs-vswitchd)."""
        self.host = host
        self.bridge = bridge
        self.target = target
        self.timeout = timeout

    def _appctl(self, *args: str) -> str:
        argv = [find_ovs_binary("ovs-appctl"), *(["-t", self.target] if self.target else []),
                *args]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout,
                              stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise OvsCommandError(argv, proc.returncode, proc.stderr, proc.stdout)
        return proc.stdout

    def trace(self, host: str, flow_spec: str) -> TraceResult:
        if host != self.host:
            raise ElsewhereError(host, self.host)
        raw = self._appctl("ofproto/trace", self.bridge, flow_spec)
        return parse_trace(raw, dp_ports=parse_dpif_show(self._appctl("dpif/show")),
                           bridge=self.bridge)


class LiveThenScratch:
    """Live traces on the node `live` serves; the other nodes a packet reaches are traced
    offline (from the topology) by `scratch`.  `offline` lists the hosts traced offline."""

    def __init__(self, live: AppctlTracer, scratch: ScratchTracer) -> None:
        self.live = live
        self.scratch = scratch
        self.offline: list[str] = []

    def trace(self, host: str, flow_spec: str) -> TraceResult:
        if host == self.live.host:
            return self.live.trace(host, flow_spec)
        if host not in self.offline:
            self.offline.append(host)
        return self.scratch.trace(host, flow_spec)
