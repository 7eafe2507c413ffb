"""tun0's MAC on real Open vSwitch: the controller writes the MAC the switch reports for tun0
into table 100 (3.11 `ensureTunMAC`), and `osdn render` agrees once the HostSubnet carries
it as `osdn.dev/tun0-mac`.

The seed cluster's infra node hosts egress IP 192.168.108.200.  Its br0 is a trace-only
bridge (dummy datapath), whose tun0 gets OVS's own MAC for dummy ports (aa:55:aa:55:00:xx),
not the 0a:58 convention: the very situation of a real node, whose kernel picks tun0's MAC.
(The emulated cluster's test changes tun0's MAC live and sends packets through it.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controller.ovs.nodebridge import add_node_bridge
from lab.harness import (
    attach_controller,
    copy_cluster,
    edit_yaml,
    flow_diff,
    list_items,
    normalized,
    reference_flows,
    wait_for_flows,
)
from tests.support.seed_node import SEED

pytestmark = pytest.mark.ovs

INFRA, INFRA_DPID, INFRA_IP = "infra.ocp.cn", 0xC0A86C71, "192.168.108.113"
CONVENTION = "0a:58:0a:81:00:01"  # 0a:58 + its gateway, 10.129.0.1
INFRA_SYNC = r"infra\.ocp\.cn.*in sync"


def annotate_tun0_mac(cluster: Path, mac: str) -> None:
    def edit(docs: list[Any]) -> None:
        for item in (i for doc in docs for i in list_items(doc)):
            if item["metadata"]["name"] == INFRA:
                item["metadata"].setdefault("annotations", {})["osdn.dev/tun0-mac"] = mac
    edit_yaml(cluster / "hostsubnets.yaml", edit)


def test_table_100_carries_tun0_s_real_mac_and_render_agrees_when_annotated(
        node_ovs, ref_ovs, make_controller, tmp_path) -> None:
    add_node_bridge(node_ovs, "br0", INFRA_DPID, {}, host_ip=INFRA_IP, port_name_prefix="")
    real_mac = node_ovs.vsctl("get", "Interface", "tun0", "mac_in_use").strip().strip('"')
    assert real_mac != CONVENTION
    cluster = copy_cluster(SEED, tmp_path / "cluster")
    ctl = make_controller({"topology": cluster, "watch": True, "watch_interval": 0.2}).start()
    ctl.wait_listening()
    attach_controller(node_ovs, "br0", ctl.port)
    ctl.wait_for_log(INFRA_SYNC)
    egress = [f for f in node_ovs.dump_flows("br0", table=100) if "reg0=0x82f8b2" in f]
    assert len(egress) == 1 and f"set_field:{real_mac}->eth_dst" in egress[0], egress
    [said] = ctl.log_lines(r"tun0's MAC is")
    assert f"tun0's MAC is {real_mac}, not {CONVENTION}" in said
    # render guesses the convention: only that flow differs
    guessed = reference_flows(cluster, INFRA, ref_ovs, {})
    bridge = normalized(node_ovs, "br0")
    assert len(set(guessed) ^ set(bridge)) == 2, flow_diff(bridge, guessed)

    annotate_tun0_mac(cluster, real_mac)  # now render knows; the controller changes nothing
    ctl.wait_for_log(INFRA_SYNC, count=2)
    assert ctl.log_lines(INFRA_SYNC)[-1].split("in sync, ")[1].startswith("0 flow-mods")
    wait_for_flows(node_ovs, "br0", reference_flows(cluster, INFRA, ref_ovs, {}), ctl)
    assert len(ctl.log_lines(r"tun0's MAC is")) == 1
