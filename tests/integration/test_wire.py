"""controller.openflow.wire against real OVS: read-back identity, plans applied in bundles."""

from __future__ import annotations

import pytest

from controller.compiler import compile_node
from controller.openflow.wire import delete_strict, encode
from controller.ovs.nodebridge import add_node_bridge
from controller.ovs.privateovs import PrivateOvs
from controller.reconcile import diff
from lab.ofclient import OfClient, OpenFlowError
from tests.golden.update import CLUSTERS, SETTINGS
from tests.unit.test_golden import CASES
from topology.load import load_topology
from topology.model import Plugin

pytestmark = pytest.mark.ovs


@pytest.fixture
def bridge(private_ovs: PrivateOvs):
    name = "br-wire"
    add_node_bridge(private_ovs, name, 0x77, {"p3": 3, "p4": 4, "p5": 5, "p6": 6, "p7": 7,
                                              "p8": 8}, host_ip="192.168.77.1")
    yield name
    private_ovs.del_bridge(name)


@pytest.mark.parametrize("cluster, plugin", CASES, ids=lambda v: getattr(v, "name", v))
def test_ovs_reports_exactly_the_bytes_we_encode(private_ovs: PrivateOvs, bridge: str,
                                                 cluster: str, plugin: Plugin) -> None:
    """Every golden flow, loaded with ovs-ofctl with the flag the controller sets
    (`send_flow_rem`), reads back with our key and content."""
    topology = load_topology([CLUSTERS[cluster]], plugin=plugin)
    for hs in topology.host_subnets:
        flows = compile_node(topology, hs.host, SETTINGS).flows
        private_ovs.ofctl(bridge, "del-flows")
        private_ovs.load_flows(bridge, "".join(f"send_flow_rem,{f.to_ofctl()}\n"
                                               for f in flows))
        with OfClient(private_ovs.mgmt_target(bridge)) as client:
            plan = diff(flows, client.dump_flows())
        assert not plan, (hs.host, [f.to_ofctl() for f in plan.adds + plan.modifies][:5])


def test_plan_applied_in_one_bundle_converges(private_ovs: PrivateOvs, bridge: str) -> None:
    topology = load_topology([CLUSTERS["seed"]])
    node2 = compile_node(topology, "node2.ocp.cn", SETTINGS).flows
    node1 = compile_node(topology, "node1.ocp.cn", SETTINGS).flows
    private_ovs.ofctl(bridge, "add-flow", "cookie=0x5,table=7,priority=9,actions=drop")
    with OfClient(private_ovs.mgmt_target(bridge)) as client:
        for wanted in (node2, node1, node2):
            plan = diff(wanted, client.dump_flows())
            client.bundle([encode(f).flow_mod for f in plan.adds + plan.modifies]
                          + [delete_strict(f) for f in plan.deletes + plan.foreign])
            assert not diff(wanted, client.dump_flows())
        assert len(client.dump_flows()) == len(node2)


def test_a_bad_flow_discards_the_whole_bundle(private_ovs: PrivateOvs, bridge: str) -> None:
    topology = load_topology([CLUSTERS["seed"]])
    flows = compile_node(topology, "node2.ocp.cn", SETTINGS).flows
    good = [encode(f).flow_mod for f in flows]
    broken = bytearray(good[5])
    broken[25] = 9  # flow-mod command 9 does not exist: OFPET_FLOW_MOD_FAILED, BAD_COMMAND
    with OfClient(private_ovs.mgmt_target(bridge)) as client:
        with pytest.raises(OpenFlowError) as error:
            client.bundle(good[:5] + [bytes(broken)] + good[6:])
        assert (error.value.err_type, error.value.code) == (5, 6)  # FLOW_MOD_FAILED, BAD_COMMAND
        assert client.dump_flows() == []
