"""Open vSwitch restarted on a node whose controller it reaches over loopback (the real-node
layout of the README: one controller per node on 127.0.0.1): after `kill -9` of
ovs-vswitchd and its start on the same database, br0 equals `osdn render` again within
0.5 s of the kill.  (Reached through a port of the restarting vswitchd itself, as the
emulated cluster's br-phy, the first connection attempt is lost and OVS waits its 1 s
minimum backoff: about 2.2 s; see the README.)"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from controller.ovs.nodebridge import add_node_bridge
from controller.ovs.privateovs import PrivateOvs
from lab.harness import (
    ControllerProcess,
    RestartableOvs,
    attach_controller,
    flows_equal,
    reference_flows,
    wait_for_flows,
    wait_until,
)
from tests.support.seed_node import NODE2, NODE2_DPID, NODE2_IP, NODE2_PORTS, SEED

pytestmark = pytest.mark.ovs
BOUND = 0.5  # seconds from the kill to the whole pipeline back (issue 10)


def test_vswitchd_killed_and_started_has_its_flows_back_within_half_a_second(
        tmp_path: Path) -> None:
    ovs = RestartableOvs(tmp_path / "node")
    ovs.start()
    with PrivateOvs(tmp_path / "ref") as ref, ovs, \
            ControllerProcess({"topology": SEED, "watch": False}, tmp_path / "ctl") as ctl:
        add_node_bridge(ovs, "br0", NODE2_DPID, NODE2_PORTS, host_ip=NODE2_IP,
                        port_name_prefix="")
        expected = reference_flows(SEED, NODE2, ref, NODE2_PORTS)
        ctl.wait_listening()
        attach_controller(ovs, "br0", ctl.port)
        wait_for_flows(ovs, "br0", expected, ctl)
        assert ovs.vsctl("get", "controller", "br0", "max_backoff",
                         "inactivity_probe").split() == ["1000", "5000"]
        times = []
        for _ in range(3):
            killed = time.monotonic()
            ovs.restart_vswitchd()
            wait_until(lambda: flows_equal(ovs, "br0", expected), 10, 0.01,
                       describe=ctl.log_tail)
            times.append(time.monotonic() - killed)
            time.sleep(0.5)
        print(f"\nkill -9 to flows equal: {', '.join(f'{t:.3f}' for t in times)} s")
        assert sorted(times)[1] <= BOUND, times  # the median of three
