"""The emulated nodes' host side follows the topology: an egress IP moved to another node
while the cluster runs is, after the change, what the external host sees."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from controller.ovs.netns import in_netns
from lab.cluster import ops
from lab.cluster.build import ClusterBuilder
from topology.load import load_topology

pytestmark = pytest.mark.ovs
SEED = Path(__file__).resolve().parents[2] / "examples" / "seed-cluster"
PUBLIC_POD = "kube-public/tomcat-nginx-6cf8c89cd7-6hhmf"


def source_seen_by_external(builder: ClusterBuilder, port: int) -> str | None:
    netns = {key: info["netns"] for key, info in builder.plan.pods.items()}
    listener = subprocess.Popen([*in_netns(f"{builder.plan.prefix}-x"), "nc", "-vn",
                                 "-l", "-p", str(port)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(0.3)
    subprocess.run([*in_netns(netns[PUBLIC_POD]), "nc", "-N", "-w", "2",
                    str(builder.plan.external_ip), str(port)], input="x\n",
                   capture_output=True, text=True, timeout=10)
    try:
        out, _ = listener.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        listener.kill()
        out, _ = listener.communicate()
    seen = re.search(r"Connection received on (\S+) ", out)
    return seen.group(1) if seen else None


def move_egress_ip(cluster: Path, new_ip: str, new_host: str) -> None:
    hostsubnets = yaml.safe_load((cluster / "hostsubnets.yaml").read_text())
    for item in hostsubnets["items"]:
        item["egressIPs"] = [new_ip] if item["host"] == new_host else []
    spaces = yaml.safe_load((cluster / "netnamespaces.yaml").read_text())
    for item in spaces["items"]:
        if item["netname"] == "kube-public":
            item["egressIPs"] = [new_ip]
    for name, data in (("hostsubnets.yaml", hostsubnets), ("netnamespaces.yaml", spaces)):
        temporary = cluster / f".{name}.tmp"
        temporary.write_text(yaml.safe_dump(data))
        temporary.rename(cluster / name)  # atomic: the watchers never see half a file


def test_egress_ip_moved_live(tmp_path: Path) -> None:
    cluster = tmp_path / "cluster"
    shutil.copytree(SEED, cluster)
    state = tmp_path / "state"
    builder = ClusterBuilder(load_topology([cluster]), [str(cluster)], state, "osdnag")
    try:
        builder.up()
        builder.wait_in_sync()
        assert source_seen_by_external(builder, 9100) == "192.168.108.200"
        move_egress_ip(cluster, "192.168.108.201", "node1.ocp.cn")
        deadline = time.monotonic() + 20
        seen = None
        while time.monotonic() < deadline and seen != "192.168.108.201":
            time.sleep(1)
            seen = source_seen_by_external(builder, 9101)
        agent_log = (state / "agent.log").read_text()
        assert seen == "192.168.108.201", agent_log
        assert "host side re-applied" in agent_log
    finally:
        ops.down(state, log=lambda message: None)
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "osdnag-" not in namespaces
