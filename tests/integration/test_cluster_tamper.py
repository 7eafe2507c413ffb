"""Real packets while a node's br0 is wiped behind the controller's back (issue 10): before,
`ovs-ofctl del-flows br0` under a 100 packets/s ping lost 3,387 of 3,500 pings and nothing
came back; now the controller hears of the removals, restores the flows by diff, and the
ping stream recovers within a fraction of a second.  And a node's ovs-vswitchd restarted
on purpose with `scripts/ovs-start --restart` (flow-restore-wait, flows saved and loaded
back) is forwarding again within half a second, where a crash costs 2.2 s here."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from controller.compiler import Settings, compile_node
from controller.ovs.netns import in_netns
from controller.ovs.ovscommands import OvsCommands
from lab.cluster import ops
from lab.cluster.build import ClusterBuilder
from lab.harness import REPO
from topology.load import load_topology

pytestmark = pytest.mark.ovs
SEED = Path(__file__).resolve().parents[2] / "examples" / "seed-cluster"
RATE = 100  # pings per second
LOSS_BOUND = 100  # pings (1 s at RATE); measured: a handful (README)


def ping(netns: str, ip: str, count: int, interval: float = 1.0 / RATE,
         ) -> subprocess.Popen[str]:
    return subprocess.Popen([*in_netns(netns), "ping", "-n", "-i", str(interval), "-c",
                             str(count), "-W", "1", ip], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def answered(output: str) -> set[int]:
    return {int(seq) for seq in re.findall(r"icmp_seq=(\d+) ttl=", output)}


def test_pings_recover_after_del_flows_on_a_node(tmp_path: Path) -> None:
    topology = load_topology([SEED])
    state = tmp_path / "state"
    builder = ClusterBuilder(topology, [str(SEED)], state, "osdntt", log=lambda *a: None)
    try:
        builder.up()
        builder.wait_in_sync()
        pods = builder.plan.pods
        src, dst = next((a, b) for a in pods for b in pods
                        if pods[a]["node"] != pods[b]["node"])
        baseline = ping(pods[src]["netns"], pods[dst]["ip"], 5, 0.2)
        assert len(answered(baseline.communicate(timeout=20)[0])) == 5

        node = pods[dst]["node"]
        ovs = OvsCommands(builder.plan.nodes[node]["ovs_dir"])
        count = 4 * RATE
        stream = ping(pods[src]["netns"], pods[dst]["ip"], count)
        time.sleep(1.0)
        ovs.ofctl("br0", "del-flows")
        output = stream.communicate(timeout=60)[0]

        replies = answered(output)
        lost = count - len(replies)
        assert lost <= LOSS_BOUND, f"{lost} of {count} lost\n{output[-800:]}"
        assert set(range(count - RATE, count + 1)) - {0} <= replies, \
            f"the last second of pings was not all answered\n{output[-800:]}"
        want = len(compile_node(topology, node, Settings(resolver=lambda n: ())).flows)
        assert len(ovs.dump_flows("br0")) == want
        log = (state / "controller.log").read_text()
        assert re.search(rf"{re.escape(node)} .*in sync, .* after repair \(flow removed\)",
                         log), log[-3000:]
        print(f"\ndel-flows on {node} under {RATE} pings/s: {lost} of {count} lost")
    finally:
        ops.down(state, log=lambda message: None)
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "osdntt-" not in namespaces


def test_planned_ovs_restart_keeps_the_flows(tmp_path: Path) -> None:
    topology = load_topology([SEED])
    state = tmp_path / "state"
    builder = ClusterBuilder(topology, [str(SEED)], state, "osdntr", log=lambda *a: None)
    try:
        builder.up()
        builder.wait_in_sync()
        pods = builder.plan.pods
        src, dst = next((a, b) for a in pods for b in pods
                        if pods[a]["node"] != pods[b]["node"])
        node = builder.plan.nodes[pods[dst]["node"]]
        ovs = OvsCommands(node["ovs_dir"])
        before = sorted(ovs.dump_flows("br0"))
        count = 4 * RATE
        stream = ping(pods[src]["netns"], pods[dst]["ip"], count)
        time.sleep(1.0)
        started = time.monotonic()
        restart = subprocess.run([*in_netns(node["netns"]), str(REPO / "scripts" / "ovs-start"),
                                  "--dir", node["ovs_dir"], "--restart"],
                                 capture_output=True, text=True, timeout=60)
        assert restart.returncode == 0, restart.stderr
        while sorted(ovs.dump_flows("br0")) != before and time.monotonic() - started < 10:
            time.sleep(0.01)
        seconds = time.monotonic() - started
        output = stream.communicate(timeout=60)[0]
        lost = count - len(answered(output))
        print(f"\novs-start --restart under {RATE} pings/s: flows back {seconds:.2f} s after "
              f"the restart began, {lost} of {count} pings lost")
        assert seconds < 1.0, restart.stderr  # measured 0.37 s (README)
        assert lost <= 50, f"{lost} of {count} lost\n{output[-800:]}"  # a crash: 123-133
    finally:
        ops.down(state, log=lambda message: None)
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "osdntr-" not in namespaces
