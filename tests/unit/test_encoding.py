"""The fast encoder against os-ken's own serialization, for every golden flow."""

from __future__ import annotations

import pytest

from controller.compiler import compile_node
from controller.encoding import flow_mod_bytes
from tests.golden.update import CLUSTERS, SETTINGS
from tests.unit.test_golden import CASES, FakeDatapath
from topology.load import load_topology
from topology.model import Plugin


@pytest.mark.parametrize("cluster, plugin", CASES, ids=lambda v: getattr(v, "name", v))
def test_fast_bytes_equal_os_ken_bytes(cluster: str, plugin: Plugin) -> None:
    topology = load_topology([CLUSTERS[cluster]], plugin=plugin)
    kinds = set()
    for hs in topology.host_subnets:
        for flow in compile_node(topology, hs.host, SETTINGS).flows:
            message = flow.to_ofp(FakeDatapath())
            message.set_xid(0)
            message.serialize()
            assert flow_mod_bytes(flow) == bytes(message.buf), flow.to_ofctl()
            kinds |= {type(a).__name__ for a in flow.actions}
    assert len(kinds) >= 5


def test_fixed_vnid_load_matches_os_ken() -> None:
    from tests.unit.builders import node, seed
    f5 = node("f5", "192.168.108.150", "10.128.100.0/23", fixed_vnid=4321)
    topology = seed(host_subnets=seed().host_subnets + (f5,))
    flows = [f for f in compile_node(topology, "node1").flows if "TUN_ID[0..31],set" in
             f.to_ofctl() and "load:4321" in f.to_ofctl()]
    assert len(flows) == 2
    for flow in flows:
        message = flow.to_ofp(FakeDatapath())
        message.set_xid(0)
        message.serialize()
        assert flow_mod_bytes(flow) == bytes(message.buf)
