"""The controller on real Open vSwitch: `osken-manager controller.app` keeps bridges equal to
`osdn render` (issue 3, Tests).

Every test starts its own controller process(es) through `osken-manager` and its own private
OVS instance per node (interface names are unique per instance, and the controller learns pod
ports by their real names). "Equal" always means: the `osdn render` output loaded into an empty
bridge with the same ports (in a separate instance), both dumped, counters and durations
stripped, compared as multisets of lines.
"""

from __future__ import annotations

import re
import signal
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.ovs.nodebridge import add_node_bridge
from controller.ovs.privateovs import PrivateOvs
from lab.harness import (
    ControllerProcess,
    RestartableOvs,
    add_pod_port,
    assert_durations_kept,
    attach_controller,
    check_errors,
    copy_cluster,
    del_port,
    edit_yaml,
    flow_diff,
    flow_durations,
    free_port,
    list_items,
    normalized,
    park_controller,
    reference_flows,
    wait_for_flows,
    wait_until,
    write_atomic,
)
from tests.support.seed_node import NODE2, NODE2_DPID, NODE2_IP, NODE2_PORTS, NODE2_SYNC, SEED

pytestmark = pytest.mark.ovs

NODE1 = "node1.ocp.cn"
NODES = {  # host -> (datapath id = hostIP as an integer, host IP, pod ports)
    NODE1: (0xC0A86C6F, "192.168.108.111", {"veth3e8a0f21": 3}),
    NODE2: (NODE2_DPID, NODE2_IP, NODE2_PORTS),
}
WATCH = {"watch": True, "watch_interval": 0.2}
NO_WATCH = {"watch": False}


# ------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def ref_ovs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateOvs]:
    """The oracle's OVS instance: empty bridges loaded with `osdn render` (never a controller)."""
    with PrivateOvs(tmp_path_factory.mktemp("refovs")) as ovs:
        yield ovs


@pytest.fixture
def make_ovs(tmp_path: Path) -> Iterator[Callable[[str], RestartableOvs]]:
    """One private OVS instance per emulated node; all stopped after the test."""
    instances: list[RestartableOvs] = []

    def make(name: str) -> RestartableOvs:
        ovs = RestartableOvs(tmp_path / f"ovs-{name}")
        instances.append(ovs)
        ovs.start()
        return ovs

    yield make
    for ovs in instances:
        ovs.stop()


@pytest.fixture
def make_controller(tmp_path: Path) -> Iterator[Callable[..., ControllerProcess]]:
    """Controller processes (not started); each is stopped (SIGTERM, then SIGKILL) after."""
    made: list[ControllerProcess] = []

    def make(config: dict[str, Any], **kwargs: Any) -> ControllerProcess:
        ctl = ControllerProcess(config, tmp_path / "controller",
                                name=kwargs.pop("name", f"controller{len(made) + 1}"), **kwargs)
        made.append(ctl)
        return ctl

    yield make
    for ctl in made:
        ctl.stop()


def node_bridge(ovs: PrivateOvs, host: str, ports: dict[str, int] | None = None,
                datapath_id: int | None = None, bridge: str = "br0") -> str:
    """The node's br0 as 3.11 lays it out, ports under their real interface names."""
    dpid, host_ip, pod_ports = NODES[host]
    add_node_bridge(ovs, bridge, dpid if datapath_id is None else datapath_id,
                    pod_ports if ports is None else ports, host_ip=host_ip,
                    port_name_prefix="")
    return bridge


def programmed_node2(make_ovs, make_controller, ref_ovs):
    """node2's bridge, attached to a new controller (no watch) and holding the render."""
    ovs = make_ovs("node2")
    br = node_bridge(ovs, NODE2)
    expected = reference_flows(SEED, NODE2, ref_ovs, NODES[NODE2][2])
    ctl = make_controller({"topology": SEED, **NO_WATCH}).start()
    ctl.wait_listening()
    attach_controller(ovs, br, ctl.port)
    wait_for_flows(ovs, br, expected, ctl)
    ctl.wait_for_log(NODE2_SYNC)
    return ovs, br, expected, ctl


def settle(seconds: float = 0.5) -> None:
    """Let durations grow past the snapshot slack before taking a snapshot."""
    time.sleep(seconds)


def snapshot(ovs: PrivateOvs, bridge: str) -> tuple[float, dict[str, float]]:
    durations = flow_durations(ovs, bridge)
    return time.monotonic(), durations


def check_kept(ovs: PrivateOvs, bridge: str, before: tuple[float, dict[str, float]],
               lines: set[str]) -> None:
    t1, after = snapshot(ovs, bridge)
    assert_durations_kept(before[1], after, t1 - before[0], lines)


def seed_copy(tmp_path: Path) -> Path:
    return copy_cluster(SEED, tmp_path / "cluster")


def drop_pod(cluster: Path, name: str) -> None:
    def edit(docs: list[Any]) -> list[Any]:
        kept = [d for d in docs if d["metadata"]["name"] != name]
        assert len(kept) == len(docs) - 1, f"pod {name} not found"
        return kept
    edit_yaml(cluster / "pods.yaml", edit)


# ------------------------------------------------------------------ (a) first connect

def test_connect_programs_the_rendered_pipeline(make_ovs, make_controller, ref_ovs) -> None:
    ovs = make_ovs("node2")
    br = node_bridge(ovs, NODE2)
    ctl = make_controller({"topology": SEED, **NO_WATCH}).start()
    ctl.wait_listening()
    attach_controller(ovs, br, ctl.port)
    expected = reference_flows(SEED, NODE2, ref_ovs, NODES[NODE2][2])
    assert len(expected) > 50
    wait_for_flows(ovs, br, expected, ctl)
    lines = ctl.wait_for_log(NODE2_SYNC)
    assert re.search(r"\b\d+ flow-mods", lines[0]), lines
    time.sleep(1.0)  # nothing more arrives
    assert normalized(ovs, br) == expected, flow_diff(normalized(ovs, br), expected)
    assert ctl.running


# ------------------------------------------------------------------ (b) pod ports

def test_pod_without_port_gets_no_flows_until_its_port_appears(
        make_ovs, make_controller, ref_ovs, tmp_path) -> None:
    ovs = make_ovs("node2")
    br = node_bridge(ovs, NODE2, ports={"veth92727375": 3})  # vethd83c05d3 absent
    without = seed_copy(tmp_path)
    drop_pod(without, "tomcat-nginx-6cf8c89cd7-lw4zd")
    expected_without = reference_flows(without, NODE2, ref_ovs, {"veth92727375": 3})
    expected_full = reference_flows(SEED, NODE2, ref_ovs, NODES[NODE2][2])
    assert expected_without != expected_full

    ctl = make_controller({"topology": SEED, **NO_WATCH}).start()
    ctl.wait_listening()
    attach_controller(ovs, br, ctl.port)
    wait_for_flows(ovs, br, expected_without, ctl, what="pod port absent")

    # The port appears: exactly that pod's flows are added, the others stay.
    settle()
    before = snapshot(ovs, br)
    add_pod_port(ovs, br, "vethd83c05d3", 4)
    wait_for_flows(ovs, br, expected_full, ctl, what="pod port added")
    check_kept(ovs, br, before, set(expected_without))

    # ... and disappears again: its flows go, the others stay.
    settle()
    before = snapshot(ovs, br)
    del_port(ovs, br, "vethd83c05d3")
    wait_for_flows(ovs, br, expected_without, ctl, what="pod port deleted")
    check_kept(ovs, br, before, set(expected_without))


def test_pod_port_moved_to_another_ofport(make_ovs, make_controller, ref_ovs,
                                          tmp_path) -> None:
    """The ofport is learned from the switch: a port re-created at ofport 7 moves the pod's
    flows there (reference: the topology with `osdn.dev/ofport: "7"`)."""
    ovs = make_ovs("node2")
    br = node_bridge(ovs, NODE2)
    moved = seed_copy(tmp_path)

    def to_7(docs: list[Any]) -> None:
        for d in docs:
            if d["metadata"]["name"] == "tomcat-nginx-6cf8c89cd7-lw4zd":
                d["metadata"]["annotations"]["osdn.dev/ofport"] = "7"
    edit_yaml(moved / "pods.yaml", to_7)
    ports_moved = {"veth92727375": 3, "vethd83c05d3": 7}
    expected = reference_flows(SEED, NODE2, ref_ovs, NODES[NODE2][2])
    expected_moved = reference_flows(moved, NODE2, ref_ovs, ports_moved)

    ctl = make_controller({"topology": SEED, **NO_WATCH}).start()
    ctl.wait_listening()
    attach_controller(ovs, br, ctl.port)
    wait_for_flows(ovs, br, expected, ctl)
    settle()
    before = snapshot(ovs, br)
    del_port(ovs, br, "vethd83c05d3")
    add_pod_port(ovs, br, "vethd83c05d3", 7)
    wait_for_flows(ovs, br, expected_moved, ctl, what="pod port moved to 7")
    check_kept(ovs, br, before, set(expected) & set(expected_moved))


# ------------------------------------------------------------------ (c) unknown bridge

def test_unknown_bridge_is_left_untouched(make_ovs, make_controller) -> None:
    dpid = 0xABCDEF012345  # in no HostSubnet
    ovs = make_ovs("stranger")
    br = node_bridge(ovs, NODE2, datapath_id=dpid)
    park_controller(ovs, br)  # the first controller flushes; that must not be the controller
    ovs.load_flows(br, "table=0,priority=10,actions=drop\n"
                       "cookie=0xd501756532d0fde9,table=0,priority=11,ip,actions=drop\n"
                       "cookie=0xda64d3ae,table=10,priority=100,tun_src=192.168.108.9,"
                       "actions=goto_table:30\n")
    before = normalized(ovs, br)
    assert len(before) == 3

    ctl = make_controller({"topology": SEED, **NO_WATCH}).start()
    ctl.wait_listening()
    attach_controller(ovs, br, ctl.port)
    ctl.wait_for_log(rf"(?i)(0x)?0*{dpid:x}\b|\b{dpid}\b", timeout=30)
    time.sleep(2.0)
    assert normalized(ovs, br) == before, flow_diff(normalized(ovs, br), before)
    assert ctl.running, ctl.log_tail()


# ------------------------------------------------------------------ (d) foreign flows

FOREIGN = ("table=0,priority=1000,ip,nw_src=1.2.3.4,actions=drop\n"
           "cookie=0xda64d3ae,table=10,priority=100,tun_src=192.168.108.99,"
           "actions=goto_table:30\n"
           "cookie=0x1234,table=30,priority=77,ip,nw_dst=10.99.0.0/16,actions=drop\n")


def test_foreign_flows_are_removed_at_first_connect(make_ovs, make_controller,
                                                    ref_ovs) -> None:
    ovs = make_ovs("node2")
    br = node_bridge(ovs, NODE2)
    park_controller(ovs, br)
    ovs.load_flows(br, FOREIGN)
    assert len(normalized(ovs, br)) == 3
    expected = reference_flows(SEED, NODE2, ref_ovs, NODES[NODE2][2])

    ctl = make_controller({"topology": SEED, **NO_WATCH}).start()
    ctl.wait_listening()
    attach_controller(ovs, br, ctl.port)
    wait_for_flows(ovs, br, expected, ctl, what="foreign flows removed")
    ctl.wait_for_log(NODE2_SYNC)
    counted = [line for line in ctl.log_text().splitlines()
               if re.search(r"\b3\b", line)
               and re.search(r"(?i)foreign|outside|not ours|unowned|cookie", line)]
    assert counted, ("no log line gives the number (3) of foreign flows removed\n"
                     + ctl.log_tail(60))


# ------------------------------------------------------------------ (e) controller restart

def test_restart_after_sigkill_sends_zero_flow_mods(make_ovs, make_controller,
                                                    ref_ovs) -> None:
    ovs, br, expected, ctl = programmed_node2(make_ovs, make_controller, ref_ovs)
    settle(1.0)
    before = snapshot(ovs, br)

    assert ctl.kill(signal.SIGKILL) == -signal.SIGKILL
    assert normalized(ovs, br) == expected  # fail_mode=secure keeps them meanwhile
    ctl.start()  # same port, same config
    lines = ctl.wait_for_log(NODE2_SYNC, timeout=30)
    assert re.search(r"\b0 flow-mods", lines[0]), lines[0] + "\n" + ctl.log_tail()
    assert normalized(ovs, br) == expected, flow_diff(normalized(ovs, br), expected)
    check_kept(ovs, br, before, set(expected))


def test_objects_deleted_while_down_lose_their_flows_on_restart(
        make_ovs, make_controller, ref_ovs, tmp_path) -> None:
    cluster = seed_copy(tmp_path)
    ovs = make_ovs("node2")
    br = node_bridge(ovs, NODE2)
    ports = NODES[NODE2][2]
    expected = reference_flows(cluster, NODE2, ref_ovs, ports)
    ctl = make_controller({"topology": cluster, **NO_WATCH}).start()
    ctl.wait_listening()
    attach_controller(ovs, br, ctl.port)
    wait_for_flows(ovs, br, expected, ctl)
    ctl.wait_for_log(NODE2_SYNC)
    ctl.kill(signal.SIGKILL)

    # While it is down: a pod of this node (its port stays) and the Service are deleted.
    drop_pod(cluster, "tomcat-nginx-6cf8c89cd7-lw4zd")
    (cluster / "services.yaml").unlink()
    after = reference_flows(cluster, NODE2, ref_ovs, ports)
    assert set(after) < set(expected)
    settle()
    before = snapshot(ovs, br)

    ctl.start()
    wait_for_flows(ovs, br, after, ctl, what="stale flows removed on restart")
    lines = ctl.wait_for_log(NODE2_SYNC, timeout=30)
    assert not re.search(r"\b0 flow-mods", lines[0]), lines[0]
    check_kept(ovs, br, before, set(after))


# ------------------------------------------------------------------ (f) incremental

def test_topology_changes_apply_incrementally(make_ovs, make_controller, ref_ovs,
                                              tmp_path) -> None:
    cluster = seed_copy(tmp_path)
    ovs = make_ovs("node2")
    br = node_bridge(ovs, NODE2)
    ports = dict(NODES[NODE2][2])
    expected = reference_flows(cluster, NODE2, ref_ovs, ports)
    ctl = make_controller({"topology": cluster, **WATCH}).start()
    ctl.wait_listening()
    attach_controller(ovs, br, ctl.port)
    wait_for_flows(ovs, br, expected, ctl)

    def flow_mods_logged(since: int) -> list[int]:
        return [int(m.group(1)) for line in ctl.log_lines(NODE2_SYNC)[since:]
                if (m := re.search(r"(\d+) flow-mods", line))]

    def step(what: str, change: Callable[[], None]) -> None:
        nonlocal expected
        settle()
        before = snapshot(ovs, br)
        logged = len(ctl.log_lines(NODE2_SYNC))
        change()
        new = reference_flows(cluster, NODE2, ref_ovs, ports)
        assert new != expected, f"{what}: the change does not change node2's flows"
        wait_for_flows(ovs, br, new, ctl, what=what)
        check_kept(ovs, br, before, set(expected) & set(new))
        # Only the difference was sent: at most one flow-mod per added or removed line
        # (a modify replaces a removed + added pair).
        changed = sum(((Counter(new) - Counter(expected)) + (Counter(expected) - Counter(new)))
                      .values())
        wait_until(lambda: sum(flow_mods_logged(logged)) > 0, 10, 0.1,
                   lambda: f"{what}: no 'in sync, N flow-mods' line with N > 0\n"
                           + ctl.log_tail())
        time.sleep(0.3)
        sent = flow_mods_logged(logged)
        assert 0 < sum(sent) <= changed, (f"{what}: {sent} flow-mods for {changed} changed "
                                          f"lines\n" + ctl.log_tail())
        expected = new

    # 1. a pod is added on node2 (its port, then its object)
    def add_pod() -> None:
        add_pod_port(ovs, br, "vethadded01", 5)
        ports["vethadded01"] = 5
        write_atomic(cluster / "added-pod.yaml", ADDED_POD)
    step("pod added", add_pod)

    # 2. HostSubnet node1 removed (its pod first, so every intermediate state is valid)
    def remove_hostsubnet() -> None:
        drop_pod(cluster, "tomcat-7f646bb995-b8bhr")

        def edit(docs: list[Any]) -> None:
            items = list_items(docs[0])
            items[:] = [i for i in items if i["host"] != NODE1]
        edit_yaml(cluster / "hostsubnets.yaml", edit)
    step("HostSubnet removed", remove_hostsubnet)

    # 3. a NetNamespace's VNID changes (kube-public: its egress-IP flow in table 100)
    def change_netid() -> None:
        def edit(docs: list[Any]) -> None:
            for item in list_items(docs[0]):
                if item["metadata"]["name"] == "kube-public":
                    item["netid"] = 8583347
        edit_yaml(cluster / "netnamespaces.yaml", edit)
    step("VNID changed", change_netid)

    # 4. an egress IP is added (management-infra, hosted by master)
    def add_egress_ip() -> None:
        def hs(docs: list[Any]) -> None:
            for item in list_items(docs[0]):
                if item["host"] == "master.ocp.cn":
                    item["egressIPs"] = ["192.168.108.201"]

        def nn(docs: list[Any]) -> None:
            for item in list_items(docs[0]):
                if item["metadata"]["name"] == "management-infra":
                    item["egressIPs"] = ["192.168.108.201"]
        edit_yaml(cluster / "hostsubnets.yaml", hs)
        edit_yaml(cluster / "netnamespaces.yaml", nn)
    step("egress IP added", add_egress_ip)
    assert ctl.running


ADDED_POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: added-pod
  namespace: default
  uid: 7e57c0de-0000-4000-8000-000000000005
  creationTimestamp: "2019-03-20T00:00:00Z"
  annotations:
    osdn.dev/interface: vethadded01
    osdn.dev/ofport: "5"
spec:
  nodeName: node2.ocp.cn
status:
  podIP: 10.130.0.7
"""


# ------------------------------------------------------------------ (g) invalid topology

def _metrics_problem(port: int) -> str | None:
    """None if a topology-load-error metric is > 0, else what was seen."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError as e:
        return f"metrics endpoint on port {port} unreachable: {e}"
    hits = []
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, value = line.rpartition(" ")
        if re.search(r"(?i)topolog", name) and re.search(r"(?i)error|invalid|fail", name):
            try:
                if float(value) > 0:
                    return None
            except ValueError:
                pass
            hits.append(line)
    return ("no topology-load-error metric > 0; candidates: " + repr(hits) + "\n"
            + "\n".join(line for line in text.splitlines() if "osdn" in line.lower())[:3000])


def test_invalid_topology_is_rejected_then_fixed(make_ovs, make_controller, ref_ovs,
                                                 tmp_path) -> None:
    cluster = seed_copy(tmp_path)
    ovs = make_ovs("node2")
    br = node_bridge(ovs, NODE2)
    ports = NODES[NODE2][2]
    expected = reference_flows(cluster, NODE2, ref_ovs, ports)
    metrics_port = free_port()
    ctl = make_controller({"topology": cluster, "metrics_port": metrics_port, **WATCH}).start()
    ctl.wait_listening()
    attach_controller(ovs, br, ctl.port)
    wait_for_flows(ovs, br, expected, ctl)
    settle()
    before = snapshot(ovs, br)

    good = (cluster / "netnamespaces.yaml").read_text()
    assert "netid: 8583346" in good
    write_atomic(cluster / "netnamespaces.yaml", good.replace("netid: 8583346", "netid: -5"))
    errors = check_errors(cluster)
    assert errors, "the broken topology is not rejected by osdn check"
    for error in errors:
        ctl.wait_for_log(re.escape(error.strip()), timeout=15)
    time.sleep(1.0)
    assert ctl.running, ctl.log_tail()
    assert normalized(ovs, br) == expected, flow_diff(normalized(ovs, br), expected)
    check_kept(ovs, br, before, set(expected))
    metrics_problem = _metrics_problem(metrics_port)

    # Fixed (to a different valid VNID, so the fix visibly applies).
    write_atomic(cluster / "netnamespaces.yaml", good.replace("netid: 8583346",
                                                              "netid: 8583347"))
    fixed = reference_flows(cluster, NODE2, ref_ovs, ports)
    assert fixed != expected
    wait_for_flows(ovs, br, fixed, ctl, what="fixed topology applied")
    assert ctl.running
    assert metrics_problem is None, metrics_problem


# ------------------------------------------------------------------ (h) OVS restart

def test_vswitchd_restart_is_fully_reprogrammed(make_ovs, make_controller, ref_ovs) -> None:
    ovs, br, expected, ctl = programmed_node2(make_ovs, make_controller, ref_ovs)

    ovs.restart_vswitchd()  # SIGKILL our vswitchd, start it on the same database
    wait_for_flows(ovs, br, expected, ctl, timeout=30, what="after vswitchd restart")
    lines = ctl.wait_for_log(NODE2_SYNC, count=2, timeout=15)
    # it really came back empty and got the whole pipeline again
    assert re.search(rf"\b{len(expected)} flow-mods", lines[1]), lines
    assert ctl.running


# ------------------------------------------------------------------ (i) several bridges

def test_one_controller_serves_several_nodes(make_ovs, make_controller, ref_ovs) -> None:
    ctl = make_controller({"topology": SEED, **NO_WATCH}).start()
    ctl.wait_listening()
    bridges = {}
    for host in (NODE1, NODE2):
        ovs = make_ovs(host.split(".")[0])
        br = node_bridge(ovs, host)
        attach_controller(ovs, br, ctl.port)
        bridges[host] = (ovs, br, reference_flows(SEED, host, ref_ovs, NODES[host][2]))
    assert bridges[NODE1][2] != bridges[NODE2][2]
    for host, (ovs, br, expected) in bridges.items():
        wait_for_flows(ovs, br, expected, ctl, what=host)
    for host in bridges:
        ctl.wait_for_log(re.escape(host) + r".*in sync")


# ------------------------------------------------------------------ settings from the environment

def test_settings_from_environment_and_node_setting(make_ovs, make_controller,
                                                    ref_ovs) -> None:
    """Settings from `OSDN_*` variables, which override the file (its `topology` does not
    exist); with `node` set, whatever bridge connects is that node (here a bridge whose
    datapath id is in no HostSubnet)."""
    ovs = make_ovs("node2")
    br = node_bridge(ovs, NODE2, datapath_id=0x42)
    ctl = make_controller({"topology": "/nonexistent/overridden-by-env", "dns": None},
                          env={"OSDN_TOPOLOGY": str(SEED), "OSDN_NODE": NODE2,
                               "OSDN_WATCH": "false", "OSDN_DNS": "off"}).start()
    ctl.wait_listening()
    attach_controller(ovs, br, ctl.port)
    expected = reference_flows(SEED, NODE2, ref_ovs, NODES[NODE2][2])
    wait_for_flows(ovs, br, expected, ctl, what="node set from OSDN_NODE")
