"""dnsNames followed by TTL in the node agent: a resolver double that changes its answers, a
fake clock, the fake switch (tests/support/fakeswitch.py).  Table 101 gets the difference,
in a bundle, when an answer changes; a failure keeps the last good answer."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from controller.agent import NodeAgent
from controller.compiler import Settings, compile_node
from controller.config import ControllerSettings
from controller.metrics import Metrics
from controller.openflow.wire import encode
from lab.harness import copy_cluster
from tests.support.fakeswitch import FakeSwitch, Tasks, fake_runtime
from tests.support.seed_node import NODE2, NODE2_DPID, SEED
from tests.unit.test_agent import PORTS, Table_, in_sync_lines, table
from tests.unit.test_dns import Answers, Clock
from topology.load import load_topology

VNID = 8583346  # kube-public's
POLICY = """\
apiVersion: network.openshift.io/v1
kind: EgressNetworkPolicy
metadata:
  name: default
  namespace: kube-public
  uid: 7e57c0de-0000-4000-8000-0000000000d1
spec:
  egress:
  - to:
      dnsName: {name}
    type: Allow
  - to:
      cidrSelector: 0.0.0.0/0
    type: Deny
"""


@pytest.fixture(autouse=True)
def agent_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="osdn")
    return caplog


@pytest.fixture
def cluster(tmp_path: Path) -> Path:
    copy = copy_cluster(SEED, tmp_path / "cluster")
    (copy / "egress.yaml").write_text(POLICY.format(name="api.example"))
    return copy


class Node:
    """node2's agent, with the resolver double and the fake clock, and its fake switch."""

    def __init__(self, cluster: Path, answers: Answers, clock: Clock) -> None:
        self.cluster, self.answers, self.tasks = cluster, answers, Tasks()
        self.agent = NodeAgent(ControllerSettings((str(cluster),), watch=False,
                                                  watch_settle=0, audit_interval=0),
                               Metrics(CollectorRegistry()), fake_runtime(self.tasks, clock),
                               dns_query=answers)
        self.agent.start()
        self.switch = FakeSwitch(NODE2_DPID, PORTS)
        self.switch.connect(self.agent)
        self.tasks.run()

    def rendered(self, answers: dict[str, Sequence[str]]) -> Table_:
        def resolve(name: str) -> list[IPv4Address]:
            return [IPv4Address(a) for a in answers.get(name, ())]
        flows = compile_node(load_topology([self.cluster]), NODE2, Settings(0, resolve),
                             PORTS).flows
        return {(e := encode(flow)).key: (e.cookie, e.instructions) for flow in flows}


def test_a_changed_answer_sends_table_101_the_difference(cluster, agent_log) -> None:
    answers, clock = Answers(), Clock()
    answers.set("api.example", "192.0.2.10", "192.0.2.11", ttl=300)
    node = Node(cluster, answers, clock)
    assert node.tasks.loops == ["dns_loop"]  # the timer runs beside the other tasks
    assert table(node.switch) == node.rendered({"api.example": ["192.0.2.10", "192.0.2.11"]})
    assert answers.asked == ["api.example"]  # resolved once, before the first compile

    answers.set("api.example", "192.0.2.11", "192.0.2.12", ttl=300)
    clock.now += 299
    assert node.agent.refresh_dns() == pytest.approx(1.0)  # not due: asked nothing
    node.tasks.run()
    assert len(answers.asked) == 1
    clock.now += 1
    assert node.agent.refresh_dns() == pytest.approx(300.0)
    node.tasks.run()
    assert table(node.switch) == node.rendered({"api.example": ["192.0.2.11", "192.0.2.12"]})
    line = in_sync_lines(agent_log)[-1]
    assert line["reason"] == "dnsName api.example changed"
    assert (line["add"], line["modify"], line["delete"]) == ("1", "0", "1")  # .10 -> .12


def test_a_failure_keeps_the_last_good_flows(cluster, agent_log) -> None:
    answers, clock = Answers(), Clock()
    answers.set("api.example", "192.0.2.10", ttl=60)
    node = Node(cluster, answers, clock)
    before, syncs = table(node.switch), len(in_sync_lines(agent_log))
    answers.fail("api.example")
    clock.now += 60
    assert node.agent.refresh_dns() == pytest.approx(5.0)  # asked again soon
    node.tasks.run()
    assert table(node.switch) == before and len(in_sync_lines(agent_log)) == syncs
    assert "keeping 192.0.2.10, asking again in 5 s" in agent_log.text
    answers.set("api.example", "192.0.2.20", ttl=60)
    clock.now += 5
    node.agent.refresh_dns()
    node.tasks.run()
    assert table(node.switch) == node.rendered({"api.example": ["192.0.2.20"]})


def test_a_new_name_is_resolved_before_its_policy_is_compiled(cluster, agent_log) -> None:
    answers, clock = Answers(), Clock()
    answers.set("api.example", "192.0.2.10", ttl=60)
    answers.set("db.example", "198.51.100.5", ttl=60)
    node = Node(cluster, answers, clock)
    (cluster / "egress.yaml").write_text(POLICY.format(name="db.example") + "\n")
    node.agent.check_topology()
    node.tasks.run()
    assert table(node.switch) == node.rendered({"db.example": ["198.51.100.5"]})
    line = in_sync_lines(agent_log)[-1]
    assert line["reason"] == "topology changed"
    assert node.agent.dns is not None and node.agent.dns.lookup("api.example") == ()
