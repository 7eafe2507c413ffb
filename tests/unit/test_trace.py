"""The OVS text parsers (`controller.ovs.trace`, `controller.ovs.flowdump`) on output captured
from a real OVS.

tests/unit/data/traces/ holds `ofproto/trace`, `dpif/show` and `dump-flows` text of the seed
cluster's node2 (captured by capture.py there: multitenant, and networkpolicy for conntrack
recirculations).  The expected results below were written from reading those texts, not
from running the parser.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.ovs.flowdump import normalize_flow_dump
from controller.ovs.trace import (
    LOCAL_OFPORT,
    TraceOutput,
    TraceParseError,
    TraceResult,
    parse_dpif_show,
    parse_flow_fields,
    parse_trace,
    split_top,
)

DATA = Path(__file__).resolve().parent / "data" / "traces"
CLUSTER_COOKIE = 0xD501756532D0FDE9  # the static flows' cookie in these captures
NGINX_COOKIE = 0xD503C90D9F34FDC0  # pod tomcat-nginx (10.130.0.6, ofport 4): table 20
WEB_COOKIE = 0xD503F405745FE251  # pod web (10.130.0.5, ofport 3): table 70
NODE1_COOKIE = 0xD5022F143631AA80  # node1's HostSubnet flows
EGRESS_COOKIE = 0xD5069AFAA27FE61C  # kube-public's egress IP flow
POLICY_COOKIE = 0xD508125DDF977F6E  # table 80's policy flow (networkpolicy)
WEB_DP_PORT = 92727375  # a dummy port's datapath number: the digits in its name (veth92727375)

# dpif/show of the multitenant instance: node2 as br0, node1 as br-node1
DP_PORTS = {"br-node1": {3: LOCAL_OFPORT, 101: 2, 2: 3, 4789: 1},
            "br0": {100: LOCAL_OFPORT, 1: 2, WEB_DP_PORT: 3, 83: 4, 4789: 1}}
NP_DP_PORTS = {"br0": {100: LOCAL_OFPORT, 1: 2, WEB_DP_PORT: 3, 83: 4, 4789: 1}}

Step = tuple[int, str, int | None, int, list[str], list[str]]


def text(name: str) -> str:
    return (DATA / f"{name}.txt").read_text()


def trace(name: str, dp_ports: dict[str, dict[int, int]] = DP_PORTS) -> TraceResult:
    return parse_trace(text(name), dp_ports=dp_ports, bridge="br0")


def steps_of(result: TraceResult) -> list[Step]:
    return [(s.table, s.match, s.priority, s.cookie, s.actions, s.notes) for s in result.steps]


def test_dpif_show_maps_datapath_ports_back_to_ofports() -> None:
    assert parse_dpif_show(text("dpif-show")) == DP_PORTS
    assert parse_dpif_show(text("np-dpif-show")) == NP_DP_PORTS
    assert LOCAL_OFPORT == 65534


def test_same_node_through_reg2() -> None:
    r = trace("same-node")
    assert len(r.passes) == 1 and r.passes[0].header == ""
    assert steps_of(r) == [
        (0, "ip", 100, CLUSTER_COOKIE, ["goto_table:20"], []),
        (20, "ip,in_port=4,nw_src=10.130.0.6", 100, NGINX_COOKIE,
         ["load:0->NXM_NX_REG0[]", "goto_table:21"], []),
        (21, "", 0, CLUSTER_COOKIE, ["goto_table:30"], []),
        (30, "ip,nw_dst=10.130.0.0/23", 200, CLUSTER_COOKIE, ["goto_table:70"], []),
        (70, "ip,nw_dst=10.130.0.5", 100, WEB_COOKIE,
         ["load:0->NXM_NX_REG1[]", "load:0x3->NXM_NX_REG2[]", "goto_table:80"], []),
        (80, "reg0=0", 200, CLUSTER_COOKIE, ["output:NXM_NX_REG2[]"],
         ["-> output port is 3"]),
    ]
    assert r.tables == [0, 20, 21, 30, 70, 80]
    assert all(s.depth == 0 and s.bridge == "br0" and s.pass_index == 0 for s in r.steps)
    assert r.step(0).rule == f"ip, priority 100, cookie {CLUSTER_COOKIE:#x}"
    assert r.passes[0].flow["ct_state"] == "trk" and r.passes[0].flow["tcp"] == ""
    assert r.passes[0].flow["in_port"] == "4" and r.passes[0].flow["nw_dst"] == "10.130.0.5"
    assert "reg2" not in r.passes[0].flow and r.field("reg2") == "0x3"
    assert r.passes[0].megaflow == \
        "recirc_id=0,eth,ip,in_port=4,nw_src=10.130.0.6,nw_dst=10.130.0.5,nw_frag=no"
    assert r.datapath_actions == str(WEB_DP_PORT)
    assert r.outputs == [TraceOutput(3, WEB_DP_PORT, "br0", {}, {})]
    assert r.output_ports() == [3] and r.of_output_ports() == [3]
    assert not r.dropped and r.tunnel == {}
    assert r.actions(70) == ["load:0->NXM_NX_REG1[]", "load:0x3->NXM_NX_REG2[]",
                             "goto_table:80"]


def test_to_another_node_through_the_tunnel() -> None:
    r = trace("to-node1")
    assert r.tables == [0, 20, 21, 30, 90]
    assert steps_of(r)[3:] == [
        (30, "ip,nw_dst=10.128.0.0/14", 100, CLUSTER_COOKIE, ["goto_table:90"], []),
        (90, "ip,nw_dst=10.131.0.0/23", 100, NODE1_COOKIE,
         ["move:NXM_NX_REG0[]->NXM_NX_TUN_ID[0..31]", "set_field:192.168.108.111->tun_dst",
          "output:1"],
         ["-> NXM_NX_TUN_ID[0..31] is now 0", "-> output to kernel tunnel"]),
    ]
    assert r.datapath_actions == ("set(tunnel(tun_id=0x0,src=192.168.108.112,"
                                  "dst=192.168.108.111,ttl=64,tp_dst=4789,flags(df|key))),4789")
    tunnel = {"tun_id": "0x0", "src": "192.168.108.112", "dst": "192.168.108.111",
              "ttl": "64", "tp_dst": "4789", "flags": "df|key"}
    # datapath port 4789 is every vxlan port's; the traced bridge's comes first
    assert r.outputs == [TraceOutput(1, 4789, "br0", tunnel, {})]
    assert r.output_ports() == [1] and r.of_output_ports() == [1] and r.tunnel == tunnel
    assert r.field("tun_dst") == "192.168.108.111" and r.field("tun_src") == "0.0.0.0"


def test_spoofed_source_dropped_in_table_20() -> None:
    r = trace("spoofed-source")
    assert steps_of(r) == [(0, "ip", 100, CLUSTER_COOKIE, ["goto_table:20"], []),
                           (20, "", 0, CLUSTER_COOKIE, ["drop"], [])]
    assert r.step(20).matched  # a priority-0 rule matched: not a table miss
    assert r.datapath_actions == "drop" and r.dropped
    assert r.outputs == [] and r.output_ports() == [] and r.of_output_ports() == []
    assert r.final_flow == r.passes[0].flow  # "Final flow: unchanged"
    assert r.field("nw_src") == "10.130.0.99"
    assert r.passes[0].megaflow == "recirc_id=0,eth,ip,in_port=4,nw_src=10.130.0.64/26,nw_frag=no"


def test_from_the_tunnel() -> None:
    r = trace("from-node1")
    assert r.tables == [0, 10, 30, 70, 80]
    assert steps_of(r)[:2] == [
        (0, "ip,in_port=1,nw_dst=10.128.0.0/14", 200, CLUSTER_COOKIE,
         ["move:NXM_NX_TUN_ID[0..31]->NXM_NX_REG0[]", "goto_table:10"],
         ["-> NXM_NX_REG0[] is now 0"]),
        (10, "tun_src=192.168.108.111", 100, NODE1_COOKIE, ["goto_table:30"], []),
    ]
    # the input named tun_id=0 and tun_src, yet OVS's "Flow:" line shows neither
    assert "tun_src" not in r.passes[0].flow and "tun_id" not in r.passes[0].flow
    assert r.outputs == [TraceOutput(3, WEB_DP_PORT, "br0", {}, {})]


def test_output_back_to_the_input_port_is_skipped() -> None:
    """kube-public's egress IP lives on infra: a tunnelled packet from node1 would go back
    out of vxlan0, its input port, which OpenFlow `output:1` never does."""
    r = trace("egress-via-infra")
    assert r.tables == [0, 10, 30, 100]
    assert r.passes[0].flow["tun_id"] == "0x82f8b2" and "tun_src" not in r.passes[0].flow
    assert r.step(0).notes == ["-> NXM_NX_REG0[] is now 0x82f8b2"]
    assert steps_of(r)[2:] == [
        (30, "ip", 0, CLUSTER_COOKIE, ["goto_table:100"], []),
        (100, "ip,reg0=0x82f8b2", 100, EGRESS_COOKIE,
         ["move:NXM_NX_REG0[]->NXM_NX_TUN_ID[0..31]", "set_field:192.168.108.113->tun_dst",
          "output:1"],
         ["-> NXM_NX_TUN_ID[0..31] is now 0x82f8b2", ">> skipping output to input port"]),
    ]
    assert r.of_output_ports() == [1]  # what the flow says ...
    assert r.dropped and r.output_ports() == [] and r.tunnel == {}  # ... and what happens
    assert r.field("reg0") == "0x82f8b2" and r.field("tun_dst") == "192.168.108.113"


def test_arp_for_the_gateway_goes_to_tun0() -> None:
    r = trace("arp-gateway")
    assert r.tables == [0, 20, 21, 30]
    assert r.step(20).match == \
        "arp,in_port=4,arp_spa=10.130.0.6,arp_sha=00:00:0a:82:00:06/00:00:ff:ff:ff:ff"
    assert steps_of(r)[3] == (30, "arp,arp_tpa=10.130.0.1", 300, CLUSTER_COOKIE,
                              ["output:2"], [])
    assert r.outputs == [TraceOutput(2, 1, "br0", {}, {})]  # tun0 is datapath port 1
    assert r.of_output_ports() == [2]
    assert r.final_flow == r.passes[0].flow and r.field("arp_tpa") == "10.130.0.1"
    assert r.field("arp") == ""


CLONE_NOTES = ["-> A clone of the packet is forked to recirculate. The forked pipeline will "
               "be resumed at table {}.",
               "-> Sets the packet to an untracked state, and clears all the conntrack fields."]


def test_conntrack_recirculations_are_passes() -> None:
    r = trace("np-new", NP_DP_PORTS)
    assert [p.header for p in r.passes] == [
        "",
        "recirc(0x1) - resume conntrack with default ct_state=trk|new (use --ct-next to "
        "customize)",
        "recirc(0x2) - resume conntrack with default ct_state=trk|new (use --ct-next to "
        "customize)"]
    first, second, third = r.passes
    assert [(s.table, s.match, s.priority, s.actions, s.notes) for s in first.steps] == [
        (0, "ct_state=-trk,ip", 300, ["ct(table=0)", "drop"],
         [n.format(0) for n in CLONE_NOTES])]
    assert "ct_state" not in first.flow and first.final_flow == first.flow
    assert first.datapath_actions == "ct,recirc(0x1)" and first.outputs == []

    assert second.flow["recirc_id"] == "0x1" and second.flow["ct_state"] == "new|trk"
    assert [s.table for s in second.steps] == [0, 20, 21]  # "thaw" lines are no step
    assert (second.steps[2].match, second.steps[2].priority, second.steps[2].actions,
            second.steps[2].notes) == ("ip,nw_dst=10.128.0.0/14", 200,
                                       ["ct(commit,table=30)", "drop"],
                                       [n.format(30) for n in CLONE_NOTES])
    assert "ct_state" not in second.final_flow and second.final_flow["recirc_id"] == "0x1"
    assert second.datapath_actions == "ct(commit),recirc(0x2)" and second.outputs == []

    assert [(s.table, s.match, s.priority, s.cookie, s.notes) for s in third.steps] == [
        (30, "ip,nw_dst=10.130.0.0/23", 200, CLUSTER_COOKIE, []),
        (70, "ip,nw_dst=10.130.0.5", 100, WEB_COOKIE, []),
        (80, "reg1=0", 50, POLICY_COOKIE, ["-> output port is 3"])]
    assert third.outputs == [TraceOutput(3, WEB_DP_PORT, "br0", {}, {})]

    assert r.tables == [0, 0, 20, 21, 30, 70, 80]
    assert [s.pass_index for s in r.steps] == [0, 1, 1, 1, 2, 2, 2]
    assert r.datapath_actions == str(WEB_DP_PORT) and r.output_ports() == [3]
    assert r.field("ct_state") == "new|trk" and r.field("reg2") == "0x3"
    assert r.step(0) is first.steps[0]  # the first lookup of table 0


def test_ct_next_states_show_in_headers_and_flows() -> None:
    r = trace("np-established", NP_DP_PORTS)
    assert [p.header for p in r.passes[1:]] == [
        "recirc(0x3) - resume conntrack with ct_state=est|trk",
        "recirc(0x4) - resume conntrack with ct_state=est|trk"]
    assert [p.flow["ct_state"] for p in r.passes[1:]] == ["est|trk", "est|trk"]
    assert r.tables == [0, 0, 20, 21, 30, 70, 80] and r.output_ports() == [3]
    assert r.field("ct_state") == "est|trk"


def test_a_missing_table_is_a_key_error_with_the_trace() -> None:
    r = trace("spoofed-source")
    with pytest.raises(KeyError, match="table 70 not visited; tables \\[0, 20\\]"):
        r.step(70)
    assert str(r) == r.raw == text("spoofed-source")


def test_unrecognised_text_is_refused() -> None:
    with pytest.raises(TraceParseError, match="unrecognised ofproto/trace output"):
        parse_trace("ovs-appctl: br9: unknown bridge\n")


def test_flow_fields_split_outside_brackets() -> None:
    assert split_top("set(tunnel(a=1,b=2)),4789") == ["set(tunnel(a=1,b=2))", "4789"]
    assert parse_flow_fields("ip,in_port=2,reg0=0x1") == {"ip": "", "in_port": "2",
                                                          "reg0": "0x1"}


# A hand-written trace for what the captures lack: resubmit nesting, a table miss, clone().
SAMPLE = """\
Flow: arp,in_port=3,vlan_tci=0x0000,dl_src=00:00:00:00:00:00,dl_dst=00:00:00:00:00:00

bridge("br-node2")
------------------
 0. arp,in_port=3, priority 200, cookie 0xabc
    resubmit(,21)
    21. arp, priority 100
            load:0x4->NXM_NX_REG2[]
            resubmit(,23)
        23. priority 100
            output:NXM_NX_REG2[]
             -> output port is 4
    resubmit(,22)
22. No match.
    drop

Final flow: arp,reg2=0x4,in_port=3,vlan_tci=0x0000
Megaflow: recirc_id=0,eth,arp,in_port=3
Datapath actions: set(eth(dst=0a:58:0a:80:00:01)),clone(set(skb_mark(0x1)),103),103
"""


def test_parse_trace_sample_without_ovs() -> None:
    r = parse_trace(SAMPLE, dp_ports={"br-node2": {103: 4}}, bridge="br-node2")
    assert r.tables == [0, 21, 23, 22]
    assert [s.depth for s in r.steps] == [0, 1, 2, 0]
    assert r.step(0).cookie == 0xabc and r.step(0).match == "arp,in_port=3"
    assert r.step(0).actions == ["resubmit(,21)", "resubmit(,22)"]
    assert r.step(23).match == "" and r.step(23).notes == ["-> output port is 4"]
    assert not r.step(22).matched and r.step(22).actions == ["drop"]
    assert r.output_ports() == [4, 4] and r.of_output_ports() == [4]
    assert r.outputs[0].sets == {"eth.dst": "0a:58:0a:80:00:01", "skb_mark": "0x1"}
    assert r.outputs[1].sets == {"eth.dst": "0a:58:0a:80:00:01"}
    assert r.field("reg2") == "0x4" and r.step(0).bridge == "br-node2"


def test_flow_dump_without_header_and_counters() -> None:
    assert normalize_flow_dump(text("dump-flows-table80")) == [
        f"cookie={CLUSTER_COOKIE:#x}, table=80, priority=300,ip,nw_src=10.130.0.1 "
        "actions=output:NXM_NX_REG2[]",
        f"cookie={CLUSTER_COOKIE:#x}, table=80, priority=200,reg0=0 "
        "actions=output:NXM_NX_REG2[]",
        f"cookie={CLUSTER_COOKIE:#x}, table=80, priority=200,reg1=0 "
        "actions=output:NXM_NX_REG2[]",
        f"cookie={CLUSTER_COOKIE:#x}, table=80, priority=0 actions=drop"]
    # OpenFlow 1.0 replies also carry ages
    assert normalize_flow_dump(
        "NXST_FLOW reply (xid=0x4):\n cookie=0x0, duration=5.2s, table=0, n_packets=3, "
        "n_bytes=180, idle_age=1, hard_age=4, priority=0 actions=drop\n") == [
        "cookie=0x0, table=0, priority=0 actions=drop"]
