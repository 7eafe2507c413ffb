"""The node's host side (`controller.hostside`): expected rules written from the 3.11 sources
(pipeline spec §1, §7, §9; `iptables.go`, `sdn_controller.go`, `egressip.go`) and
kube-proxy 1.11's iptables mode, not captured from the code's output."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from controller.hostside import (
    MAX_CHAIN_NAME,
    HostPlan,
    UnknownHost,
    apply_host,
    plan_host,
    port_proto_hash,
    sep_chain,
    svc_chain,
)
from tests.support.builders import netns, node, pod, seed
from topology.errors import OsdnError
from topology.load import TopologyError, load_topology
from topology.model import (
    ClusterNetworkEntry,
    NetNamespace,
    Plugin,
    Service,
    ServicePort,
    Topology,
)

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed-cluster"
RICH = Path(__file__).resolve().parents[2] / "examples" / "rich-cluster"

TOMCAT_SVC = "KUBE-SVC-" + port_proto_hash("default/tomcat-service:", "tcp")
TOMCAT_SEP = "KUBE-SEP-" + port_proto_hash("default/tomcat-service:", "tcp10.131.0.4:8080")

FILTER_SEED = [
    "*filter",
    ":OPENSHIFT-FIREWALL-ALLOW - [0:0]",
    ":OPENSHIFT-FIREWALL-FORWARD - [0:0]",
    ":KUBE-SERVICES - [0:0]",
    '-A OPENSHIFT-FIREWALL-ALLOW -p udp --dport 4789 -m comment --comment "VXLAN incoming" '
    "-j ACCEPT",
    '-A OPENSHIFT-FIREWALL-ALLOW -i tun0 -m comment --comment "from SDN to localhost" -j ACCEPT',
    '-A OPENSHIFT-FIREWALL-ALLOW -i docker0 -m comment --comment "from docker to localhost" '
    "-j ACCEPT",
]
FORWARD_SEED = [
    '-A OPENSHIFT-FIREWALL-FORWARD -s 10.128.0.0/14 -m comment --comment "attempted resend '
    'after connection close" -m conntrack --ctstate INVALID -j DROP',
    '-A OPENSHIFT-FIREWALL-FORWARD -d 10.128.0.0/14 -m comment --comment "forward traffic '
    'from SDN" -j ACCEPT',
    '-A OPENSHIFT-FIREWALL-FORWARD -s 10.128.0.0/14 -m comment --comment "forward traffic '
    'to SDN" -j ACCEPT',
    "COMMIT",
]
NAT_CHAINS_SEED = [
    "*nat",
    ":OPENSHIFT-MASQUERADE - [0:0]",
    ":KUBE-SERVICES - [0:0]",
    ":KUBE-POSTROUTING - [0:0]",
    ":KUBE-MARK-MASQ - [0:0]",
    f":{TOMCAT_SVC} - [0:0]",
    f":{TOMCAT_SEP} - [0:0]",
]
MASQUERADE_ALL = ('-A OPENSHIFT-MASQUERADE -s 10.128.0.0/14 -m comment --comment "masquerade '
                  'pod-to-service and pod-to-external traffic" -j MASQUERADE')
KUBE_SEED = [
    '-A KUBE-SERVICES -m comment --comment "default/tomcat-service: cluster IP" -m tcp -p tcp '
    f"-d 172.30.161.148/32 --dport 8080 -j {TOMCAT_SVC}",
    '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" '
    "-m mark --mark 0x00000001/0x00000001 -j MASQUERADE",
    "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x00000001/0x00000001",
    f"-A {TOMCAT_SVC} -m comment --comment default/tomcat-service: -j {TOMCAT_SEP}",
    f"-A {TOMCAT_SEP} -m comment --comment default/tomcat-service: -s 10.131.0.4/32 "
    "-j KUBE-MARK-MASQ",
    f"-A {TOMCAT_SEP} -m comment --comment default/tomcat-service: -m tcp -p tcp "
    "-j DNAT --to-destination 10.131.0.4:8080",
    "COMMIT",
]


@pytest.fixture(scope="module")
def seed_cluster() -> Topology:
    return load_topology([SEED])


def lines(plan: HostPlan) -> list[str]:
    return plan.iptables_restore.splitlines()


def test_kube_proxy_chain_names_match_kube_proxys_hash() -> None:
    # the well-known chain of the `kubernetes` service, seen on every Kubernetes node
    assert port_proto_hash("default/kubernetes:https", "tcp") == "NPX46M4PTMTKRN6Y"
    assert TOMCAT_SVC == "KUBE-SVC-WEARAPTIMCF45GQ3"


def test_infra_egress_node_by_mark(seed_cluster: Topology) -> None:
    plan = plan_host(seed_cluster, "infra.ocp.cn", uplink="eth0")
    assert plan.ip_commands == [
        ["ip", "link", "set", "tun0", "mtu", "1450", "up"],
        ["ip", "addr", "replace", "10.129.0.1/23", "dev", "tun0"],
        ["ip", "route", "replace", "10.128.0.0/14", "dev", "tun0", "scope", "link"],
        ["ip", "route", "replace", "172.30.0.0/16", "dev", "tun0", "scope", "global"],
        ["ip", "route", "flush", "exact", "10.129.0.0/23", "dev", "tun0", "proto", "kernel"],
        ["ip", "addr", "replace", "192.168.108.200/24", "dev", "eth0"],
    ]
    assert plan.sysctls == {"net.ipv4.ip_forward": "1"}
    assert plan.egress_ips == [IPv4Address("192.168.108.200")]
    assert plan.warnings == []
    assert lines(plan) == [
        *FILTER_SEED,
        "-A OPENSHIFT-FIREWALL-ALLOW -d 192.168.108.200 -m conntrack --ctstate NEW -j REJECT",
        *FORWARD_SEED,
        *NAT_CHAINS_SEED,
        # kube-public: VNID 8583346 = 0x82f8b2, even: the mark is the VNID (bit 0 clear)
        "-A OPENSHIFT-MASQUERADE -s 10.128.0.0/14 -m mark --mark 0x0082f8b2 -j SNAT "
        "--to-source 192.168.108.200",
        MASQUERADE_ALL,
        *KUBE_SEED,
    ]


def test_infra_egress_node_by_pod_source(seed_cluster: Topology) -> None:
    plan = plan_host(seed_cluster, "infra.ocp.cn", uplink="br-phy", uplink_prefix=24,
                     egress_by_mark=False)
    assert plan.ip_commands[-1] == ["ip", "addr", "replace", "192.168.108.200/24",
                                    "dev", "br-phy"]
    nat = lines(plan)[lines(plan).index("*nat"):]
    # kube-public's only pod runs on master: its traffic reaches infra through VXLAN
    assert [line for line in nat if line.startswith("-A OPENSHIFT-MASQUERADE")] == [
        "-A OPENSHIFT-MASQUERADE -s 10.128.0.56/32 -o br-phy -j SNAT --to-source "
        "192.168.108.200",
        MASQUERADE_ALL,
    ]
    by_mark = plan_host(seed_cluster, "infra.ocp.cn", uplink="br-phy")
    assert plan.iptables_restore.replace(
        "-s 10.128.0.56/32 -o br-phy -j SNAT",
        "-s 10.128.0.0/14 -m mark --mark 0x0082f8b2 -j SNAT") == by_mark.iptables_restore


def test_node1_no_egress_ip_and_every_service(seed_cluster: Topology) -> None:
    plan = plan_host(seed_cluster, "node1.ocp.cn", uplink="eth0")
    assert plan.ip_commands == [
        ["ip", "link", "set", "tun0", "mtu", "1450", "up"],
        ["ip", "addr", "replace", "10.131.0.1/23", "dev", "tun0"],
        ["ip", "route", "replace", "10.128.0.0/14", "dev", "tun0", "scope", "link"],
        ["ip", "route", "replace", "172.30.0.0/16", "dev", "tun0", "scope", "global"],
        ["ip", "route", "flush", "exact", "10.131.0.0/23", "dev", "tun0", "proto", "kernel"],
    ]
    assert plan.egress_ips == []
    assert lines(plan) == [*FILTER_SEED, *FORWARD_SEED, *NAT_CHAINS_SEED, MASQUERADE_ALL,
                           *KUBE_SEED]
    # kube-proxy writes every Service on every node: node2 only differs in tun0
    node2 = plan_host(seed_cluster, "node2.ocp.cn", uplink="eth0")
    assert node2.iptables_restore == plan.iptables_restore


def test_jumps_from_built_in_chains(seed_cluster: Topology) -> None:
    plan = plan_host(seed_cluster, "node1.ocp.cn", uplink="eth0", tun0="tun9")
    assert [(j.table, j.chain, " ".join(j.rule)) for j in plan.jumps] == [
        ("filter", "INPUT", "-m comment --comment firewall overrides -j OPENSHIFT-FIREWALL-ALLOW"),
        ("filter", "FORWARD", "-m conntrack --ctstate NEW -m comment --comment kubernetes "
                              "service portals -j KUBE-SERVICES"),
        ("filter", "FORWARD", "-i tun9 ! -o tun9 -m comment --comment administrator overrides "
                              "-j OPENSHIFT-ADMIN-OUTPUT-RULES"),
        ("filter", "FORWARD", "-m comment --comment firewall overrides "
                              "-j OPENSHIFT-FIREWALL-FORWARD"),
        ("filter", "OUTPUT", "-m conntrack --ctstate NEW -m comment --comment kubernetes "
                             "service portals -j KUBE-SERVICES"),
        ("nat", "PREROUTING", "-m comment --comment kubernetes service portals -j KUBE-SERVICES"),
        ("nat", "OUTPUT", "-m comment --comment kubernetes service portals -j KUBE-SERVICES"),
        ("nat", "POSTROUTING", "-m comment --comment kubernetes postrouting rules "
                               "-j KUBE-POSTROUTING"),
        ("nat", "POSTROUTING", "-m comment --comment rules for masquerading OpenShift traffic "
                               "-j OPENSHIFT-MASQUERADE"),
    ]
    assert plan.ensure_chains == [("filter", "OPENSHIFT-ADMIN-OUTPUT-RULES")]
    assert "OPENSHIFT-ADMIN-OUTPUT-RULES" not in plan.iptables_restore  # the admin's: kept


def test_networkpolicy_masquerade_2(seed_cluster: Topology) -> None:
    topology = load_topology([SEED], Plugin.NETWORKPOLICY)
    plan = plan_host(topology, "infra.ocp.cn", uplink="eth0")
    nat = lines(plan)[lines(plan).index("*nat"):]
    assert nat[:3] == ["*nat", ":OPENSHIFT-MASQUERADE - [0:0]", ":OPENSHIFT-MASQUERADE-2 - [0:0]"]
    assert [line for line in nat if line.startswith("-A OPENSHIFT-MASQUERADE")] == [
        "-A OPENSHIFT-MASQUERADE -s 10.128.0.0/14 -m mark --mark 0x0082f8b2 -j SNAT "
        "--to-source 192.168.108.200",
        '-A OPENSHIFT-MASQUERADE -s 10.128.0.0/14 -m comment --comment "masquerade '
        'pod-to-external traffic" -j OPENSHIFT-MASQUERADE-2',
        '-A OPENSHIFT-MASQUERADE-2 -d 10.128.0.0/14 -m comment --comment "masquerade '
        'pod-to-external traffic" -j RETURN',
        "-A OPENSHIFT-MASQUERADE-2 -j MASQUERADE",
    ]
    # subnet and multitenant (non-conntrack) have no MASQUERADE-2
    assert "MASQUERADE-2" not in plan_host(seed_cluster, "infra.ocp.cn",
                                           uplink="eth0").iptables_restore


def test_subnet_plugin_has_no_egress_ips() -> None:
    topology = load_topology([SEED], Plugin.SUBNET)
    plan = plan_host(topology, "infra.ocp.cn", uplink="eth0")
    assert plan.egress_ips == []
    assert "192.168.108.200" not in plan.iptables_restore
    assert not any("192.168.108.200/24" in argv for argv in plan.ip_commands)


def test_service_with_two_endpoints_and_three() -> None:
    web = Service("default", "web", "uid-web", IPv4Address("172.30.0.10"),
                  (ServicePort("TCP", 80, "http", 8080), ServicePort("UDP", 53, "dns"),
                   ServicePort("SCTP", 9, "sctp")), (("app", "web"),))
    pods = (pod("default", "web-b", "node2", "10.130.0.9", 5, app="web"),
            pod("default", "web-a", "node1", "10.131.0.7", 5, app="web"),
            pod("other", "web-x", "node1", "10.131.0.8", 6, app="web"))  # other namespace
    topology = seed(services=(web,), pods=pods)
    rules = lines(plan_host(topology, "node1", uplink="eth0"))
    http, dns = ServicePort("TCP", 80, "http", 8080), ServicePort("UDP", 53, "dns")
    svc = svc_chain(web, http)
    sep_a, sep_b = sep_chain(web, http, "10.130.0.9:8080"), sep_chain(web, http, "10.131.0.7:8080")
    assert svc == "KUBE-SVC-" + port_proto_hash("default/web:http", "tcp")
    assert sep_a == "KUBE-SEP-" + port_proto_hash("default/web:http", "tcp10.130.0.9:8080")
    # endpoints in address order; the first one has 1/2, the last takes the rest (the input
    # is written chain by chain)
    assert [line for line in rules if line.startswith(("-A KUBE-SVC-", "-A KUBE-SEP-"))
            and "default/web:http" in line] == [
        f"-A {svc} -m comment --comment default/web:http -m statistic --mode random "
        f"--probability 0.50000 -j {sep_a}",
        f"-A {svc} -m comment --comment default/web:http -j {sep_b}",
        f"-A {sep_a} -m comment --comment default/web:http -s 10.130.0.9/32 -j KUBE-MARK-MASQ",
        f"-A {sep_a} -m comment --comment default/web:http -m tcp -p tcp -j DNAT "
        "--to-destination 10.130.0.9:8080",
        f"-A {sep_b} -m comment --comment default/web:http -s 10.131.0.7/32 -j KUBE-MARK-MASQ",
        f"-A {sep_b} -m comment --comment default/web:http -m tcp -p tcp -j DNAT "
        "--to-destination 10.131.0.7:8080",
    ]
    assert ('-A KUBE-SERVICES -m comment --comment "default/web:dns cluster IP" -m udp -p udp '
            f"-d 172.30.0.10/32 --dport 53 -j {svc_chain(web, dns)}") in rules
    assert "--to-destination 10.131.0.7:53" in "\n".join(rules)  # no targetPort: the port
    assert "--dport 9 " not in "\n".join(rules)  # SCTP: not in 3.11's kube-proxy

    three = seed(services=(web,), pods=(*pods, pod("default", "web-c", "master", "10.128.0.9",
                                                    7, app="web")))
    probabilities = [line.split("--probability ")[1].split()[0]
                     for line in lines(plan_host(three, "node1", uplink="eth0"))
                     if line.startswith(f"-A {svc} ") and "--probability" in line]
    assert probabilities == ["0.33333", "0.50000"]


def test_service_without_endpoints_is_rejected() -> None:
    lonely = Service("default", "lonely", "uid-l", IPv4Address("172.30.0.20"),
                     (ServicePort("TCP", 80),), (("app", "nobody"),))
    headless = Service("default", "headless", "uid-h", None, (ServicePort("TCP", 80),),
                       (("app", "web"),))
    plan = plan_host(seed(services=(lonely, headless)), "node1", uplink="eth0")
    assert [line for line in lines(plan) if line.startswith("-A KUBE-SERVICES")] == [
        '-A KUBE-SERVICES -m comment --comment "default/lonely: has no endpoints" -m tcp '
        "-p tcp -d 172.30.0.20/32 --dport 80 -j REJECT"]
    assert "KUBE-SVC-" not in plan.iptables_restore


def test_named_target_port() -> None:
    docs = Service("default", "docs", "uid-d", IPv4Address("172.30.0.30"),
                   (ServicePort("TCP", 80, "http", "http"),), (("app", "docs"),))
    pods = (pod("default", "docs-1", "node1", "10.131.0.20", 8, app="docs"),
            pod("default", "docs-2", "node1", "10.131.0.21", 9, app="docs"))
    topology = seed(services=(docs,), pods=pods)
    # without container ports: the service port, with a warning
    plan = plan_host(topology, "node1", uplink="eth0")
    assert "--to-destination 10.131.0.20:80" in plan.iptables_restore
    assert plan.warnings == ["Service/default/docs: named targetPort 'http' cannot be resolved "
                             "(no container ports); using port 80"]
    # with a resolver: per pod; a pod without that port is no endpoint
    ports = {"docs-1": 8080}
    plan = plan_host(topology, "node1", uplink="eth0",
                     named_port=lambda p, proto, name: ports.get(p.name))
    assert "--to-destination 10.131.0.20:8080" in plan.iptables_restore
    assert "10.131.0.21" not in plan.iptables_restore
    assert plan.warnings == []


def test_mark_avoids_the_masquerade_bit_and_cidrs_are_prepended() -> None:
    odd = netns("kube-public", 0x82F8B3, ("192.168.108.200",))
    topology = seed(net_namespaces=(netns("default", 0), odd))
    two = replace(topology.cluster_network, networks=(
        *topology.cluster_network.networks, ClusterNetworkEntry(IPv4Network("10.0.0.0/16"), 8)))
    topology = replace(topology, cluster_network=two)
    plan = plan_host(topology, "infra", uplink="eth0")
    assert [line for line in lines(plan) if "-j SNAT" in line] == [
        # (V | 0x01000000) ^ 1; AddEgressIPRules prepends per CIDR: the last one first
        "-A OPENSHIFT-MASQUERADE -s 10.0.0.0/16 -m mark --mark 0x0182f8b2 -j SNAT "
        "--to-source 192.168.108.200",
        "-A OPENSHIFT-MASQUERADE -s 10.128.0.0/14 -m mark --mark 0x0182f8b2 -j SNAT "
        "--to-source 192.168.108.200",
    ]
    # kube-proxy's mark with bit 14: 0x82f8b3 has it, so (V | 0x01000000) ^ 0x4000
    plan = plan_host(topology, "infra", uplink="eth0", masquerade_bit=14)
    assert "--set-xmark 0x00004000/0x00004000" in plan.iptables_restore
    assert "--mark 0x0182b8b3 -j SNAT" in plan.iptables_restore
    assert plan.ip_commands[2:4] == [
        ["ip", "route", "replace", "10.128.0.0/14", "dev", "tun0", "scope", "link"],
        ["ip", "route", "replace", "10.0.0.0/16", "dev", "tun0", "scope", "link"]]


def test_pod_source_snat_covers_joined_namespaces_on_every_node() -> None:
    spaces = (netns("default", 0), netns("kube-public", 0x82F8B2, ("192.168.108.200",)),
              netns("joined", 0x82F8B2), netns("kube-system", 272037))
    pods = (pod("kube-public", "a", "master", "10.128.0.56", 4),
            pod("joined", "b", "infra", "10.129.0.9", 3),
            pod("kube-system", "c", "infra", "10.129.0.10", 4))
    plan = plan_host(seed(net_namespaces=spaces, pods=pods), "infra", uplink="br-phy",
                     egress_by_mark=False)
    assert [line for line in lines(plan) if "-j SNAT" in line] == [
        "-A OPENSHIFT-MASQUERADE -s 10.128.0.56/32 -o br-phy -j SNAT --to-source 192.168.108.200",
        "-A OPENSHIFT-MASQUERADE -s 10.129.0.9/32 -o br-phy -j SNAT --to-source 192.168.108.200",
    ]


def test_joined_namespaces_listing_one_egress_ip_claim_it_once() -> None:
    # 3.11 keeps one egress-IP list per VNID: the same IP in two joined namespaces is one
    # claim (the VNID's), so the egress node claims it
    spaces = (netns("default", 0), netns("kube-public", 0x82F8B2, ("192.168.108.200",)),
              netns("joined", 0x82F8B2, ("192.168.108.200",)))
    plan = plan_host(seed(net_namespaces=spaces), "infra", uplink="eth0")
    assert plan.egress_ips == [IPv4Address("192.168.108.200")]


def test_egress_ips_3_11_does_not_claim() -> None:
    # claimed by two namespaces: inactive, nobody claims it
    spaces: tuple[NetNamespace, ...] = (
        netns("default", 0), netns("kube-public", 0x82F8B2, ("192.168.108.200",)),
        netns("kube-system", 272037, ("192.168.108.200",)))
    plan = plan_host(seed(net_namespaces=spaces), "infra", uplink="eth0")
    assert plan.egress_ips == [] and "192.168.108.200" not in plan.iptables_restore
    # two IPs of one namespace on the same node: both inactive
    nodes = (node("infra", "192.168.108.113", "10.129.0.0/23",
                  ("192.168.108.200", "192.168.108.201")),
             node("node1", "192.168.108.111", "10.131.0.0/23"))
    spaces = (netns("default", 0),
              netns("kube-public", 0x82F8B2, ("192.168.108.200", "192.168.108.201")))
    plan = plan_host(seed(host_subnets=nodes, net_namespaces=spaces), "infra", uplink="eth0")
    assert plan.egress_ips == []
    # outside the uplink network: refused, as assignEgressIP does
    plan = plan_host(seed(), "infra", uplink="eth0", uplink_prefix=28)
    assert plan.egress_ips == [] and "-j SNAT" not in plan.iptables_restore
    assert plan.warnings == ["egress IP 192.168.108.200 is not in the uplink network "
                             "192.168.108.112/28; not claimed (as 3.11)"]


def test_failover_candidate_is_claimed_but_not_used_by_source() -> None:
    nodes = (node("infra", "192.168.108.113", "10.129.0.0/23", ("192.168.108.200",)),
             node("node1", "192.168.108.111", "10.131.0.0/23", ("192.168.108.201",)))
    spaces = (netns("default", 0),
              netns("kube-public", 0x82F8B2, ("192.168.108.200", "192.168.108.201")))
    topology = seed(host_subnets=nodes, net_namespaces=spaces)
    by_mark = plan_host(topology, "node1", uplink="eth0")
    assert by_mark.egress_ips == [IPv4Address("192.168.108.201")]
    assert "--mark 0x0082f8b2 -j SNAT --to-source 192.168.108.201" in by_mark.iptables_restore
    by_source = plan_host(topology, "node1", uplink="eth0", egress_by_mark=False)
    assert by_source.egress_ips == [IPv4Address("192.168.108.201")]  # address and REJECT
    assert "-j SNAT" not in by_source.iptables_restore  # kube-public leaves through infra


def test_chain_names_fit_iptables(seed_cluster: Topology) -> None:
    for topology in (seed_cluster, load_topology([RICH])):
        for hs in topology.host_subnets:
            plan = plan_host(topology, hs.host, uplink="eth0")
            names = [name for chains in plan.chains.values() for name in chains]
            assert names and all(len(name) <= MAX_CHAIN_NAME for name in names)
            assert len(names) == len(set(plan.chains["nat"])) + len(set(plan.chains["filter"]))


def test_unknown_host(seed_cluster: Topology) -> None:
    with pytest.raises(KeyError):
        plan_host(seed_cluster, "nowhere", uplink="eth0")
    with pytest.raises(UnknownHost, match="nowhere") as raised:
        plan_host(seed_cluster, "nowhere", uplink="eth0")
    assert isinstance(raised.value, OsdnError)


class FakeHost:
    """Runners keeping the state the probes look at: existing chains and jump rules."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []
        self.restores: list[str] = []
        self.chains: set[tuple[str, str]] = set()
        self.rules: dict[tuple[str, str], list[tuple[str, ...]]] = {}
        self.saved = ""

    def run(self, argv: list[str]) -> None:
        self.commands.append(argv)
        if argv[0] != "iptables":
            return
        table, op, chain, rest = argv[2], argv[3], argv[4], tuple(argv[5:])
        rules = self.rules.setdefault((table, chain), [])
        if op == "-S" and (table, chain) not in self.chains:
            raise RuntimeError("No chain/target/match by that name")
        if op == "-N":
            self.chains.add((table, chain))
        if op == "-C" and rest not in rules:
            raise RuntimeError("Bad rule")
        if op == "-I":
            rules.insert(int(rest[0]) - 1, rest[1:])

    def restore(self, text: str) -> None:
        self.restores.append(text)


def test_apply_host_order_and_idempotence(seed_cluster: Topology) -> None:
    plan = plan_host(seed_cluster, "infra.ocp.cn", uplink="eth0")
    host = FakeHost()
    apply_host(plan, host.run, iptables_restore=host.restore)
    assert host.commands[0] == ["sysctl", "-w", "net.ipv4.ip_forward=1"]
    assert host.commands[1:7] == plan.ip_commands
    assert host.restores == [plan.iptables_restore]
    assert host.commands[7:9] == [
        ["iptables", "-t", "filter", "-S", "OPENSHIFT-ADMIN-OUTPUT-RULES"],
        ["iptables", "-t", "filter", "-N", "OPENSHIFT-ADMIN-OUTPUT-RULES"]]
    assert host.rules[("filter", "FORWARD")] == [j.rule for j in plan.jumps[1:4]]
    assert host.rules[("nat", "POSTROUTING")] == [j.rule for j in plan.jumps[7:9]]
    before = {key: list(rules) for key, rules in host.rules.items()}
    count = len(host.commands)
    apply_host(plan, host.run, iptables_restore=host.restore)
    assert host.rules == before  # no duplicate jump
    assert not any(argv[3] in ("-N", "-I") for argv in host.commands[count:]
                   if argv[0] == "iptables")


def test_apply_host_deletes_stale_kube_chains(seed_cluster: Topology) -> None:
    plan = plan_host(seed_cluster, "infra.ocp.cn", uplink="eth0")
    saved = "\n".join(["*filter", ":KUBE-SEP-NOTNAT - [0:0]", "COMMIT", "*nat",
                       ":KUBE-SERVICES - [0:0]", f":{TOMCAT_SVC} - [0:0]",
                       ":KUBE-SVC-GONEGONEGONEGONE - [0:0]", ":KUBE-SEP-GONE - [0:0]",
                       ":OTHER - [0:0]", "COMMIT"])
    host = FakeHost()
    apply_host(plan, host.run, iptables_restore=host.restore, iptables_save=lambda: saved)
    assert host.restores[1:] == ["*nat\n:KUBE-SVC-GONEGONEGONEGONE - [0:0]\n"
                                 ":KUBE-SEP-GONE - [0:0]\n-X KUBE-SVC-GONEGONEGONEGONE\n"
                                 "-X KUBE-SEP-GONE\nCOMMIT\n"]


# --- the loader's targetPort (model.ServicePort.target_port) -----------------------------------


def _service_yaml(tmp_path: Path, ports: str) -> Path:
    (tmp_path / "cn.yaml").write_text(
        "apiVersion: network.openshift.io/v1\nkind: ClusterNetwork\nmetadata: {name: default}\n"
        "clusterNetworks: [{CIDR: 10.128.0.0/14, hostSubnetLength: 9}]\n"
        "serviceNetwork: 172.30.0.0/16\npluginName: redhat/openshift-ovs-subnet\n")
    (tmp_path / "svc.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: default}\n"
        f"spec:\n  clusterIP: 172.30.0.5\n  ports:\n{ports}")
    return tmp_path


def test_loader_reads_target_port(tmp_path: Path) -> None:
    path = _service_yaml(tmp_path, "  - {port: 80, targetPort: 8080}\n"
                                   "  - {port: 81, targetPort: 81}\n"
                                   "  - {port: 82}\n"
                                   "  - {port: 83, targetPort: web-http}\n")
    (svc,) = load_topology([path], cache=None).services
    assert [p.target_port for p in svc.ports] == [8080, None, None, "web-http"]


@pytest.mark.parametrize("value", ["0", "70000", "'8080'", "Http", "-web", "a--b",
                                   "abcdefghijklmnop", "[1]"])
def test_loader_rejects_bad_target_ports(tmp_path: Path, value: str) -> None:
    path = _service_yaml(tmp_path, f"  - {{port: 80, targetPort: {value}}}\n")
    with pytest.raises(TopologyError) as error:
        load_topology([path], cache=None)
    assert "spec.ports[0].targetPort" in str(error.value)


def test_named_target_port_without_container_ports_falls_back_with_a_warning() -> None:
    svc = Service("default", "named", "uid-named", IPv4Address("172.30.0.30"),
                  (ServicePort("TCP", 80, "http", "http"),), (("app", "tomcat"),))
    plan = plan_host(seed(services=(svc,)), "node1", uplink="eth0")
    assert list(plan.warnings) == ["Service/default/named: named targetPort 'http' cannot be "
                                   "resolved (no container ports); using port 80"]
    assert "--to-destination 10.131.0.4:80" in plan.iptables_restore


def test_named_target_ports_resolve_through_container_ports() -> None:
    """frontend/web's targetPort 'http' is the pods' containerPort 8080, not port 80."""
    topology = load_topology([RICH])
    plan = plan_host(topology, "node-a", uplink="br-phy")
    web = [line for line in plan.iptables_restore.splitlines()
           if "frontend/web:http " in line and "DNAT" in line]
    assert web and all(line.endswith(":8080") for line in web), web
    assert not plan.warnings
