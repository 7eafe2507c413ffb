"""tun0's MAC in table 100: what the switch reports wins over the topology's guess.

3.11 writes tun0's real MAC (`ensureTunMAC`, read from OVS) into the egress node's table-100
flow; `osdn render` can only know the HostSubnet's `osdn.dev/tun0-mac` annotation or the
0a:58 convention.  The seed cluster's infra node hosts egress IP 192.168.108.200.
"""

from __future__ import annotations

import logging

import pytest

from controller.compiler import Settings, compile_node
from controller.dns import no_dns
from controller.openflow.wire import encode
from tests.support.fakeswitch import FakeSwitch
from tests.support.seed_node import SEED
from tests.unit.test_agent import Controller, Table_, in_sync_lines, table
from topology.load import load_topology

INFRA, INFRA_DPID = "infra.ocp.cn", 0xC0A86C71  # its hostIP as an integer
INFRA_PORTS = {"vxlan0": 1, "tun0": 2}
CONVENTION = "0a:58:0a:81:00:01"  # 0a:58 + its gateway 10.129.0.1
REAL_MAC, NEW_MAC = "6e:1f:00:aa:bb:cc", "6e:1f:00:dd:ee:ff"


@pytest.fixture(autouse=True)
def agent_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="osdn")
    return caplog


def rendered(tun0_mac: str | None) -> Table_:
    flows = compile_node(load_topology([SEED]), INFRA, Settings(0, no_dns), INFRA_PORTS,
                         tun0_mac).flows
    return {(e := encode(flow)).key: (e.cookie, e.instructions) for flow in flows}


def egress_ip_flow(switch: FakeSwitch) -> bytes:
    [instructions] = [ins for key, (_, ins) in table(switch).items() if key[0] == 100
                      and key[1] == 100]
    return instructions


def mac_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "tun0's MAC is" in r.getMessage()]


def test_table_100_carries_the_mac_the_switch_reports_and_says_so_once(agent_log) -> None:
    ctl = Controller(SEED)
    switch = FakeSwitch(INFRA_DPID, INFRA_PORTS, macs={"tun0": REAL_MAC})
    ctl.connect(switch)
    assert table(switch) == rendered(REAL_MAC) != rendered(None)
    assert bytes.fromhex(REAL_MAC.replace(":", "")) in egress_ip_flow(switch)
    [warning] = mac_warnings(agent_log)
    assert f"tun0's MAC is {REAL_MAC}, not {CONVENTION}" in warning
    assert f"osdn.dev/tun0-mac: {REAL_MAC}" in warning

    switch.set_port("veth-other", 9)  # another port event, a reconnect: said once
    ctl.tasks.run()
    switch.disconnect()
    ctl.connect(switch)
    assert len(mac_warnings(agent_log)) == 1
    assert in_sync_lines(agent_log, INFRA)[-1]["mods"] == "0"


def test_tun0_mac_changing_on_the_switch_modifies_the_egress_ip_flow_only(agent_log) -> None:
    ctl = Controller(SEED)
    switch = FakeSwitch(INFRA_DPID, INFRA_PORTS, macs={"tun0": REAL_MAC})
    ctl.connect(switch)
    switch.set_port("tun0", 2, mac=NEW_MAC)  # tun0 re-created
    ctl.tasks.run()
    assert table(switch) == rendered(NEW_MAC)
    line = in_sync_lines(agent_log, INFRA)[-1]
    assert (line["reason"], line["mods"], line["modify"]) == ("port tun0 changed", "1", "1")
    assert len(mac_warnings(agent_log)) == 2  # a new value is said again


def test_the_convention_on_the_switch_equals_render_and_says_nothing(agent_log) -> None:
    ctl = Controller(SEED)
    switch = FakeSwitch(INFRA_DPID, INFRA_PORTS, macs={"tun0": CONVENTION.upper()})
    ctl.connect(switch)
    assert table(switch) == rendered(None)
    assert mac_warnings(agent_log) == []
