"""The node agent on a fake switch (tests/support/fakeswitch.py): no OVS, no os-ken loop.

What the agent programs is compared with `compile_node` for the seed cluster's node2 (flow
keys, cookies, instruction bytes); how it got there with the messages the switch received,
the agent's log lines (in the format bench/run.py parses) and its metrics.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from bench.run import IN_SYNC
from controller.agent import NodeAgent
from controller.compiler import Settings, compile_node
from controller.config import ControllerSettings
from controller.dns import no_dns
from controller.metrics import Metrics
from controller.openflow.wire import Encoded, Key, encode, encode_flow
from controller.pipeline.cookies import Owner, OwnerKind, is_ours
from controller.pipeline.flow import Flow, Match, Output
from controller.pipeline.tables import Table
from lab.harness import copy_cluster
from tests.support.fakeswitch import FakeSwitch, Tasks, fake_runtime
from tests.support.seed_node import (
    NEW_POD,
    NEW_POD_IP,
    NEW_POD_OFPORT,
    NEW_POD_PORT,
    NEW_SERVICE,
    NODE2,
    NODE2_DPID,
    NODE2_PORTS,
    POD_TABLE,
    SEED,
)
from topology.load import load_topology

PORTS = {"vxlan0": 1, "tun0": 2, **NODE2_PORTS}  # node2's br0 as 3.11 lays it out
MOVING_PORT = "vethd83c05d3"  # pod tomcat-nginx's, ofport 4

NODE9, NODE9_IP = "node9.ocp.cn", "192.168.108.120"
NODE9_DPID = 0xC0A86C78  # its hostIP as an integer
NODE9_SUBNET = f"""\
apiVersion: network.openshift.io/v1
kind: HostSubnet
metadata:
  name: {NODE9}
  uid: 7e57c0de-0000-4000-8000-000000000009
  creationTimestamp: "2019-03-20T00:00:00Z"
host: {NODE9}
hostIP: {NODE9_IP}
subnet: 10.128.2.0/23
"""


Table_ = dict[Key, tuple[int, bytes]]  # what a bridge holds: key -> (cookie, instructions)


# ------------------------------------------------------------------ helpers

@pytest.fixture(autouse=True)
def agent_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="osdn")
    return caplog


@pytest.fixture
def cluster(tmp_path: Path) -> Path:
    """A copy of the seed cluster the test may edit."""
    return copy_cluster(SEED, tmp_path / "cluster")


class Controller:
    """A node agent as the app builds it, with its own metrics registry and task queue."""

    def __init__(self, topology: Path, **settings: Any) -> None:
        self.registry = CollectorRegistry()
        self.tasks = Tasks()
        self.agent = NodeAgent(
            ControllerSettings((str(topology),), dns="off",
                               **{"watch": False, "watch_settle": 0, "audit_interval": 0,
                                  **settings}),
            Metrics(self.registry), fake_runtime(self.tasks))
        self.agent.start()

    def connect(self, switch: FakeSwitch) -> None:
        switch.connect(self.agent)
        self.tasks.run()

    def metric(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value


def expected(topology: Path, ports: dict[str, int], node: str = NODE2) -> Table_:
    flows = compile_node(load_topology([topology]), node, Settings(0, no_dns), ports).flows
    assert len(flows) > 50
    return {(e := encode(flow)).key: (e.cookie, e.instructions) for flow in flows}


def table(switch: FakeSwitch) -> Table_:
    return {key: (flow.cookie, flow.instructions) for key, flow in switch.flows.items()}


def in_sync_lines(caplog: pytest.LogCaptureFixture, host: str = NODE2) -> list[re.Match[str]]:
    """The "in sync" lines, parsed as bench/run.py parses them."""
    found = [IN_SYNC.search(record.getMessage()) for record in caplog.records]
    return [m for m in found if m is not None and m["host"] == host]


def write(path: Path, text: str) -> None:
    """A new file or a new size: the watcher sees the change whatever the clock."""
    path.write_text(text)


def foreign_flow(priority: int, cookie: int) -> Encoded:
    """A table-0 flow not in our cookie space (as an operator's ovs-ofctl would leave)."""
    assert not is_ours(cookie)
    flow = Flow(Table.CLASSIFIER, priority, Match(in_port=9), Owner(OwnerKind.STATIC, "x"),
                (Output(10),))
    return encode_flow(flow, cookie)


def programmed(topology: Path, ports: dict[str, int] = PORTS) -> tuple[Controller, FakeSwitch]:
    ctl = Controller(topology)
    switch = FakeSwitch(NODE2_DPID, ports)
    ctl.connect(switch)
    assert table(switch) == expected(topology, ports)
    return ctl, switch


# ------------------------------------------------------------------ first connect

def test_first_connect_programs_exactly_what_compile_node_gives(agent_log) -> None:
    ctl = Controller(SEED)
    switch = FakeSwitch(NODE2_DPID, PORTS)
    ctl.connect(switch)

    want = expected(SEED, PORTS)
    assert table(switch) == want
    assert switch.commits == 1
    assert switch.received["bundle-add"] == len(want)
    assert switch.received["port-desc"] == switch.received["flow-stats"] == 1
    [line] = in_sync_lines(agent_log)
    assert (int(line["mods"]), int(line["add"]), int(line["flows"])) == \
        (len(want), len(want), len(want))
    assert line["reason"] == "connected"
    assert f"{NODE2} (dpid 0x{NODE2_DPID:016x}): in sync, " in line.string
    assert ctl.metric("osdn_flow_mods_total", node=NODE2, op="add") == len(want)
    assert ctl.metric("osdn_reconciles_total", node=NODE2, outcome="ok") == 1
    assert ctl.metric("osdn_connected_bridges") == 1
    assert sum(ctl.metric("osdn_flows", node=NODE2, table=str(t)) for t in Table) == len(want)


def test_messages_about_a_bridge_carry_its_node_and_datapath_id(agent_log) -> None:
    programmed(SEED)
    about = [r for r in agent_log.records if getattr(r, "node", None) == NODE2]
    assert len(about) >= 3  # connected, ports and flows read, in sync
    assert all(r.dpid == NODE2_DPID for r in about)
    assert all(r.getMessage().startswith(f"{NODE2} (dpid 0x00000000c0a86c70): ")
               for r in about)


def test_foreign_flows_are_removed_and_counted(agent_log) -> None:
    switch = FakeSwitch(NODE2_DPID, PORTS)
    switch.load([foreign_flow(1000, 0x1234)])
    ctl = Controller(SEED)
    ctl.connect(switch)
    assert table(switch) == expected(SEED, PORTS)
    [line] = in_sync_lines(agent_log)
    assert line["foreign"] == "1"
    assert any("removing 1 flows outside our cookie space" in r.getMessage()
               for r in agent_log.records)
    assert ctl.metric("osdn_flow_mods_total", node=NODE2, op="delete") == 1


# ------------------------------------------------------------------ reconnect, restart

def test_reconnect_sends_no_flow_mods(agent_log) -> None:
    ctl, switch = programmed(SEED)
    sent = switch.received.copy()
    switch.disconnect()
    assert ctl.metric("osdn_connected_bridges") == 0
    assert not ctl.agent.bridges

    ctl.connect(switch)
    assert table(switch) == expected(SEED, PORTS)
    new = switch.received - sent
    assert new == {"port-desc": 1, "flow-stats": 1}, new  # read back, nothing to send
    last = in_sync_lines(agent_log)[-1]
    assert (last["mods"], last["reason"]) == ("0", "connected")
    assert ctl.metric("osdn_reconciles_total", node=NODE2, outcome="unchanged") == 1


def test_a_new_connection_replaces_the_old_one(agent_log) -> None:
    """os-ken may see the new connection's handshake before the old one's end."""
    ctl, switch = programmed(SEED)
    old = ctl.agent.bridges[NODE2_DPID]
    ctl.connect(switch)  # no disconnect first
    assert not old.session.alive
    assert ctl.agent.bridges[NODE2_DPID] is not old
    assert in_sync_lines(agent_log)[-1]["mods"] == "0"
    assert ctl.metric("osdn_connected_bridges") == 1


def test_a_second_connection_of_a_served_dpid_is_refused_while_the_first_answers(
        agent_log) -> None:
    ctl, switch = programmed(SEED)
    served = ctl.agent.bridges[NODE2_DPID]
    impostor = FakeSwitch(NODE2_DPID, PORTS)
    ctl.connect(impostor)
    assert impostor.agent is None, "refused: its connection was closed"
    assert not impostor.received and not impostor.flows  # no request, no flow
    assert ctl.agent.bridges[NODE2_DPID] is served and served.session.alive
    assert switch.received["echo"] == 1
    assert ctl.metric("osdn_openflow_refused_connections_total",
                      reason="duplicate_datapath_id") == 1
    assert any("refused a second connection claiming this datapath id" in r.getMessage()
               for r in agent_log.records)
    switch.set_port("vethnew", 9)  # the served bridge is still served
    ctl.tasks.run()
    assert "vethnew" in served.session.ports


def test_a_second_connection_takes_over_when_the_first_does_not_answer(agent_log) -> None:
    ctl, switch = programmed(SEED)
    switch.answers_echo = False  # a half-open connection
    newcomer = FakeSwitch(NODE2_DPID, PORTS)
    ctl.connect(newcomer)
    assert switch.agent is None, "the silent connection was closed"
    assert ctl.agent.bridges[NODE2_DPID].switch is newcomer
    assert table(newcomer) == expected(SEED, PORTS)
    assert ctl.metric("osdn_openflow_refused_connections_total",
                      reason="duplicate_datapath_id") == 0
    assert any("does not answer echo requests" in r.getMessage() for r in agent_log.records)


def test_controller_restart_sends_zero_flow_mods(agent_log) -> None:
    _, switch = programmed(SEED)
    switch.agent = None  # the first controller died; the bridge keeps its flows
    sent = switch.received.copy()

    restarted = Controller(SEED)
    restarted.connect(switch)
    assert table(switch) == expected(SEED, PORTS)
    assert switch.received - sent == {"port-desc": 1, "flow-stats": 1}
    assert in_sync_lines(agent_log)[-1]["mods"] == "0"
    assert restarted.metric("osdn_flow_mods_total", node=NODE2, op="add") == 0


def test_restart_with_the_node_configured_uses_the_precompiled_flows(agent_log) -> None:
    _, switch = programmed(SEED)
    switch.agent = None
    restarted = Controller(SEED, node=NODE2)
    assert any(re.search(rf"^{re.escape(NODE2)}: \d+ flows compiled in", r.getMessage())
               for r in agent_log.records)
    restarted.connect(switch)
    assert in_sync_lines(agent_log)[-1]["mods"] == "0"
    assert table(switch) == expected(SEED, PORTS)


# ------------------------------------------------------------------ unknown bridge

def test_unclaimed_bridge_is_left_untouched_until_the_topology_claims_it(
        cluster, agent_log) -> None:
    stranger = FakeSwitch(NODE9_DPID, {"vxlan0": 1, "tun0": 2})
    stranger.load([foreign_flow(10, 0x42)])
    before = table(stranger)
    ctl = Controller(cluster)
    ctl.connect(stranger)
    assert not stranger.received  # not even a request
    assert table(stranger) == before
    assert NODE9_DPID in ctl.agent.unserved
    assert any(f"datapath id 0x{NODE9_DPID:016x} connected: no HostSubnet" in r.getMessage()
               for r in agent_log.records)

    write(cluster / "node9.yaml", NODE9_SUBNET)
    ctl.agent.check_topology()
    ctl.tasks.run()
    assert not ctl.agent.unserved
    assert table(stranger) == expected(cluster, {"vxlan0": 1, "tun0": 2}, NODE9)
    first, then = in_sync_lines(agent_log, NODE9)  # served, then the change's reconcile
    assert (first["reason"], first["foreign"]) == ("connected", "1")
    assert (then["reason"], then["mods"]) == ("topology changed", "0")


# ------------------------------------------------------------------ switch errors

@pytest.mark.parametrize("at_commit", [True, False], ids=["at-commit", "at-add"])
def test_rejected_bundle_is_discarded_and_the_next_reconcile_sends_it_all(
        cluster, agent_log, at_commit: bool) -> None:
    ctl, switch = programmed(cluster)
    ports = {**PORTS, NEW_POD_PORT: NEW_POD_OFPORT}
    switch.set_port(NEW_POD_PORT, NEW_POD_OFPORT)  # no pod for it yet: nothing to send
    ctl.tasks.run()
    before = table(switch)
    assert before == expected(cluster, ports)
    commits = switch.commits

    # The pod's flows go in one bundle; its table-70 flow is refused: nothing is applied.
    switch.refuse(POD_TABLE, at_commit=at_commit)
    write(cluster / "refused-pod.yaml", NEW_POD)
    ctl.agent.check_topology()
    ctl.tasks.run()
    with_pod = expected(cluster, ports)
    assert len(set(with_pod) - set(before)) >= 3  # table 20, 25, 70... flows of the pod
    assert table(switch) == before
    assert switch.commits == commits
    assert switch.received["bundle-discard"] == (0 if at_commit else 1)
    refused = [r.getMessage() for r in agent_log.records if r.levelno == logging.ERROR]
    assert len(refused) == 1 and re.search(r"switch (rejected|refused) the bundle", refused[0])
    assert any(f"table={POD_TABLE}," in line and f"nw_dst={NEW_POD_IP}" in line
               and "OFPFMFC_TABLE_FULL" in line for line in refused[0].splitlines())
    assert ctl.metric("osdn_switch_errors_total", node=NODE2,
                      type="OFPET_FLOW_MOD_FAILED/OFPFMFC_TABLE_FULL") == 1
    assert ctl.metric("osdn_reconciles_total", node=NODE2, outcome="error") == 1

    # The limit lifted, a change that needs no table-70 flow (a Service): the reconcile
    # compares everything again, so the pod's refused flows go in with the Service's.
    switch.refuse(None)
    write(cluster / "after-error-service.yaml", NEW_SERVICE)
    ctl.agent.check_topology()
    ctl.tasks.run()
    final = expected(cluster, ports)
    assert table(switch) == final
    added = set(final) - set(before)
    assert [k for k in set(final) - set(with_pod) if k[0] == POD_TABLE] == []
    last = in_sync_lines(agent_log)[-1]
    assert last["reason"] == "topology changed"
    assert int(last["add"]) == len(added) and int(last["mods"]) == len(added) + sum(
        1 for k in set(before) & set(final) if before[k] != final[k])


# ------------------------------------------------------------------ ports

def test_port_appearing_adds_its_pod_flows_and_leaving_removes_them(agent_log) -> None:
    without = {name: no for name, no in PORTS.items() if name != MOVING_PORT}
    ctl, switch = programmed(SEED, without)
    before = table(switch)
    want = expected(SEED, PORTS)
    assert len(set(want) - set(before)) >= 2

    switch.set_port(MOVING_PORT, 4)
    ctl.tasks.run()
    assert table(switch) == want
    line = in_sync_lines(agent_log)[-1]
    assert line["reason"] == f"port {MOVING_PORT} changed"
    assert (int(line["add"]), int(line["delete"])) == (len(set(want) - set(before)), 0)
    assert int(line["mods"]) == len(set(want) - set(before)) + sum(
        1 for k in set(before) & set(want) if before[k] != want[k])

    switch.delete_port(MOVING_PORT)
    ctl.tasks.run()
    assert table(switch) == before
    line = in_sync_lines(agent_log)[-1]
    assert int(line["delete"]) == len(set(want) - set(before))


def test_port_moving_to_another_ofport_updates_its_flows(agent_log) -> None:
    ctl, switch = programmed(SEED)
    before = table(switch)
    moved = {**PORTS, MOVING_PORT: 7}
    switch.delete_port(MOVING_PORT)
    switch.set_port(MOVING_PORT, 7)
    ctl.tasks.run()

    want = expected(SEED, moved)
    assert want != before
    assert table(switch) == want
    lines = in_sync_lines(agent_log)[-2:]
    # both events seen before the first reconcile ran: it did all, the second nothing
    assert [line["mods"] for line in lines][1] == "0"
    changed = sum(1 for k in set(before) | set(want) if before.get(k) != want.get(k))
    assert int(lines[0]["mods"]) == changed > 0
