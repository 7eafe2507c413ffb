"""NodeCompiler (incremental, by owner) against compile_node (the reference) on random changes.

After every change — objects added, removed and modified in every kind, VNIDs changed, ports
moved — the incremental result must be exactly what a full compile of the new topology gives:
the same flows with the same owners (and so cookies), the same warnings, and, as bytes, the
same desired set; and `take_dirty` must name every key whose flow changed.
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest

from bench.generate import generate, write
from controller.compiler import Settings, compile_node
from controller.compiler.diff import changed_objects
from controller.compiler.incremental import NodeCompiler
from controller.openflow.wire import Encoded, encode, encode_flow
from tests.golden.update import CLUSTERS
from topology.load import load_topology
from topology.model import (
    EgressNetworkPolicy,
    EgressRule,
    HostSubnet,
    IngressRule,
    LabelSelector,
    Namespace,
    NetNamespace,
    NetworkPolicy,
    Plugin,
    Pod,
    PolicyPeer,
    PolicyPort,
    Service,
    ServicePort,
    Topology,
)

NO_DNS = Settings(resolver=lambda name: ())


def check_equal(compiler: NodeCompiler[Encoded], topology: Topology, node: str,
                ports: dict[str, int] | None, previous: dict | None = None) -> dict:
    reference = compile_node(topology, node, NO_DNS, port_numbers=ports)
    mine = compiler.node_flows()
    assert [(f, f.owner) for f in mine.flows] == [(f, f.owner) for f in reference.flows]
    assert Counter(mine.warnings) == Counter(reference.warnings)
    wanted = {}
    for flow in reference.flows:
        encoded = encode(flow)
        wanted[encoded.key] = (encoded.flow_mod, encoded.cookie)
    have = {key: (e.flow_mod, e.cookie) for key, e in compiler.desired.items()}
    assert have == wanted
    assert compiler.table_counts == dict(Counter(key[0] for key in wanted))
    dirty = compiler.take_dirty()
    if previous is not None:
        changed = {k for k in previous.keys() | wanted.keys() if previous.get(k) != wanted.get(k)}
        assert changed <= dirty
    return wanted


# ------------------------------------------------------------------ random changes

class Mutator:
    """Random valid-enough changes to a topology (what the compiler reads, not validation)."""

    def __init__(self, topology: Topology, node: str, seed: int) -> None:
        self.t = topology
        self.node = node
        self.rng = random.Random(seed)
        self.serial = 0
        self.ports: dict[str, int] | None = None

    def _name(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}-{self.serial}"

    def _replace(self, **fields: Any) -> None:
        self.t = dataclasses.replace(self.t, **fields)

    def _free_pod_ip(self, hs: HostSubnet) -> IPv4Address:
        used = {pod.ip for pod in self.t.pods}
        for host in hs.subnet.hosts():
            if host != hs.gateway and host not in used:
                return host
        raise AssertionError("subnet full")

    def _namespaces(self) -> list[str]:
        return [nn.name for nn in self.t.net_namespaces] or ["default"]

    def add_pod(self) -> None:
        hs = self.rng.choice([h for h in self.t.host_subnets if h.host == self.node]
                             + list(self.t.host_subnets))
        ofports = {p.ofport for p in self.t.pods if p.node == hs.host}
        ofport = next(n for n in range(3, 60000) if n not in ofports)
        name = self._name("pod")
        pod = Pod(self.rng.choice(self._namespaces()), name, name, hs.host, self._free_pod_ip(hs),
                  (("app", self.rng.choice(["web", "db", "api"])),), f"v{self.serial:x}", ofport)
        pods = list(self.t.pods)
        pods.insert(self.rng.randrange(len(pods) + 1), pod)
        self._replace(pods=tuple(pods))

    def remove_pod(self) -> None:
        if self.t.pods:
            pods = list(self.t.pods)
            local = [i for i, p in enumerate(pods) if p.node == self.node]
            del pods[self.rng.choice(local or range(len(pods)))]
            self._replace(pods=tuple(pods))

    def relabel_pod(self) -> None:
        if self.t.pods:
            pods = list(self.t.pods)
            i = self.rng.randrange(len(pods))
            pods[i] = dataclasses.replace(pods[i], labels=(("app", self.rng.choice(
                ["web", "db", "api", "other"])),))
            self._replace(pods=tuple(pods))

    def move_port(self) -> None:
        local = [p for p in self.t.pods if p.node == self.node and p.interface]
        if self.ports is None:
            self.ports = {p.interface: p.ofport for p in local if p.interface and p.ofport}
        if local:
            pod = self.rng.choice(local)
            assert pod.interface is not None  # `local` holds pods with an interface
            if self.rng.random() < 0.3:
                self.ports.pop(pod.interface, None)
            else:
                used = set(self.ports.values())
                self.ports[pod.interface] = next(n for n in range(3, 60000) if n not in used)

    def add_service(self) -> None:
        used = {s.cluster_ip for s in self.t.services}
        net = self.t.cluster_network.service_network
        ip = next(h for h in net.hosts() if h not in used)
        name = self._name("svc")
        ports = tuple(ServicePort(self.rng.choice(["TCP", "UDP", "SCTP"]), 1000 + n)
                      for n in range(self.rng.randint(1, 3)))
        svc = Service(self.rng.choice(self._namespaces()), name, name, ip, ports)
        self._replace(services=self.t.services + (svc,))

    def remove_service(self) -> None:
        if self.t.services:
            services = list(self.t.services)
            del services[self.rng.randrange(len(services))]
            self._replace(services=tuple(services))

    def add_node(self) -> None:
        subnets = [hs.subnet for hs in self.t.host_subnets]
        entry = self.t.cluster_network.networks[0]
        length = 32 - entry.host_subnet_length
        subnet = next(s for s in entry.cidr.subnets(new_prefix=length)
                      if not any(s.overlaps(o) for o in subnets))
        ips = {hs.host_ip for hs in self.t.host_subnets}
        host_ip = next(IPv4Address(f"192.168.{200 + n // 250}.{n % 250 + 1}")
                       for n in range(10000) if IPv4Address(f"192.168.{200 + n // 250}."
                                                            f"{n % 250 + 1}") not in ips)
        name = self._name("node")
        if self.rng.random() < 0.2:  # a hostIP 3.11 refuses: other nodes ignore the node
            host_ip = self.t.cluster_network.service_network[-2 - self.serial]
        hs = HostSubnet(name, name, name, host_ip, subnet, int(host_ip))
        self._replace(host_subnets=self.t.host_subnets + (hs,))

    def remove_node(self) -> None:
        others = [hs for hs in self.t.host_subnets if hs.host != self.node]
        if len(others) > 1:
            gone = self.rng.choice(others)
            self._replace(host_subnets=tuple(hs for hs in self.t.host_subnets if hs is not gone),
                          pods=tuple(p for p in self.t.pods if p.node != gone.host))

    def egress_ip(self) -> None:
        hs_list = list(self.t.host_subnets)
        nns = list(self.t.net_namespaces)
        if not nns:
            return
        ip = IPv4Address(f"192.168.250.{self.rng.randint(1, 20)}")
        i, j = self.rng.randrange(len(hs_list)), self.rng.randrange(len(nns))
        hs_list[i] = dataclasses.replace(hs_list[i], egress_ips=(ip,))
        nns[j] = dataclasses.replace(nns[j], egress_ips=(ip,))
        self._replace(host_subnets=tuple(hs_list), net_namespaces=tuple(nns))

    def join_namespace(self) -> None:
        nns = list(self.t.net_namespaces)
        if len(nns) > 1:
            i, j = self.rng.sample(range(len(nns)), 2)
            nns[i] = dataclasses.replace(nns[i], netid=nns[j].netid)
            self._replace(net_namespaces=tuple(nns))

    def new_vnid(self) -> None:
        nns = list(self.t.net_namespaces)
        if nns:
            i = self.rng.randrange(len(nns))
            nns[i] = dataclasses.replace(nns[i], netid=self.rng.choice([0, 4242, 777777]))
            self._replace(net_namespaces=tuple(nns))

    def multicast(self) -> None:
        nns = list(self.t.net_namespaces)
        if nns:
            i = self.rng.randrange(len(nns))
            nns[i] = dataclasses.replace(nns[i], multicast_enabled=not nns[i].multicast_enabled)
            self._replace(net_namespaces=tuple(nns))

    def add_namespace(self) -> None:
        name = self._name("ns")
        labels = (("team", self.rng.choice(["a", "b"])),)
        self._replace(namespaces=self.t.namespaces + (Namespace(name, labels),),
                      net_namespaces=self.t.net_namespaces + (
                          NetNamespace(name, name,
                                       self.rng.choice([0, 4242, 9000 + self.serial])),))

    def relabel_namespace(self) -> None:
        if self.t.namespaces:
            namespaces = list(self.t.namespaces)
            i = self.rng.randrange(len(namespaces))
            namespaces[i] = dataclasses.replace(namespaces[i], labels=(
                ("team", self.rng.choice(["a", "b", "c"])),))
            self._replace(namespaces=tuple(namespaces))

    def add_policy(self) -> None:
        name = self._name("np")
        rng = self.rng
        peers = rng.choice([(), (PolicyPeer(pod_selector=LabelSelector()),),
                            (PolicyPeer(pod_selector=LabelSelector((("app", "web"),))),),
                            (PolicyPeer(namespace_selector=LabelSelector((("team", "a"),))),),
                            (PolicyPeer(namespace_selector=LabelSelector()),)])
        ports = rng.choice([(), (PolicyPort("TCP", 80),), (PolicyPort("UDP", 53),
                                                           PolicyPort("TCP", 8080)),
                            (PolicyPort("TCP", "http"),)])
        selector = rng.choice([LabelSelector(), LabelSelector((("app", "db"),))])
        policy = NetworkPolicy(rng.choice(self._namespaces()), name, name, selector,
                               (IngressRule(ports, peers),))
        self._replace(network_policies=self.t.network_policies + (policy,))

    def remove_policy(self) -> None:
        if self.t.network_policies:
            policies = list(self.t.network_policies)
            del policies[self.rng.randrange(len(policies))]
            self._replace(network_policies=tuple(policies))

    def egress_firewall(self) -> None:
        name = self._name("enp")
        rules: tuple[EgressRule, ...] = (EgressRule("Allow", IPv4Network("10.0.0.0/8")),
                                         EgressRule("Deny", None, "a.b"),
                                         EgressRule("Deny", IPv4Network("0.0.0.0/0")))
        if self.rng.random() < 0.2:
            rules = ()  # 3.11 ignores a policy without rules
        enp = EgressNetworkPolicy(self.rng.choice(self._namespaces()), name, name, rules)
        self._replace(egress_network_policies=self.t.egress_network_policies + (enp,))

    def step(self) -> str:
        changes = [m for m in dir(self) if not m.startswith("_") and m not in (
            "step", "t", "node", "rng", "serial", "ports")]
        change = self.rng.choice(changes)
        getattr(self, change)()
        return change


def small_cluster(tmp_path: Path, plugin: str, seed: int) -> Topology:
    files = generate(nodes=4, namespaces=6, pods_per_node=5, services=10, plugin=plugin,
                     seed=seed, policies_per_namespace=3)
    write(files, tmp_path)
    topology = load_topology([tmp_path], cache=None)
    nns = tuple(dataclasses.replace(nn, multicast_enabled=i % 2 == 0)
                for i, nn in enumerate(topology.net_namespaces))
    return dataclasses.replace(topology, net_namespaces=nns)


@pytest.mark.parametrize("plugin", ["subnet", "multitenant", "networkpolicy"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_incremental_equals_full_compile_after_random_changes(tmp_path: Path, plugin: str,
                                                              seed: int) -> None:
    topology = small_cluster(tmp_path, plugin, seed)
    node = topology.host_subnets[1].host
    mutator = Mutator(topology, node, seed)
    compiler = NodeCompiler(node, NO_DNS, encode_flow)
    compiler.update(topology)
    previous = check_equal(compiler, topology, node, None)
    for step in range(60):
        change = mutator.step()
        compiler.update(mutator.t, mutator.ports)
        try:
            previous = check_equal(compiler, mutator.t, node, mutator.ports, previous)
        except AssertionError as error:
            raise AssertionError(f"after step {step}: {change}") from error


@pytest.mark.parametrize("cluster", ["seed", "rich"])
@pytest.mark.parametrize("plugin", list(Plugin))
def test_example_clusters_every_node(cluster: str, plugin: Plugin) -> None:
    topology = load_topology([CLUSTERS[cluster]], plugin=plugin)
    for hs in topology.host_subnets:
        compiler = NodeCompiler(hs.host, NO_DNS, encode_flow)
        compiler.update(topology)
        check_equal(compiler, topology, hs.host, None)


def test_contested_keys_go_to_the_first_unit_in_compile_order(tmp_path: Path) -> None:
    """Two Services with the same cluster IP and port (multitenant): the same flow key from
    two units; the first in topology order owns it, as in compile_node, also once the first
    one goes away.  (Namespaces sharing a VNID no longer contest policy flows: under
    networkpolicy one unit holds a VNID's policies.)"""
    topology = small_cluster(tmp_path, "multitenant", 7)
    node = topology.host_subnets[0].host
    original = next(svc for svc in topology.services if svc.cluster_ip is not None)
    other_ns = next(nn.name for nn in topology.net_namespaces if nn.name != original.namespace)
    twin = dataclasses.replace(original, namespace=other_ns, name="twin", uid="uid-twin")
    topology = dataclasses.replace(topology, services=(*topology.services, twin))
    compiler = NodeCompiler(node, NO_DNS, encode_flow)
    compiler.update(topology)
    check_equal(compiler, topology, node, None)
    assert compiler._merged.contested
    without_first = dataclasses.replace(
        topology, services=tuple(svc for svc in topology.services if svc is not original))
    compiler.update(without_first)
    check_equal(compiler, without_first, node, None)
    compiler.update(topology)
    check_equal(compiler, topology, node, None)


def test_changed_objects_finds_the_changed_stretch() -> None:
    a, b, c, d, x, y = (object() for _ in range(6))
    assert changed_objects((a, b, c), (a, b, c)) == ([], [])
    assert changed_objects((a, b, c, d), (a, b, x, c, d)) == ([], [x])
    assert changed_objects((a, b, c), (a, c)) == ([b], [])
    assert changed_objects((a, b), (a, b, x)) == ([], [x])
    assert changed_objects((a, b, c), (a, c, b)) == ([], [])
    assert changed_objects((a, b, c), (y, b, x)) == ([a, c], [y, x])
    big = tuple(object() for _ in range(5000))
    assert changed_objects(big, big[:2500] + (x,) + big[2500:]) == ([], [x])
    assert changed_objects(big, big[:10] + big[11:]) == ([big[10]], [])
    assert changed_objects(big, (y,) + big[1:]) == ([big[0]], [y])
    assert changed_objects(big, big[:-1] + (y,)) == ([big[-1]], [y])
    assert changed_objects(big + (x,), (x,) + big) == ([], [])
    assert changed_objects((), (a,)) == ([], [a])
    assert changed_objects((a,), ()) == ([a], [])


def test_a_pod_costs_its_own_flows_only(tmp_path: Path) -> None:
    topology = small_cluster(tmp_path, "multitenant", 5)
    node = topology.host_subnets[0].host
    compiler = NodeCompiler(node, NO_DNS, encode_flow)
    compiler.update(topology)
    compiler.take_dirty()
    mutator = Mutator(topology, node, 5)
    mutator.rng = random.Random(0)
    hs = next(h for h in topology.host_subnets if h.host == node)
    pod = Pod(topology.net_namespaces[0].name, "extra", "extra", node,
              mutator._free_pod_ip(hs), (), "vextra", 999)
    compiler.update(dataclasses.replace(topology, pods=topology.pods + (pod,)))
    dirty = compiler.take_dirty()
    assert 4 <= len(dirty) <= 6  # the pod's flows (+ its VNID's rule if new), nothing else


def test_a_new_tun0_mac_recomputes_the_egress_ip_flow_only() -> None:
    topology = load_topology([Path(__file__).resolve().parents[2] / "examples" / "seed-cluster"])
    compiler = NodeCompiler("infra.ocp.cn", NO_DNS, encode_flow)
    compiler.update(topology)
    compiler.take_dirty()
    compiler.update(topology, None, "6e:1f:00:aa:bb:cc")
    dirty = compiler.take_dirty()
    assert {key[0] for key in dirty} == {100} and len(dirty) == 1
    reference = compile_node(topology, "infra.ocp.cn", NO_DNS, tun0_mac="6e:1f:00:aa:bb:cc")
    assert [(f, f.owner) for f in compiler.node_flows().flows] \
        == [(f, f.owner) for f in reference.flows]
    compiler.update(topology, None, "6e:1f:00:aa:bb:cc")  # the same MAC: nothing to do
    assert not compiler.take_dirty()
