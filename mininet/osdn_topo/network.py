"""A cluster as a running Mininet network: the Mininet fixes this sandbox needs (`OsdnMininet`),
the Topo built from a topology (`OsdnTopo`), and `osdn_network`, which brings a cluster up,
waits until every br0 is in sync, and tears it down (`OsdnNet` is what experiments get)."""

from __future__ import annotations

import os
import re
import select
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Debian's mininet is importable: the package's __init__ has run import_mininet().
from mininet.link import Link, TCLink
from mininet.log import output
from mininet.net import Mininet
from mininet.topo import Topo
from mininet.util import ensureRoot

from controller.compiler import Settings, compile_node
from lab.cluster.build import Plan, make_plan, underlay_mac
from topology.load import TopologyError, load_topology
from topology.model import PLUGIN_NAMES, Pod, Topology

from .names import mininet_names
from .nodes import DelayLine, NodeSpec, OsdnController, OsdnNode, PodHost, Underlay, netem_available
from .sandbox import SANDBOX_DIR, require_sandbox

PLUGINS = PLUGIN_NAMES  # what --plugin accepts


class OsdnMininet(Mininet):
    """Mininet, with what does not work here fixed:

    * `init` does not raise machine-wide limits (Mininet's fixLimits writes kernel.pty.max,
      fs.file-max and net.core.* sysctls, which the sandbox does not isolate);
    * `iperf` works with iperf 2.1 (Mininet 2.3 waits for two server reports, iperf 2.1.8
      prints one: `iperf` in the CLI and `--test iperf` hang) and never kills by name;
    * `ping`/`pingFull` (the CLI's pingall, pingallfull) wait 1 s for an answer instead of
      ping's 10 s linger, so isolated pairs do not take 10 s each."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Mininet.__init__ calls Mininet.init() (the base class's), which runs fixLimits.
        ensureRoot()
        Mininet.inited = True
        super().__init__(*args, **kwargs)

    def ping(self, hosts: Any = None, timeout: Any = None) -> Any:
        return super().ping(hosts, timeout or "1")

    def pingFull(self, hosts: Any = None, timeout: Any = None) -> Any:  # noqa: N802
        return super().pingFull(hosts, timeout or "1")

    def iperf(self, hosts: Any = None, l4Type: str = "TCP", udpBw: str = "10M",  # noqa: N803
              fmt: str | None = None, seconds: int = 5, port: int = 5001) -> list[str]:
        hosts = hosts or [self.hosts[0], self.hosts[-1]]
        assert len(hosts) == 2
        client, server = hosts
        output("*** Iperf: testing", l4Type, "bandwidth between", client, "and", server, "\n")
        base = ["iperf", "-p", str(port)] + (["-u"] if l4Type == "UDP" else []) + (
            ["-f", fmt] if fmt else [])
        if l4Type not in ("TCP", "UDP"):
            raise ValueError(f"Unexpected l4 type: {l4Type}")
        srv = server.popen(base + ["-s"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            if l4Type == "TCP":
                deadline = time.monotonic() + 5
                while not server.cmd(f"ss -Htln 'sport = :{port}'").strip():
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"iperf server on {server} did not listen")
                    time.sleep(0.05)
            cliout = client.cmd(" ".join(base + ["-t", str(seconds), "-c", server.IP()]
                                         + (["-b", udpBw] if l4Type == "UDP" else [])))
            servout = _read_until(srv, "/sec", timeout=3 + seconds)
        finally:
            srv.terminate()
            try:
                srv.wait(5)
            except subprocess.TimeoutExpired:
                srv.kill()
                srv.wait(5)
        result = [self._parseIperf(servout), self._parseIperf(cliout)]
        if l4Type == "UDP":
            result.insert(0, udpBw)
        output(f"*** Results: {result}\n")
        return result


def _read_until(proc: subprocess.Popen[bytes], needle: str, timeout: float) -> str:
    """Read proc's stdout until `needle` appears (then a little more) or `timeout`."""
    assert proc.stdout is not None
    text, deadline = "", time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            text += chunk.decode(errors="replace")
        elif needle in text:
            break
    return text


# ---------------------------------------------------------------------------------------------
# The topology


def _milliseconds(text: Any) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(us|ms|s)?", str(text).strip())
    if not m:
        raise SystemExit(f"not a delay: {text!r} (e.g. 5ms)")
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2) or "ms"]


class OsdnTopo(Topo):
    """Nodes, pods and the underlay of one cluster (see the module docstring)."""

    def build(self, topology: Topology, underlay_link: dict[str, Any] | None = None,
              controller_address: str = "") -> None:
        plan = make_plan(topology, "mn", None, None)
        node_names, pod_names = mininet_names(topology)
        self.addSwitch("u0", cls=Underlay, dpid="1", address=controller_address)
        self._add_nodes(topology, plan, node_names, dict(underlay_link or {}))
        self._add_pods(topology, node_names, pod_names)

    def _add_nodes(self, topology: Topology, plan: Plan, node_names: dict[str, str],
                   shape: dict[str, Any]) -> None:
        """Each node linked to u0 (through a delay line when delay or loss is asked for and
        the kernel has no sch_netem)."""
        prefixlen = plan.underlay.prefixlen
        net = topology.cluster_network
        peers = {str(hs.host_ip): underlay_mac(hs.host_ip) for hs in topology.host_subnets}
        netem_opts: dict[str, Any] = {k: shape.pop(k) for k in ("delay", "jitter", "loss")
                                      if k in shape}
        delay_line = bool(netem_opts) and not netem_available()
        if netem_opts and not delay_line:
            shape.update(netem_opts)
        link_cls = TCLink if shape else Link
        self.delay_lines = delay_line
        for index, hs in enumerate(topology.host_subnets):
            name = node_names[hs.host]
            ports = {info["interface"]: info["ofport"] for info in plan.pods.values()
                     if info["node"] == hs.host}
            spec = NodeSpec(hs.host, str(hs.host_ip), prefixlen, hs.datapath_id, net.mtu,
                            net.vxlan_port, hs.tun0_mac, ports,
                            {ip: mac for ip, mac in peers.items() if ip != str(hs.host_ip)},
                            topology)
            self.addSwitch(name, cls=OsdnNode, spec=spec)
            if delay_line:
                if "jitter" in netem_opts:
                    raise SystemExit("jitter needs sch_netem, which this kernel lacks")
                line = f"dl{index + 1}"
                self.addSwitch(line, cls=DelayLine, dpid=f"{0xd1000 + index:x}",
                               delay_ms=_milliseconds(netem_opts.get("delay", "0ms")),
                               loss=float(netem_opts.get("loss", 0.0)))
                self.addLink(name, line, intfName1="uplink0", intfName2=f"{line}-n",
                             cls=link_cls, **shape)
                self.addLink(line, "u0", intfName1=f"{line}-u",
                             intfName2=f"u0-eth{index + 1}", cls=Link)
            else:
                self.addLink(name, "u0", intfName1="uplink0", intfName2=f"u0-eth{index + 1}",
                             cls=link_cls, **shape)

    def _add_pods(self, topology: Topology, node_names: dict[str, str],
                  pod_names: dict[str, str]) -> None:
        """Every pod with an ofport, linked to its node's port of that name."""
        net = topology.cluster_network
        cidrs = [str(n.cidr) for n in net.networks]
        for pod in topology.pods:
            if pod.ofport is None:
                continue
            hs = topology.host_subnet(pod.node)
            assert hs is not None
            self.addHost(pod_names[pod.key], cls=PodHost, ip=f"{pod.ip}/{hs.subnet.prefixlen}",
                         mac=pod.mac, defaultRoute=f"via {hs.gateway}", pod=pod, mtu=net.mtu,
                         routes=cidrs)
            self.addLink(pod_names[pod.key], node_names[pod.node], intfName1="eth0",
                         intfName2=pod.interface, cls=Link)


# ---------------------------------------------------------------------------------------------
# Bringing a cluster up


@dataclass
class OsdnNet:
    """A running cluster: the Mininet network plus what the experiments need to know."""

    net: OsdnMininet
    topology: Topology
    controller: OsdnController
    workdir: Path
    node_names: dict[str, str]  # HostSubnet host -> Mininet name
    pod_names: dict[str, str]  # pod key -> Mininet name
    timings: dict[str, float] = field(default_factory=dict)

    def pods(self) -> list[Pod]:
        return [p for p in self.topology.pods if p.ofport is not None]

    def host(self, pod: Pod) -> PodHost:
        return self.net[self.pod_names[pod.key]]

    def node(self, host: str) -> OsdnNode:
        return self.net[self.node_names[host]]

    def uplink_peer(self, host: str) -> str:
        """The Mininet node at the other end of a node's uplink (u0, or its delay line):
        `net.configLinkStatus(node, peer, 'down')` cuts the node off the underlay."""
        intf = self.node(host).nameToIntf["uplink0"]
        link = intf.link
        other = link.intf2 if link.intf1 is intf else link.intf1
        return other.node.name

    def pod_of(self, mininet_name: str) -> Pod:
        for pod in self.pods():
            if self.pod_names[pod.key] == mininet_name:
                return pod
        raise KeyError(mininet_name)

    def find_pod(self, text: str) -> Pod:
        """A pod by Mininet name, NAMESPACE/NAME or IP."""
        for pod in self.pods():
            if text in (self.pod_names[pod.key], pod.key, str(pod.ip)):
                return pod
        raise SystemExit(f"no pod {text!r}; pods: {', '.join(self.pod_names.values())}")

    def expected_flows(self) -> dict[str, int]:
        settings = Settings(resolver=lambda name: ())
        return {hs.host: len(compile_node(self.topology, hs.host, settings).flows)
                for hs in self.topology.host_subnets}

    def wait_in_sync(self, timeout: float = 60.0) -> float:
        """Until every br0 holds its whole pipeline (the table-253 note comes last in the
        controller's bundle); returns the seconds waited."""
        start = time.monotonic()
        want = self.expected_flows()
        pending = set(want)
        while pending:
            for host in sorted(pending):
                node = self.node(host)
                try:
                    dumped = node.ovs.dump_flows("br0") if node.ovs else []
                except Exception:
                    dumped = []
                if len(dumped) == want[host] and any("table=253" in f for f in dumped):
                    pending.discard(host)
            if pending and time.monotonic() - start > timeout:
                raise RuntimeError(f"bridges not in sync after {timeout:.0f} s: "
                                   f"{sorted(pending)}\ncontroller log:\n"
                                   f"{self.controller.log_tail()}")
            if pending:
                time.sleep(0.1)
        return time.monotonic() - start

    def describe(self) -> str:
        """A table of the pods: Mininet name, pod, node, IP, VNID."""
        rows = [("host", "pod", "node", "IP", "VNID")]
        for pod in self.pods():
            rows.append((self.pod_names[pod.key], pod.key,
                         f"{self.node_names[pod.node]} ({pod.node})", str(pod.ip),
                         str(self.topology.vnid_of(pod.namespace))))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        return "\n".join(
            "  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in rows)


def copy_topology(paths: Sequence[str], dest: Path) -> list[str]:
    """Copy the cluster's YAML under `dest` (the controller watches the copy, so an
    experiment may edit it without touching the user's files); returns the copied roots."""
    roots = []
    for index, raw in enumerate(paths):
        src = Path(raw).resolve()
        root = dest / str(index)
        if src.is_dir():
            files = [f for f in sorted(src.rglob("*")) if f.suffix in (".yaml", ".yml")]
            pairs = [(f, root / f.relative_to(src)) for f in files]
        else:
            pairs = [(src, root / src.name)]
        for f, target in pairs:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, target)
        roots.append(str(root))
    return roots


def add_cluster_arguments(parser: Any) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="the cluster: YAML files or directories (e.g. examples/seed-cluster)")
    parser.add_argument("--plugin", choices=sorted(PLUGINS),
                        help="override the ClusterNetwork's pluginName")
    parser.add_argument("-v", "--verbose", action="store_true", help="Mininet's info output")


@contextmanager
def osdn_network(paths: Sequence[str], plugin: str | None = None,
                 underlay_link: dict[str, Any] | None = None,
                 name: str = "cluster") -> Iterator[OsdnNet]:
    """Build the cluster, start it, wait until every br0 is in sync; stop it all after."""
    require_sandbox()
    workdir = SANDBOX_DIR / name
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    roots = copy_topology(paths, workdir / "topology")
    try:
        topology = load_topology(roots, plugin=PLUGINS[plugin] if plugin else None)
    except TopologyError as error:
        raise SystemExit(f"invalid topology:\n{error}") from None
    plan = make_plan(topology, "mn", None, None)
    assert plan.controller_ip is not None
    config = workdir / "controller.conf"
    config.write_text("[osdn]\ntopology = " + ", ".join(roots)
                      + "\ndns = off\nwatch_interval = 0.5\nmetrics_port = 0\n"
                      + (f"plugin = {plugin}\n" if plugin else ""))
    timings: dict[str, float] = {}
    start = time.monotonic()
    topo = OsdnTopo(topology=topology, underlay_link=underlay_link,
                    controller_address=f"{plan.controller_ip}/{plan.underlay.prefixlen}")
    net = OsdnMininet(topo=topo, controller=None, build=False, autoSetMacs=False)
    controller = OsdnController("c0", config=config, logdir=workdir, ip=str(plan.controller_ip))
    net.addController(controller)
    node_names, pod_names = mininet_names(topology)
    osnet = OsdnNet(net, topology, controller, workdir, node_names, pod_names, timings)
    try:
        net.build()
        net.start()
        timings["up"] = time.monotonic() - start
        timings["sync"] = osnet.wait_in_sync()
        if getattr(topo, "delay_lines", False):
            output("*** no sch_netem in this kernel: underlay delay/loss by delay-line nodes "
                   "(mininet/delayline.py), bandwidth by TCLink's htb\n")
        output(f"*** cluster up: {len(node_names)} nodes, {len(pod_names)} pods, "
               f"{topology.cluster_network.plugin.value}; built in {timings['up']:.1f} s, "
               f"every br0 in sync {timings['sync']:.1f} s later\n")
        yield osnet
    finally:
        try:
            net.stop()
        finally:
            _save_logs(osnet)


def _save_logs(osnet: OsdnNet) -> None:
    """Copy the controller's and the OVS instances' logs to $MININET_LOG_DIR (if set)."""
    target = os.environ.get("MININET_LOG_DIR")
    if not target:
        return
    dest = Path(target) / osnet.workdir.name
    dest.mkdir(parents=True, exist_ok=True)
    for log in osnet.workdir.glob("*.log"):
        shutil.copy(log, dest / log.name)
    for log in (SANDBOX_DIR / "nodes").glob("*/*.log"):
        shutil.copy(log, dest / f"{log.parent.name}-{log.name}")
    for log in Path("/var/log/openvswitch").glob("*.log"):
        shutil.copy(log, dest / f"sandbox-{log.name}")

