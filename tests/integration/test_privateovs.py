"""The private-OVS plumbing against real Open vSwitch (dummy datapath, no kernel devices)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.ovs import ovscommands
from controller.ovs.nodebridge import add_node_bridge
from controller.ovs.ovscommands import OvsCommandError, OvsError, OvsNotInstalledError
from controller.ovs.pids import pid_alive
from controller.ovs.privateovs import PrivateOvs

# A miniature of the openshift-sdn pipeline, written by hand (not by the compiler):
# pod 10.130.0.6 on port 4 is in VNID 0, pod 10.130.0.5 on port 3 in VNID 0x82f8b2.
FLOWS = """\
table=0,priority=200,ip,in_port=1,actions=move:NXM_NX_TUN_ID[0..31]->NXM_NX_REG0[],goto_table:10
table=0,priority=100,ip,in_port=3,actions=load:0x82f8b2->NXM_NX_REG0[],goto_table:20
table=0,priority=100,ip,in_port=4,actions=load:0->NXM_NX_REG0[],goto_table:20
table=0,priority=0,actions=drop
cookie=0xda64d3ae,table=10,priority=100,tun_src=192.168.108.112,actions=goto_table:30
table=10,priority=0,actions=drop
table=20,priority=0,actions=goto_table:30
table=30,priority=100,ip,nw_dst=10.130.0.0/23,actions=goto_table:70
table=30,priority=100,ip,nw_dst=10.128.0.0/14,actions=goto_table:90
table=30,priority=0,ip,actions=goto_table:100
table=70,priority=100,ip,nw_dst=10.130.0.5,actions=load:3->NXM_NX_REG2[],goto_table:80
table=70,priority=100,ip,nw_dst=10.130.0.6,actions=load:4->NXM_NX_REG2[],goto_table:80
table=80,priority=200,actions=output:NXM_NX_REG2[]
cookie=0x67575db9,table=90,priority=100,ip,nw_dst=10.131.0.0/23,\
actions=move:NXM_NX_REG0[]->NXM_NX_TUN_ID[0..31],set_field:192.168.108.111->tun_dst,output:1
table=100,priority=100,ip,reg0=0x82f8b2,\
actions=set_field:0a:58:0a:82:00:01->eth_dst,set_field:0x82f8b2->pkt_mark,goto_table:101
table=100,priority=0,actions=goto_table:101
table=101,priority=0,actions=output:2
"""

PODS = {"veth92727375": 3, "vethd83c05d3": 4}


def _alive(pid: int) -> bool:
    return pid_alive(pid)


@pytest.fixture
def bridges(private_ovs: PrivateOvs) -> Iterator[list[str]]:
    """Bridge names a test creates in the session instance; deleted afterwards."""
    names: list[str] = []
    yield names
    for b in names:
        private_ovs.del_bridge(b)


def _node(ovs: PrivateOvs, bridges: list[str], name: str, dpid: int, host_ip: str):
    bridges.append(name)
    node = add_node_bridge(ovs, name, dpid, PODS, host_ip=host_ip)
    ovs.load_flows(name, FLOWS)
    return node


@pytest.mark.ovs
def test_start_stop_leaves_no_process_or_file(tmp_path: Path) -> None:
    inst_dir = tmp_path / "inst"  # does not exist: PrivateOvs creates it and removes it
    with PrivateOvs(inst_dir) as ovs:
        pids = ovs.pids
        assert set(pids) == {"ovsdb-server", "ovs-vswitchd"}
        assert all(_alive(p) for p in pids.values())
        assert (inst_dir / "db.sock").exists()
        add_node_bridge(ovs, "br-life", 7, {"p3": 3}, host_ip="192.168.108.77")
        assert "br-life" in ovs.vsctl("list-br").split()
    assert not any(_alive(p) for p in pids.values())
    assert not inst_dir.exists()

    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("not ours")
    ovs = PrivateOvs(existing).start()
    pids = ovs.pids
    ovs.stop()
    ovs.stop()  # idempotent
    assert not any(_alive(p) for p in pids.values())
    assert sorted(os.listdir(existing)) == ["keep.txt"]

    ovs = PrivateOvs().start()  # own temp directory
    own_dir, pids = ovs.dir, ovs.pids
    ovs.stop()
    assert own_dir is not None and not own_dir.exists()
    assert not any(_alive(p) for p in pids.values())


@pytest.mark.ovs
def test_missing_ovs_fails_with_install_hint(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(ovscommands, "_SBIN_DIRS", ())
    with pytest.raises(OvsNotInstalledError, match="apt-get install openvswitch-switch"):
        PrivateOvs(tmp_path / "x").start()


@pytest.mark.ovs
def test_two_node_bridges_with_same_pod_ports(private_ovs: PrivateOvs,
                                               bridges: list[str]) -> None:
    a = _node(private_ovs, bridges, "br-twin1", 0x1, "192.168.108.111")
    b = _node(private_ovs, bridges, "br-twin2", 0x2, "192.168.108.112")
    for node in (a, b):
        assert node.ofports == {"vxlan0": 1, "tun0": 2, **PODS}
        by_name = private_ovs.ofports(node.bridge)
        assert {n: by_name[node.port_names[n]] for n in node.ofports} == node.ofports
        assert private_ovs.vsctl("get", "interface", node.port_names["vxlan0"],
                                 "type").strip() == "vxlan"
        assert private_ovs.vsctl("get", "bridge", node.bridge, "fail_mode").strip() == "secure"
        show = private_ovs.ofctl(node.bridge, "show")
        assert f"dpid:{node.datapath_id:016x}" in show
    # Interface names are unique per instance: the second bridge gets prefixed names.
    assert set(a.port_names.values()) & set(b.port_names.values()) == set()
    assert b.port_names["vxlan0"] == "br-twin2-vxlan0"
    # Both bridges trace independently, though their vxlan ports share datapath port 4789.
    assert private_ovs.trace("br-twin1", "in_port=4,ip,nw_dst=10.131.0.4").tunnel["src"] == \
        "192.168.108.111"
    assert private_ovs.trace("br-twin2", "in_port=4,ip,nw_dst=10.131.0.4").tunnel["src"] == \
        "192.168.108.112"


@pytest.mark.ovs
def test_identical_tunnel_config_is_refused_with_hint(private_ovs: PrivateOvs,
                                                       bridges: list[str]) -> None:
    bridges += ["br-same1", "br-same2"]
    add_node_bridge(private_ovs, "br-same1", 0x11, {}, host_ip="192.168.108.150")
    with pytest.raises(OvsError, match="host_ip"):
        add_node_bridge(private_ovs, "br-same2", 0x12, {}, host_ip="192.168.108.150")
    assert "br-same2" not in private_ovs.vsctl("list-br").split()  # rolled back


@pytest.mark.ovs
def test_traces_of_hand_written_pipeline(private_ovs: PrivateOvs,
                                         bridges: list[str]) -> None:
    _node(private_ovs, bridges, "br-trace", 0x2, "192.168.108.112")
    t = private_ovs.trace

    # T1-like: same node, output through NXM_NX_REG2[].
    t1 = t("br-trace", "in_port=4,tcp,nw_src=10.130.0.6,nw_dst=10.130.0.5")
    assert t1.tables == [0, 20, 30, 70, 80], t1.raw
    assert t1.output_ports() == [3] and t1.of_output_ports() == [3]
    assert not t1.dropped
    assert t1.step(0).actions == ["load:0->NXM_NX_REG0[]", "goto_table:20"]
    assert t1.step(80).priority == 200 and t1.field("reg2") == "0x3"

    # T2-like: to another node over vxlan0, VNID 0.
    t2 = t("br-trace", "in_port=4,tcp,nw_src=10.130.0.6,nw_dst=10.131.0.4")
    assert t2.tables == [0, 20, 30, 90]
    assert t2.output_ports() == [1]
    assert t2.tunnel["tun_id"] == "0x0" and t2.tunnel["dst"] == "192.168.108.111"
    assert t2.step(90).cookie == 0x67575db9
    assert "set_field:192.168.108.111->tun_dst" in t2.actions(90)

    # T3-like: from the tunnel, VNID copied into reg0.
    t3 = t("br-trace", "in_port=1,tcp,tun_src=192.168.108.112,tun_id=0x82f8b2,"
                       "nw_dst=10.130.0.6")
    assert t3.tables == [0, 10, 30, 70, 80] and t3.output_ports() == [4]
    assert t3.step(10).cookie == 0xda64d3ae and t3.field("reg0") == "0x82f8b2"

    # T4-like: tunnel traffic from a non-node is dropped in table 10.
    t4 = t("br-trace", "in_port=1,tcp,tun_src=192.168.108.111,nw_dst=10.130.0.6")
    assert t4.tables == [0, 10] and t4.dropped and t4.datapath_actions == "drop"
    assert t4.step(10).priority == 0 and t4.output_ports() == []

    # T8-like: pkt_mark and eth_dst set, goto 101, output to tun0.
    t8 = t("br-trace", "in_port=3,tcp,nw_src=10.130.0.5,nw_dst=192.168.108.1")
    assert t8.tables == [0, 20, 30, 100, 101] and t8.output_ports() == [2]
    assert t8.field("pkt_mark") == "0x82f8b2" and t8.field("dl_dst") == "0a:58:0a:82:00:01"
    assert t8.outputs[0].sets == {"eth.dst": "0a:58:0a:82:00:01", "skb_mark": "0x82f8b2"}
    assert "goto_table:101" in t8.actions(100)

    # No match at all: table miss is a drop too.
    miss = t("br-trace", "in_port=2,arp")
    assert miss.tables == [0] and miss.dropped


@pytest.mark.ovs
def test_trace_follows_conntrack_recirculation(private_ovs: PrivateOvs,
                                               bridges: list[str]) -> None:
    bridges.append("br-ct")
    add_node_bridge(private_ovs, "br-ct", 0x3, PODS, host_ip="192.168.108.113")
    private_ovs.load_flows("br-ct", """\
table=0,priority=300,ip,ct_state=-trk,actions=ct(table=0)
table=0,priority=200,ip,ct_state=+trk+new,actions=resubmit(,21),ct(commit),output:3
table=0,priority=200,ip,ct_state=+trk+est,actions=output:4
table=21,priority=0,actions=load:1->NXM_NX_REG1[]
""")
    new = private_ovs.trace("br-ct", "in_port=2,tcp,nw_dst=10.130.0.5")
    assert len(new.passes) == 2 and new.tables == [0, 0, 21]
    assert new.passes[0].datapath_actions.startswith("ct")
    assert new.passes[0].outputs == [] and new.output_ports() == [3]
    assert new.step(21).depth == 1 and new.steps[1].pass_index == 1
    est = private_ovs.trace("br-ct", "in_port=2,tcp,nw_dst=10.130.0.5", ct_next="trk,est")
    assert est.output_ports() == [4]
    assert "ct_state=est|trk" in est.passes[1].header


@pytest.mark.ovs
def test_dump_flows_round_trip(private_ovs: PrivateOvs, bridges: list[str]) -> None:
    _node(private_ovs, bridges, "br-dump1", 0x21, "192.168.108.121")
    dumped = private_ovs.dump_flows("br-dump1")
    assert len(dumped) == len(FLOWS.replace("\\\n", "").splitlines())
    assert not any(w in f for f in dumped for w in ("n_packets", "duration", "n_bytes"))
    assert "cookie=0x67575db9, table=90, priority=100,ip,nw_dst=10.131.0.0/23 actions=" \
        "move:NXM_NX_REG0[]->NXM_NX_TUN_ID[0..31],set_field:192.168.108.111->tun_dst," \
        "output:1" in dumped
    private_ovs.trace("br-dump1", "in_port=4,ip,nw_dst=10.130.0.5")  # counters don't leak in
    bridges.append("br-dump2")
    add_node_bridge(private_ovs, "br-dump2", 0x22, PODS, host_ip="192.168.108.122")
    private_ovs.load_flows("br-dump2", "\n".join(dumped) + "\n")
    assert set(private_ovs.dump_flows("br-dump2")) == set(private_ovs.dump_flows("br-dump1"))
    assert private_ovs.dump_flows("br-dump2", table=80) == [
        "cookie=0x0, table=80, priority=200 actions=output:NXM_NX_REG2[]"]


@pytest.mark.ovs
def test_failing_commands_raise_with_stderr(private_ovs: PrivateOvs,
                                            bridges: list[str]) -> None:
    bridges.append("br-err")
    add_node_bridge(private_ovs, "br-err", 0x31, {}, host_ip="192.168.108.131")
    with pytest.raises(OvsCommandError) as err:
        private_ovs.load_flows("br-err", "table=0,priority=1,actions=no_such_action:1\n")
    assert err.value.returncode != 0
    assert "add-flows" in err.value.argv and "-O" in err.value.argv
    assert "no_such_action" in err.value.stderr
    assert "no_such_action" in str(err.value)
    assert private_ovs.dump_flows("br-err") == []  # the bundle added nothing
    with pytest.raises(OvsCommandError, match="no bridge named br-none"):
        private_ovs.vsctl("br-to-vlan", "br-none")
    with pytest.raises(OvsCommandError):
        private_ovs.trace("br-err", "in_port=1,nonsense_field=3")
