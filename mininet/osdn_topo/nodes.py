"""The Mininet node classes of a cluster: an openshift-sdn node (`OsdnNode`, a switch with its
own OVS instance and host side), the underlay bridge, pods as hosts, the delay line for kernels
without sch_netem, and the project's controller."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

# Debian's mininet is importable: the package's __init__ has run import_mininet().
from mininet.node import Controller, Host, Node, OVSBridge, Switch

from controller.hostside import apply_host, plan_host
from controller.ovs.ovscommands import OvsCommands
from lab.cluster.build import underlay_mac
from topology.model import Pod, Topology

from .sandbox import OVS_START, REPO, SANDBOX_DIR

CONTROLLER_PORT = 6653


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


def _alive(pid: int) -> bool:
    """Running (a zombie counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


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

    def crash_vswitchd(self) -> None:
        """SIGKILL this node's ovs-vswitchd (the pid in its own pidfile) and start it again
        with ovs-start, as a supervisor would: br0 comes back empty and connects anew."""
        pid = int((self.ovs_dir / "ovs-vswitchd.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.005)
        _run_in(self, [str(OVS_START), "--dir", str(self.ovs_dir)])

    def restart_vswitchd_keeping_flows(self) -> None:
        """`ovs-start --restart`: flow-restore-wait, br0's flows saved and loaded back."""
        _run_in(self, [str(OVS_START), "--dir", str(self.ovs_dir), "--restart"])

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
