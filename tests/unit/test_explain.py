"""`controller.explain` without OVS: SRC/DST parsing, cookie -> object and register names,
table meanings, and whole explanations replayed from `ofproto/trace` output captured on a
real OVS (tests/unit/data/explain/, see capture.py there).

The expected names and sentences are written from the example clusters' objects (seed: the
reference traces T1-T8; rich: its namespaces, VNIDs, policies) and reviewed, not copied
from explain's output.
"""

from __future__ import annotations

import json
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from controller.compiler import Settings
from controller.explain import (
    EndpointError,
    Explanation,
    ObjectNames,
    explain,
    explain_flow,
    parse_endpoint,
)
from controller.explain.result import Hop, Step
from controller.ovs.trace import TraceResult, parse_dpif_show, parse_trace
from controller.pipeline.cookies import Owner, OwnerKind
from controller.pipeline.tables import MEANING, Table, meaning
from topology.load import load_topology
from topology.model import PLUGIN_NAMES, Topology

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data" / "explain"
SEED = REPO / "examples" / "seed-cluster"
RICH = REPO / "examples" / "rich-cluster"
NGINX = "default/tomcat-nginx-6cf8c89cd7-lw4zd"


@pytest.fixture(scope="module")
def seed() -> Topology:
    return load_topology([SEED])


def rich(plugin: str) -> Topology:
    return load_topology([RICH], plugin=PLUGIN_NAMES[plugin])


# ------------------------------------------------------------------ endpoints

def test_pod_service_node_external_and_ip(seed: Topology) -> None:
    pod = parse_endpoint(seed, "default/web-76c94f7546-t8pfq")
    assert (pod.kind, str(pod.ip), pod.pod and pod.pod.node) == \
        ("pod", "10.130.0.5", "node2.ocp.cn")
    svc = parse_endpoint(seed, "svc/default/tomcat-service")
    assert (svc.kind, str(svc.ip), svc.port, svc.protocol) == \
        ("service", "172.30.161.148", 8080, "tcp")
    assert parse_endpoint(seed, "svc/default/tomcat-service:8080/tcp").port == 8080
    node = parse_endpoint(seed, "infra.ocp.cn")
    assert (node.kind, str(node.ip)) == ("node", "192.168.108.113")
    outside = parse_endpoint(seed, "external:192.168.108.1:443/tcp")
    assert (outside.kind, str(outside.ip), outside.port, outside.protocol) == \
        ("external", "192.168.108.1", 443, "tcp")
    assert parse_endpoint(seed, "external").ip == IPv4Address("203.0.113.10")
    assert parse_endpoint(seed, "external/icmp").protocol == "icmp"


def test_an_address_is_named_after_its_owner(seed: Topology) -> None:
    assert parse_endpoint(seed, "10.131.0.4:8080").pod is not None
    assert parse_endpoint(seed, "10.131.0.4:8080").port == 8080
    assert parse_endpoint(seed, "192.168.108.110").kind == "node"
    assert parse_endpoint(seed, "172.30.161.148").kind == "service"
    other = parse_endpoint(seed, "10.9.0.99/udp")
    assert (other.kind, other.protocol, other.label) == ("ip", "udp", "address 10.9.0.99")


def test_labels(seed: Topology) -> None:
    assert parse_endpoint(seed, "svc/default/tomcat-service").label == \
        "Service default/tomcat-service (172.30.161.148:8080)"
    assert parse_endpoint(seed, NGINX).label == f"Pod {NGINX} (10.130.0.6)"
    assert parse_endpoint(seed, "node1.ocp.cn").label == "node node1.ocp.cn (192.168.108.111)"


def test_rich_named_service_port() -> None:
    topology = rich("multitenant")
    web = parse_endpoint(topology, "svc/frontend/web:443")
    assert web.port == 443
    memcached = parse_endpoint(topology, "svc/shared/memcached/udp")
    assert (memcached.port, memcached.protocol) == (11211, "udp")


@pytest.mark.parametrize("text, message", [
    ("default/tomcat", "'default/tomcat': no pod default/tomcat; did you mean "
                       "default/tomcat-7f646bb995-b8bhr"),
    ("svc/default/tomcat", "'svc/default/tomcat': no Service default/tomcat; did you mean "
                           "svc/default/tomcat-service"),
    ("svc/default/tomcat-service:9090", "Service default/tomcat-service has no port 9090 "
                                        "(ports: 8080/TCP)"),
    ("node9.ocp.cn", "'node9.ocp.cn': not a node (hosts: infra.ocp.cn, master.ocp.cn, "
                     "node1.ocp.cn, node2.ocp.cn)"),
    ("svc/tomcat", "a Service is svc/NAMESPACE/NAME[:PORT]"),
    ("external:nowhere", "'nowhere' is not an IPv4 address"),
    ("10.130.0.5:99999", "port '99999' is not a number 1..65535"),
])
def test_unknown_names_list_close_matches(seed: Topology, text: str, message: str) -> None:
    with pytest.raises(EndpointError) as caught:
        parse_endpoint(seed, text)
    assert message in str(caught.value)


def test_both_ends_reported_at_once(seed: Topology) -> None:
    with pytest.raises(EndpointError) as caught:
        explain(seed, "default/nginx", "svc/default/nope", tracer=None)  # type: ignore[arg-type]
    text = str(caught.value)
    assert text.startswith("SRC 'default/nginx': no pod") and "; DST 'svc/default/nope'" in text


def test_a_service_is_no_source(seed: Topology) -> None:
    with pytest.raises(EndpointError, match="SRC must be a pod or a node"):
        explain(seed, "svc/default/tomcat-service", NGINX, tracer=None)  # type: ignore[arg-type]


# ------------------------------------------------------------------ names

def test_cookies_name_their_objects(seed: Topology) -> None:
    names = ObjectNames(seed)
    cases = {
        Owner(OwnerKind.POD, "default/web-76c94f7546-t8pfq"):
            "Pod default/web-76c94f7546-t8pfq (10.130.0.5)",
        Owner(OwnerKind.HOST_SUBNET, "node1.ocp.cn"):
            "HostSubnet node1.ocp.cn (10.131.0.0/23 on 192.168.108.111)",
        Owner(OwnerKind.EGRESS_IP, "kube-public"):
            "NetNamespace kube-public (VNID 0x82f8b2) egress IPs 192.168.108.200",
        Owner(OwnerKind.VNID, str(0x82f8b2)): "NetNamespace kube-public (VNID 0x82f8b2)",
        Owner(OwnerKind.SERVICE, "default/tomcat-service"):
            "Service default/tomcat-service (172.30.161.148)",
        Owner(OwnerKind.STATIC, "setup"): "static flows (the node's br0 setup)",
    }
    for owner, text in cases.items():
        assert names.describe_cookie(owner.cookie) == text
        assert names.owner(owner.cookie) == owner
    assert names.describe_cookie(0) == "openshift-sdn flow (cookie 0: no owner recorded)"
    stranger = Owner(OwnerKind.POD, "default/gone").cookie
    assert names.describe_cookie(stranger) == \
        f"POD object not in this topology (cookie 0x{stranger:016x})"


def test_policy_and_firewall_cookies() -> None:
    names = ObjectNames(rich("networkpolicy"))
    assert names.describe_cookie(Owner(OwnerKind.NETWORK_POLICY,
                                       "backend/deny-all").cookie) == \
        "NetworkPolicy backend/deny-all"
    frontend = 6167367
    assert names.describe_cookie(Owner(OwnerKind.EGRESS_FIREWALL, str(frontend)).cookie) == \
        "EgressNetworkPolicy frontend/default"
    assert names.describe_cookie(Owner(OwnerKind.POLICY_NAMESPACE, "backend").cookie) == \
        "NetworkPolicy isolation of namespace backend"
    # under ovs-multitenant analytics joins backend's VNID: one owner names both namespaces
    joined = ObjectNames(rich("multitenant"))
    assert joined.describe_cookie(Owner(OwnerKind.POLICY_NAMESPACE,
                                        "analytics,backend").cookie) == \
        "NetworkPolicy isolation of namespaces analytics, backend"
    assert joined.register("node-a", "reg1", 12820696) == \
        "reg1 = 12820696 = 0xc3a0d8 (namespaces analytics, backend)"


def test_registers_are_named(seed: Topology) -> None:
    names = ObjectNames(seed)
    assert names.register("node2.ocp.cn", "reg0", 0) == "reg0 = 0 (namespace default)"
    assert names.register("master.ocp.cn", "reg0", 0x82f8b2) == \
        "reg0 = 8583346 = 0x82f8b2 (namespace kube-public)"
    assert names.register("node2.ocp.cn", "reg1", 7) == "reg1 = 7 (VNID 0x7 (no NetNamespace))"
    assert names.register("node2.ocp.cn", "reg2", 3) == \
        "reg2 = 3 (port of Pod default/web-76c94f7546-t8pfq)"
    assert names.register("node2.ocp.cn", "reg2", 2) == "reg2 = 2 (tun0)"
    assert names.register("node2.ocp.cn", "reg2", 1) == "reg2 = 1 (vxlan0)"


def test_every_table_has_a_meaning() -> None:
    assert set(MEANING) == set(Table)
    assert meaning(20) == "20 pod ingress: source checked, source VNID loaded"
    assert meaning(7) == "7 (not an openshift-sdn table)"


# ------------------------------------------------------------------ replayed walks

class Replay:
    """Answers each trace with the captured OVS output for the same node and flow."""

    def __init__(self, case: str) -> None:
        self.calls = json.loads((DATA / f"{case}.json").read_text())
        self.asked: list[tuple[str, str]] = []

    def trace(self, host: str, flow_spec: str) -> TraceResult:
        self.asked.append((host, flow_spec))
        for call in self.calls:
            if (call["host"], call["flow"]) == (host, flow_spec):
                return parse_trace(call["trace"], parse_dpif_show(call["dpif"]),
                                   call["bridge"])
        raise AssertionError(f"no captured trace for {host}: {flow_spec}")


def replay(case: str, topology: Topology, src: str, dst: str) -> Explanation:
    tracer = Replay(case)
    result = explain(topology, src, dst, tracer, Settings(resolver=lambda name: ()))
    assert len(tracer.asked) == len(tracer.calls)  # the walk asked for exactly these
    return result


def test_t1_sentence_and_steps(seed: Topology) -> None:
    e = replay("seed-t1", seed, NGINX, "default/web-76c94f7546-t8pfq")
    assert e.verdict == "delivered"
    assert e.sentence == \
        "delivered to Pod default/web-76c94f7546-t8pfq (10.130.0.5) on node2.ocp.cn"
    assert e.path() == [("node2.ocp.cn", t) for t in (0, 20, 21, 30, 70, 80)]
    assert e.hops[0].outcome == \
        "output to port 3 (port of Pod default/web-76c94f7546-t8pfq)"


def test_t2_t3_registers_across_the_tunnel(seed: Topology) -> None:
    e = replay("seed-t2-t3", seed, NGINX, "default/tomcat-7f646bb995-b8bhr")
    node1 = e.hops[1]
    assert node1.input.startswith("in_port=1,tun_id=0x0,tun_src=192.168.108.112,tcp,")
    table0 = node1.steps[0]
    assert (table0.table, table0.registers) == (0, ["reg0 = 0 (namespace default)"])
    assert e.sentence == ("delivered to Pod default/tomcat-7f646bb995-b8bhr (10.131.0.4) on "
                          "node1.ocp.cn, through VXLAN")


def test_t4_drop_sentence(seed: Topology) -> None:
    tracer = Replay("seed-t4")
    e = explain_flow(seed, "node1.ocp.cn", tracer.calls[0]["flow"], tracer)
    assert (e.verdict, e.drop_node, e.drop_table) == ("dropped", "node1.ocp.cn", 10)
    assert e.sentence == (
        "dropped on node1.ocp.cn at table 10 (VXLAN ingress: tunnel source must be a node): "
        "table 10: 192.168.108.111 is node1.ocp.cn's own address; a node accepts VXLAN "
        "only from the other nodes")


def test_t6_dnat_is_followed(seed: Topology) -> None:
    e = replay("seed-t6", seed, NGINX, "svc/default/tomcat-service")
    host = e.hops[1]
    assert host.kind == "host" and host.node == "node2.ocp.cn"
    assert [s.meaning.split("-")[0] for s in host.steps] == \
        ["nat KUBE", "nat KUBE", "nat OPENSHIFT"]
    assert host.steps[1].flow == "-j DNAT --to-destination 10.131.0.4:8080"
    assert host.steps[1].object == "Pod default/tomcat-7f646bb995-b8bhr (10.131.0.4)"
    # ovs-multitenant masquerades pod-to-service traffic: back into br0 from tun0's address
    assert e.hops[2].input.startswith("in_port=2,tcp,")
    assert "nw_src=10.130.0.1,nw_dst=10.131.0.4,tcp_dst=8080" in e.hops[2].input
    assert e.delivered_to is not None and e.delivered_to.node == "node1.ocp.cn"


def test_t7_t8_egress_sentence(seed: Topology) -> None:
    e = replay("seed-t7-t8", seed, "kube-public/tomcat-nginx-6cf8c89cd7-6hhmf",
               "external:192.168.108.1")
    assert e.verdict == "left the cluster"
    assert e.sentence == (
        "left the cluster from infra.ocp.cn to 192.168.108.1, SNAT to egress IP "
        "192.168.108.200 by mark 0x82f8b2 (NetNamespace kube-public (VNID 0x82f8b2))")
    infra0 = e.hops[1].steps[0]
    assert infra0.registers == ["reg0 = 8583346 = 0x82f8b2 (namespace kube-public)"]


def test_multitenant_isolation_sentence() -> None:
    e = replay("rich-mt-isolated", rich("multitenant"), "frontend/web-6d9b7f5c48-k7tqz",
               "db/postgres-0:5432")
    assert e.sentence == (
        "dropped on node-b at table 80 (ingress isolation: VNIDs or NetworkPolicy, then "
        "output): namespace db (VNID 357619) is isolated from frontend (VNID 6167367) under "
        "ovs-multitenant")


def test_networkpolicy_denial_sentence() -> None:
    e = replay("rich-np-denied", rich("networkpolicy"), "analytics/reports-6b8d5c7f94-hx7rv",
               "backend/api-58c4f7d9b6-zr4m9:8080")
    assert (e.drop_node, e.drop_table) == ("node-a", 80)
    # ovs-networkpolicy does not join analytics to backend: each keeps its own VNID
    assert e.reason == (
        "no NetworkPolicy in backend admits traffic from analytics (10.64.2.14) to tcp/8080; "
        "policies that select the destination: backend/deny-all, "
        "backend/allow-frontend-to-api")
    assert any("new connection" in n for n in e.notes)
    assert any(s.pass_index > 0 for s in e.hops[0].steps)  # conntrack recirculations


def test_egress_firewall_sentence() -> None:
    e = replay("rich-mt-enp", rich("multitenant"), "frontend/web-6d9b7f5c48-k7tqz",
               "external:8.8.8.8:53/udp")
    assert (e.drop_node, e.drop_table) == ("node-c", 101)
    assert e.reason == \
        "EgressNetworkPolicy frontend/default denies 8.8.8.8 (rule Deny to 0.0.0.0/0)"


def test_text_and_json_render_the_same_explanation() -> None:
    step = Step(20, meaning(20), "ip,in_port=4,nw_src=10.130.0.6, priority 100, cookie 0x1",
                ["load:0->NXM_NX_REG0[]", "goto_table:21"], 1, "Pod default/a (10.130.0.6)",
                ["reg0 = 0 (namespace default)"])
    e = Explanation({"label": "Pod default/a (10.130.0.6)"},
                    {"label": "Pod default/b (10.130.0.5)", "protocol": "tcp"},
                    "redhat/openshift-ovs-multitenant", "dropped", "dropped on n at table 20",
                    [Hop("n", "br0", "in_port=4,tcp", [step], "dropped")], "why", "n", 20)
    text = e.text()
    assert "table 20 pod ingress: source checked, source VNID loaded" in text
    assert "object: Pod default/a (10.130.0.6)" in text
    assert "sets:   reg0 = 0 (namespace default)" in text
    assert text.rstrip().endswith("Verdict: dropped: dropped on n at table 20")
    data = e.to_json()
    assert data["path"] == [["n", 20]]
    assert data["hops"][0]["steps"][0]["cookie"] == "0x1"
    assert json.loads(json.dumps(data)) == data
