"""Filling a generated cluster: nodes with their HostSubnets, namespaces with their netids,
Deployments and their pods spread over the nodes, services, egress IPs.  Each part draws from
its own random stream (`Params.rng`); UIDs and names come from one shared `Ids`, in the order
of the parts here, which the written files depend on."""

from __future__ import annotations

import itertools
import math
import random
from typing import TypeVar

from bench.addressplan import HOSTS_PER_RACK, AddressPlan
from bench.catalogue import (
    APPS,
    ENVS,
    EPOCH,
    PROJECT_PARTS,
    PROJECT_WORDS,
    SERVICE_SUFFIXES,
    SYSTEM_APPS,
    SYSTEM_NAMESPACES,
    TEAMS,
    WORDS,
)
from bench.objects import Cluster, Deployment, Ids, Namespace, Node, Pod, Service, dotted
from bench.params import Params
from topology.model import Plugin

_T = TypeVar("_T")


def build_cluster(params: Params, plan: AddressPlan, ids: Ids) -> Cluster:
    cluster = Cluster(params, plan)
    make_nodes(cluster, ids)
    make_namespaces(cluster, ids)
    make_pods(cluster, ids)
    make_services(cluster, ids)
    make_egress(cluster)
    return cluster


# ------------------------------------------------------------------ nodes

def make_nodes(cluster: Cluster, ids: Ids) -> None:
    rng = cluster.params.rng("nodes")
    cluster.nodes = _named_nodes(cluster, rng, ids)
    _allocate_host_subnets(cluster, rng)


def _named_nodes(cluster: Cluster, rng: random.Random, ids: Ids) -> list[Node]:
    """Masters, infra and compute nodes (or EC2 names), 200 hostIPs per /24 of the underlay,
    a quarter with a datapath id."""
    count = cluster.params.nodes
    style = rng.choice(["roles", "ec2", "roles"])
    domain = rng.choice(["ocp.example.com", "cluster.local", "prod.corp.example.net"])
    masters = 3 if count >= 8 else 0
    infras = min(max(1, count // 50), 12) if count >= 4 else 0
    base = int(cluster.plan.underlay.network_address)
    nodes: list[Node] = []
    dpids: set[int] = set()
    for i in range(count):
        ip = base + (1 + i // HOSTS_PER_RACK) * 256 + 10 + i % HOSTS_PER_RACK
        role = "master" if i < masters else "infra" if i < masters + infras else "compute"
        if style == "ec2":
            host = "ip-" + dotted(ip).replace(".", "-") + ".ec2.internal"
        else:
            number = i if role == "master" else i - masters if role == "infra" else \
                i - masters - infras
            host = f"{role}-{number}.{domain}" if role != "compute" else \
                f"node{number + 1:03d}.{domain}"
        node = Node(host, ip, role, EPOCH + 60 + i * 37, ids.uid(), ids.uid(), ids.version())
        if rng.random() < 0.25:
            while True:  # locally administered MAC-like, always above any hostIP
                dpid = (0x0200 << 32) | rng.getrandbits(40)
                if dpid not in dpids:
                    dpids.add(dpid)
                    break
            node.datapath_id = f"{dpid:016x}"
        nodes.append(node)
    return nodes


def _allocate_host_subnets(cluster: Cluster, rng: random.Random) -> None:
    """In order through each cluster network, nodes split evenly, now and then a hole."""
    total = cluster.params.nodes
    networks = cluster.plan.networks
    count = len(networks)
    start = 0
    for index, (cidr, hsl) in enumerate(networks):
        share = total // count + (index < total % count)
        slots = 1 << (32 - cidr.prefixlen - hsl)
        share = min(share, slots)
        if index == count - 1:
            share = total - start
        spare = slots - share
        slot = 0
        for node in cluster.nodes[start:start + share]:
            while spare > 0 and rng.random() < 0.04:  # a deleted node's subnet
                slot += 1
                spare -= 1
            node.subnet = int(cidr.network_address) + (slot << hsl)
            node.prefix = 32 - hsl
            slot += 1
        start += share
        if start < total and index == count - 1:
            raise ValueError("cluster networks too small")  # checked in plan_addresses


# ------------------------------------------------------------------ namespaces

def make_namespaces(cluster: Cluster, ids: Ids) -> None:
    rng = cluster.params.rng("namespaces")
    cluster.namespaces = _named_namespaces(cluster.params, rng)
    _assign_netids(cluster, rng)
    for index, ns in enumerate(cluster.namespaces):
        ns.index = index
        ns.uid_nn, ns.uid_ns = ids.uid(), ids.uid()
        ns.version_nn, ns.version_ns = ids.version(), ids.version()


def _named_namespaces(params: Params, rng: random.Random) -> list[Namespace]:
    """OpenShift's own first (about a fifth of them), then projects like payments-api-prod."""
    system_count = min(len(SYSTEM_NAMESPACES), max(1, params.namespaces // 5))
    namespaces: list[Namespace] = []
    t = EPOCH
    for name, is_global in SYSTEM_NAMESPACES[:system_count]:
        t += rng.randrange(1, 5)
        namespaces.append(Namespace(name, True, t, {"name": name} if name == "default"
                                    else {}, global_=is_global))
    used = {ns.name for ns in namespaces}
    t = EPOCH + 86400 * 3
    while len(namespaces) < params.namespaces:
        name = f"{rng.choice(PROJECT_WORDS)}-{rng.choice(PROJECT_PARTS)}"
        if rng.random() < 0.6:
            name += "-" + rng.choice(ENVS)
        if name in used:
            name += f"-{rng.randrange(2, 100)}"
            if name in used:
                continue
        used.add(name)
        t += rng.randrange(60, 7200)
        labels = {"name": name, "team": rng.choice(TEAMS)}
        if name.rsplit("-", 1)[-1] in ENVS:
            labels["env"] = name.rsplit("-", 1)[-1]
        namespaces.append(Namespace(name, False, t, labels))
    return namespaces


def _assign_netids(cluster: Cluster, rng: random.Random) -> None:
    """Random netids, a tenth left to the master; under ovs-multitenant a few joined, made
    global or isolated; a few with multicast."""
    users = [ns for ns in cluster.namespaces if not ns.system]
    explicit = [ns for ns in cluster.namespaces if not ns.global_]
    netids = rng.sample(range(10, 1 << 24), len(explicit))
    for ns, netid in zip(explicit, netids, strict=True):
        ns.netid = netid
    for ns in _pick(rng, users, 0.1, 1 if len(users) >= 3 else 0):
        ns.netid = None  # the master allocates it
    plugin = cluster.params.plugin
    if plugin is Plugin.MULTITENANT:
        _change_networks(rng, users)
    if plugin is not Plugin.SUBNET:
        for ns in _pick(rng, users, 0.03, 0):
            ns.multicast = True


def _change_networks(rng: random.Random, users: list[Namespace]) -> None:
    """The change-network annotations: join:<ns>, global, isolate."""
    plain = list(users)
    joiners = _pick(rng, plain, 0.05, 1 if len(users) >= 3 else 0)
    for ns in joiners:
        plain.remove(ns)
    for ns in joiners:
        target = rng.choice(plain)
        target.join_target = True
        ns.change = f"join:{target.name}"
    plain = [ns for ns in plain if not ns.join_target]
    for ns in _pick(rng, plain, 0.02, 1 if len(users) >= 8 else 0):
        ns.change = "global"
        plain.remove(ns)
    for ns in _pick(rng, plain, 0.01, 0):
        ns.change = "isolate"  # already alone: the master keeps its VNID


def _pick(rng: random.Random, pool: list[_T], fraction: float, at_least: int) -> list[_T]:
    count = min(len(pool), max(at_least, round(len(pool) * fraction)))
    return rng.sample(pool, count)


# ------------------------------------------------------------------ deployments and pods

def make_pods(cluster: Cluster, ids: Ids) -> None:
    rng = cluster.params.rng("pods")
    if cluster.params.nodes * cluster.params.pods_per_node == 0:
        return
    _make_deployments(cluster, rng, ids)
    _spread_pods(cluster, rng)


def _make_deployments(cluster: Cluster, rng: random.Random, ids: Ids) -> None:
    """Every namespace with workloads gets a Deployment, then a few big projects many more."""
    total = cluster.params.nodes * cluster.params.pods_per_node
    # Namespaces with workloads: projects, and the system ones that run pods of their own.
    order = [ns for ns in cluster.namespaces if not ns.system or ns.name in SYSTEM_APPS]
    weights = [1.0 / math.sqrt(rank + 1) for rank in range(len(order))]
    rng.shuffle(weights)  # a few big projects, many small ones
    cumulative = list(itertools.accumulate(weights))
    left = total
    first_round = iter(order)
    while left > 0:
        first = next(first_round, None)  # every namespace gets a Deployment first
        ns = first or rng.choices(order, cum_weights=cumulative)[0]
        replicas = min(left, rng.choice((1, 1, 2, 2, 2, 3, 3, 4, 5, 6, 8, 10)))
        if first is not None:  # leave pods for the namespaces after it
            replicas = min(replicas, max(1, total // len(order)))
        add_deployment(cluster, rng, ids, ns, replicas)
        left -= replicas


def _spread_pods(cluster: Cluster, rng: random.Random) -> None:
    """Exactly pods_per_node per node, replicas scattered; on each node IPs upward from the
    second address with gaps, ofports from 3 with gaps, unique veth names."""
    slots = [node for node in cluster.nodes for _ in range(cluster.params.pods_per_node)]
    rng.shuffle(slots)
    pods = [pod for d in cluster.deployments for pod in d.pods]
    by_node: dict[str, list[Pod]] = {}
    for pod, node in zip(pods, slots, strict=True):
        pod.node = node
        by_node.setdefault(node.host, []).append(pod)
    interfaces: set[str] = set()
    for node in cluster.nodes:
        mine = sorted(by_node.get(node.host, ()), key=lambda p: p.created)
        size = 1 << (32 - node.prefix)
        window = min(size - 1, 2 + len(mine) + len(mine) // 8 + 2)
        offsets = sorted(rng.sample(range(2, window), len(mine)))
        ofport = 3
        for pod, offset in zip(mine, offsets, strict=True):
            pod.ip = node.subnet + offset
            if rng.random() < 0.05:
                ofport += rng.randrange(1, 4)  # ports of deleted pods
            pod.ofport = ofport
            ofport += 1
            while True:
                name = f"veth{rng.getrandbits(32):08x}"
                if name not in interfaces:
                    interfaces.add(name)
                    break
            pod.interface = name


def add_deployment(cluster: Cluster, rng: random.Random, ids: Ids, ns: Namespace,
                   replicas: int) -> None:
    catalogue = SYSTEM_APPS.get(ns.name, APPS) if ns.system else APPS
    taken = {d.app for d in ns.apps}
    fresh = [entry for entry in catalogue if entry[0] not in taken]
    app, tier, image, ports = rng.choice(fresh or catalogue)
    while app in taken:
        app = f"{app}-{rng.choice(WORDS)}"
    created = max(ns.created + 60, EPOCH + 86400 * 3) + rng.randrange(0, 86400 * 60)
    deployment = Deployment(ns, app, tier, image, ports, ids.token(10), ids.uid(), created,
                            replicas)
    names: set[str] = set()
    for k in range(replicas):
        while True:
            name = f"{app}-{deployment.hash}-{ids.token(5)}"
            if name not in names:
                names.add(name)
                break
        deployment.pods.append(Pod(deployment, name, ids.uid(), created + 5 + k * 3))
    ns.apps.append(deployment)
    cluster.deployments.append(deployment)


# ------------------------------------------------------------------ services

def make_services(cluster: Cluster, ids: Ids) -> None:
    """``kubernetes`` first, then services selecting Deployments (some Deployments more than
    once), at random addresses of the service network."""
    rng = cluster.params.rng("services")
    net = cluster.plan.service_network
    base = int(net.network_address)
    if cluster.params.services == 0:
        return
    default = cluster.namespaces[0]
    cluster.services.append(Service(default, "kubernetes", dotted(base + 1),
                                    [("https", 8443, "TCP", 443)], None, EPOCH + 2, ids.uid()))
    wanted = cluster.params.services - 1
    if wanted and not cluster.deployments:  # no pods at all: Deployments scaled to zero
        homes = [ns for ns in cluster.namespaces if not ns.system or ns.name in SYSTEM_APPS]
        for ns in homes[:wanted]:
            add_deployment(cluster, rng, ids, ns, 0)
    deployments = cluster.deployments
    chosen = rng.sample(deployments, min(wanted, len(deployments)))
    while len(chosen) < wanted and deployments:
        chosen.append(rng.choice(deployments))
    addresses = rng.sample(range(2, net.num_addresses - 1), wanted)
    names: set[tuple[str, str]] = {(default.name, "kubernetes")}
    for deployment, offset in zip(chosen, addresses, strict=True):
        ns = deployment.namespace
        name = deployment.app
        while (ns.name, name) in names:
            name = f"{deployment.app}-{rng.choice(SERVICE_SUFFIXES)}"
            if (ns.name, name) in names:
                name += f"-{rng.randrange(2, 1000)}"
        names.add((ns.name, name))
        ports = list(deployment.ports)
        if len(ports) < 3 and rng.random() < 0.15:
            ports.append(("metrics", 9779, "TCP", 9779))
        headless = deployment.tier == "db" and rng.random() < 0.1
        ip = None if headless else dotted(base + offset)
        selector = [("app", deployment.app)]
        if rng.random() < 0.3:
            selector.append(("tier", deployment.tier))
        cluster.services.append(Service(ns, name, ip, ports, selector, deployment.created + 1,
                                        ids.uid()))


# ------------------------------------------------------------------ egress IPs

def make_egress(cluster: Cluster) -> None:
    """Egress IPs in the underlay's top /24s, held by infra nodes first (every other holder
    with egressCIDRs too), each used by one namespace with a VNID of its own."""
    rng = cluster.params.rng("egress")
    wanted = cluster.params.egress_ips
    if wanted == 0:
        return
    eligible = [ns for ns in cluster.namespaces if ns.own_vnid]
    if not eligible:
        return
    nodes = cluster.nodes
    top = int(cluster.plan.underlay.broadcast_address) + 1
    ips = [top - (1 + k // HOSTS_PER_RACK) * 256 + 10 + k % HOSTS_PER_RACK
           for k in range(wanted)]
    holders = [n for n in nodes if n.role == "infra"] or nodes
    count = min(len(nodes), max(1, round(math.sqrt(wanted))))
    holders = (holders + [n for n in nodes if n not in holders])[:count]
    for k, ip in enumerate(ips):
        holders[k % len(holders)].egress_ips.append(ip)
    blocks = sorted({f"{dotted(ip & ~255)}/24" for ip in ips})
    for node in holders[::2]:
        node.egress_cidrs = blocks  # 3.11's automatic mode
    users = rng.sample(eligible, min(len(eligible), len(ips)))
    for k, ip in enumerate(ips):
        users[k % len(users)].egress_ips.append(ip)
