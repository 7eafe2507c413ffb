"""controller.openflow.wire's fast paths against the general ones and against os-ken's parser,
without a switch: batched bundle-adds, flow-stats replies read as bytes, os-ken handing those
replies over unparsed, and the keyed diff of reconcile against the full one."""

from __future__ import annotations

import random
import struct

import pytest
from os_ken.ofproto import ofproto_parser
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller.compiler import compile_node
from controller.openflow.encoding import FLOW_MOD_FLAGS
from controller.openflow.session import BridgeSession, use_raw_flow_stats
from controller.openflow.wire import (
    HEADER,
    InstalledFlow,
    bundle_add,
    bundle_adds,
    encode,
    iter_flow_stats,
    match_tlvs,
    parse_flow_removed,
    parse_flow_stats,
    port_desc_request,
    table_stats_request,
)
from controller.reconcile import diff, diff_encoded
from tests.golden.update import CLUSTERS, SETTINGS
from tests.support.fakeswitch import Flag
from tests.unit.test_golden import FakeDatapath
from topology.load import load_topology
from topology.model import Plugin

ENTRY = struct.Struct("!HBxIIHHHH4xQQQ")


def node_flows(plugin: Plugin = Plugin.NETWORKPOLICY) -> list:
    topology = load_topology([CLUSTERS["rich"]], plugin=plugin)
    return [f for hs in topology.host_subnets for f in compile_node(topology, hs.host,
                                                                    SETTINGS).flows]


def stats_reply(flows: list, xid: int = 9, more: bool = False, shuffle: bool = True,
                flags: int = FLOW_MOD_FLAGS) -> bytes:
    """An OFPMP_FLOW reply as OVS sends it: match TLVs in another order than ours, the flags
    the flows were added with."""
    rng = random.Random(4)
    body = b""
    for number, flow in enumerate(flows):
        encoded = encode(flow)
        tlvs = list(match_tlvs(encoded.flow_mod[52:48 + struct.unpack_from(
            "!H", encoded.flow_mod, 50)[0]]))
        if shuffle:
            rng.shuffle(tlvs)
        match = b"".join(tlvs)
        length = 4 + len(match)
        match = struct.pack("!HH", 1, length) + match + b"\0" * (-length % 8)
        entry = match + encoded.instructions
        body += ENTRY.pack(ENTRY.size + len(entry), int(flow.table), number, 5, flow.priority,
                           0, 0, flags, flow.cookie, 3, 300) + entry
    head = struct.pack("!HH4x", ofp.OFPMP_FLOW, 1 if more else 0)
    return HEADER.pack(ofp.OFP_VERSION, ofp.OFPT_MULTIPART_REPLY, 8 + len(head) + len(body),
                       xid) + head + body


def test_bundle_adds_is_bundle_add_of_each_message() -> None:
    messages = [encode(f).flow_mod for f in node_flows()[:300]]
    joined = bundle_adds(7, messages, 0x40000010)
    assert joined == b"".join(bundle_add(7, m, 0x40000010 + i) for i, m in enumerate(messages))
    assert bundle_adds(7, [], 5) == b""


def test_flow_stats_are_read_with_our_keys_and_match_os_ken() -> None:
    flows = node_flows()
    reply = stats_reply(flows, more=True)
    entries = iter_flow_stats(reply)
    assert [key for key, _ in entries] == [encode(f).key for f in flows]
    for (key, installed), flow in zip(entries, flows, strict=False):
        assert key == installed.key
        assert (installed.table, installed.priority, installed.cookie, installed.instructions) \
            == (int(flow.table), flow.priority, flow.cookie, encode(flow).instructions)
    parsed, more = parse_flow_stats(reply)
    assert more and parsed == [installed for _, installed in entries]
    assert not parse_flow_stats(stats_reply(flows[:3]))[1]
    # os-ken's own parser reads the same entries
    message = ofproto_parser.msg(FakeDatapath(), ofp.OFP_VERSION, ofp.OFPT_MULTIPART_REPLY,
                                 len(reply), 9, bytearray(reply))
    assert [(s.table_id, s.priority, s.cookie, s.duration_sec, s.flags)
            for s in message.body] == \
        [(i.table, i.priority, i.cookie, i.duration_sec, i.flags) for _, i in entries]
    assert [s.match.to_jsondict() for s in message.body] == \
        [parser.OFPMatch.parser(bytes(struct.pack("!HH", 1, 4 + len(i.match)) + i.match
                                      + b"\0" * (-(4 + len(i.match)) % 8)), 0).to_jsondict()
         for _, i in entries]


def test_an_unchanged_bridge_diffs_to_nothing_whatever_the_tlv_order() -> None:
    flows = node_flows()
    installed = dict(iter_flow_stats(stats_reply(flows)))
    assert not diff(flows, installed.values())
    assert not diff_encoded({encode(f).key: encode(f) for f in flows}, installed)


def test_every_flow_asks_for_its_removal_to_be_reported() -> None:
    """OFPFF_SEND_FLOW_REM on every flow-mod (controller.tamper relies on it), read back as
    the installed flow's flags; a flow without it (added by hand, or by an older controller)
    is re-added, so that its removal is reported too."""
    flows = node_flows()[:50]
    assert FLOW_MOD_FLAGS == ofp.OFPFF_SEND_FLOW_REM
    for flow in flows:
        mod = parser.OFPFlowMod.parser(FakeDatapath(), ofp.OFP_VERSION, ofp.OFPT_FLOW_MOD, 0, 0,
                                       encode(flow).flow_mod)
        assert mod.flags == ofp.OFPFF_SEND_FLOW_REM
        assert InstalledFlow.from_encoded(encode(flow)).flags == ofp.OFPFF_SEND_FLOW_REM
    unflagged = dict(iter_flow_stats(stats_reply(flows, flags=0)))
    plan = diff_encoded({encode(f).key: encode(f) for f in flows}, unflagged)
    assert len(plan.modifies) == len(flows) and not (plan.adds or plan.deletes or plan.foreign)


def test_flow_removed_is_read_with_our_key_and_matches_os_ken() -> None:
    flow = next(f for f in node_flows() if len(f.match.to_ofctl()) > 30)
    encoded = encode(flow)
    tlvs = list(reversed(match_tlvs(encoded.flow_mod[52:48 + struct.unpack_from(
        "!H", encoded.flow_mod, 50)[0]])))  # OVS's order is not ours
    match = struct.pack("!HH", ofp.OFPMT_OXM, 4 + sum(map(len, tlvs))) + b"".join(tlvs)
    match += b"\0" * (-len(match) % 8)
    body = struct.pack("!QHBBIIHHQQ", flow.cookie, flow.priority, ofp.OFPRR_DELETE,
                       int(flow.table), 3, 0, 0, 0, 7, 700) + match
    message = HEADER.pack(ofp.OFP_VERSION, ofp.OFPT_FLOW_REMOVED, 8 + len(body), 0) + body
    removed = parse_flow_removed(message)
    assert (removed.key, removed.cookie, removed.reason) == \
        (encoded.key, flow.cookie, ofp.OFPRR_DELETE)
    osken = ofproto_parser.msg(FakeDatapath(), ofp.OFP_VERSION, ofp.OFPT_FLOW_REMOVED,
                               len(message), 0, bytearray(message))
    assert (osken.table_id, osken.priority, osken.cookie, osken.reason) == \
        (removed.key[0], removed.key[1], removed.cookie, removed.reason)


def test_table_stats_request_is_what_os_ken_packs() -> None:
    request = parser.OFPTableStatsRequest(FakeDatapath(), 0)
    request.xid = 0x40000007
    request.serialize()
    assert table_stats_request(0x40000007) == bytes(request.buf)


def test_os_ken_hands_flow_stats_over_unparsed() -> None:
    from os_ken.controller import ofp_event
    original = parser.OFPMultipartReply._STATS_MSG_TYPES[ofp.OFPMP_FLOW]
    try:
        use_raw_flow_stats()
        use_raw_flow_stats()  # idempotent
        reply = stats_reply(node_flows(), more=True)
        message = ofproto_parser.msg(FakeDatapath(), ofp.OFP_VERSION, ofp.OFPT_MULTIPART_REPLY,
                             len(reply), 9, bytearray(reply))
        assert type(message).__name__ == "OFPFlowStatsReply"
        assert isinstance(ofp_event.ofp_msg_to_ev(message), ofp_event.EventOFPFlowStatsReply)
        assert bytes(message.buf) == reply and message.flags == 1 and message.xid == 9
        assert len(message.body) == 1  # one opaque entry: nothing parsed
        assert iter_flow_stats(bytes(message.buf)) == iter_flow_stats(reply)
        # other multipart replies are still parsed as before
        ports = parser.OFPMultipartReply._STATS_MSG_TYPES[ofp.OFPMP_PORT_DESC]
        assert ports.cls_stats_body_cls is parser.OFPPort
    finally:
        parser.OFPMultipartReply._STATS_MSG_TYPES[ofp.OFPMP_FLOW] = original


@pytest.mark.parametrize("seed", range(5))
def test_keyed_diff_equals_the_full_diff_on_the_keys_that_changed(seed: int) -> None:
    rng = random.Random(seed)
    flows = node_flows(Plugin.MULTITENANT)
    desired = {encode(f).key: encode(f) for f in flows}
    installed = {key: InstalledFlow.from_encoded(e) for key, e in desired.items()}
    keys = list(desired)
    changed = set()
    for key in rng.sample(keys, 20):  # gone from the desired set
        desired.pop(key)
        changed.add(key)
    for key in rng.sample(list(installed), 20):  # gone from the bridge
        installed.pop(key)
        changed.add(key)
    for key in rng.sample(list(desired), 10):  # another cookie on the bridge
        if key in installed:
            installed[key] = installed[key]._replace(cookie=installed[key].cookie ^ 1)
            changed.add(key)
    full = diff_encoded(desired, installed)
    keyed = diff_encoded(desired, installed, changed | set(rng.sample(keys, 30)))
    for part in ("adds", "modifies", "deletes", "foreign"):
        assert sorted(map(repr, getattr(full, part))) == sorted(map(repr, getattr(keyed, part)))
    assert full.flow_mods >= 25


def test_consecutive_xids_never_wrap_inside_a_bundle() -> None:
    session = BridgeSession(lambda data: True, Flag, lambda seconds: None)
    session._xid = 0x7FFFFFF0
    first = session.reserve_xids(100)
    assert first == 0x40000000 and session.next_xid() == 0x40000064
    assert session.reserve_xids(5) == 0x40000065


def test_port_desc_request_is_what_os_ken_packs() -> None:
    request = parser.OFPPortDescStatsRequest(FakeDatapath(), 0)
    request.set_xid(0x40000007)
    request.serialize()
    assert port_desc_request(0x40000007) == bytes(request.buf)
