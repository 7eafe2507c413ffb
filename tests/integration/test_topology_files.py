"""Hostile and half-written topology files against the real controller and a real bridge
(issue 10, "Topology files"): a file rewritten in place never reaches the bridge half-written,
rejected topologies leave the bridge as it was, the controller keeps serving and applies the
next valid file.  Breadth is tests/unit/test_fuzz_topology.py's; these are the cases where a
bridge is involved."""

from __future__ import annotations

import os
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from controller.ovs.nodebridge import add_node_bridge
from controller.ovs.privateovs import PrivateOvs
from lab.harness import (
    ControllerProcess,
    attach_controller,
    copy_cluster,
    flow_diff,
    free_port,
    metric_total,
    normalized,
    reference_flows,
    scrape_metrics,
    wait_for_flows,
    wait_until,
    write_atomic,
)
from tests.support.seed_node import (
    NEW_SERVICE,
    NODE2,
    NODE2_DPID,
    NODE2_IP,
    NODE2_PORTS,
    SEED,
)

pytestmark = pytest.mark.ovs

BRIDGE = "br0"


def metric(port: int, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    return metric_total(scrape_metrics(f"http://127.0.0.1:{port}/metrics"), name, **labels)


def flow_mods(port: int) -> float:
    return metric(port, "osdn_flow_mods_total", node=NODE2)


class FlowWatch:
    """Dumps the bridge's flows in a thread until stopped; every dump that differs from
    `expected` is kept."""

    def __init__(self, ovs: PrivateOvs, expected: list[str]) -> None:
        self.ovs, self.expected = ovs, expected
        self.dumps = 0
        self.different: list[list[str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            flows = normalized(self.ovs, BRIDGE)
            self.dumps += 1
            if flows != self.expected:
                self.different.append(flows)
            time.sleep(0.05)

    def __enter__(self) -> FlowWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def served_node(node_ovs: PrivateOvs, ref_ovs: PrivateOvs, make_controller: Any,
                cluster: Path, metrics_port: int) -> tuple[ControllerProcess, list[str]]:
    """node2's bridge served by a watching controller (the default watch_settle), in sync."""
    add_node_bridge(node_ovs, BRIDGE, NODE2_DPID, dict(NODE2_PORTS), host_ip=NODE2_IP,
                    port_name_prefix="")
    expected = reference_flows(cluster, NODE2, ref_ovs, dict(NODE2_PORTS))
    ctl = make_controller({"topology": cluster, "watch": True, "watch_interval": 0.2,
                           "metrics_port": metrics_port}).start()
    ctl.wait_listening()
    attach_controller(node_ovs, BRIDGE, ctl.port)
    wait_for_flows(node_ovs, BRIDGE, expected, ctl, what="first connect")
    ctl.wait_for_log(r"node2\.ocp\.cn.*in sync")
    return ctl, expected


def loads(port: int, outcome: str) -> float:
    return metric(port, "osdn_topology_loads_total", outcome=outcome)


def rejected_since(port: int, errors: float) -> bool:
    return loads(port, "error") > errors


def never_rejected(what: str, ctl: ControllerProcess) -> str:
    return f"{what}: never rejected\n" + ctl.log_tail()


def test_a_file_rewritten_in_place_never_reaches_the_bridge_half_written(
        node_ovs, ref_ovs, make_controller, tmp_path) -> None:
    """The issue: truncate, pause 1 s, write the same pods.yaml: 64 -> 56 flows for 1 s and
    16 flow-mods.  Then services.yaml truncated and rewritten invalid: two Service flows
    deleted for good."""
    cluster = copy_cluster(SEED, tmp_path / "cluster")
    port = free_port()
    ctl, expected = served_node(node_ovs, ref_ovs, make_controller, cluster, port)
    time.sleep(0.5)
    mods_before, ok_before = flow_mods(port), loads(port, "ok")

    pods = cluster / "pods.yaml"
    whole = pods.read_text()
    with FlowWatch(node_ovs, expected) as watch:
        with open(pods, "w") as out:  # truncated
            out.flush()
            time.sleep(1.0)
            out.write(whole[: len(whole) // 2])  # the first half, a pause, the rest
            out.flush()
            time.sleep(0.1)
            out.write(whole[len(whole) // 2:])
        wait_until(lambda: loads(port, "ok") > ok_before, 10, 0.1,
                   lambda: "the rewritten pods.yaml was never loaded\n" + ctl.log_tail())
        time.sleep(0.5)
    assert watch.dumps >= 10, watch.dumps
    assert not watch.different, flow_diff(watch.different[0], expected)
    assert flow_mods(port) == mods_before

    services = cluster / "services.yaml"
    text = services.read_text()
    errors_before = loads(port, "error")
    with FlowWatch(node_ovs, expected) as watch:
        with open(services, "w") as out:
            out.flush()
            time.sleep(1.0)
            out.write(text[: text.index("spec:")] + "spec: {clusterIP: [")  # and left so
        wait_until(lambda: loads(port, "error") > errors_before, 10, 0.1,
                   lambda: "the invalid services.yaml was never rejected\n" + ctl.log_tail())
        time.sleep(0.5)
    assert not watch.different, flow_diff(watch.different[0], expected)
    assert flow_mods(port) == mods_before
    assert metric(port, "osdn_topology_load_error") == 1
    assert ctl.running, ctl.log_tail()


def test_rejected_topologies_leave_the_bridge_and_the_next_valid_one_is_applied(
        node_ovs, ref_ovs, make_controller, tmp_path) -> None:
    cluster = copy_cluster(SEED, tmp_path / "cluster")
    port = free_port()
    ctl, expected = served_node(node_ovs, ref_ovs, make_controller, cluster, port)
    mods_before = flow_mods(port)
    peers = ", ".join(["{podSelector: {}}"] * 3000)
    mutants = {
        "deep nesting": ("deep.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n"
                                      "  name: deep\n  labels: " + "[" * 600 + "]" * 600 + "\n",
                         "deep.yaml:5: nested deeper than 64"),
        "3000 rules x 3000 aliased peers": (
            "policy.yaml", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
                           "metadata: {name: blow-up, namespace: default}\nspec:\n"
                           f"  podSelector: {{}}\n  ingress:\n  - from: &p [{peers}]\n"
                           + "  - from: *p\n" * 2999, "MAX_ALIAS_NODES"),
        "a dense list": ("dense.yaml", "a: [" + "1," * 2_000_000 + "1]\n",
                         "MIN_CHARS_PER_NODE"),
        "bad bytes": ("bytes.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n"
                                    "  name: x\xff\n", "bytes.yaml:4: unacceptable character"),
    }
    for what, (name, content, located) in mutants.items():
        errors = loads(port, "error")
        path = cluster / name
        if "\xff" in content:
            path.write_bytes(content.encode("latin-1"))
        else:
            write_atomic(path, content)
        wait_until(partial(rejected_since, port, errors), 20, 0.1,
                   partial(never_rejected, what, ctl))
        assert located in ctl.log_text(), f"{what}:\n{ctl.log_tail()}"
        assert metric(port, "osdn_topology_load_error") == 1
        assert normalized(node_ovs, BRIDGE) == expected, what
        path.unlink()

    # A FIFO and /dev/zero named *.yaml: refused without being opened; the watch goes on.
    errors = loads(port, "error")
    os.mkfifo(cluster / "pipe.yaml")
    (cluster / "zero.yaml").symlink_to("/dev/zero")
    wait_until(lambda: loads(port, "error") > errors, 20, 0.1, ctl.log_tail)
    wait_until(lambda: "pipe.yaml: not read: a FIFO" in ctl.log_text(), 5, 0.1, ctl.log_tail)
    assert "zero.yaml: not read: a character device" in ctl.log_text()
    (cluster / "pipe.yaml").unlink()
    (cluster / "zero.yaml").unlink()

    assert "topology watch failed" not in ctl.log_text()
    assert normalized(node_ovs, BRIDGE) == expected
    assert flow_mods(port) == mods_before
    # The final valid file is applied.
    write_atomic(cluster / "after-error-service.yaml", NEW_SERVICE)
    final = reference_flows(cluster, NODE2, ref_ovs, dict(NODE2_PORTS))
    assert final != expected
    wait_for_flows(node_ovs, BRIDGE, final, ctl, what="the valid file after the mutants")
    assert metric(port, "osdn_topology_load_error") == 0
    assert ctl.running, ctl.log_tail()


def test_a_controller_started_on_deeply_nested_yaml_runs_and_reports_it(
        node_ovs, ref_ovs, make_controller, tmp_path) -> None:
    """Before: a RecursionError stopped the start."""
    cluster = copy_cluster(SEED, tmp_path / "cluster")
    deep = cluster / "deep.yaml"
    deep.write_text("a: " + "{b: " * 700 + "1" + "}" * 700 + "\n")
    port = free_port()
    ctl = make_controller({"topology": cluster, "watch": True, "watch_interval": 0.2,
                           "metrics_port": port}).start()
    ctl.wait_listening()
    ctl.wait_for_log(r"deep\.yaml:1: nested deeper than 64")
    assert metric(port, "osdn_topology_load_error") == 1
    deep.unlink()
    add_node_bridge(node_ovs, BRIDGE, NODE2_DPID, dict(NODE2_PORTS), host_ip=NODE2_IP,
                    port_name_prefix="")
    expected = reference_flows(cluster, NODE2, ref_ovs, dict(NODE2_PORTS))
    attach_controller(node_ovs, BRIDGE, ctl.port)
    wait_for_flows(node_ovs, BRIDGE, expected, ctl, what="after the nested file went")
    assert metric(port, "osdn_topology_load_error") == 0
