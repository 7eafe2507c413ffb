"""`osdn diff`: a saved node dump against the render (controller.drift, controller.ovs.flowdump).

The fixture (data/drift/node2-multitenant.dump, see the README beside it) is real OVS output
of the seed's node2 with one stale pod's flows added and one flow removed by hand; the test
expects exactly those, grouped by their objects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from controller.cli import main
from controller.compiler import Settings, compile_node
from controller.drift import UNKNOWN, compare, port_names
from controller.ovs.flowdump import DumpError, flow_key, parse_flow_dump
from topology.load import load_topology
from topology.model import Plugin

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "examples" / "seed-cluster"
DUMP = Path(__file__).parent / "data" / "drift" / "node2-multitenant.dump"
NODE = "node2.ocp.cn"
TOMCAT = "Pod default/tomcat-nginx-6cf8c89cd7-lw4zd"
STALE = f"{UNKNOWN}: nothing in the topology has ip 10.130.0.7"


@pytest.fixture(scope="module")
def seed():
    return load_topology([str(SEED)], plugin=Plugin.MULTITENANT)


def drift_of(topology, text: str, source: str = "dump"):
    rendered = compile_node(topology, NODE, Settings(resolver=lambda name: ()))
    return compare(topology, rendered, parse_flow_dump(text, source,
                                                       port_names(topology, NODE)))


def test_fixture_shows_the_stale_pod_and_the_missing_flow(seed) -> None:
    drift = drift_of(seed, DUMP.read_text())
    assert list(drift.missing) == [TOMCAT]
    [missing] = drift.missing[TOMCAT]
    assert missing.text.startswith("table=70, priority=100, ip, nw_dst=10.130.0.6,")
    assert list(drift.extra) == [STALE]
    assert [(d.line, d.text.split(" actions=")[0]) for d in drift.extra[STALE]] == [
        (19, "table=20, priority=100,arp,in_port=5,arp_spa=10.130.0.7,"
             "arp_sha=00:00:0a:82:00:07/00:00:ff:ff:ff:ff"),
        (22, "table=20, priority=100,ip,in_port=5,nw_src=10.130.0.7"),
        (38, "table=40, priority=100,arp,arp_tpa=10.130.0.7"),
        (49, "table=70, priority=100,ip,nw_dst=10.130.0.7"),
    ]
    assert drift.changed == {}
    assert (drift.rendered, drift.dumped) == (65, 68)


def test_cli_text_json_and_exit_codes(seed, capsys) -> None:
    args = [str(SEED), "--plugin", "multitenant", "--node", NODE, str(DUMP)]
    assert main(["diff", *args]) == 1
    out = capsys.readouterr().out
    assert out.startswith("node2.ocp.cn: 1 missing, 4 extra, 0 changed")
    assert f"\n  {TOMCAT}\n" in out and f"\n  {STALE}\n" in out
    assert main(["diff", *args, "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert [g["object"] for g in data["missing"]] == [TOMCAT]
    assert [g["object"] for g in data["extra"]] == [STALE]
    assert [f["line"] for f in data["extra"][0]["flows"]] == [19, 22, 38, 49]
    assert data["same"] is False


def test_the_render_compares_equal_to_itself_as_ovs_prints_it(seed, capsys) -> None:
    """The fixture without the planted lines is the render as OVS printed it."""
    lines = DUMP.read_text().splitlines()
    clean = [line for line in lines if "10.130.0.7" not in line]
    rendered = compile_node(seed, NODE, Settings(resolver=lambda name: ()))
    missing = next(f for f in rendered.flows
                   if f.table == 70 and "10.130.0.6" in f.match.to_ofctl())
    clean.append(missing.to_ofctl())  # the render's own spelling mixed in
    drift = drift_of(seed, "\n".join(clean))
    assert drift.same, drift.to_text()
    assert drift.to_text().startswith("node2.ocp.cn: no drift")


@pytest.mark.parametrize("render, dump", [
    ("table=80, priority=100, reg0=8583346, reg1=8583346, actions=output:NXM_NX_REG2[]",
     "cookie=0x0, duration=1.5s, table=80, n_packets=3, n_bytes=9, idle_age=4, "
     "priority=100,reg1=0x82f8b2,reg0=0x82f8b2 actions=output:NXM_NX_REG2[]"),
    ("table=100, priority=200, tcp, nw_dst=192.168.108.112, tcp_dst=53, actions=output:2",
     "table=100, priority=200,ip,nw_proto=6,nw_dst=192.168.108.112/32,tp_dst=53 "
     "actions=output:2"),
    ("table=60, priority=100, ip, nw_dst=172.30.161.148, ip_frag=later, "
     "actions=load:0->NXM_NX_REG1[],load:2->NXM_NX_REG2[],goto_table:80",
     "table=60, priority=100,ip,nw_dst=172.30.161.148,nw_frag=later "
     "actions=set_field:0->reg1,set_field:0x2->reg2,goto_table:80"),
    ("cookie=0xd50b47c03adb4a28, table=253, priority=32768, actions=note:01.07",
     "table=253, actions=note:01.07.00.00.00.00"),
    ("table=0, priority=0, actions=drop", "priority=0 actions=drop"),
    ("table=40, priority=100, arp, arp_tpa=10.130.0.5, actions=output:3",
     "table=40, priority=100,arp,arp_tpa=10.130.0.5 actions=output:veth92727375"),
    ("table=0, priority=200, in_port=1, ip, nw_dst=10.128.0.0/14, "
     "actions=move:NXM_NX_TUN_ID[0..31]->NXM_NX_REG0[],goto_table:10",
     "table=0, priority=200,ip,in_port=vxlan0,nw_dst=10.128.0.0/255.252.0.0 "
     "actions=move:tun_id[0..31]->reg0,goto_table:10"),
    ("table=21, priority=200, ip, nw_dst=10.128.0.0/14, ct_state=+trk-new, "
     "actions=ct(commit,nat,table=30)",
     "table=21, send_flow_rem priority=200,ct_state=-new+trk,ip,nw_dst=10.128.0.0/14 "
     "actions=ct(commit,table=30,nat)"),
])
def test_one_flow_in_two_spellings(seed, render: str, dump: str) -> None:
    ports = port_names(seed, NODE)
    assert flow_key(render, ports) == flow_key(dump, ports)


@pytest.mark.parametrize("a, b", [
    ("table=80, priority=100, reg0=1, actions=drop", "table=80, priority=100, reg0=2, "
                                                     "actions=drop"),
    ("table=80, priority=100, actions=output:2", "table=80, priority=101, actions=output:2"),
    ("table=80, priority=100, actions=output:2", "table=81, priority=100, actions=output:2"),
    ("table=30, priority=1, actions=output:2,goto_table:40",
     "table=30, priority=1, actions=goto_table:40,output:2"),
    ("table=0, priority=1, ip, actions=drop", "table=0, priority=1, tcp, actions=drop"),
])
def test_different_flows_stay_different(a: str, b: str) -> None:
    assert flow_key(a) != flow_key(b)


def test_changed_actions_and_extra_flows_by_what_they_name(seed) -> None:
    lines = DUMP.read_text().splitlines()
    lines = [line for line in lines if "10.130.0.7" not in line]
    lines = [line.replace("set_field:192.168.108.111->tun_dst", "set_field:192.168.108.99->tun_dst")
             if "table=90" in line else line for line in lines]
    lines += [
        "cookie=0x0, table=60, priority=100,tcp,nw_dst=172.30.161.148,tp_dst=9090 "
        "actions=load:0->NXM_NX_REG1[],load:0x2->NXM_NX_REG2[],goto_table:80",
        "cookie=0x0, table=10, priority=100,tun_src=192.168.108.120 actions=goto_table:30",
        "cookie=0x0, table=80, priority=100,reg0=0x82f8b2,reg1=0x82f8b2 "
        "actions=output:NXM_NX_REG2[]",
        "cookie=0x0, table=80, priority=100,reg0=0x777,reg1=0x777 actions=output:NXM_NX_REG2[]",
    ]
    drift = drift_of(seed, "\n".join(lines))
    assert list(drift.changed) == ["HostSubnet node1.ocp.cn"]
    [(render, node)] = drift.changed["HostSubnet node1.ocp.cn"]
    assert "192.168.108.111->tun_dst" in render.text and "192.168.108.99" in node.text
    assert sorted(drift.extra) == sorted([
        "Service default/tomcat-service",
        f"{UNKNOWN}: nothing in the topology has ip 192.168.108.120",
        "NetNamespace kube-public (VNID 0x82f8b2)",
        f"{UNKNOWN}: nothing in the topology has vnid 0x777",
    ])
    assert list(drift.missing) == [TOMCAT]


def test_bad_lines_are_named_by_file_and_line_all_at_once(seed) -> None:
    text = DUMP.read_text().splitlines()
    text[5] = " cookie=0x0, table=0, priority=200,ip,in_port=2 goto_table:30"
    text[9] = " cookie=0x0, table=x, priority=100,ip actions=drop"
    text[12] = " cookie=0x0, table=10, priority=100,frobnicate actions=drop"
    text[14] = " cookie=0x0, table=20, priority=100,in_port=veth00000000 actions=drop"
    text[16] = " cookie=0x0, table=20, priority=100 actions=goto_table:21  (dump line 19)"
    with pytest.raises(DumpError) as caught:
        parse_flow_dump("\n".join(text), "saved.txt", port_names(seed, NODE))
    problems = caught.value.problems
    assert [p.split(": ")[0] for p in problems] == [
        "saved.txt:6", "saved.txt:10", "saved.txt:13", "saved.txt:15", "saved.txt:17"]
    assert "no 'actions='" in problems[0]
    assert "table=x" in problems[1]
    assert "unknown keyword 'frobnicate'" in problems[2]
    assert "port name 'veth00000000'" in problems[3] and "--no-names" in problems[3]
    assert "actions=goto_table:21  (dump line 19): invalid literal" in problems[4]


def test_cli_errors_exit_2_with_precise_messages(tmp_path, capsys) -> None:
    yaml = SEED / "pods.yaml"
    assert main(["diff", str(SEED), "--node", NODE, str(yaml)]) == 2
    err = capsys.readouterr().err
    assert f"{yaml}: not `ovs-ofctl -O OpenFlow13 dump-flows br0` output: no flows in it " \
        "(line 1 is not a flow)" in err
    assert err.count("\n") == 2  # one message for the file, then the count
    text = DUMP.read_text().splitlines()[:3] + ["some notes", "about the node"] * 3
    mostly_prose = tmp_path / "notes.txt"
    mostly_prose.write_text("\n".join(text))
    assert main(["diff", str(SEED), "--node", NODE, str(mostly_prose)]) == 2
    assert f"{mostly_prose}: not `ovs-ofctl -O OpenFlow13 dump-flows br0` output: 6 of 8 " \
        "lines are not flows (line 4 is not a flow)" in capsys.readouterr().err
    assert main(["diff", str(SEED), "--node", "node9.ocp.cn", str(DUMP)]) == 2
    assert "--node: no HostSubnet with host 'node9.ocp.cn'" in capsys.readouterr().err
    assert main(["diff", str(SEED), "--node", NODE, str(tmp_path / "nope")]) == 2
    assert f"{tmp_path / 'nope'}: [Errno 2]" in capsys.readouterr().err
    empty = tmp_path / "empty.dump"
    empty.write_text("OFPST_FLOW reply (OF1.3) (xid=0x2):\n")
    assert main(["diff", str(SEED), "--node", NODE, str(empty)]) == 2
    assert f"{empty}: not `ovs-ofctl" in capsys.readouterr().err


def test_dump_from_stdin(monkeypatch, capsys) -> None:
    import io
    monkeypatch.setattr("sys.stdin", io.StringIO(DUMP.read_text()))
    assert main(["diff", str(SEED), "--node", NODE, "-"]) == 1
    assert "(dump line 19)" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO("nonsense\n"))
    assert main(["diff", str(SEED), "--node", NODE, "-"]) == 2
    assert "<stdin>: not `ovs-ofctl" in capsys.readouterr().err
