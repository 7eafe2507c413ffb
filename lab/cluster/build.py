"""`osdn cluster up`: build the cluster a topology describes, with real packets.

Layout (every piece a network namespace named `<prefix>-...`):

* `-u` the underlay: a Linux bridge joining the nodes' uplinks, the external host and the
  controller (the physical network of a real cluster);
* `-n<i>` one per HostSubnet: its own ovsdb-server + ovs-vswitchd (userspace datapath),
  `br-phy` holding the uplink with the node IP on its internal port (OVS's userspace
  tunnelling pattern), and br0 exactly as 3.11's SetupOVS builds it: fail_mode secure,
  OpenFlow13, the HostSubnet's datapath ID, vxlan0 = 1, tun0 = 2; plus the host side
  (`controller.hostside`);
* `-p<i>` one per pod with an ofport: eth0 a veth whose other end is the pod's br0 port;
* `-x` the external host (first address of the underlay), `-c` the controller (last one)
  unless `--controller` names one.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from controller.compiler import Settings, compile_node
from controller.compiler.context import RefusedNode
from controller.ovs.netns import in_netns
from controller.ovs.nodebridge import node_bridge_args
from controller.ovs.privateovs import PrivateOvs
from lab.cluster.state import ClusterStateError, Ledger, save_cluster
from topology.errors import OsdnError
from topology.model import Topology

CONTROLLER_PORT = 6653


class BuildError(OsdnError):
    pass


def sh(*argv: str, netns: str | None = None, check: bool = True,
       input: str | None = None) -> str:
    """Run a command (inside `netns` if given); raise with its stderr on failure."""
    full = (in_netns(netns) if netns else []) + list(argv)
    proc = subprocess.run(full, capture_output=True, text=True, input=input)
    if check and proc.returncode != 0:
        raise BuildError(f"{' '.join(full)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def underlay_mac(ip: IPv4Address) -> str:
    """Deterministic MAC for a node's br-phy, so tunnels can be pre-resolved."""
    return "02:00:" + ":".join(f"{b:02x}" for b in ip.packed)


@dataclass
class Plan:
    """Names and addresses chosen for one cluster, saved as cluster.json."""

    prefix: str
    underlay: IPv4Network
    external_ip: IPv4Address
    controller_ip: IPv4Address | None
    controller_target: str
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)  # host -> details
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)  # ns/name -> details

    def to_json(self) -> dict[str, Any]:
        return {"prefix": self.prefix, "underlay": str(self.underlay),
                "external_ip": str(self.external_ip),
                "controller_ip": str(self.controller_ip) if self.controller_ip else None,
                "controller_target": self.controller_target, "nodes": self.nodes,
                "pods": self.pods}


def apply_node_host_side(topology: Topology, host: str, netns: str, uplink_prefix: int) -> None:
    """tun0, routes and iptables of an emulated node, as `controller.hostside` plans them.
    The userspace datapath's pkt_mark never reaches iptables: egress SNAT by pod source."""
    from controller.hostside import apply_host, plan_host
    plan = plan_host(topology, host, uplink="br-phy", uplink_prefix=uplink_prefix,
                     egress_by_mark=False)
    apply_host(plan, lambda argv: sh(*argv, netns=netns),
               iptables_restore=lambda text: sh("iptables-restore", "--noflush", netns=netns,
                                                input=text),
               iptables_save=lambda: sh("iptables-save", netns=netns))


def make_plan(topology: Topology, prefix: str, underlay: IPv4Network | None,
              controller: str | None) -> Plan:
    first = topology.host_subnets[0].host_ip
    net = underlay or IPv4Network(f"{first}/24", strict=False)
    hosts = list(net.hosts())
    problems = [f"HostSubnet/{hs.name}: hostIP {hs.host_ip} is outside the underlay {net}"
                for hs in topology.host_subnets if hs.host_ip not in net]
    problems += [f"{kind} egress IP {ip} is outside the underlay {net}"
                 for kind, ips in [("HostSubnet", [i for hs in topology.host_subnets
                                                   for i in hs.egress_ips]),
                                   ("NetNamespace", [i for nn in topology.net_namespaces
                                                     for i in nn.egress_ips])]
                 for ip in ips if ip not in net]
    used = {hs.host_ip for hs in topology.host_subnets} | {
        ip for hs in topology.host_subnets for ip in hs.egress_ips}
    external, ctl = hosts[0], hosts[-1]
    for name, ip in (("external host", external), ("controller", ctl)):
        if ip in used:
            problems.append(f"the {name}'s address {ip} is taken by a node or an egress IP")
    if problems:
        raise BuildError("\n".join(problems))
    target = controller or f"tcp:{ctl}:{CONTROLLER_PORT}"
    plan = Plan(prefix, net, external, None if controller else ctl, target)
    for index, hs in enumerate(topology.host_subnets):
        plan.nodes[hs.host] = {"netns": f"{prefix}-n{index}", "host_ip": str(hs.host_ip),
                               "datapath_id": hs.datapath_id, "uplink_peer": f"n{index}"}
    for index, pod in enumerate(p for p in topology.pods if p.ofport is not None):
        plan.pods[pod.key] = {"netns": f"{prefix}-p{index}", "node": pod.node,
                              "ip": str(pod.ip), "mac": pod.mac, "ofport": pod.ofport,
                              "interface": pod.interface}
    return plan


class ClusterBuilder:
    def __init__(self, topology: Topology, topology_paths: Sequence[str], state_dir: Path,
                 prefix: str = "osdn", underlay: IPv4Network | None = None,
                 controller: str | None = None, log: Any = print,
                 plugin: str | None = None) -> None:
        """`plugin` (subnet|multitenant|networkpolicy) overrides pluginName, as `--plugin`
        did for `topology`; the controller started here is told the same."""
        self.topology = topology
        self.plugin = plugin
        self.paths = [str(Path(p).resolve()) for p in topology_paths]
        self.dir = state_dir
        self.ledger = Ledger(state_dir)
        self.plan = make_plan(topology, prefix, underlay, controller)
        self.log = log
        self.ovs: dict[str, PrivateOvs] = {}

    @property
    def mtu(self) -> int:
        return self.topology.cluster_network.mtu

    def ns(self, suffix: str) -> str:
        return f"{self.plan.prefix}-{suffix}"

    # ------------------------------------------------------------------ up

    def up(self) -> Plan:
        if self.ledger.entries():
            raise ClusterStateError(f"a cluster is already up in {self.dir}; "
                                    "run `osdn cluster down` first")
        self.dir.mkdir(parents=True, exist_ok=True)
        self._underlay()
        self._host("x", self.plan.external_ip, "external host")
        if self.plan.controller_ip is not None:
            self._host("c", self.plan.controller_ip, "controller")
        for hs in self.topology.host_subnets:
            self._node(hs.host)
        self._seed_tunnel_neighbours()
        for key in self.plan.pods:
            self._pod(key)
        save_cluster(self.dir, {**self.plan.to_json(), "topology": self.paths,
                                "plugin": self.plugin})
        self._start_agent()
        if self.plan.controller_ip is not None:
            self._start_controller()
        for host in self.plan.nodes:
            self._connect(host)
        return self.plan

    def _underlay(self) -> None:
        self.ledger.netns(self.ns("u"))
        sh("ip", "link", "add", "br-u", "type", "bridge", netns=self.ns("u"))
        sh("ip", "link", "set", "br-u", "up", netns=self.ns("u"))

    def _uplink(self, netns: str, peer: str, inside: str) -> None:
        """A veth from `netns` (named `inside`) to the underlay bridge (named `peer`)."""
        sh("ip", "link", "add", inside, "netns", netns, "type", "veth", "peer", "name", peer,
           "netns", self.ns("u"))
        sh("ip", "link", "set", peer, "master", "br-u", "up", netns=self.ns("u"))
        # the underlay side sends into userspace-datapath ports: no checksum offload
        sh("ethtool", "-K", peer, "tx", "off", netns=self.ns("u"))
        sh("ip", "link", "set", inside, "up", netns=netns)

    @staticmethod
    def _ovs_only(netns: str, ifname: str) -> None:
        """Keep the node's kernel off a port that belongs to a userspace-datapath bridge.

        With the kernel datapath a port attached to OVS never feeds the host's IP stack; with
        the userspace one it still does: the kernel would answer a pod's ARP for the gateway
        with the veth's own MAC and then route the pod's packets itself, past br0 (a pod's
        first connection then left masqueraded with the node IP instead of its egress IP)."""
        sh("ip", "link", "set", ifname, "arp", "off", netns=netns)
        sh("sysctl", "-qw", f"net.ipv6.conf.{ifname}.disable_ipv6=1", netns=netns)
        sh("iptables", "-t", "raw", "-A", "PREROUTING", "-i", ifname, "-j", "DROP", netns=netns)

    def _host(self, suffix: str, ip: IPv4Address, what: str) -> None:
        netns = self.ns(suffix)
        self.ledger.netns(netns)
        self._uplink(netns, suffix, "eth0")
        sh("ethtool", "-K", "eth0", "tx", "off", netns=netns)
        sh("ip", "addr", "add", f"{ip}/{self.plan.underlay.prefixlen}", "dev", "eth0",
           netns=netns)

    def _node(self, host: str) -> None:
        info = self.plan.nodes[host]
        hs = self.topology.host_subnet(host)
        assert hs is not None
        netns = info["netns"]
        self.ledger.netns(netns)
        self._uplink(netns, info["uplink_peer"], "uplink0")
        self._ovs_only(netns, "uplink0")
        sh("sysctl", "-qw", "net.ipv4.ip_forward=1", netns=netns)
        ovs_dir = self.dir / "ovs" / netns
        self.ledger.process(ovs_dir / "ovs-vswitchd.pid", str(ovs_dir))
        self.ledger.process(ovs_dir / "ovsdb-server.pid", str(ovs_dir))
        ovs = PrivateOvs(ovs_dir, dummy=False, netns=netns, keep_dir=True,
                         stop_at_exit=False).start()  # the ledger owns the daemons
        self.ovs[host] = ovs
        info["ovs_dir"] = str(ovs_dir)
        mac = underlay_mac(hs.host_ip)
        ovs.vsctl("add-br", "br-phy", "--", "set", "bridge", "br-phy", "datapath_type=netdev",
                  f"other-config:hwaddr={mac}", "--", "add-port", "br-phy", "uplink0")
        sh("ip", "addr", "add", f"{hs.host_ip}/{self.plan.underlay.prefixlen}", "dev", "br-phy",
           netns=netns)
        sh("ip", "link", "set", "br-phy", "up", netns=netns)
        vxlan = self.topology.cluster_network.vxlan_port
        ovs.vsctl(*node_bridge_args("br0", hs.datapath_id, datapath_type="netdev",
                                    vxlan_port=vxlan, tun0_type="internal", mtu=self.mtu))
        ovs.ofctl("br0", "set-frags", "nx-match")
        sh("ip", "link", "set", "tun0", "address", hs.tun0_mac, netns=netns)
        self._host_side(host)

    def _host_side(self, host: str) -> None:
        apply_node_host_side(self.topology, host, self.plan.nodes[host]["netns"],
                             self.plan.underlay.prefixlen)

    def _seed_tunnel_neighbours(self) -> None:
        """Userspace tunnels ARP for a remote VTEP and drop meanwhile: pre-seed them."""
        for host, ovs in self.ovs.items():
            for other in self.topology.host_subnets:
                if other.host != host:
                    ovs.appctl("tnl/neigh/set", "br-phy", str(other.host_ip),
                               underlay_mac(other.host_ip))

    def _pod(self, key: str) -> None:
        info = self.plan.pods[key]
        node = self.plan.nodes[info["node"]]
        hs = self.topology.host_subnet(info["node"])
        assert hs is not None
        netns, iface = info["netns"], info["interface"]
        self.ledger.netns(netns)
        # openshift-sdn pods are IPv4-only; IPv6 router solicitations would only add noise
        # to table 20's drop counters
        sh("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", netns=netns)
        sh("sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1", netns=netns)
        sh("ip", "link", "add", iface, "netns", node["netns"], "type", "veth", "peer", "name",
           "eth0", "netns", netns)
        sh("ip", "link", "set", iface, "mtu", str(self.mtu), "up", netns=node["netns"])
        self._ovs_only(node["netns"], iface)
        for argv in (["ip", "link", "set", "eth0", "address", info["mac"], "mtu", str(self.mtu)],
                     ["ip", "addr", "add", f"{info['ip']}/{hs.subnet.prefixlen}", "dev", "eth0"],
                     ["ip", "link", "set", "eth0", "up"],
                     ["ip", "route", "add", "default", "via", str(hs.gateway)],
                     ["ethtool", "-K", "eth0", "tx", "off"]):
            sh(*argv, netns=netns)
        for cidr in (n.cidr for n in self.topology.cluster_network.networks):
            sh("ip", "route", "replace", str(cidr), "dev", "eth0", netns=netns)
        sh("ip", "route", "replace", "224.0.0.0/4", "dev", "eth0", netns=netns)
        self.ovs[info["node"]].vsctl("add-port", "br0", iface, "--", "set", "interface", iface,
                                     f"ofport_request={info['ofport']}")

    def _start(self, name: str, argv: list[str]) -> None:
        """A background process of the cluster, recorded (by pidfile) before it starts."""
        pidfile = self.dir / f"{name}.pid"
        self.ledger.process(pidfile, str(self.dir))
        with (self.dir / f"{name}.log").open("w") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        pidfile.write_text(str(proc.pid))

    def _start_agent(self) -> None:
        self._start("agent", [sys.executable, "-m", "lab.cluster.agent", str(self.dir)])

    def _start_controller(self) -> None:
        conf = self.dir / "controller.conf"
        conf.write_text("[osdn]\ntopology = " + ", ".join(self.paths)
                        + "\ndns = off\nwatch_interval = 0.5\n"
                        + (f"plugin = {self.plugin}\n" if self.plugin else ""))
        manager = str(Path(sys.executable).with_name("osken-manager"))
        self._start("controller", [*in_netns(self.ns("c")), manager,
                                   "--config-file", str(conf), "--ofp-listen-host",
                                   str(self.plan.controller_ip), "--ofp-tcp-listen-port",
                                   str(CONTROLLER_PORT), "controller.app"])

    def _connect(self, host: str) -> None:
        ovs = self.ovs[host]
        ovs.vsctl("set-controller", "br0", self.plan.controller_target, "--", "set",
                  "controller", "br0", "connection-mode=out-of-band", "max_backoff=1000",
                  "inactivity_probe=5000",
                  "--", "set", "bridge", "br0", "other-config:disable-in-band=true")

    # ------------------------------------------------------------------ readiness

    def _compiled_count(self, host: str, settings: Settings) -> int:
        """How many flows the controller gives `host`'s br0: none for a node whose hostIP
        3.11 refuses (it would not start; the controller cannot compile it)."""
        try:
            return len(compile_node(self.topology, host, settings).flows)
        except RefusedNode:
            return 0

    def wait_in_sync(self, timeout: float = 60.0) -> dict[str, int]:
        """Wait until every br0 holds its whole compiled pipeline (the controller writes the
        table-253 note last, in the same bundle); returns flows per node."""
        settings = Settings(resolver=lambda name: ())
        counts = {host: self._compiled_count(host, settings) for host in self.plan.nodes}
        deadline = time.monotonic() + timeout
        pending = set(self.plan.nodes)
        while pending and time.monotonic() < deadline:
            for host in sorted(pending):
                dumped = self.ovs[host].dump_flows("br0")
                if len(dumped) == counts[host] and (
                        not counts[host] or any("table=253" in f for f in dumped)):
                    pending.discard(host)
            time.sleep(0.2)
        if pending:
            raise BuildError(f"bridges not in sync after {timeout:.0f} s: {sorted(pending)}; "
                             f"see {self.dir / 'controller.log'}")
        return counts
