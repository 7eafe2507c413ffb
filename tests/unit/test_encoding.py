"""The fast encoder against os-ken's own serialization, for every golden flow."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from bench.generate import generate, write
from controller.compiler import compile_node
from controller.openflow.encoding import _ACTIONS, flow_mod_bytes
from controller.openflow.osken_flow import flow_mod
from controller.openflow.wire import encode, encode_flow
from controller.pipeline.cookies import Owner, OwnerKind
from controller.pipeline.flow import (
    Action,
    Conntrack,
    Flow,
    LoadReg,
    LoadTunId,
    Match,
    MoveRegToTunId,
    MoveTunIdToReg,
    Note,
    Output,
    OutputReg,
    Proto,
    SetField,
    SetFieldName,
)
from controller.pipeline.registers import DST_VNID, OUT_PORT, SRC_VNID
from controller.pipeline.tables import Table
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
            message = flow_mod(flow, FakeDatapath())
            message.set_xid(0)
            message.serialize()
            assert flow_mod_bytes(flow) == bytes(message.buf), flow.to_ofctl()
            kinds |= {type(a).__name__ for a in flow.actions}
    assert len(kinds) >= 5


def test_fixed_vnid_load_matches_os_ken() -> None:
    from tests.support.builders import node, seed
    f5 = node("f5", "192.168.108.150", "10.128.100.0/23", fixed_vnid=4321)
    topology = seed(host_subnets=seed().host_subnets + (f5,))
    flows = [f for f in compile_node(topology, "node1").flows if "TUN_ID[0..31],set" in
             f.to_ofctl() and "load:4321" in f.to_ofctl()]
    assert len(flows) == 2
    for flow in flows:
        message = flow_mod(flow, FakeDatapath())
        message.set_xid(0)
        message.serialize()
        assert flow_mod_bytes(flow) == bytes(message.buf)


# ------------------------------------------------------------------ every kind, explicitly

def os_ken_bytes(flow: Flow) -> bytes:
    message = flow_mod(flow, FakeDatapath())
    message.set_xid(0)
    message.serialize()
    return bytes(message.buf)


def every_kind() -> list[Flow]:
    """At least one flow per action type and variant, per match field and shape (exact and
    masked networks, TCP and UDP ports, each ct_state), per goto."""
    owner = Owner(OwnerKind.STATIC, "encoding-test")
    host, net = IPv4Network("10.128.0.7/32"), IPv4Network("10.128.0.0/14")
    matches = [
        Match(), Match(in_port=7), Match(in_port=0xFFFFFF00), Match(proto=Proto.IP),
        Match(proto=Proto.ARP), Match(proto=Proto.TCP), Match(proto=Proto.UDP),
        Match(reg0=0), Match(reg0=0xFFFFFFFF, reg1=1), Match(reg1=4242),
        Match(proto=Proto.IP, ct_state="-trk"), Match(proto=Proto.IP, ct_state="+trk+rpl"),
        Match(proto=Proto.IP, ct_state="+rpl"), Match(proto=Proto.IP, ct_state="+trk-rpl"),
        Match(tun_src=IPv4Address("192.168.1.2")),
        Match(in_port=1, proto=Proto.ARP, arp_spa=net, arp_tpa=host),
        Match(proto=Proto.ARP, arp_spa=host, arp_sha=("00:00:0a:80:00:07", "00:00:ff:ff:ff:ff")),
        Match(proto=Proto.IP, nw_src=host), Match(proto=Proto.IP, nw_dst=net),
        Match(proto=Proto.IP, nw_src=net, nw_dst=IPv4Network("0.0.0.0/0")),
        Match(proto=Proto.IP, nw_dst=host, ip_frag_later=True),
        Match(proto=Proto.TCP, nw_dst=host, tp_dst=53), Match(proto=Proto.UDP, tp_dst=4789),
        Match(in_port=3, proto=Proto.TCP, reg0=5, reg1=6, nw_src=host, nw_dst=net, tp_dst=1),
    ]
    actions: list[tuple[Action, ...]] = [
        (), (Output(2),), (Output(0xFFFFFFFD),), (OutputReg(OUT_PORT),),
        (LoadReg(SRC_VNID, 0),), (LoadReg(DST_VNID, 0xFFFFFFFF), LoadReg(OUT_PORT, 2)),
        (LoadTunId(4321),), (MoveTunIdToReg(SRC_VNID),), (MoveRegToTunId(SRC_VNID),),
        (SetField(SetFieldName.TUN_DST, "192.168.1.9"),),
        (SetField(SetFieldName.ETH_DST, "0a:58:0a:80:00:01"),),
        (SetField(SetFieldName.PKT_MARK, 0x01000001),),
        (Note(bytes([1, 7])),), (Note(b"a longer note of several words"),),
        (Conntrack(),), (Conntrack(commit=True),), (Conntrack(table=Table.CLASSIFIER),),
        (Conntrack(nat=True, table=Table.IP_LOCAL),),
        (Conntrack(commit=True, table=Table.ROUTING),),
        (MoveRegToTunId(SRC_VNID), SetField(SetFieldName.TUN_DST, "192.168.1.9"), Output(1)),
    ]
    flows = [Flow(Table.CLASSIFIER, 100 + i, match, owner) for i, match in enumerate(matches)]
    # a ct(table=N) must be allowed to continue to N: from the table 3.11 uses it in
    source = {Table.CLASSIFIER: Table.CLASSIFIER, Table.IP_LOCAL: Table.ROUTING,
              Table.ROUTING: Table.CONNTRACK_COMMIT}
    for i, acts in enumerate(actions):
        tables = [source[a.table] for a in acts
                  if isinstance(a, Conntrack) and a.table is not None]
        flows.append(Flow(tables[0] if tables else Table.ROUTING, 300 + i, Match(), owner, acts))
    # goto: with and without actions; the largest table numbers
    flows += [Flow(Table.CLASSIFIER, 1, Match(proto=Proto.IP), owner, goto=Table.POD_INGRESS),
              Flow(Table.POD_INGRESS, 1, Match(in_port=4), owner, (LoadReg(SRC_VNID, 9),),
                   Table.CONNTRACK_COMMIT),
              Flow(Table.MULTICAST_VXLAN, 100, Match(), owner, (Output(1),),
                   Table.MULTICAST_LOCAL),
              Flow(Table.VERSION_NOTE, 0, Match(), owner, (Note(bytes([2, 7])),)),
              Flow(Table.ROUTING, 0xFFFF, Match(), owner), Flow(Table.ROUTING, 0, Match(), owner)]
    return flows


def test_every_flow_kind_encodes_as_os_ken_does() -> None:
    flows = every_kind()
    for flow in flows:
        assert flow_mod_bytes(flow) == os_ken_bytes(flow), flow.to_ofctl()
        assert flow_mod_bytes(flow, 77, flow.cookie)[8:] == os_ken_bytes(flow)[8:]
        encoded = encode_flow(flow)
        assert encoded.flow_mod == os_ken_bytes(flow) and encoded.cookie == flow.cookie
        assert encoded.flow is flow
    kinds = {type(a) for f in flows for a in f.actions}
    assert kinds == set(_ACTIONS), "a new action type needs a case here"


@pytest.mark.parametrize("plugin", ["subnet", "multitenant", "networkpolicy"])
def test_generated_clusters_encode_as_os_ken_does(tmp_path: Path, plugin: str) -> None:
    write(generate(nodes=4, namespaces=8, pods_per_node=6, plugin=plugin, seed=3,
                   egress_firewalls=2), tmp_path)
    topology = load_topology([tmp_path], cache=None)
    for hs in topology.host_subnets:
        for flow in compile_node(topology, hs.host, SETTINGS).flows:
            assert flow_mod_bytes(flow) == os_ken_bytes(flow), flow.to_ofctl()


def test_equal_flows_of_other_owners_keep_their_own_cookie() -> None:
    """Flows compare equal whatever their owner; the encoding cache must not mix them up."""
    a = Flow(Table.SERVICE, 100, Match(proto=Proto.IP), Owner(OwnerKind.SERVICE, "ns/a"))
    b = Flow(Table.SERVICE, 100, Match(proto=Proto.IP), Owner(OwnerKind.SERVICE, "ns/b"))
    assert a == b
    assert encode(a).cookie == a.cookie and encode(b).cookie == b.cookie != a.cookie
    assert encode(b).flow_mod == os_ken_bytes(b)
