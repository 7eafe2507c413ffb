"""bench.generate: generated clusters load without an issue, compile on every node, follow
the realism rules the generator promises, and are the same for the same seed."""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.generate import PLUGINS, generate, main, write
from controller.compiler import Settings, compile_node
from topology.load import load_topology
from topology.model import Topology

NO_DNS = Settings(resolver=lambda name: ())


def load(files: dict[str, str], directory: Path) -> Topology:
    write(files, directory)
    return load_topology([directory], cache=None)


def compile_all(topology: Topology) -> None:
    for hs in topology.host_subnets:
        flows = compile_node(topology, hs.host, NO_DNS)
        assert flows.flows, hs.host


def check_invariants(topology: Topology, files: dict[str, str], nodes: int, namespaces: int,
                     pods_per_node: int) -> None:
    """What the generator promises beyond "the loader accepts it"."""
    network = topology.cluster_network
    assert len(topology.host_subnets) == nodes
    assert len(topology.net_namespaces) == len(topology.namespaces) == namespaces
    per_node = Counter(pod.node for pod in topology.pods)
    assert all(per_node[hs.host] == pods_per_node for hs in topology.host_subnets)
    subnets = {hs.host: hs for hs in topology.host_subnets}
    for hs in topology.host_subnets:
        assert any(hs.subnet.subnet_of(entry.cidr) for entry in network.networks)
        assert not hs.subnet.overlaps(network.service_network)
    for pod in topology.pods:
        hs = subnets[pod.node]
        assert pod.ip in hs.subnet
        assert pod.ip not in (hs.subnet.network_address, hs.gateway, hs.subnet.broadcast_address)
        assert pod.ofport is not None and pod.ofport >= 3
        assert pod.interface is not None and re.fullmatch(r"veth[0-9a-f]{8}", pod.interface)
        assert {"app", "tier"} <= pod.label_map.keys()
    assert len({pod.ip for pod in topology.pods}) == len(topology.pods)
    host_ips = {hs.host_ip for hs in topology.host_subnets}
    assert not any(ip in entry.cidr for entry in network.networks for ip in host_ips)
    cluster_ips = [s.cluster_ip for s in topology.services if s.cluster_ip is not None]
    assert len(set(cluster_ips)) == len(cluster_ips)
    assert all(ip in network.service_network for ip in cluster_ips)
    labels: dict[str, list[Any]] = {}
    for pod in topology.pods:
        labels.setdefault(pod.namespace, []).append(pod.label_map)
    for service in topology.services:
        assert 1 <= len(service.ports) <= 3, service
        assert {p.protocol for p in service.ports} <= {"TCP", "UDP"}
        if service.name == "kubernetes" or not topology.pods:
            continue
        assert service.selector
        assert any(all(pod.get(k) == v for k, v in service.selector)
                   for pod in labels.get(service.namespace, ())), service
    for ip in (ip for nn in topology.net_namespaces for ip in nn.egress_ips):
        assert sum(ip in hs.egress_ips for hs in topology.host_subnets) == 1
    # Written the way oc prints them: one List per kind, safe_load-able.
    for name, text in files.items():
        document = yaml.load(text, Loader=yaml.CSafeLoader)
        assert document["kind"] in ("List", "ClusterNetwork"), name


# ------------------------------------------------------------------ small clusters load

CASES = [
    # (seed, plugin, extra parameters)
    (0, "multitenant", {}),
    (1, "multitenant", {"cluster_cidrs": ["10.40.0.0/16"], "host_subnet_length": 7,
                        "vxlan_port": 8472}),
    (2, "multitenant", {"cluster_cidrs": [("10.40.0.0/20", 8), ("10.50.0.0/18", 6)],
                        "vxlan_port": 4790, "namespaces": 12}),
    (3, "subnet", {}),
    (4, "subnet", {"cluster_cidrs": ["172.20.0.0/16", "172.21.0.0/16"],
                   "host_subnet_length": 10, "service_cidr": "10.96.0.0/12",
                   "vxlan_port": 9999}),
    (5, "networkpolicy", {}),
    (6, "networkpolicy", {"cluster_cidrs": ["10.128.0.0/14", "10.132.0.0/14"],
                          "host_subnet_length": 9, "vxlan_port": 4789,
                          "policies_per_namespace": 7}),
    (7, "networkpolicy", {"cluster_cidrs": [("10.1.0.0/16", 5)], "vxlan_port": 6081,
                          "underlay": "192.168.0.0/16", "pods_per_node": 20}),
]


@pytest.mark.parametrize("seed, plugin, extra", CASES,
                         ids=[f"{seed}-{plugin}" for seed, plugin, _ in CASES])
def test_generated_cluster_loads_and_compiles(tmp_path: Path, seed: int, plugin: str,
                                              extra: dict) -> None:
    params = {"nodes": 4, "namespaces": 8, "pods_per_node": 5, **extra}
    files = generate(plugin=plugin, seed=seed, **params)
    topology = load(files, tmp_path)
    network = topology.cluster_network
    assert network.plugin is PLUGINS[plugin]
    assert network.vxlan_port == extra.get("vxlan_port", 4789)
    if "cluster_cidrs" in extra:
        given = [c if isinstance(c, str) else c[0] for c in extra["cluster_cidrs"]]
        assert [str(e.cidr) for e in network.networks] == given
    if "host_subnet_length" in extra:
        assert {e.host_subnet_length for e in network.networks} == {extra["host_subnet_length"]}
    if extra.get("cluster_cidrs") and len(extra["cluster_cidrs"]) > 1:
        used = {next(e.cidr for e in network.networks if hs.subnet.subnet_of(e.cidr))
                for hs in topology.host_subnets}
        assert len(used) == len(network.networks), "every cluster network holds nodes"
    check_invariants(topology, files, params["nodes"], params["namespaces"],
                     params["pods_per_node"])
    assert ("networkpolicies.yaml" in files) == (plugin == "networkpolicy")
    assert "egressnetworkpolicies.yaml" in files
    assert any(hs.egress_ips for hs in topology.host_subnets)
    compile_all(topology)


@pytest.mark.parametrize("seed", range(6))
def test_multitenant_namespaces_are_varied(tmp_path: Path, seed: int) -> None:
    """Global, joined, allocated and explicit VNIDs all occur under ovs-multitenant."""
    files = generate(nodes=3, namespaces=20, pods_per_node=4, plugin="multitenant", seed=seed)
    topology = load(files, tmp_path)
    sources = Counter(nn.netid_source.split(":")[0] for nn in topology.net_namespaces)
    assert sources["join"] >= 1 and sources["allocated"] >= 1 and sources[""] >= 1
    assert sources["global"] >= 1 or any(nn.netid == 0 and nn.name != "default"
                                         for nn in topology.net_namespaces)
    vnids = Counter(nn.netid for nn in topology.net_namespaces)
    assert vnids[0] >= 1 and any(count > 1 for vnid, count in vnids.items() if vnid)
    assert not topology.warnings, topology.warnings
    compile_all(topology)


def test_networkpolicy_cluster_has_every_policy_kind(tmp_path: Path) -> None:
    files = generate(nodes=3, namespaces=10, pods_per_node=6, plugin="networkpolicy", seed=9,
                     policies_per_namespace=5)
    topology = load(files, tmp_path)
    names = {p.name.split("-")[0] + "-" + p.name.split("-")[1] for p in topology.network_policies}
    assert {"deny-all", "allow-from"} <= names
    peers = [peer for p in topology.network_policies for rule in p.ingress for peer in rule.peers]
    assert any(peer.namespace_selector is not None for peer in peers)
    assert any(peer.pod_selector is not None and not peer.pod_selector.is_empty
               for peer in peers)
    assert any(rule.ports for p in topology.network_policies for rule in p.ingress)
    # the generator's global namespaces share VNID 0, whose policy state 3.11 shares
    shared = [w for w in topology.warnings if w.startswith("namespaces default, ")]
    assert len(shared) == 1 and "share VNID 0" in shared[0]
    assert not set(topology.warnings) - set(shared), topology.warnings
    compile_all(topology)


# ------------------------------------------------------------------ any reasonable parameters

GRID = [
    # nodes, namespaces, pods_per_node, services, egress_ips, policies, extra
    (1, 1, 0, 0, 0, 0, {}),
    (1, 1, 1, 1, 1, 1, {}),
    (2, 3, 0, 5, 2, 1, {}),
    (1, 30, 2, 3, 0, 2, {}),
    (30, 2, 1, 40, 5, 3, {}),
    (5, 14, 13, 30, 3, 2, {"host_subnet_length": 4}),  # 13 = 2^4 - 3: every address used
    (6, 40, 10, 200, 12, 4, {"pods_by_node": True, "detail": "full"}),
    (9, 16, 8, 60, 0, 6, {"detail": "minimal", "host_network_pods": False}),
    (3, 6, 3, 10, 250, 1, {}),  # egress IPs spill into a second /24
    (600, 20, 1, 30, 3, 1, {"host_subnet_length": 2}),  # 3 racks of hostIPs, tiny subnets
    (4, 10, 61, 10, 1, 1, {"cluster_cidrs": [("10.0.0.0/24", 6)],
                           "underlay": "10.200.0.0/16"}),  # the cluster network is full
]


@pytest.mark.parametrize("plugin", sorted(PLUGINS))
@pytest.mark.parametrize("nodes, namespaces, ppn, services, egress, policies, extra", GRID)
def test_any_reasonable_parameters_give_a_valid_cluster(
        tmp_path: Path, plugin: str, nodes: int, namespaces: int, ppn: int, services: int,
        egress: int, policies: int, extra: dict) -> None:
    for seed in (0, 1):
        files = generate(nodes, namespaces, ppn, services, egress, policies, plugin, seed,
                         **extra)
        topology = load(files, tmp_path / str(seed))
        check_invariants(topology, files, nodes, namespaces, ppn)
        assert len(topology.services) == services
        assert sum(len(nn.egress_ips) for nn in topology.net_namespaces) <= egress
        if plugin == "networkpolicy" and policies and namespaces > 1:
            assert topology.network_policies
        if extra.get("pods_by_node"):
            assert sum(name.startswith("pods/") for name in files) == nodes
        if nodes <= 10:
            compile_all(topology)
        else:  # a few nodes are enough
            for hs in topology.host_subnets[:3]:
                assert compile_node(topology, hs.host, NO_DNS).flows


@pytest.mark.parametrize("params, message", [
    ({"pods_per_node": 14, "host_subnet_length": 4}, "cannot hold"),
    ({"nodes": 5, "cluster_cidrs": [("10.0.0.0/24", 6)]}, "hold 4 node subnets"),
    ({"cluster_cidrs": ["10.0.0.0/16"], "service_cidr": "10.0.128.0/20"}, "overlaps"),
    ({"services": 20, "service_cidr": "172.30.0.0/28"}, "too small"),
    ({"nodes": 600, "underlay": "192.168.0.0/23"}, "too small"),
    ({"plugin": "calico"}, "unknown plugin"),
])
def test_impossible_parameters_are_refused(params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate(**params)


# ------------------------------------------------------------------ determinism

def test_same_seed_same_bytes() -> None:
    params: dict[str, Any] = dict(nodes=5, namespaces=12, pods_per_node=7, services=20,
                                  egress_ips=3, policies_per_namespace=3, plugin="networkpolicy")
    assert generate(seed=42, **params) == generate(seed=42, **params)
    assert generate(seed=42, **params) != generate(seed=43, **params)


def test_more_services_do_not_move_the_pods() -> None:
    """Each part has its own random stream: adding services leaves the pods as they were."""
    small = generate(nodes=4, namespaces=6, pods_per_node=5, services=5, seed=3)
    large = generate(nodes=4, namespaces=6, pods_per_node=5, services=9, seed=3)
    assert small["hostsubnets.yaml"] == large["hostsubnets.yaml"]
    strip = re.compile(r"resourceVersion: .*|uid: .*")
    assert strip.sub("", small["pods.yaml"]) == strip.sub("", large["pods.yaml"])


# ------------------------------------------------------------------ the command and its speed

def test_command_line_writes_a_loadable_directory(tmp_path: Path, capsys) -> None:
    out = tmp_path / "cluster"
    assert main(["--nodes", "4", "--namespaces", "9", "--services", "15", "--pods-per-node",
                 "6", "--plugin", "networkpolicy", "--seed", "5", "--cluster-cidr",
                 "10.60.0.0/16:7", "--cluster-cidr", "10.61.0.0/16:7", "--vxlan-port",
                 "4800", "--pods-by-node", "--out", str(out)]) == 0
    assert "files" in capsys.readouterr().err
    topology = load_topology([out], cache=None)
    assert [str(e.cidr) for e in topology.cluster_network.networks] == ["10.60.0.0/16",
                                                                         "10.61.0.0/16"]
    assert topology.cluster_network.vxlan_port == 4800
    assert len(topology.services) == 15 and len(topology.pods) == 24
    assert len(list((out / "pods").glob("*.yaml"))) == 4
    assert main(["--nodes", "2", "--pods-per-node", "600", "--host-subnet-length", "9",
                 "--out", str(tmp_path / "bad")]) == 2


def test_generation_is_fast() -> None:
    """A tenth of the 1,000-node benchmark cluster (which takes a few seconds) in well under
    the time budget."""
    started = time.perf_counter()
    files = generate(nodes=100, namespaces=200, pods_per_node=110, services=1000,
                     egress_ips=20, plugin="networkpolicy", seed=1)
    elapsed = time.perf_counter() - started
    assert files["pods.yaml"].count("\n  kind: Pod\n") == 100 * 110 + 2 * 100
    assert elapsed < 5, elapsed
