"""An osdn cluster as a Mininet network: Topo, Node/Host/Controller classes and the build.

Run only inside the sandbox of `mininet/run` (its own network, mount and PID namespaces with a
private OVS at OVS's default paths); `require_sandbox()` refuses anything else, because
Mininet's clean-up kills processes and deletes bridges machine-wide.

What a topology YAML becomes (`OsdnTopo`):

* every HostSubnet -> an `OsdnNode`: a Mininet *switch* in its own network namespace running
  its own ovsdb-server + ovs-vswitchd, started by `scripts/ovs-start` (the container's start-up
  script): br-phy holding the node's uplink with the node IP (OVS's userspace-tunnelling
  pattern), br0 as 3.11's SetupOVS builds it (vxlan0 = 1, tun0 = 2, the HostSubnet's
  datapath ID, fail_mode secure), the pods' ports at their ofports, and the node's host side
  (`controller.hostside`: tun0 address and routes, iptables). One OVS instance per node gives
  each node its own tunnel endpoint, kernel routing table and neighbour cache, exactly as on
  a real cluster (and as `osdn cluster up` does);
* the underlay -> `u0`, Mininet's own `OVSBridge` (standalone, userspace datapath) in the
  sandbox's root namespace, linked to every node's uplink by a `TCLink` (so delay, loss and
  bandwidth are Mininet link options) and holding the controller's address on its LOCAL port;
  where the kernel lacks sch_netem (these machines), delay and loss are done by a
  `DelayLine` node inserted into each uplink, bandwidth still by the TCLink's htb;
* every pod with an ofport -> a `PodHost` (a Mininet Host) whose eth0 is linked to its node,
  with the pod's IP, 0a:58 MAC, MTU and openshift-sdn's routes;
* the controller -> `OsdnController`, a Mininet Controller running
  `osken-manager controller.app` from this interpreter's environment on a copy of the topology.

Mininet's own `pingall`, `iperf`, `link`, `dpctl`, `net`, `nodes` work on the result;
`OsdnMininet` only fixes what does not work here (see its docstring).
"""

from __future__ import annotations

import importlib.util
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OVS_START = REPO / "scripts" / "ovs-start"
SANDBOX_MARK = b"--osdn-mininet-sandbox"
SANDBOX_DIR = Path("/run/osdn-mininet")
DEBIAN_MININET = Path(os.environ.get("MININET_PACKAGE", "/usr/lib/python3/dist-packages/mininet"))
CONTROLLER_PORT = 6653


# ---------------------------------------------------------------------------------------------
# Importing Debian's Mininet into this (the project's) interpreter


def import_mininet() -> Any:
    """Debian's `mininet` package, imported into the running interpreter.

    Debian installs Mininet for /usr/bin/python3; the project runs in its own virtualenv.
    Both are CPython 3.11 and Mininet is pure Python (its only binary, mnexec, is on PATH),
    so the package is loaded from its Debian directory by file location: nothing is installed
    into the virtualenv, nothing else of Debian's dist-packages becomes importable, and the
    Python code is always the one that matches Debian's mnexec.  A regular `mininet` package
    already importable (say, installed into the venv) is used instead.  The repository's
    `mininet/` directory has no __init__.py, so it can never shadow the real package."""
    loaded = sys.modules.get("mininet")
    if loaded is not None and getattr(loaded, "__file__", None):
        return loaded
    spec = importlib.util.find_spec("mininet")
    if spec is not None and spec.origin and spec.origin.endswith("__init__.py"):
        return importlib.import_module("mininet")
    init = DEBIAN_MININET / "__init__.py"
    if not init.exists():
        raise SystemExit(f"Mininet's Python package not found at {DEBIAN_MININET}: "
                         "apt-get install mininet (or run scripts/setup-env)")
    spec = importlib.util.spec_from_file_location(
        "mininet", init, submodule_search_locations=[str(DEBIAN_MININET)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["mininet"] = module
    spec.loader.exec_module(module)
    return module


import_mininet()

from mininet.cli import CLI  # noqa: E402
from mininet.link import Link, TCLink  # noqa: E402
from mininet.log import info, output, setLogLevel  # noqa: E402
from mininet.net import Mininet  # noqa: E402
from mininet.node import Controller, Host, Node, OVSBridge, Switch  # noqa: E402
from mininet.topo import Topo  # noqa: E402
from mininet.util import ensureRoot  # noqa: E402

from controller.compiler import Settings, compile_node  # noqa: E402
from controller.hostside import apply_host, plan_host  # noqa: E402
from lab.cluster.build import make_plan, underlay_mac  # noqa: E402
from lab.ovscommands import OvsCommands  # noqa: E402
from topology.load import TopologyError, load_topology  # noqa: E402
from topology.model import Plugin, Pod, Topology  # noqa: E402

PLUGINS = {"subnet": Plugin.SUBNET, "multitenant": Plugin.MULTITENANT,
           "networkpolicy": Plugin.NETWORKPOLICY}

__all__ = ["CLI", "OsdnMininet", "OsdnNet", "osdn_network", "expected_reachable",
           "require_sandbox", "setLogLevel", "output", "info"]


class SandboxError(SystemExit):
    pass


def require_sandbox() -> None:
    """Refuse to run Mininet anywhere but inside `mininet/run`'s namespaces."""
    try:
        with open("/proc/1/cmdline", "rb") as f:
            init = f.read()
    except OSError:
        init = b""
    if SANDBOX_MARK not in init:
        raise SandboxError(
            "refusing to run Mininet outside its sandbox: run this through mininet/run "
            "(own network, mount and PID namespaces and a private OVS), e.g.\n"
            f"  {REPO / 'mininet' / 'run'} isolation examples/seed-cluster")
    if os.geteuid() != 0:
        raise SandboxError("Mininet needs root")


# ---------------------------------------------------------------------------------------------
# Names


_CLI_WORDS = {name[3:] for name in dir(CLI) if name.startswith("do_")}


def _sanitize(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", text).strip("_") or "x"
    return name if name[0].isalpha() else "p" + name


def pod_base_name(name: str) -> str:
    """web-76c94f7546-t8pfq -> web, docker-registry-1-x2vq7 -> docker_registry."""
    for pattern in (r"^(.*)-[0-9a-f]{8,10}-[0-9a-z]{5}$", r"^(.*)-\d+-[0-9a-z]{5}$"):
        m = re.match(pattern, name)
        if m:
            return _sanitize(m.group(1))
    return _sanitize(name)


def mininet_names(topology: Topology) -> tuple[dict[str, str], dict[str, str]]:
    """(HostSubnet host -> Mininet node name, pod key -> Mininet host name): short names
    that Mininet's CLI can parse (letters, digits, _), unique, never a CLI command."""
    taken = set(_CLI_WORDS) | {"u0", "c0"}
    nodes: dict[str, str] = {}
    for hs in topology.host_subnets:
        base = _sanitize(hs.host.split(".")[0])
        name, i = base, 2
        while name in taken:
            name, i = f"{base}{i}", i + 1
        nodes[hs.host] = name
        taken.add(name)
    pods = [p for p in topology.pods if p.ofport is not None]
    counts: dict[str, int] = {}
    for pod in pods:
        counts[pod_base_name(pod.name)] = counts.get(pod_base_name(pod.name), 0) + 1
    seen: dict[str, int] = {}
    names: dict[str, str] = {}
    for pod in pods:
        base = pod_base_name(pod.name)
        if counts[base] > 1:
            seen[base] = seen.get(base, 0) + 1
            base = f"{base}{seen[base]}"
        name, i = base, 2
        while name in taken:
            name, i = f"{base}_{i}", i + 1
        names[pod.key] = name
        taken.add(name)
    return nodes, names


# ---------------------------------------------------------------------------------------------
# Node classes


@dataclass
class NodeSpec:
    host: str
    host_ip: str
    prefixlen: int
    datapath_id: int
    mtu: int
    vxlan_port: int
    tun0_mac: str
    pod_ports: dict[str, int]  # pod interface name -> ofport
    peers: dict[str, str]  # other nodes' IP -> their br-phy MAC
    topology: Topology = field(repr=False)


def _run_in(node: Node, argv: Sequence[str], input: str | None = None,
            timeout: float = 60.0) -> str:
    """Run argv in `node`'s namespaces; raise with its output on failure."""
    proc = node.popen(list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE)
    out, err = proc.communicate(input.encode() if input is not None else None, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{node.name}: {' '.join(argv)} failed (exit {proc.returncode}):\n"
                           f"{err.decode(errors='replace')}{out.decode(errors='replace')}")
    return out.decode(errors="replace")


class OsdnNode(Switch):
    """An openshift-sdn node: a Mininet switch in its own network namespace with its own OVS
    instance (br-phy + br0, started by scripts/ovs-start) and its host side."""

    def __init__(self, name: str, spec: NodeSpec | None = None, **params: Any) -> None:
        assert spec is not None, "OsdnNode needs spec="
        params["inNamespace"] = True
        Switch.__init__(self, name, dpid=f"{spec.datapath_id:016x}", **params)
        self.controlIntf = None  # Mininet sets it only for root-namespace switches
        self.spec = spec
        self.ovs_dir = SANDBOX_DIR / "nodes" / name
        self.ovs: OvsCommands | None = None

    def IP(self, intf: Any = None) -> str:  # noqa: N802 (Mininet's name)
        """The node IP (on br-phy, which Mininet does not manage)."""
        return self.spec.host_ip if intf is None else super().IP(intf)

    def start(self, controllers: list[Controller]) -> None:
        spec = self.spec
        self.cmd("ip link set lo up")
        target = ",".join(f"{c.protocol}:{c.IP()}:{c.port}" for c in controllers)
        shutil.rmtree(self.ovs_dir, ignore_errors=True)
        _run_in(self, [str(OVS_START), "--dir", str(self.ovs_dir), "--uplink", "uplink0",
                       "--node-ip", f"{spec.host_ip}/{spec.prefixlen}",
                       "--br-phy-mac", underlay_mac(IPv4Address(spec.host_ip)),
                       "--br0", "--datapath-id", f"{spec.datapath_id:x}",
                       "--vxlan-port", str(spec.vxlan_port), "--mtu", str(spec.mtu),
                       "--tun0-mac", spec.tun0_mac]
                + (["--controller", target] if target else []))
        self.ovs = OvsCommands(self.ovs_dir)
        for iface, ofport in sorted(spec.pod_ports.items(), key=lambda item: item[1]):
            self._ovs_only(iface)
            self.ovs.vsctl("add-port", "br0", iface, "--", "set", "interface", iface,
                           f"ofport_request={ofport}")
        got = self.ovs.ofports("br0")
        wrong = {i: got.get(i) for i, p in spec.pod_ports.items() if got.get(i) != p}
        if wrong:
            raise RuntimeError(f"{self.name}: pod ports got the wrong ofports: {wrong}")
        plan = plan_host(spec.topology, spec.host, uplink="br-phy",
                         uplink_prefix=spec.prefixlen, egress_by_mark=False)
        apply_host(plan, lambda argv: _run_in(self, argv),
                   iptables_restore=lambda text: _run_in(
                       self, ["iptables-restore", "--noflush"], input=text))
        # Userspace tunnels drop the first packet to an unknown VTEP while they ARP for it.
        for ip, mac in spec.peers.items():
            self.ovs.appctl("tnl/neigh/set", "br-phy", ip, mac)

    def _ovs_only(self, iface: str) -> None:
        """Keep this namespace's kernel off a userspace-datapath port (see build.py)."""
        for argv in (["ip", "link", "set", iface, "arp", "off", "up"],
                     ["sysctl", "-qw", f"net.ipv6.conf.{iface}.disable_ipv6=1"],
                     ["iptables", "-t", "raw", "-A", "PREROUTING", "-i", iface, "-j", "DROP"]):
            _run_in(self, argv)

    def stop(self, deleteIntfs: bool = True) -> None:  # noqa: N803 (Mininet's name)
        if self.ovs is not None:
            try:
                _run_in(self, [str(OVS_START), "--dir", str(self.ovs_dir), "--stop"])
            except Exception as error:  # the sandbox's end kills it anyway
                print(f"*** {self.name}: {error}", file=sys.stderr)
            self.ovs = None
        super().stop(deleteIntfs)

    def dpctl(self, *args: str) -> str:
        """`dpctl dump-flows` etc. on br0 (OpenFlow 1.3, its management socket)."""
        if not args:
            return "usage: dpctl COMMAND [ARG...]\n"
        return self.cmd("ovs-ofctl", "-O", "OpenFlow13", args[0],
                        f"unix:{self.ovs_dir}/br0.mgmt", *args[1:])

    def connected(self) -> bool:
        if self.ovs is None:
            return False
        try:
            return "true" in self.ovs.vsctl("get", "controller", "br0", "is_connected")
        except Exception:
            return False

    def flow_count(self) -> int:
        assert self.ovs is not None
        return len(self.ovs.dump_flows("br0"))


class Underlay(OVSBridge):
    """The nodes' physical network: a standalone userspace bridge whose LOCAL port holds
    the controller's address (`address=`, e.g. 192.168.108.254/24)."""

    def __init__(self, name: str, address: str = "", **params: Any) -> None:
        params.update(datapath="user", batch=False)
        OVSBridge.__init__(self, name, **params)
        self.address = address

    def start(self, controllers: list[Controller]) -> None:
        OVSBridge.start(self, controllers)
        for intf in self.intfList():
            if intf.name != "lo":
                self.cmd("ethtool -K", intf.name, "tx off")
        if self.address:
            self.cmd("ip addr replace", self.address, "dev", self.name)
            self.cmd("ip link set", self.name, "up")


class PodHost(Host):
    """A pod: eth0 with its IP, 0a:58 MAC and MTU, a default route via the node's gateway, a
    route for each cluster CIDR and 224.0.0.0/4 on eth0 (as openshift-sdn's CNI sets)."""

    def config(self, pod: Pod | None = None, mtu: int = 1450, routes: Sequence[str] = (),
               **params: Any) -> Any:
        result = super().config(**params)
        intf = self.defaultIntf()
        self.cmd("sysctl -qw net.ipv6.conf.all.disable_ipv6=1")
        self.cmd("ip link set", intf, "mtu", str(mtu))
        # The pod's packets go into a userspace datapath: no checksum offload, or TCP/UDP fail.
        self.cmd("ethtool -K", intf, "tx off")
        for cidr in (*routes, "224.0.0.0/4"):
            self.cmd("ip route replace", cidr, "dev", intf)
        self.pod = pod
        return result


class DelayLine(Switch):
    """A delay (and loss) element in an underlay link, for kernels without sch_netem: a
    Mininet node in its own namespace running mininet/delayline.py between its two
    interfaces.  A Switch to Mininet (so pingall leaves it alone); it forwards nothing
    else."""

    def __init__(self, name: str, delay_ms: float = 0.0, loss: float = 0.0,
                 **params: Any) -> None:
        params["inNamespace"] = True
        Switch.__init__(self, name, **params)
        self.controlIntf = None
        self.delay_ms, self.loss = delay_ms, loss
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, controllers: list[Controller]) -> None:
        intfs = [i.name for i in self.intfList() if i.name != "lo"]
        assert len(intfs) == 2, intfs
        self.cmd("sysctl -qw net.ipv6.conf.all.disable_ipv6=1")
        for name in intfs:
            self.cmd("ip link set", name, "arp off up")
        self.proc = self.popen([sys.executable, str(REPO / "mininet" / "delayline.py"), *intfs,
                                "--delay-ms", str(self.delay_ms), "--loss", str(self.loss)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode(errors="replace")
        if line.strip() != "ready":
            raise RuntimeError(f"{self.name}: delay line did not start: {line}"
                               f"{self.proc.stdout.read().decode(errors='replace')}")

    def stop(self, deleteIntfs: bool = True) -> None:  # noqa: N803
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        super().stop(deleteIntfs)


_NETEM: bool | None = None


def netem_available() -> bool:
    """Whether this kernel has sch_netem (Mininet's TCLink needs it for delay, jitter and
    loss; htb, for bandwidth, is separate).  Probed once on a dummy interface of the
    sandbox's own network namespace."""
    global _NETEM
    if _NETEM is None:
        probe = "osdnnetem0"
        subprocess.run(["ip", "link", "add", probe, "type", "dummy"], capture_output=True)
        _NETEM = subprocess.run(["tc", "qdisc", "add", "dev", probe, "root", "netem", "delay",
                                 "1ms"], capture_output=True).returncode == 0
        subprocess.run(["ip", "link", "del", probe], capture_output=True)
    return _NETEM


class OsdnController(Controller):
    """`osken-manager controller.app` (the project's controller) as a Mininet Controller in
    the sandbox's root namespace, listening on every address there (the underlay's LOCAL
    port carries `ip`).  `restart()` kills it (SIGKILL by default) and starts it again."""

    def __init__(self, name: str, config: Path, logdir: Path, ip: str,
                 port: int = CONTROLLER_PORT, **params: Any) -> None:
        self.config_path = config
        self.logdir = logdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0
        self.log_path: Path | None = None
        manager = Path(sys.executable).with_name("osken-manager")
        if not manager.exists():
            raise SystemExit(f"{manager} not found: the project is not installed in "
                             f"{sys.prefix} (pip install -e .)")
        Controller.__init__(self, name, inNamespace=False, command=str(manager), cargs="",
                            ip=ip, port=port, **params)

    def checkListening(self) -> None:  # noqa: N802 (Mininet's name)
        """Nothing else can listen here: the sandbox has its own network namespace."""

    def start(self) -> None:
        self.runs += 1
        self.log_path = self.logdir / f"{self.name}-{self.runs}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("OSDN_")}
        env["PYTHONUNBUFFERED"] = "1"
        log = open(self.log_path, "wb")
        try:
            self.proc = self.popen([self.command, "--config-file", str(self.config_path),
                                    "--ofp-tcp-listen-port", str(self.port), "controller.app"],
                                   stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, env=env, cwd=str(REPO))
        finally:
            log.close()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def restart(self, sig: int = signal.SIGKILL) -> None:
        self.kill(sig)
        self.start()

    def stop(self, *args: Any, **kwargs: Any) -> None:
        self.kill(signal.SIGTERM)
        Node.stop(self, *args, **kwargs)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


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
        prefixlen = plan.underlay.prefixlen
        net = topology.cluster_network
        self.addSwitch("u0", cls=Underlay, dpid="1", address=controller_address)
        peers = {str(hs.host_ip): underlay_mac(hs.host_ip) for hs in topology.host_subnets}
        shape = dict(underlay_link or {})
        netem_opts = {k: shape.pop(k) for k in ("delay", "jitter", "loss") if k in shape}
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
        return "\n".join("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
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


# ---------------------------------------------------------------------------------------------
# What the plugin should allow


def _policy_admits(topology: Topology, src: Pod, dst: Pod) -> bool:
    """ovs-networkpolicy for a ping (ICMP): Kubernetes' semantics with 3.11's limits --
    ingress only; a peer with both selectors or an ipBlock admits nothing; a policy with a
    named port (or a non-TCP/UDP one) denies its whole namespace; a rule listing ports admits
    only TCP/UDP, never ICMP."""
    policies = [p for p in topology.network_policies
                if p.namespace == dst.namespace and "Ingress" in p.policy_types]
    if any(not isinstance(pp.port, int) or pp.protocol not in ("TCP", "UDP")
           for p in policies for rule in p.ingress for pp in rule.ports):
        return False
    selecting = [p for p in policies if p.pod_selector.matches(dst.label_map)]
    if not selecting:
        return True

    def peer_admits(policy: Any, peer: Any) -> bool:
        if peer.ip_block is not None or (peer.pod_selector and peer.namespace_selector):
            return False
        if peer.pod_selector is not None:
            return src.namespace == policy.namespace and peer.pod_selector.matches(
                src.label_map)
        labels = next((ns.label_map for ns in topology.namespaces if ns.name == src.namespace),
                      {})
        return peer.namespace_selector is not None and peer.namespace_selector.matches(labels)

    return any(not rule.ports and (not rule.peers or any(peer_admits(p, peer)
                                                         for peer in rule.peers))
               for p in selecting for rule in p.ingress)


def expected_reachable(topology: Topology, src: Pod, dst: Pod) -> bool:
    """Whether the plugin lets `src` ping `dst`."""
    plugin = topology.cluster_network.plugin
    if plugin is Plugin.SUBNET:
        return True
    if plugin is Plugin.MULTITENANT:
        a, b = topology.vnid_of(src.namespace), topology.vnid_of(dst.namespace)
        return a == b or 0 in (a, b)
    return _policy_admits(topology, src, dst)


RULES = {
    Plugin.SUBNET: "ovs-subnet: every pod reaches every pod",
    Plugin.MULTITENANT: "ovs-multitenant: same VNID, or VNID 0 (global) on either side",
    Plugin.NETWORKPOLICY: "ovs-networkpolicy: a pod selected by an ingress policy admits only "
                          "what a rule without ports allows",
}


def ping_pairs(pairs: Sequence[tuple[PodHost, PodHost]], timeout: int = 1
               ) -> dict[tuple[str, str], bool]:
    """`ping -c1 -W timeout` for every pair at once (one process per pair, launched from
    each source host's namespace); {(src name, dst name): answered}."""
    procs = [(a, b, a.popen(["ping", "-n", "-q", "-c1", "-W", str(timeout), b.IP()],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
             for a, b in pairs]
    return {(a.name, b.name): proc.wait() == 0 for a, b, proc in procs}


def run_cli(osnet: OsdnNet) -> None:
    output("*** Mininet CLI: pingall, iperf A B, link NODE u0 down|up, dpctl dump-flows, "
           "c0 / node / pod commands; exit or Ctrl-D leaves (and removes everything)\n")
    CLI(osnet.net)

