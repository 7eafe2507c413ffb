"""scripts/ovs-start, the `ovs` container's entry point, run here without a container.

Every instance lives in a tmp dir and in a network namespace of the test's own (the userspace
datapath creates tap devices for br0, tun0 and br-phy in the namespace it runs in), and is
stopped through its own pidfiles.  The controller that programs br0 runs in the same
namespace, as on a node with host networking.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.ovs.netns import in_netns
from controller.ovs.ovscommands import OvsCommands
from controller.ovs.pids import pid_alive
from controller.ovs.privateovs import PrivateOvs
from lab.harness import REPO, ControllerProcess, reference_flows, wait_for_flows, wait_until
from topology.load import load_topology

pytestmark = pytest.mark.ovs
OVS_START = REPO / "scripts" / "ovs-start"
SEED = REPO / "examples" / "seed-cluster"
NODE2 = "node2.ocp.cn"
_counter = itertools.count()


def mac_of(netns: Netns, device: str) -> str:
    """A device's MAC inside the namespace (from `ip`, not /sys: nsenter keeps our /sys)."""
    return netns.run("ip", "-br", "link", "show", "dev", device).stdout.split()[2]


class Netns:
    """A network namespace made by this test, removed afterwards."""

    def __init__(self) -> None:
        self.name = f"osdnovsstart-{os.getpid()}-{next(_counter)}"
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        self.run("ip", "link", "set", "lo", "up")

    def argv(self, *argv: str) -> list[str]:
        return [*in_netns(self.name), *argv]

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(self.argv(*argv), capture_output=True, text=True, timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} (exit {proc.returncode}):\n"
                                 f"{proc.stdout}{proc.stderr}")
        return proc

    def delete(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


@pytest.fixture
def netns() -> Iterator[Netns]:
    ns = Netns()
    try:
        yield ns
    finally:
        ns.delete()


@pytest.fixture
def ovs_dir(tmp_path: Path, netns: Netns) -> Iterator[Path]:
    """A directory for one instance; whatever was started there is stopped afterwards."""
    directory = tmp_path / "ovs"
    try:
        yield directory
    finally:
        if directory.exists():
            netns.run(str(OVS_START), "--dir", str(directory), "--stop", check=False)


class NetnsController(ControllerProcess):
    """osken-manager controller.app run inside `netns` (nsenter execs it: the pid the
    harness signals is the controller's)."""

    def __init__(self, netns: Netns, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.netns = netns

    @property
    def argv(self) -> list[str]:
        return self.netns.argv(*super().argv)


def pids(directory: Path) -> dict[str, int]:
    found = {}
    for name in ("ovsdb-server", "ovs-vswitchd"):
        pidfile = directory / f"{name}.pid"
        if pidfile.exists() and pidfile.read_text().strip():
            found[name] = int(pidfile.read_text())
    return found


def test_refuses_to_guess_where_ovs_lives() -> None:
    proc = subprocess.run([str(OVS_START), "--br0"], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "--dir DIR" in proc.stderr and "--system-paths" in proc.stderr


def test_rejects_bad_settings(tmp_path: Path) -> None:
    for args, message in ((["--datapath-id", "xyz"], "--datapath-id"),
                          (["--vxlan-port", "70000"], "--vxlan-port"),
                          (["--datapath-type", "dpdk"], "--datapath-type"),
                          (["--bogus"], "unknown argument")):
        proc = subprocess.run([str(OVS_START), "--dir", str(tmp_path / "x"), *args],
                              capture_output=True, text=True)
        assert proc.returncode == 1 and message in proc.stderr, (args, proc.stderr)


def test_controller_programs_br0_of_an_instance_it_started(netns: Netns, ovs_dir: Path,
                                                          tmp_path: Path,
                                                          private_ovs: PrivateOvs) -> None:
    """ovs-start builds br0 as a node needs it and points it at the controller; the
    controller (osken-manager controller.app, the container's command) then fills it with
    exactly `osdn render`'s flows for that node."""
    topology = load_topology([SEED])
    hs = topology.host_subnet(NODE2)
    assert hs is not None
    pods = {p.interface: p.ofport for p in topology.pods
            if p.node == NODE2 and p.interface and p.ofport}
    # The daemons run in the namespace; so does the controller (its 127.0.0.1 is theirs).
    controller = NetnsController(netns, {"topology": SEED}, tmp_path / "ctl")
    started = time.monotonic()
    netns.run(str(OVS_START), "--dir", str(ovs_dir), "--br0",
              "--datapath-id", f"{hs.datapath_id:x}", "--tun0-mac", hs.tun0_mac,
              "--controller", f"tcp:127.0.0.1:{controller.port}")
    elapsed = time.monotonic() - started
    ovs = OvsCommands(ovs_dir)
    for name, ofport in pods.items():  # what the CNI plugin does for each pod
        ovs.vsctl("add-port", "br0", name, "--", "set", "interface", name, "type=internal",
                  f"ofport_request={ofport}")
    assert ovs.ofports("br0") == {"vxlan0": 1, "tun0": 2, **pods}
    assert ovs.vsctl("get", "bridge", "br0", "fail_mode").strip() == "secure"
    assert ovs.vsctl("get", "bridge", "br0", "datapath_type").strip() == "netdev"
    assert ovs.ofctl("br0", "get-frags").strip() == "nx-match"
    assert mac_of(netns, "tun0") == hs.tun0_mac
    expected = reference_flows(SEED, NODE2, private_ovs, pods)
    with controller:
        wait_for_flows(ovs, "br0", expected, controller, timeout=60,
                       what=f"br0 started by ovs-start ({elapsed:.2f} s)")
    assert elapsed < 10, f"ovs-start took {elapsed:.1f} s"


def test_restart_keeps_br0_flows_with_flow_restore_wait(netns: Netns, ovs_dir: Path,
                                                       tmp_path: Path) -> None:
    """--restart: vswitchd restarted with flow-restore-wait, br0's flows saved and loaded
    back before it talks to the controller; the controller record reconnects as fast as OVS
    allows (max_backoff 1 s, inactivity probe 5 s)."""
    hs = load_topology([SEED]).host_subnet(NODE2)
    assert hs is not None
    controller = NetnsController(netns, {"topology": SEED}, tmp_path / "ctl")
    netns.run(str(OVS_START), "--dir", str(ovs_dir), "--br0",
              "--datapath-id", f"{hs.datapath_id:x}",
              "--controller", f"tcp:127.0.0.1:{controller.port}")
    ovs = OvsCommands(ovs_dir)
    assert ovs.vsctl("get", "controller", "br0", "max_backoff", "inactivity_probe").split() \
        == ["1000", "5000"]
    with controller:
        controller.wait_for_log("in sync", timeout=60)
        before = ovs.dump_flows("br0")
        old = pids(ovs_dir)["ovs-vswitchd"]
        restarted = netns.run(str(OVS_START), "--dir", str(ovs_dir), "--restart")
        assert f"keeping {len(before)} br0 flows" in restarted.stderr, restarted.stderr
        assert pids(ovs_dir)["ovs-vswitchd"] != old and not pid_alive(old)
        assert "flow-restore-wait" not in ovs.vsctl("get", "open_vswitch", ".", "other_config")
        wait_until(lambda: sorted(ovs.dump_flows("br0")) == sorted(before), 10,
                   describe=controller.log_tail)
        controller.wait_for_log("in sync", count=2, timeout=30)


def test_health_stop_and_restart_keep_br0_and_pod_ports(netns: Netns, ovs_dir: Path) -> None:
    def health(*extra: str) -> subprocess.CompletedProcess[str]:
        return netns.run(str(OVS_START), "--dir", str(ovs_dir), "--health", *extra,
                         check=False)

    assert health().returncode == 1
    netns.run(str(OVS_START), "--dir", str(ovs_dir), "--br0", "--datapath-id", "0xb0b",
              "--vxlan-port", "4790", "--mtu", "1400")
    assert health("--br0").returncode == 0, health("--br0").stderr
    ovs = OvsCommands(ovs_dir)
    ovs.vsctl("add-port", "br0", "vethpod1", "--", "set", "interface", "vethpod1",
              "type=internal", "ofport_request=7")
    first = pids(ovs_dir)
    assert set(first) == {"ovsdb-server", "ovs-vswitchd"}

    netns.run(str(OVS_START), "--dir", str(ovs_dir), "--stop")
    assert not any(pid_alive(pid) for pid in first.values())
    assert health().returncode == 1 and "does not answer" in health().stderr

    # A restart on the same database (a container restarted with its volume) keeps br0 and
    # the pods' ports; running it twice changes nothing.
    for _ in range(2):
        netns.run(str(OVS_START), "--dir", str(ovs_dir), "--br0", "--datapath-id", "0xb0b",
                  "--vxlan-port", "4790", "--mtu", "1400")
    assert ovs.ofports("br0") == {"vxlan0": 1, "tun0": 2, "vethpod1": 7}
    assert "dst_port=\"4790\"" in ovs.vsctl("get", "interface", "vxlan0", "options")
    assert ovs.vsctl("get", "bridge", "br0", "other-config:datapath-id").strip('"\n') == \
        "0000000000000b0b"
    # a port that lost its ofport is what --health reports
    ovs.vsctl("del-port", "br0", "tun0")
    bad = health("--br0")
    assert bad.returncode == 1 and "tun0 has ofport" in bad.stderr


def test_uplink_moves_the_node_ip_to_br_phy(netns: Netns, ovs_dir: Path) -> None:
    """--uplink: OVS's userspace-tunnelling pattern, with the node's address and default
    route moved to br-phy and the uplink kept off the kernel's IP stack.  (TEST-NET-1
    addresses inside the test's namespace; no packet is sent.)"""
    netns.run("ip", "link", "add", "uplink0", "type", "veth", "peer", "name", "wire0")
    netns.run("ip", "addr", "add", "192.0.2.10/24", "dev", "uplink0")
    netns.run("ip", "link", "set", "uplink0", "up")
    netns.run("ip", "link", "set", "wire0", "up")
    netns.run("ip", "route", "add", "default", "via", "192.0.2.1")
    netns.run(str(OVS_START), "--dir", str(ovs_dir), "--uplink", "uplink0",
              "--br-phy-mac", "02:00:c0:00:02:0a", "--br0")
    assert "inet 192.0.2.10/24" in netns.run("ip", "-4", "-o", "addr", "show", "dev",
                                             "br-phy").stdout
    assert "inet " not in netns.run("ip", "-4", "-o", "addr", "show", "dev", "uplink0").stdout
    assert "default via 192.0.2.1 dev br-phy" in netns.run("ip", "route").stdout
    assert "NOARP" in netns.run("ip", "link", "show", "uplink0").stdout
    assert "-A PREROUTING -i uplink0 -j DROP" in netns.run("iptables", "-t", "raw",
                                                          "-S").stdout
    assert mac_of(netns, "br-phy") == \
        "02:00:c0:00:02:0a"
    ovs = OvsCommands(ovs_dir)
    assert "uplink0" in ovs.vsctl("list-ports", "br-phy").split()
    # again: idempotent (the address is now found on br-phy)
    netns.run(str(OVS_START), "--dir", str(ovs_dir), "--uplink", "uplink0", "--br0")
    assert netns.run("iptables", "-t", "raw", "-S").stdout.count("-i uplink0 -j DROP") == 1


def test_foreground_lives_and_dies_with_its_daemons(netns: Netns, ovs_dir: Path,
                                                    tmp_path: Path) -> None:
    """The container's mode: SIGTERM stops both daemons and exits 0; a daemon that dies
    takes the script (the container) down with a non-zero status, the other daemon too."""
    def start() -> subprocess.Popen[str]:
        proc = subprocess.Popen(netns.argv(str(OVS_START), "--dir", str(ovs_dir),
                                           "--foreground", "--br0"),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wait_until(lambda: netns.run(str(OVS_START), "--dir", str(ovs_dir), "--health",
                                     "--br0", check=False).returncode == 0
                   or proc.poll() is not None, timeout=30)
        assert proc.poll() is None, proc.communicate()[0]
        return proc

    proc = start()
    try:
        daemons = pids(ovs_dir)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        assert not any(pid_alive(pid) for pid in daemons.values()), out

        proc = start()
        daemons = pids(ovs_dir)
        os.kill(daemons["ovs-vswitchd"], signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 1, out
        assert "ovs-vswitchd exited" in out
        assert not pid_alive(daemons["ovsdb-server"]), out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
